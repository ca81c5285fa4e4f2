"""fnn.save / fnn.load: exact round trips, clear errors, atomic writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

import fnn
from fnn import grid
from fnn import io as fio


def _rewrite_tree(path: Path, edit) -> str:
    """Rewrite the tree description of the file ``path`` with ``edit(text) -> text``; returns the new text."""
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    text = edit(entries["tree.json"].decode())
    entries["tree.json"] = text.encode()
    with zipfile.ZipFile(path, "w") as z:
        for n, b in entries.items():
            z.writestr(n, b)
    return text

def _state() -> fnn.TrainState:
    params = fnn.mlp([5, 4, 3], seed=0)
    stats = (fnn.EpochStats(1, 0.5, 0.25, 0.75), fnn.EpochStats(2, float("nan"), None, None))
    return fnn.TrainState(params, (), fnn.random.key(3), 2, 17, stats)


def test_train_state_round_trips_exactly(tmp_path: Path) -> None:
    state = _state()
    fnn.save(tmp_path / "s.npz", state)
    back = fnn.load(tmp_path / "s.npz", like=state)
    assert type(back) is fnn.TrainState and type(back.params[0]) is fnn.Dense
    assert type(back.history[0]) is fnn.EpochStats
    assert fnn.tree.all_equal(back, state)
    assert back.history[0] == state.history[0] and np.isnan(back.history[1].loss)
    assert back.key.dtype == np.uint32 and not back.key.flags.writeable
    assert all(not a.flags.writeable for a in fnn.tree.leaves(back) if isinstance(a, np.ndarray))


def test_mixed_leaves_round_trip(tmp_path: Path) -> None:
    tree = {
        "a": [np.float64(1.5), np.int32(7), True, 3, "s", None],
        "b": (np.arange(6, dtype=np.int16).reshape(2, 3), np.zeros((0, 4), np.float32)),
        "c": float("inf"),
        "d": np.array(["x", "yz"]),
    }
    fnn.save(tmp_path / "t.npz", tree)
    back = fnn.load(tmp_path / "t.npz")
    assert fnn.tree.structure(back) == fnn.tree.structure(tree)
    assert back["a"][1:] == tree["a"][1:] and back["d"].tolist() == ["x", "yz"]
    assert fnn.tree.all_equal(back["b"], tree["b"]) and back["b"][0].dtype == np.int16
    assert type(back["a"][0]) is np.float64 and type(back["a"][2]) is bool and back["c"] == float("inf")


def test_save_is_deterministic_and_does_not_mutate(tmp_path: Path) -> None:
    params = fnn.mlp([6, 5, 2], seed=1)
    before = [a.copy() for a in fnn.tree.leaves(params) if isinstance(a, np.ndarray)]
    fnn.save(tmp_path / "a.npz", params)
    fnn.save(tmp_path / "b.npz", fnn.tree.map(np.copy, params))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.npz") as z:  # no clock in the bytes: fixed entry times
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    after = [a for a in fnn.tree.leaves(params) if isinstance(a, np.ndarray)]
    assert all(np.array_equal(x, y) for x, y in zip(before, after))


def test_registered_user_record(tmp_path: Path) -> None:
    class Counter(NamedTuple):
        n: int
        total: np.ndarray

    with pytest.raises(TypeError, match="register_record"):
        fnn.save(tmp_path / "c.npz", Counter(1, np.ones(2)))
    assert not (tmp_path / "c.npz").exists()
    fio.register_record(Counter)
    fnn.save(tmp_path / "c.npz", Counter(1, np.ones(2)))
    back = fnn.load(tmp_path / "c.npz")
    assert type(back) is Counter and back.n == 1 and np.array_equal(back.total, np.ones(2))


def test_files_saved_before_the_layers_package_still_load(tmp_path: Path) -> None:
    """Layer records stored under their former module names (fnn.layers.Dense, fnn.conv.Conv2D, ...) load."""
    params = fnn.cnn(0, channels=(2,), hidden=4, batch_norm=True, flip=True) + (fnn.Sigmoid(), fnn.Reshape((10,)))
    path = tmp_path / "old.npz"
    fnn.save(path, params)

    def former(text: str) -> str:
        for new, old in fio.FORMER_MODULES.items():
            text = text.replace(f'"{new}.', f'"{old}.')
        return text

    text = _rewrite_tree(path, former)
    assert '"fnn.conv.Conv2D"' in text and '"fnn.layers.Dense"' in text and "fnn.layers.linear" not in text
    assert fnn.tree.all_equal(fnn.load(path), params)


def test_pickled_object_array_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.npz"
    fnn.save(path, (np.zeros(2),))
    # the same description, with a pickled object array in place of leaf_0
    with zipfile.ZipFile(path) as z:
        tree_json = z.read("tree.json")
    np.savez(tmp_path / "raw.npz", leaf_0=np.array([{"x": 1}], dtype=object))
    with zipfile.ZipFile(tmp_path / "raw.npz", "a") as z:
        z.writestr("tree.json", tree_json)
    with pytest.raises(fio.CheckpointError, match=r"raw\.npz.*(pickl|Object arrays)"):
        fnn.load(tmp_path / "raw.npz")
    with pytest.raises(TypeError, match="pickling"):
        fnn.save(tmp_path / "o.npz", (np.array([None], dtype=object),))


def test_truncated_and_foreign_files(tmp_path: Path) -> None:
    good = tmp_path / "good.npz"
    fnn.save(good, fnn.mlp([30, 20, 10], seed=0))
    data = good.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 5):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(fio.CheckpointError, match=f"cut{cut}.npz"):
            fnn.load(bad)
    np.savez(tmp_path / "plain.npz", a=np.ones(2))
    with pytest.raises(fio.CheckpointError, match="plain.npz.*not written by fnn.save"):
        fnn.load(tmp_path / "plain.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(fio.CheckpointError, match="text.npz"):
        fnn.load(tmp_path / "text.npz")
    with pytest.raises(fio.CheckpointError, match="missing.npz: no such file"):
        fnn.load(tmp_path / "missing.npz")


def test_mismatched_architecture_shows_both(tmp_path: Path) -> None:
    path = tmp_path / "net.npz"
    fnn.save(path, fnn.mlp([784, 16, 10], seed=0))
    with pytest.raises(fio.CheckpointError) as e:
        fnn.load(path, like=fnn.mlp([784, 32, 10], seed=0))
    msg = str(e.value)
    assert "net.npz" in msg and "float32[784, 16]" in msg and "float32[784, 32]" in msg
    with pytest.raises(fio.CheckpointError, match="expected"):
        fnn.load(path, like=fnn.mlp([784, 16, 16, 10], seed=0))
    back = fnn.load(path, like=fnn.mlp([784, 16, 10], seed=5))
    assert fnn.tree.all_equal(back, fnn.mlp([784, 16, 10], seed=0))


def test_kill_during_save_leaves_old_file_loadable(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.npz"
    old = {"w": np.full((4, 4), 7.0)}
    fnn.save(path, old)
    script = textwrap.dedent(
        f"""
        import sys, numpy as np, fnn
        big = {{"w": np.ones((2000, 2000))}}
        print("ready", flush=True)
        while True:
            fnn.save({str(path)!r}, big)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    back = fnn.load(path)
    # either the old tree or a complete new one, never a damaged file
    assert back["w"].shape in ((4, 4), (2000, 2000))
    assert np.all(back["w"] == (7.0 if back["w"].shape == (4, 4) else 1.0))


def test_ctrl_c_during_save_finishes_the_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write = fio._write_zip

    def interrupted(f, entries):  # type: ignore[no-untyped-def]
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives mid-write
        write(f, entries)

    monkeypatch.setattr(fio, "_write_zip", interrupted)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        with pytest.raises(KeyboardInterrupt):
            fnn.save(tmp_path / "k.npz", {"w": np.arange(5.0)})
    finally:
        signal.signal(signal.SIGINT, previous)
    assert np.array_equal(fnn.load(tmp_path / "k.npz")["w"], np.arange(5.0))


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"old")
    path.chmod(0o640)
    with pytest.raises(RuntimeError, match="mid-write"):
        with fio.atomic_write(path) as f:
            f.write(b"half")
            raise RuntimeError("mid-write")
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    with fio.atomic_write(path) as f:
        f.write(b"new")
    assert path.read_bytes() == b"new" and path.stat().st_mode & 0o777 == 0o640  # a replaced file keeps its mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_every_file_fnn_writes_gets_the_umask_mode(tmp_path: Path) -> None:
    """One writer for every file: an IDX file, a checkpoint and a run's JSON all get ``0o666 & ~umask``
    (an IDX file written by a temporary of its own used to be private, 0o600)."""
    old = os.umask(0o022)
    try:
        fnn.datasets.write_idx(tmp_path / "x-idx1-ubyte", np.arange(3, dtype=np.uint8))
        fnn.save(tmp_path / "p.npz", {"w": np.zeros(2)})
        grid.write_csv(tmp_path / "summary.csv", [{"lr": 0.5, "seed": 0}], ["lr", "seed"])
    finally:
        os.umask(old)
    assert {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {
        "x-idx1-ubyte": 0o644, "p.npz": 0o644, "summary.csv": 0o644}


def test_unknown_record_type_says_only_that_and_lists_public_types(tmp_path: Path) -> None:
    path = tmp_path / "later.npz"
    fnn.save(path, fnn.mlp([2, 2], seed=0))
    _rewrite_tree(path, lambda text: text.replace("fnn.layers.linear.Dense", "mylab.layers.Later"))
    with pytest.raises(fio.UnknownRecordError) as info:
        fnn.load(path)
    message = str(info.value)
    assert message.startswith(f"cannot load {path}: unknown record type 'mylab.layers.Later'")
    assert "'mylab.layers.Later'" in message and "not registered" in message and "register_record" in message
    assert "damaged" not in message and "not written by" not in message
    public = message.split("Registered types:")[1]
    assert "fnn.layers.Dense" in public and "fnn.training.TrainState" in public
    assert "._" not in public  # no fnn.training._Plan, fnn.optim._Thawed


def test_a_record_that_gained_fields_with_defaults_loads(tmp_path: Path) -> None:
    """A history saved before EpochStats had accuracy, lr and seconds loads, with those as None."""
    path = tmp_path / "old.npz"
    fnn.save(path, fnn.EpochStats(1, 0.5, 0.4, 0.9))
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    old = json.loads(entries["tree.json"])
    record = old["tree"]
    record["fields"], record["c"] = record["fields"][:4], record["c"][:4]
    entries["tree.json"] = json.dumps(old).encode()
    with zipfile.ZipFile(path, "w") as z:
        for n, b in entries.items():
            z.writestr(n, b)
    assert fnn.load(path) == fnn.EpochStats(1, 0.5, 0.4, 0.9, None, None, None)


def test_a_damaged_npy_header_is_a_checkpoint_error(tmp_path: Path) -> None:
    # numpy re-parses a header it cannot read with tokenize, whose TokenError used to escape fnn.load
    fnn.save(tmp_path / "good.npz", fnn.mlp([5, 4, 3], seed=0))
    with zipfile.ZipFile(tmp_path / "good.npz") as z:
        entries = {n: z.read(n) for n in z.namelist()}
    leaf = entries["leaf_0.npy"]
    bad, reasons = tmp_path / "bad.npz", set()
    for pos in range(11, leaf.index(b"\n")):  # every byte of its header's dict but the opening brace
        for char in b"{(['":
            with zipfile.ZipFile(bad, "w") as z:  # a sound zip (CRCs right) of a damaged .npy header
                for name, content in entries.items():
                    z.writestr(name, leaf[:pos] + bytes([char]) + leaf[pos + 1:] if name == "leaf_0.npy" else content)
            try:
                fnn.load(bad)
            except fio.CheckpointError as e:
                assert str(e).startswith(f"cannot load {bad}: "), e
                reasons.add(str(e).split(": ")[1].split(" (")[0])
    assert "leaf_0" in reasons, reasons  # "leaf_0 (tree[0].w) has a damaged .npy header (TokenError: ...)"
