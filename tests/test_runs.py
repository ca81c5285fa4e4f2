"""fnn.runs: config resolution, deterministic runs, exact resume, observers that cannot change a run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

import fnn
import fnn.cli
from fnn import runs
from tests.timeless import timeless

TINY = {"layers": [784, 8, 10], "epochs": 2, "batch_size": 200, "lr": 10.0}


def test_resolve_fills_defaults_and_checks_names() -> None:
    cfg = runs.resolve_config({})
    assert set(cfg) == set(runs.DEFAULTS)
    assert cfg["layers"] == [784, 16, 16, 10] and cfg["output_activation"] == "sigmoid"
    assert runs.resolve_config({"cost": "cross_entropy"})["output_activation"] == "identity"
    for key, bad, valid in [
        ("activation", "swish", "relu"),
        ("cost", "hinge", "cross_entropy"),
        ("optimizer", "lbfgs", "adamw"),
        ("dataset", "cifar", "fashion-mnist"),
        ("schedule", "cyclic", "warmup_cosine"),
    ]:
        with pytest.raises(runs.ConfigError, match=f"unknown {key} '{bad}'.*{valid}"):
            runs.resolve_config({key: bad})
    with pytest.raises(runs.ConfigError, match=r"unknown config keys \['learning_rate'\].*lr"):
        runs.resolve_config({"learning_rate": 0.1})
    with pytest.raises(runs.ConfigError, match="start with 784"):
        runs.resolve_config({"layers": "10,10"})
    with pytest.raises(runs.ConfigError, match="needs held-out data"):
        runs.resolve_config({"patience": 3})
    for key, bad, message in [
        ("lr", -1, r"lr must be a finite number > 0, got -1; pass e\.g\. 0\.1\."),
        ("lr", True, r"lr must be a finite number > 0, got bool True"),
        ("validation", 1.5, r"validation \(the held-out fraction of the training data\) must be a finite number in "
                            r"\[0, 1\), got 1\.5"),
        ("dropout", "x", r"dropout \(the probability of dropping a unit\) must be a finite number in \[0, 1\), "
                         r"got str 'x'"),
        ("weight_decay", -1e-4, r"weight_decay must be a finite number >= 0, got -0\.0001"),
        ("epochs", 0, r"epochs must be a positive integer, got 0; pass e\.g\. 10\."),
        ("seed", -1, r"seed must be an integer >= 0, got -1; pass e\.g\. 0\."),
    ]:
        with pytest.raises(runs.ConfigError, match=message):
            runs.resolve_config({key: bad})
    assert runs.resolve_config({"lr": 1, "dropout": 0, "validation": 0})["lr"] == 1.0  # ints become floats


def test_same_config_gives_byte_identical_params_with_or_without_observers(tmp_path: Path) -> None:
    pytest.importorskip("tqdm")
    seen: list[int] = []
    lines: list[str] = []
    a = runs.run(TINY, tmp_path / "a")
    b = runs.run(TINY, tmp_path / "b", progress=True, log=lines.append, observers=[lambda s: seen.append(s.epoch)])
    assert seen == [1, 2] and len(lines) == 2 and lines[0].startswith("epoch 1/2  loss ")
    assert fnn.tree.all_equal(timeless(a.state), timeless(b.state))
    assert (tmp_path / "a" / "params.npz").read_bytes() == (tmp_path / "b" / "params.npz").read_bytes()
    checkpoints = [fnn.load(tmp_path / run / "checkpoint.npz") for run in ("a", "b")]  # equal but for wall times
    assert fnn.tree.all_equal(timeless(checkpoints[0]), timeless(checkpoints[1]))
    assert a.record["history"][-1]["loss"] == b.record["history"][-1]["loss"]
    assert fnn.tree.all_equal(a.params, fnn.load(tmp_path / "a" / "params.npz"))
    assert runs.run({**TINY, "seed": 1, "epochs": 1}).record["final"] != a.record["final"]


def test_record_contents(tmp_path: Path) -> None:
    res = runs.run(TINY, tmp_path)
    rec = json.loads((tmp_path / "record.json").read_text())
    assert rec["status"] == "completed" and rec["epochs_done"] == 2 and rec["seed"] == 0
    assert [h["epoch"] for h in rec["history"]] == [1, 2]
    assert all(h["seconds"] >= 0 and 0 <= h["val_accuracy"] <= 1 for h in rec["history"])
    assert rec["final"]["test_accuracy"] == res.record["final"]["test_accuracy"] > 0.5
    assert set(rec["environment"]) >= {"python", "numpy", "toolz", "fnn", "os", "cpu", "blas_threads"}
    assert len(rec["data"]["train_sha256"]) == 64
    assert rec["params_path"] == str((tmp_path / "params.npz").resolve())
    assert json.loads((tmp_path / "config.json").read_text()) == runs.resolve_config(TINY)
    assert rec["plot"] in ("curve.png", "skipped: matplotlib not installed")
    ev = runs.evaluate(tmp_path)
    assert ev["accuracy"] == rec["final"]["test_accuracy"] and ev["n"] == 2000
    assert np.asarray(ev["confusion"]).sum() == 2000 and np.trace(ev["confusion"]) == ev["correct"]


def _stop_after(k: int):
    def observer(state: fnn.TrainState) -> None:
        if state.epoch == k:
            raise KeyboardInterrupt

    return observer


@pytest.mark.parametrize(
    "extra",
    [{}, {"optimizer": "adam", "lr": 3e-3, "schedule": "cosine", "cost": "cross_entropy", "activation": "relu"}],
)
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path: Path, extra: dict) -> None:
    cfg = {**TINY, "epochs": 2, **extra}
    whole = runs.run(cfg, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        runs.run(cfg, tmp_path / "cut", observers=[_stop_after(1)])
    rec = json.loads((tmp_path / "cut" / "record.json").read_text())
    assert rec["status"] == "interrupted" and rec["epochs_done"] == 1
    assert not (tmp_path / "cut" / "params.npz").exists()
    resumed = runs.resume(tmp_path / "cut")
    assert resumed.record["resumed_from_epoch"] == 1 and resumed.record["epochs_done"] == 2
    assert [h["epoch"] for h in resumed.record["history"]] == [1, 2]
    assert fnn.tree.all_equal(timeless(resumed.state), timeless(whole.state))
    assert (tmp_path / "cut" / "params.npz").read_bytes() == (tmp_path / "whole" / "params.npz").read_bytes()


def test_resume_with_more_epochs_equals_longer_run(tmp_path: Path) -> None:
    runs.run({**TINY, "epochs": 1}, tmp_path / "short")
    longer = runs.resume(tmp_path / "short", {"epochs": 2})
    assert fnn.tree.all_equal(longer.params, runs.run({**TINY, "epochs": 2}).params)


def test_resume_refuses_every_key_that_changes_the_result(tmp_path: Path) -> None:
    # issue 15 case 4: dataset, batch size, seed, validation, cost, init, architecture, optimizer
    runs.run({**TINY, "epochs": 1}, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for key, value in [("layers", [784, 9, 10]), ("optimizer", "adam"), ("batch_size", 100), ("seed", 7),
                       ("validation", 0.1), ("cost", "cross_entropy"), ("init", "he"), ("dataset", "fashion-mnist")]:
        change = {key: value, "output_activation": "identity"} if key == "cost" else {key: value}  # logits
        with pytest.raises(runs.ConfigError, match=f"would change its result: .*{key}: "):
            runs.resume(tmp_path, {**change, "epochs": 2})
    with pytest.raises(runs.ConfigError, match=r"seed: 0 -> 7; batch_size|batch_size: 200 -> 100; seed: 0 -> 7"):
        runs.resume(tmp_path, {"seed": 7, "batch_size": 100})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing written


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path: Path) -> None:
    runs.run({**TINY, "epochs": 1}, tmp_path / "a")
    runs.run({**TINY, "epochs": 1, "seed": 7}, tmp_path / "b")
    (tmp_path / "a" / "checkpoint.npz").write_bytes((tmp_path / "b" / "checkpoint.npz").read_bytes())
    with pytest.raises(runs.ConfigError, match="belongs to another run"):
        runs.resume(tmp_path / "a", {"epochs": 2})
    fnn.save(tmp_path / "a" / "checkpoint.npz", runs.load_run(tmp_path / "b").state)  # a bare TrainState
    with pytest.raises(runs.ConfigError, match="not a run checkpoint"):
        runs.resume(tmp_path / "a", {"epochs": 2})


def test_resume_refuses_other_training_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs.run({**TINY, "epochs": 1}, tmp_path)
    real = runs._load_data

    def other_data(cfg):
        train, val, test, info = real(cfg)
        return train, val, test, {**info, "train_sha256": "0" * 64}

    monkeypatch.setattr(runs, "_load_data", other_data)
    with pytest.raises(runs.ConfigError, match="training data differ"):
        runs.resume(tmp_path, {"epochs": 2})


def test_a_completed_run_stays_completed(tmp_path: Path) -> None:
    runs.run({**TINY, "epochs": 2}, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(runs.RunError, match="has done 2 epochs and is complete"):
        runs.resume(tmp_path)
    with pytest.raises(runs.RunError, match="has done 2 epochs.*--epochs above 2"):
        runs.resume(tmp_path, {"epochs": 1})  # issue 15 case 4: used to report "completed"
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_divergence_keeps_last_finite_checkpoint(tmp_path: Path) -> None:
    cfg = {**TINY, "activation": "relu", "output_activation": "identity", "lr": 1e30, "epochs": 2}
    with pytest.raises(fnn.DivergenceError):
        runs.run(cfg, tmp_path)
    rec = json.loads((tmp_path / "record.json").read_text())
    assert rec["status"] == "diverged" and "diverged" in rec["error"]


def test_patience_with_validation(tmp_path: Path) -> None:
    res = runs.run({**TINY, "epochs": 30, "lr": 60.0, "validation": 0.1, "patience": 1}, tmp_path)
    rec = res.record
    assert rec["validation_on"] == "val" and rec["data"]["n_validation"] == 800
    assert rec["epochs_done"] < 30
    losses = [h["val_loss"] for h in rec["history"]]
    assert rec["final"]["val_loss"] == pytest.approx(min(losses), rel=1e-6)


def test_without_matplotlib_the_run_succeeds_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    rec = runs.run({**TINY, "epochs": 1}, tmp_path).record
    assert rec["plot"] == "skipped: matplotlib not installed" and not (tmp_path / "curve.png").exists()
    assert (tmp_path / "params.npz").exists()


# ---------------------------------------------------------------------------
# Issue 15: a run directory is one run; resume is exact with patience; every stop leaves a true record
# ---------------------------------------------------------------------------


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_run_directory_holds_one_run(tmp_path: Path) -> None:
    # case 1: reusing --out used to mix two runs
    runs.run({**TINY, "epochs": 1}, tmp_path)
    before = _files(tmp_path)
    with pytest.raises(runs.RunError, match=r"is not empty \(it holds checkpoint.npz, config.json.*--overwrite"):
        runs.run({**TINY, "epochs": 1, "seed": 3}, tmp_path)
    assert _files(tmp_path) == before
    (tmp_path / "stale-extra.txt").write_text("from the first run")
    second = runs.run({**TINY, "epochs": 1, "seed": 3}, tmp_path, overwrite=True)
    assert not (tmp_path / "stale-extra.txt").exists()
    assert runs.evaluate(tmp_path)["accuracy"] == second.record["final"]["test_accuracy"]
    assert json.loads((tmp_path / "config.json").read_text())["seed"] == 3
    other = tmp_path.parent / (tmp_path.name + "-not-a-run")
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(runs.RunError, match=r"holds one run\. It is not a run directory, which --overwrite never "
                                            r"clears: write this one to another --out\.$"):
        runs.run({**TINY, "epochs": 1}, other)
    with pytest.raises(runs.RunError, match="not a run directory, and --overwrite clears only run directories"):
        runs.run({**TINY, "epochs": 1}, other, overwrite=True)
    assert (other / "notes.txt").read_text() == "mine"


def test_a_locked_run_directory_fails_at_once_naming_the_holder(tmp_path: Path) -> None:
    # case 2: a second process on one --out
    import fcntl

    with open(tmp_path / ".lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 4242 on elsewhere\n")
        held.flush()
        with pytest.raises(runs.RunError, match="is in use by pid 4242 on elsewhere"):
            runs.run({**TINY, "epochs": 1}, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [".lock"]
    runs.run({**TINY, "epochs": 1}, tmp_path / "free")
    assert not (tmp_path / "free" / ".lock").exists()  # released and removed at the end


def test_resume_with_patience_stops_where_the_uninterrupted_run_stops(tmp_path: Path) -> None:
    # case 3: the best loss, the wait count and the best params are in the checkpoint
    cfg = {**TINY, "epochs": 30, "lr": 60.0, "validation": 0.1, "patience": 2}
    whole = runs.run(cfg, tmp_path / "whole")
    stop = whole.record["epochs_done"]
    losses = [h["val_loss"] for h in whole.record["history"]]
    assert stop < 30 and losses.index(min(losses)) + 1 == stop - 2  # stopped early, after waiting 2 epochs
    with pytest.raises(KeyboardInterrupt):
        runs.run(cfg, tmp_path / "cut", observers=[_stop_after(stop - 1)])  # waited 1 epoch already
    assert fnn.load(tmp_path / "cut" / "checkpoint.npz").best_params is not None
    resumed = runs.resume(tmp_path / "cut")
    assert resumed.record["epochs_done"] == stop and resumed.record["stopped_early"]
    assert (tmp_path / "cut" / "params.npz").read_bytes() == (tmp_path / "whole" / "params.npz").read_bytes()
    before = _files(tmp_path / "whole")
    with pytest.raises(runs.RunError, match="stopped early after epoch"):
        runs.resume(tmp_path / "whole", {"epochs": 40})  # an early-stopped run stays completed
    assert _files(tmp_path / "whole") == before


def test_an_interrupt_after_the_last_epoch_is_recorded_and_resumable(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # case 7: Ctrl-C after the last epoch used to leave "running"
    def interrupted(*args):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(runs, "_plot", interrupted)
        with pytest.raises(KeyboardInterrupt):
            runs.run(TINY, tmp_path)
    rec = json.loads((tmp_path / "record.json").read_text())
    assert rec["status"] == "interrupted" and rec["epochs_done"] == 2
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp") or p.name == ".lock"]
    (tmp_path / ".checkpoint.npz.x1y2.tmp").write_bytes(b"half a file from a killed process")
    done = runs.resume(tmp_path)
    assert done.record["status"] == "completed" and done.record["epochs_done"] == 2
    assert not (tmp_path / ".checkpoint.npz.x1y2.tmp").exists()  # stale temporary files are cleaned
    assert fnn.tree.all_equal(done.params, runs.run(TINY).params)


def test_a_full_disk_is_reported_naming_the_directory_and_recorded_failed(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os

    real_save, calls = fnn.io.save, []

    def save(path, tree):
        calls.append(path)
        if len(calls) == 2:  # the checkpoint after epoch 2
            try:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            except OSError as e:
                raise fnn.io.CheckpointError(f"cannot save {path}: {e.strerror}") from e
        real_save(path, tree)

    monkeypatch.setattr(runs.fio, "save", save)
    with pytest.raises(runs.RunError, match=f"cannot write to the run directory {tmp_path}: the disk is full"):
        runs.run(TINY, tmp_path)
    rec = json.loads((tmp_path / "record.json").read_text())
    assert rec["status"] == "failed" and rec["epochs_done"] == 1 and "No space left" in rec["error"]


def test_bad_data_dir_and_validation_fail_before_anything_is_written(tmp_path: Path) -> None:
    # cases 6 and 13
    with pytest.raises(FileNotFoundError, match="the data folder /nonexistent does not exist"):
        runs.run({"dataset": "fashion-mnist", "data_dir": "/nonexistent", "download": False}, tmp_path / "a")
    with pytest.raises(runs.ConfigError, match="validation 1e-09 of 8000 training examples holds out 0"):
        runs.run({**TINY, "validation": 1e-9}, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_evaluate_does_not_need_the_record_and_load_run_names_a_damaged_one(tmp_path: Path) -> None:
    res = runs.run({**TINY, "epochs": 1}, tmp_path)
    (tmp_path / "record.json").write_text("{garbled")
    assert runs.evaluate(tmp_path)["accuracy"] == res.record["final"]["test_accuracy"]
    with pytest.raises(runs.ConfigError, match="record.json: cannot read the record"):
        runs.load_run(tmp_path)
    (tmp_path / "config.json").write_text("[]")
    with pytest.raises(runs.ConfigError, match="config.json: expected an object of config keys, got list"):
        runs.evaluate(tmp_path)


def test_each_model_fills_what_the_config_leaves_open_with_its_own_recipe() -> None:
    assert {k: runs.resolve_config({})[k] for k in ("cost", "optimizer", "lr")} == runs.RECIPES["mlp"] == {
        "cost": "mse", "optimizer": "sgd", "lr": 15.0}
    for model in ("cnn", "lstm", "gru"):
        cfg = runs.resolve_config({"model": model})
        assert (cfg["cost"], cfg["optimizer"], cfg["output_activation"]) == ("cross_entropy", "adam", "identity")
        assert cfg["lr"] == runs.RECIPES[model]["lr"] <= 3e-3
    mixed = runs.resolve_config({"model": "lstm", "optimizer": "sgd", "lr": 0.5})  # what is given stays
    assert (mixed["cost"], mixed["optimizer"], mixed["lr"]) == ("cross_entropy", "sgd", 0.5)
    assert runs.resolve_config({"model": "mlp", "cost": "cross_entropy"})["optimizer"] == "sgd"


def test_a_recurrent_model_with_its_recipe_learns_in_one_epoch(tmp_path: Path) -> None:
    """``fnn train --model gru`` with nothing else given trains (the MLP's SGD at lr 15 diverged)."""
    result = runs.run({"model": "gru", "hidden": 16, "epochs": 1})
    assert result.record["final"]["test_accuracy"] > 0.5


@pytest.mark.parametrize("model, record", [("lstm", fnn.LSTM), ("gru", fnn.GRU)])
def test_recurrent_models_read_images_row_by_row_and_resume_exactly(tmp_path: Path, model: str, record: type) -> None:
    cfg = {**TINY, "model": model, "hidden": 8, "epochs": 2, "cost": "cross_entropy", "optimizer": "adam",
           "lr": 1e-2, "batch_size": 500}
    net = runs.build(runs.resolve_config(cfg))
    assert [type(layer) for layer in net] == [fnn.Reshape, record, fnn.Last, fnn.Dense]
    assert net[0].shape == (28, 28) and net[1].w_x.shape[0] == 28 and net[3].w.shape == (8, 10)
    whole = runs.run(cfg, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        runs.run(cfg, tmp_path / "cut", observers=[_stop_after(1)])
    assert fnn.tree.all_equal(timeless(runs.resume(tmp_path / "cut").state), timeless(whole.state))
    assert whole.record["history"][-1]["loss"] < whole.record["history"][0]["loss"]
    with pytest.raises(runs.ConfigError, match="hidden must be a positive integer"):
        runs.resolve_config({"model": model, "hidden": 0})


# ---------------------------------------------------------------------------
# A run directory's files always describe one run, at every stop
# ---------------------------------------------------------------------------


def test_a_completed_run_resumed_then_interrupted_keeps_no_stale_params(tmp_path: Path) -> None:
    runs.run(TINY, tmp_path)  # completed after 2 epochs: params.npz and curve.png of epoch 2
    with pytest.raises(KeyboardInterrupt):
        runs.resume(tmp_path, {"epochs": 4}, observers=[_stop_after(3)])
    rec = json.loads((tmp_path / "record.json").read_text())
    state = fnn.load(tmp_path / "checkpoint.npz").state
    assert rec["status"] == "interrupted" and rec["epochs_done"] == state.epoch == 3
    assert not (tmp_path / "params.npz").exists() and not (tmp_path / "curve.png").exists()  # of epoch 2: gone
    loaded = runs.load_run(tmp_path)
    assert fnn.tree.all_equal(loaded.params, state.params)
    test_set = runs._load_data(runs.resolve_config(TINY))[2]
    assert runs.evaluate(tmp_path)["accuracy"] == fnn.accuracy(state.params, test_set)
    done = runs.resume(tmp_path)  # epochs 4, from config.json
    assert done.record["epochs_done"] == 4 and (tmp_path / "curve.png").exists() == (done.record["plot"] == "curve.png")
    assert fnn.tree.all_equal(fnn.load(tmp_path / "params.npz"), done.state.params)


@contextlib.contextmanager
def _signal_in_checkpoint_save(n: int, signum: int):
    """Send ``signum`` to this process from inside the ``n``-th checkpoint write (fnn holds it until
    the save is done), as a Ctrl-C or a ``kill`` arriving mid-save does."""
    write, count = fnn.io._write_zip, [0]

    def writing(f, entries):  # type: ignore[no-untyped-def]
        entries = list(entries)
        if b'"fnn.runs.Checkpoint"' in entries[0][1]:
            count[0] += 1
            if count[0] == n:
                os.kill(os.getpid(), signum)
        write(f, iter(entries))

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    fnn.io._write_zip = writing
    try:
        yield
    finally:
        fnn.io._write_zip = write
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_a_checkpoint_save_is_recorded_with_the_epoch_saved(tmp_path: Path, signum: int) -> None:
    with _signal_in_checkpoint_save(2, signum), pytest.raises(KeyboardInterrupt):
        runs.run({**TINY, "epochs": 4}, tmp_path)
    rec = json.loads((tmp_path / "record.json").read_text())
    state = fnn.load(tmp_path / "checkpoint.npz").state
    assert rec["status"] == "interrupted" and rec["epochs_done"] == state.epoch == 2  # was 1 in the record
    assert [h["epoch"] for h in rec["history"]] == [1, 2]
    assert runs.resume(tmp_path).record["resumed_from_epoch"] == 2


def test_a_ctrl_c_during_the_final_save_leaves_a_completed_run(tmp_path: Path) -> None:
    with _signal_in_checkpoint_save(3, signal.SIGINT), pytest.raises(KeyboardInterrupt):
        runs.run(TINY, tmp_path)  # checkpoints of epoch 1, epoch 2, then the one that says "completed"
    rec = json.loads((tmp_path / "record.json").read_text())
    ckpt = fnn.load(tmp_path / "checkpoint.npz")
    assert ckpt.finished == "completed" and ckpt.state.epoch == 2
    assert rec["status"] == "completed" and rec["epochs_done"] == 2 and rec["final"]["test_accuracy"] > 0.5
    assert fnn.tree.all_equal(fnn.load(tmp_path / "params.npz"), ckpt.state.params)
    before = _files(tmp_path)
    with pytest.raises(runs.RunError, match="has done 2 epochs and is complete"):
        runs.resume(tmp_path)
    assert _files(tmp_path) == before


def _tampered(tmp_path: Path, edit) -> Path:
    """A completed run directory whose checkpoint is a sound file holding ``edit(state)``."""
    runs.run(TINY, tmp_path)
    ckpt = fnn.load(tmp_path / "checkpoint.npz")
    fnn.save(tmp_path / "checkpoint.npz", ckpt._replace(state=edit(ckpt.state), finished=""))
    return tmp_path


@pytest.mark.parametrize("edit, reason", [
    (lambda s: s._replace(epoch=5, step=5), r"state is inconsistent: epoch 5, step 5, 2 history entries"),
    (lambda s: s._replace(params=fnn.mlp([784, 9, 10], seed=0)), r"state\.params does not have the layout"),
    (lambda s: s._replace(params=(s.params[0]._replace(b=np.full_like(s.params[0].b, np.nan)),) + s.params[1:]),
     r"state\.params\[0\]\.b holds NaN or inf \(\d+ of \d+ values, the first at index \(0,\)\); the run that "
     r"saved it had diverged"),
], ids=["epoch", "shape", "nan"])
def test_a_checkpoint_holding_a_state_that_cannot_continue_is_damaged(tmp_path: Path, edit, reason: str) -> None:
    run_dir = _tampered(tmp_path, edit)
    before = _files(run_dir)
    with pytest.raises(fnn.io.CheckpointError, match=f"{run_dir / 'checkpoint.npz'} is damaged: {reason}.*"
                                                     f"--config {run_dir / 'config.json'} --out {run_dir} --overwrite"):
        runs.resume(run_dir, {"epochs": 6})
    assert _files(run_dir) == before  # config.json too: checked before any write


def test_evaluate_refuses_nan_params_as_damaged(tmp_path: Path) -> None:
    run_dir = _tampered(tmp_path, lambda s: s._replace(
        params=(s.params[0]._replace(b=np.full_like(s.params[0].b, np.nan)),) + s.params[1:]))
    (run_dir / "params.npz").unlink()
    with pytest.raises(fnn.io.CheckpointError, match=r"checkpoint.npz is damaged: params\[0\]\.b holds NaN or inf"):
        runs.evaluate(run_dir)


def test_a_run_stopped_before_its_first_epoch_says_how_to_start_again(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(runs, "_train", interrupted)  # Ctrl-C in epoch 1
        with pytest.raises(KeyboardInterrupt):
            runs.run(TINY, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "record.json"]
    before = _files(tmp_path)
    with pytest.raises(runs.RunError, match=r"It has no checkpoint.npz to resume from \(its run stopped before the "
                                            r"first epoch ended\): clear it with --overwrite") as refused:
        runs.run(TINY, tmp_path)
    assert "--resume" not in str(refused.value)
    again = f"fnn train --config {tmp_path / 'config.json'} --out {tmp_path} --overwrite"
    with pytest.raises(runs.RunError, match=f"has no checkpoint.npz: its run stopped before the first epoch.*{again}"):
        runs.resume(tmp_path)
    assert _files(tmp_path) == before
    assert fnn.cli.main(again.split()[1:] + ["--quiet"]) == 0  # the advice works
    assert json.loads((tmp_path / "record.json").read_text())["status"] == "completed"
