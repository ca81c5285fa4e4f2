"""The fnn command, end to end in subprocesses: train, evaluate, info, config files, Ctrl-C and resume."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import fnn
from fnn import runs

SMALL = ["--layers", "784,8,10", "--batch-size", "100", "--lr", "5"]


def fnn_cmd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fnn", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_train_writes_every_file_and_evaluate_reads_them(tmp_path: Path) -> None:
    res = fnn_cmd("train", "--epochs", "2", *SMALL, "--out", "r", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert re.fullmatch(r"epoch 1/2  loss \d\.\d{4}  test acc \d\.\d{4}  \d+\.\ds", lines[1])
    assert lines[-1].startswith("test accuracy 0.")
    assert "\r" not in res.stdout + res.stderr and "batch/s" not in res.stderr  # no bar off a terminal
    run_dir = tmp_path / "r"
    expected = {"config.json", "record.json", "params.npz", "checkpoint.npz"}
    assert expected <= {p.name for p in run_dir.iterdir()}
    rec = json.loads((run_dir / "record.json").read_text())
    assert rec["status"] == "completed" and rec["epochs_done"] == 2
    assert (run_dir / "curve.png").exists() == (rec["plot"] == "curve.png")
    state = fnn.load(run_dir / "checkpoint.npz").state
    assert isinstance(state, fnn.TrainState) and state.epoch == 2 and len(state.history) == 2
    assert fnn.tree.all_equal(state.params, fnn.load(run_dir / "params.npz"))

    ev = fnn_cmd("evaluate", "r", cwd=tmp_path)
    assert ev.returncode == 0, ev.stderr
    assert f"test accuracy {rec['final']['test_accuracy']:.4f}" in ev.stdout
    assert "confusion matrix" in ev.stdout and len(ev.stdout.splitlines()) == 13
    info = fnn_cmd("info", "r", "--json", cwd=tmp_path)
    assert json.loads(info.stdout) == rec


def test_default_out_dir_config_file_and_quiet(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('layers = [784, 8, 10]\nbatch-size = 200\nepochs = 1\nlr = 1.0\n')
    res = fnn_cmd("train", "--config", "c.toml", "--lr", "4", "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.splitlines()) == 1 and res.stdout.startswith("test accuracy")
    (run_dir,) = (tmp_path / "runs").iterdir()
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["lr"] == 4.0 and cfg["batch_size"] == 200 and cfg["layers"] == [784, 8, 10]
    assert re.fullmatch(r"\d{8}-\d{6}-" + runs.config_hash(cfg), run_dir.name)


@pytest.mark.parametrize(
    "option, value, valid",
    [("--optimizer", "lbfgs", "rmsprop"), ("--dataset", "cifar10", "fashion-mnist")],  # the rest: test_runs
)
def test_unknown_names_fail_before_any_work(tmp_path: Path, option: str, value: str, valid: str) -> None:
    res = fnn_cmd("train", option, value, cwd=tmp_path)
    assert res.returncode == 2
    assert f"unknown {option[2:]} '{value}'" in res.stderr and valid in res.stderr
    assert not (tmp_path / "runs").exists()


def test_ctrl_c_saves_checkpoint_and_resume_is_exact(tmp_path: Path) -> None:
    # a shell's background job starts with SIGINT ignored; restore it, as a terminal's Ctrl-C sees it
    proc = subprocess.Popen([sys.executable, "-m", "fnn", "train", "--epochs", "50", *SMALL, "--out", "r"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("epoch  1/50"):
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "fnn train --resume r" in err
    state = fnn.load(tmp_path / "r" / "checkpoint.npz").state
    k = state.epoch
    assert 1 <= k < 50
    assert json.loads((tmp_path / "r" / "record.json").read_text())["status"] == "interrupted"

    res = fnn_cmd("train", "--resume", "r", "--epochs", str(k + 2), "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    whole = runs.run({"layers": [784, 8, 10], "batch_size": 100, "lr": 5.0, "epochs": k + 2}, tmp_path / "whole")
    assert (tmp_path / "r" / "params.npz").read_bytes() == (tmp_path / "whole" / "params.npz").read_bytes()
    rec = json.loads((tmp_path / "r" / "record.json").read_text())
    assert rec["resumed_from_epoch"] == k and rec["epochs_done"] == k + 2
    assert fnn.tree.all_equal(fnn.load(tmp_path / "r" / "checkpoint.npz").state, whole.state)


def test_bad_run_dir_and_console_script(tmp_path: Path) -> None:
    res = fnn_cmd("evaluate", "nowhere", cwd=tmp_path)
    assert res.returncode == 2 and "nowhere" in res.stderr
    exe = shutil.which("fnn", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if exe is None:
        pytest.skip("the fnn console script is not installed (pip install -e .)")
    res = subprocess.run([exe, "train", "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "--batch-size" in res.stdout and "--resume" in res.stdout
