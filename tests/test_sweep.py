"""fnn.runs.sweep and ``fnn sweep``: a grid of runs end to end, in a temp folder.

Tiny nets and one or two epochs on the embedded digits, so the whole file runs in seconds;
the same grid one by one, on a local process pool and on a Dask LocalCluster.
"""

from __future__ import annotations

import csv
import gc
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fnn import grid, runs

SMALL = {"layers": [784, 8, 10], "epochs": 2, "batch_size": 100}
DIVERGES = {"lr": 1e30, "activation": "identity"}  # float32 params of 1e30 overflow in the first epoch


def _grid(**extra):
    return {**SMALL, "lr": [5.0, 15.0], "seed": [0, 1], **extra}


def _params(run_dir):
    with np.load(Path(run_dir) / runs.PARAMS_FILE) as f:
        return {k: f[k] for k in f.files}


def _same_params(a, b):
    pa, pb = _params(a), _params(b)
    assert pa.keys() == pb.keys()
    for k in pa:  # the arrays, and the tree description (bytes) beside them
        if isinstance(pa[k], bytes):
            assert pa[k] == pb[k], k
        else:
            assert pa[k].dtype == pb[k].dtype and np.array_equal(pa[k], pb[k]), k


def _csv(out):
    with open(Path(out) / runs.SUMMARY_CSV, newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------
# Grids
# ---------------------------------------------------------------------------


def test_grid_is_the_cartesian_product_last_key_fastest():
    configs = grid.expand({"lr": [1.0, 2.0], "epochs": 3, "seed": [0, 1, 2]})
    assert [(c["lr"], c["seed"]) for c in configs] == [(1.0, 0), (1.0, 1), (1.0, 2), (2.0, 0), (2.0, 1), (2.0, 2)]
    assert all(c["epochs"] == 3 for c in configs)


def test_list_valued_keys_take_a_list_of_lists():
    keys = {"layers", "channels"}
    assert grid.expand({"layers": [784, 16, 10]}, keys) == [{"layers": [784, 16, 10]}]
    axis = grid.expand({"layers": [[784, 16, 10], "784,32,10"], "channels": [32, 64]}, keys)
    assert [c["layers"] for c in axis] == [[784, 16, 10], "784,32,10"]
    assert all(c["channels"] == [32, 64] for c in axis)
    with pytest.raises(ValueError, match=r"layers = \[\[784, 10\], 5\] mixes values and lists"):
        grid.expand({"layers": [[784, 10], 5]}, keys)
    with pytest.raises(ValueError, match=r"lr = \[\] is an axis with no values"):
        grid.expand({"lr": []})


def test_bad_grids_are_refused_before_any_run(tmp_path):
    out = tmp_path / "sweep"
    with pytest.raises(runs.ConfigError, match=r"run 2 of 2 \(lr=-1.0\): lr must be a finite number > 0, got -1.0"):
        runs.sweep({**SMALL, "lr": [15.0, -1.0]}, out=out)
    with pytest.raises(runs.ConfigError, match=r"\(optimizer='adamm'\): unknown optimizer 'adamm'"):
        runs.sweep({**SMALL, "optimizer": ["sgd", "adamm"]}, out=out)
    with pytest.raises(runs.ConfigError, match=r"unknown config keys \['learning_rate'\]"):
        runs.sweep({"learning_rate": [1.0, 2.0]}, out=out)
    with pytest.raises(runs.ConfigError, match="run 2 of 2 .* is the same run as run 1"):
        runs.sweep({**SMALL, "lr": [1, 1.0]}, out=out)
    with pytest.raises(runs.ConfigError, match="at least one config"):
        runs.sweep([], out=out)
    assert not out.exists()  # nothing trained, nothing written


# ---------------------------------------------------------------------------
# End to end, one by one
# ---------------------------------------------------------------------------


def test_sweep_rows_statuses_and_summary_files(tmp_path):
    lines = []
    configs = [*runs.sweep_configs(_grid()), {**SMALL, **DIVERGES, "seed": 0}]
    result = runs.sweep(configs, out=tmp_path, log=lines.append)
    assert [r["status"] for r in result.rows] == ["completed"] * 4 + ["diverged"]
    assert [(r["lr"], r["seed"]) for r in result.rows] == [(5.0, 0), (5.0, 1), (15.0, 0), (15.0, 1), (1e30, 0)]
    assert "diverged" in result.rows[-1]["error"] and result.rows[-1]["test_accuracy"] is None
    assert all(r["epochs_done"] == 2 and 0.1 < r["test_accuracy"] <= 1 for r in result.rows[:4]), result.rows
    assert len([line for line in lines if line.startswith("[")]) == 5  # a line per finished run

    rows = _csv(tmp_path)
    # the varied keys in config order (the output activation follows the hidden one), seed, the outcome
    assert list(rows[0]) == ["activation", "output_activation", "lr", "seed", *grid.COLUMNS]
    assert [r["status"] for r in rows] == [r["status"] for r in result.rows]
    for row, config in zip(rows, configs):
        assert Path(row["run_dir"]) == tmp_path / "runs" / runs.config_hash(runs.resolve_config(config))
        record = json.loads((Path(row["run_dir"]) / runs.RECORD_FILE).read_text())
        assert record["status"] == row["status"] and record["seed"] == int(row["seed"])
        if row["status"] == "completed":
            assert float(row["test_accuracy"]) == record["final"]["test_accuracy"]

    # summary.md: lr x activation averaged over seeds, best first, the best named
    table = (tmp_path / runs.SUMMARY_MD).read_text()
    assert table.strip() == result.table.strip()
    accs = {lr: [r["test_accuracy"] for r in result.rows if r["lr"] == lr] for lr in (5.0, 15.0)}
    best = max(accs, key=lambda lr: np.mean(accs[lr]))
    line = next(row for row in table.splitlines() if row.startswith(f"| sigmoid | sigmoid | {best:g} |"))
    assert f"| 2 | {np.mean(accs[best]):.4f} ± {np.std(accs[best], ddof=1):.4f} |" in line
    body = [row for row in table.splitlines() if row.startswith("| ") and "---" not in row][1:]
    assert body[0] == line and "1 diverged" in body[-1]
    assert f"Best: activation=sigmoid, output_activation=sigmoid, lr={best:g}, test accuracy " in table
    if importlib.util.find_spec("matplotlib") is not None:  # the plot is optional: the cli extra installs it
        assert (tmp_path / runs.SWEEP_PLOT).stat().st_size > 1000
    else:
        assert not (tmp_path / runs.SWEEP_PLOT).exists()


def test_a_run_is_bit_identical_to_fnn_train(tmp_path):
    result = runs.sweep({**SMALL, "seed": [3]}, out=tmp_path / "sweep")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "fnn", "train", "--layers", "784,8,10", "--epochs", "2", "--batch-size", "100",
           "--seed", "3", "--quiet", "--no-progress", "--out", str(tmp_path / "train")]
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    _same_params(result.rows[0]["run_dir"], tmp_path / "train")
    swept, trained = (json.loads((Path(d) / runs.CONFIG_FILE).read_text())
                      for d in (result.rows[0]["run_dir"], tmp_path / "train"))
    assert swept == trained


def test_rerun_skips_finished_runs_and_continues_interrupted_ones(tmp_path):
    out = tmp_path / "sweep"
    cfg = runs.resolve_config({**SMALL, "epochs": 3, "seed": 1})
    run_dir = out / "runs" / runs.config_hash(cfg)

    def stop_after_first_epoch(state):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # as a Ctrl-C after epoch 1 leaves it
        runs.run(cfg, run_dir, observers=[stop_after_first_epoch])
    assert json.loads((run_dir / runs.RECORD_FILE).read_text())["status"] == "interrupted"

    configs = [{**SMALL, "epochs": 3, "seed": s} for s in (0, 1)]
    first = runs.sweep(configs, out=out)
    assert [r["status"] for r in first.rows] == ["completed", "completed"]
    record = json.loads((run_dir / runs.RECORD_FILE).read_text())
    assert record["resumed_from_epoch"] == 1  # continued from its checkpoint
    reference = runs.sweep([configs[1]], out=tmp_path / "whole")  # the same run never stopped
    _same_params(run_dir, reference.rows[0]["run_dir"])

    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*")}
    (out / runs.SUMMARY_CSV).unlink()
    lines = []
    again = runs.sweep(configs, out=out, log=lines.append)
    assert lines == [f"fnn sweep: 2 runs (2 already finished) -> {out}"]
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*")} == stamps  # nothing ran again
    assert again.rows == first.rows and (out / runs.SUMMARY_CSV).exists()  # the summary is rewritten


def test_a_failing_run_is_recorded_and_the_others_finish(tmp_path):
    out = tmp_path / "sweep"
    cfg = runs.resolve_config({**SMALL, "seed": 1})
    broken = out / "runs" / runs.config_hash(cfg)  # a run whose checkpoint was damaged
    broken.mkdir(parents=True)
    (broken / runs.CONFIG_FILE).write_text(json.dumps(cfg))
    (broken / runs.CHECKPOINT_FILE).write_text("not a checkpoint")
    result = runs.sweep({**SMALL, "seed": [0, 1, 2]}, out=out)
    assert [r["status"] for r in result.rows] == ["completed", "failed", "completed"]
    error = result.rows[1]["error"]
    assert str(broken / runs.CHECKPOINT_FILE) in error and error.split(":")[0].endswith("Error"), error
    assert [r["error"] for r in _csv(out)] == ["", error, ""]
    assert "1 failed" in result.table


def test_cli_sweep_of_a_json_grid_exit_codes_and_table(tmp_path):
    grid_file = tmp_path / "grid.json"
    grid_file.write_text(json.dumps({"layers": [[784, 8, 10], [784, 12, 10]], "epochs": 1, "batch-size": 100}))
    cmd = [sys.executable, "-m", "fnn", "sweep", str(grid_file), "--out", str(tmp_path / "s")]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "[2/2] completed   layers=784-" in done.stdout and "| layers | n | test accuracy |" in done.stdout
    assert [r["layers"] for r in _csv(tmp_path / "s")] == ["[784, 8, 10]", "[784, 12, 10]"]

    grid_file.write_text(json.dumps({"layers": [784, 8, 10], "epochs": 1, "batch_size": 100, "lr": [5.0, 1e30],
                                     "activation": "identity"}))
    diverged = subprocess.run([*cmd[:-1], str(tmp_path / "d")], capture_output=True, text=True)
    assert diverged.returncode == 1 and "diverged" in diverged.stdout

    bad = tmp_path / "bad.toml"
    bad.write_text('lr = [15.0, -1.0]\nepochs = 1\n')
    refused = subprocess.run([sys.executable, "-m", "fnn", "sweep", str(bad), "--out", str(tmp_path / "b")],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.startswith("fnn sweep: error: run 2 of 2 (lr=-1.0): lr must be a finite number > 0")
    assert not (tmp_path / "b").exists()


# ---------------------------------------------------------------------------
# Executors: a local process pool, a Dask LocalCluster
# ---------------------------------------------------------------------------


def test_process_pool_gives_the_same_runs(tmp_path):
    serial = runs.sweep(_grid(), out=tmp_path / "serial")
    configs = [*runs.sweep_configs(_grid()), {**SMALL, **DIVERGES, "seed": 0}]
    pooled = runs.sweep(configs, 2, out=tmp_path / "pool")
    assert [r["status"] for r in pooled.rows] == ["completed"] * 4 + ["diverged"]
    for a, b in zip(serial.rows, pooled.rows):  # bit-identical wherever a run ran
        _same_params(a["run_dir"], b["run_dir"])
        assert a["test_accuracy"] == b["test_accuracy"] and a["test_loss"] == b["test_loss"]


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_dask_local_cluster(tmp_path, processes):
    """On a LocalCluster; with worker processes one is killed mid-run and its run is retried from its checkpoint."""
    pytest.importorskip("distributed")
    # Dask sets OMP/OPENBLAS/MKL_NUM_THREADS=1 in this process's environment when it starts worker
    # processes and leaves them there: later tests' subprocesses would inherit one BLAS thread
    environ = dict(os.environ)
    try:
        _on_a_local_cluster(tmp_path, processes)
    finally:
        os.environ.clear()
        os.environ.update(environ)


def _on_a_local_cluster(tmp_path, processes):
    import distributed

    configs = [{**SMALL, "epochs": 30 if processes else 2, "seed": 0}, {**SMALL, "seed": 1}]
    serial = runs.sweep(configs, out=tmp_path / "serial")
    first = tmp_path / "dask" / "runs" / runs.config_hash(runs.resolve_config(configs[0]))
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=processes, dashboard_address=":0",
                                 silence_logs=logging.CRITICAL) as cluster,
        distributed.Client(cluster) as client,
    ):
        killer = None
        if processes:
            def kill_the_worker_mid_run():
                deadline = time.monotonic() + 60
                while not (first / runs.CHECKPOINT_FILE).exists() and time.monotonic() < deadline:
                    time.sleep(0.02)
                try:
                    client.run(os._exit, 1)
                except Exception:
                    pass

            killer = threading.Thread(target=kill_the_worker_mid_run)
            killer.start()
        result = runs.sweep(configs, client.get_executor(pure=False), out=tmp_path / "dask")
        if killer is not None:
            killer.join()
    gc.collect()
    assert [r["status"] for r in result.rows] == ["completed", "completed"], result.rows
    for a, b in zip(serial.rows, result.rows):
        _same_params(a["run_dir"], b["run_dir"])
        assert a["test_accuracy"] == b["test_accuracy"]
    if processes:
        record = json.loads((first / runs.RECORD_FILE).read_text())
        assert record["resumed_from_epoch"] is not None  # the worker died; the run went on from its checkpoint


def test_a_ctrl_c_during_a_runs_final_save_leaves_it_completed_for_the_rerun(tmp_path):
    from tests.test_runs import _signal_in_checkpoint_save

    out, config = tmp_path / "sweep", {**SMALL, "seed": 0}
    with _signal_in_checkpoint_save(3, signal.SIGINT), pytest.raises(KeyboardInterrupt):
        runs.sweep([config], out=out)  # epochs 2: the checkpoints of epoch 1, epoch 2, then the "completed" one
    rerun = runs.sweep([config], out=out)
    assert [(r["status"], r["error"]) for r in rerun.rows] == [("completed", None)]  # was failed: "is complete"
    assert rerun.rows[0]["test_accuracy"] > 0.5 and rerun.rows[0]["epochs_done"] == 2
    assert runs.sweep([config], out=out).rows == rerun.rows


def test_a_sweep_out_that_is_a_file_is_refused_naming_it(tmp_path):
    (tmp_path / "afile").write_text("not a directory")
    for out in (tmp_path / "afile", tmp_path / "afile" / "sweep"):
        with pytest.raises(runs.RunError, match=f"{out} is a file \\(or lies under one\\), not a directory; choose "
                                                "another --out"):
            runs.sweep([SMALL], out=out)
    assert (tmp_path / "afile").read_text() == "not a directory"
