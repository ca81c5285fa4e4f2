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

import numpy as np
import pytest

import fnn
import fnn.cli
from fnn import runs
from tests.timeless import timeless

SMALL = ["--layers", "784,8,10", "--batch-size", "100", "--lr", "5"]


def fnn_cmd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fnn", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


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
    assert "confusion matrix" in ev.stdout and len(ev.stdout.splitlines()) == 14
    assert ev.stdout.splitlines()[-1].startswith("per-class accuracy: 0 ")
    assert re.search(r"fnn train: .* \(\d+(,\d{3})* params\)", res.stdout.splitlines()[0])
    plain = fnn_cmd("info", "r", cwd=tmp_path)
    assert f"trainable params: {fnn.num_params(state.params):,}" in plain.stdout
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
    assert fnn.tree.all_equal(timeless(fnn.load(tmp_path / "r" / "checkpoint.npz").state), timeless(whole.state))


def test_bad_run_dir_and_console_script(tmp_path: Path) -> None:
    res = fnn_cmd("evaluate", "nowhere", cwd=tmp_path)
    assert res.returncode == 2 and "nowhere" in res.stderr
    exe = shutil.which("fnn", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if exe is None:
        pytest.skip("the fnn console script is not installed (pip install -e .)")
    res = subprocess.run([exe, "train", "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "--batch-size" in res.stdout and "--resume" in res.stdout


# ---------------------------------------------------------------------------
# Issues 14 and 15: no traceback for bad input, one run per directory, true records at every stop
# ---------------------------------------------------------------------------


def _bad_inputs(tmp_path: Path) -> list[tuple[list[str], int, str]]:
    """(arguments, exit code, a fragment of stderr) for bad options and files."""
    (tmp_path / "bad.toml").write_text("lr = 0.5\nbatch-size = = 20\n")
    (tmp_path / "bad.json").write_text('{"lr": 0.5,,}')
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "dir.toml").mkdir()
    (tmp_path / "afile").write_text("not a directory")
    (tmp_path / "g.toml").write_text("layers = [784, 8, 10]\nepochs = 1\nseed = [0, 1]\n")
    for name, config in [("garbled", "{oops"), ("nonobject", "[]")]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(config)
    info = {"empty": "{}", "list": "[]", "nullloss": json.dumps(
        {"status": "completed", "config": {}, "config_hash": "x", "seed": 0, "epochs_done": 1,
         "validation_on": "test", "history": [{"epoch": 1, "loss": None, "val_loss": None, "val_accuracy": None}],
         "wall_time_s": None, "wall_time_total_s": 1.0, "data": {}, "environment": {}})}
    for name, text in info.items():
        (tmp_path / f"info-{name}").mkdir()
        (tmp_path / f"info-{name}" / "record.json").write_text(text)
    return [
        (["train", "--config", "bad.toml"], 2, "fnn train: error: bad.toml: not valid TOML"),
        (["train", "--config", "bad.json"], 2, "fnn train: error: bad.json: not valid JSON"),
        (["train", "--config", "list.json"], 2, "expected a table of config keys, got list"),
        (["train", "--config", "dir.toml"], 2, "dir.toml: cannot read the config file: it is a directory"),
        (["train", "--config", "missing.toml"], 2, "missing.toml: no such config file"),
        (["train", "--out", "afile", *SMALL], 2, "afile is a file (or lies under one)"),
        (["train", "--out", "afile/run", *SMALL], 2, "afile/run is a file (or lies under one)"),
        (["train", "--resume", "afile"], 2, "afile is a file"),
        (["sweep", "g.toml", "--out", "afile"], 2, "fnn sweep: error: afile is a file (or lies under one), not a "
                                                   "directory; choose another --out."),
        (["train", "--resume", "garbled"], 2, "garbled/config.json: cannot read the config"),
        (["train", "--resume", "nonobject"], 2, "expected an object of config keys, got list"),
        (["train", "--validation", "1e-9", "--out", "v", *SMALL], 2, "holds out 0"),
        (["train", "--dataset", "fashion-mnist", "--data-dir", "/nonexistent", "--no-download"], 2,
         "the data folder /nonexistent does not exist"),
        (["train", "--dataset", "mnist", "--data-dir", "/nonexistent"], 2,  # downloading is the default: not there
         "the data folder /nonexistent does not exist (or is not a folder); pass the folder"),
        (["train", "--lr", "-1"], 2, "lr must be a finite number > 0"),
        (["train", "--epochs", "0"], 2, "epochs must be a positive integer"),
        (["train", "--epochs", "x"], 2, "invalid int value"),
        (["evaluate", "nowhere"], 2, "nowhere does not exist"),
        (["info", "info-empty"], 2, "is not a complete run record"),
        (["info", "info-list"], 2, "is not a complete run record"),
        (["info", "info-nullloss"], 2, "is not a complete run record"),  # data: {} lacks its fields
    ]


def test_bad_options_and_files_never_show_a_traceback(tmp_path: Path) -> None:
    for args, code, fragment in _bad_inputs(tmp_path):
        res = fnn_cmd(*args, cwd=tmp_path)
        assert "Traceback" not in res.stderr + res.stdout, (args, res.stderr)
        assert res.returncode == code, (args, res.returncode, res.stderr)
        assert fragment in res.stderr, (args, res.stderr)
    assert not (tmp_path / "v").exists() and not (tmp_path / "runs").exists()  # refused before any write


def test_a_failed_download_is_one_paragraph_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    env = {**os.environ, "FNN_DATA": str(tmp_path / "nodata"), "HOME": str(tmp_path),
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}  # refused at once
    res = subprocess.run([sys.executable, "-m", "fnn", "train", "--dataset", "mnist", "--data-dir", "empty"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    message = res.stderr.strip()
    assert message.startswith("fnn train: error: load_mnist: the MNIST files are not on disk") and "\n" not in message
    for hint in ["train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "--data-dir", "$FNN_DATA/mnist",
                 "~/.cache/fnn/mnist"]:
        assert hint in message, message


def test_info_names_the_test_split_when_there_was_no_validation(tmp_path: Path) -> None:
    assert fnn_cmd("train", "--epochs", "1", *SMALL, "--out", "r", "--quiet", cwd=tmp_path).returncode == 0
    header = fnn_cmd("info", "r", cwd=tmp_path).stdout.splitlines()[3].split()
    assert header == ["epoch", "loss", "train", "acc", "test", "loss", "test", "acc", "lr", "seconds"]


def test_out_holds_one_run_overwrite_clears_it(tmp_path: Path) -> None:
    assert fnn_cmd("train", "--epochs", "1", *SMALL, "--out", "r", "--quiet", cwd=tmp_path).returncode == 0
    again = fnn_cmd("train", "--epochs", "1", *SMALL, "--seed", "1", "--out", "r", cwd=tmp_path)
    assert again.returncode == 2 and "is not empty" in again.stderr and "--overwrite" in again.stderr
    over = fnn_cmd("train", "--epochs", "1", *SMALL, "--seed", "1", "--out", "r", "--overwrite", "--quiet",
                   cwd=tmp_path)
    assert over.returncode == 0, over.stderr
    assert json.loads((tmp_path / "r" / "record.json").read_text())["seed"] == 1
    changed = fnn_cmd("train", "--resume", "r", "--epochs", "2", "--batch-size", "50", cwd=tmp_path)
    assert changed.returncode == 2 and "batch_size: 100 -> 50" in changed.stderr


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "fnn", "train", *args], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_a_second_process_fails_at_once_and_sigterm_leaves_a_true_record(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--epochs", "200", *SMALL, "--out", "r")
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("epoch   1/200"):
            break
    second = fnn_cmd("train", "--epochs", "1", *SMALL, "--out", "r", cwd=tmp_path)
    assert second.returncode == 2 and f"is in use by pid {proc.pid} on " in second.stderr, second.stderr
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 130 and "Traceback" not in err, err
    rec = json.loads((tmp_path / "r" / "record.json").read_text())
    assert rec["status"] == "interrupted" and rec["epochs_done"] >= 1
    assert not [p.name for p in (tmp_path / "r").iterdir() if p.name.endswith(".tmp") or p.name == ".lock"]


def test_a_closed_stdout_never_stops_training(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--epochs", "3", *SMALL, "--out", "r")
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()  # `fnn train ... | head -1`
    proc.stdout.close()
    with proc.stderr:
        err = proc.stderr.read()
    assert proc.wait(timeout=600) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    rec = json.loads((tmp_path / "r" / "record.json").read_text())
    assert rec["status"] == "completed" and rec["epochs_done"] == 3


def test_info_and_evaluate_into_a_closed_pipe_say_nothing_more(tmp_path: Path) -> None:
    """`fnn info r | head -0`: no 'Broken pipe' error and exit 0 when the reader has gone."""
    assert fnn_cmd("train", "--epochs", "1", *SMALL, "--out", "r", "--quiet", cwd=tmp_path).returncode == 0
    for command in (["info", "r"], ["evaluate", "r"]):
        read, write = os.pipe()
        os.close(read)  # the reader is gone before the first line: every write fails with EPIPE
        proc = subprocess.run([sys.executable, "-m", "fnn", *command], cwd=tmp_path, stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=300)
        os.close(write)
        assert proc.returncode == 0 and proc.stderr == "", (command, proc.stderr)


def test_a_damaged_checkpoint_state_is_one_line_exit_2_and_changes_nothing(tmp_path: Path) -> None:
    runs.run({"layers": [784, 8, 10], "batch_size": 100, "lr": 5.0, "epochs": 1}, tmp_path / "r")
    ckpt = fnn.load(tmp_path / "r" / "checkpoint.npz")
    nan = ckpt.state.params[0]._replace(b=np.full_like(ckpt.state.params[0].b, np.nan))
    fnn.save(tmp_path / "r" / "checkpoint.npz", ckpt._replace(state=ckpt.state._replace(
        epoch=5, step=5, params=(nan,) + ckpt.state.params[1:]), finished=""))
    (tmp_path / "r" / "params.npz").unlink()
    before = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()}
    for args, reason in [(["train", "--resume", "r", "--epochs", "6"], "state is inconsistent: epoch 5"),
                         (["evaluate", "r"], "params[0].b holds NaN or inf")]:
        res = fnn_cmd(*args, cwd=tmp_path)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert res.stderr.startswith(f"fnn {args[0]}: error: r/checkpoint.npz is damaged: {reason}"), res.stderr
        assert res.stderr.count("\n") == 1 and res.stderr.rstrip().endswith("--out r --overwrite"), res.stderr
    assert {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()} == before  # config.json kept epochs 1


def test_ctrl_c_messages_say_what_was_kept_and_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from tests.test_runs import _signal_in_checkpoint_save

    monkeypatch.chdir(tmp_path)
    with _signal_in_checkpoint_save(2, signal.SIGINT):  # epoch 1's checkpoint, then the "completed" one
        assert fnn.cli.main(["train", "--epochs", "1", *SMALL, "--out", "done", "--quiet"]) == 130
    assert "interrupted after the run completed; its results are in done" in capsys.readouterr().err
    assert json.loads((tmp_path / "done" / "record.json").read_text())["status"] == "completed"

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(runs, "_train", interrupted)  # Ctrl-C in epoch 1
        assert fnn.cli.main(["train", "--epochs", "1", *SMALL, "--out", "early", "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "Start again with: fnn train --config early/config.json --out early --overwrite" in err, err
    assert fnn.cli.main(["train", "--resume", "early", "--quiet"]) == 2
    assert "early has no checkpoint.npz: its run stopped before the first epoch ended" in capsys.readouterr().err
    assert fnn.cli.main(["train", "--config", "early/config.json", "--out", "early", "--overwrite", "--quiet"]) == 0
