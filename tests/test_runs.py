"""fnn.runs: config resolution, deterministic runs, exact resume, observers that cannot change a run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import fnn
from fnn import runs

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
    with pytest.raises(runs.ConfigError, match="lr must be a positive"):
        runs.resolve_config({"lr": -1})


def test_same_config_gives_byte_identical_params_with_or_without_observers(tmp_path: Path) -> None:
    pytest.importorskip("tqdm")
    seen: list[int] = []
    lines: list[str] = []
    a = runs.run(TINY, tmp_path / "a")
    b = runs.run(TINY, tmp_path / "b", progress=True, log=lines.append, observers=[lambda s: seen.append(s.epoch)])
    assert seen == [1, 2] and len(lines) == 2 and lines[0].startswith("epoch 1/2  loss ")
    assert fnn.tree.all_equal(a.state, b.state)
    assert (tmp_path / "a" / "params.npz").read_bytes() == (tmp_path / "b" / "params.npz").read_bytes()
    assert (tmp_path / "a" / "checkpoint.npz").read_bytes() == (tmp_path / "b" / "checkpoint.npz").read_bytes()
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
    cfg = {**TINY, "epochs": 4, **extra}
    whole = runs.run(cfg, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        runs.run(cfg, tmp_path / "cut", observers=[_stop_after(2)])
    rec = json.loads((tmp_path / "cut" / "record.json").read_text())
    assert rec["status"] == "interrupted" and rec["epochs_done"] == 2
    assert not (tmp_path / "cut" / "params.npz").exists()
    resumed = runs.resume(tmp_path / "cut")
    assert resumed.record["resumed_from_epoch"] == 2 and resumed.record["epochs_done"] == 4
    assert [h["epoch"] for h in resumed.record["history"]] == [1, 2, 3, 4]
    assert fnn.tree.all_equal(resumed.state, whole.state)
    assert (tmp_path / "cut" / "params.npz").read_bytes() == (tmp_path / "whole" / "params.npz").read_bytes()


def test_resume_with_more_epochs_equals_longer_run(tmp_path: Path) -> None:
    runs.run({**TINY, "epochs": 2}, tmp_path / "short")
    longer = runs.resume(tmp_path / "short", {"epochs": 4})
    assert fnn.tree.all_equal(longer.params, runs.run({**TINY, "epochs": 4}).params)


def test_resume_with_another_architecture_or_optimizer_fails(tmp_path: Path) -> None:
    runs.run({**TINY, "epochs": 1}, tmp_path)
    with pytest.raises(fnn.io.CheckpointError, match="does not match"):
        runs.resume(tmp_path, {"layers": [784, 9, 10]})
    with pytest.raises(runs.ConfigError, match="optimizer state"):
        runs.resume(tmp_path, {"optimizer": "adam"})


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
    assert fnn.tree.all_equal(runs.resume(tmp_path / "cut").state, whole.state)
    assert whole.record["history"][-1]["loss"] < whole.record["history"][0]["loss"]
    with pytest.raises(runs.ConfigError, match="hidden must be an integer >= 1"):
        runs.resolve_config({"model": model, "hidden": 0})
