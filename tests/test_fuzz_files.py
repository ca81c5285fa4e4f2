"""Hostile files: corrupt, truncated or lying checkpoints and IDX files.

Every bad file gives the library's own error (``fnn.io.CheckpointError``, ``IDXError``), a
``ValueError`` whose message names the file; never another exception, a hang, an unpickled
object, or an allocation sized by an unchecked header (measured with ``tracemalloc``).
``tests/test_datasets.py`` fuzzes IDX headers at length; here are the cases it leaves out.
"""

import gzip
import io
import json
import pickle
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fnn
from fnn import io as fio
from fnn.datasets import IDXError, read_idx

MB = 1 << 20
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _peak(fn):
    """``(result or exception, peak bytes traced while fn ran)``."""
    tracemalloc.start()
    try:
        out = fn()
    except Exception as e:  # noqa: BLE001  (the caller asserts the type)
        out = e
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return out, peak


def _load_error(path, *fragments):
    """Load ``path``: a CheckpointError naming the file (and any fragments), with a small peak allocation."""
    out, peak = _peak(lambda: fnn.load(path))
    assert isinstance(out, fio.CheckpointError), repr(out)
    message = str(out)
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert peak < 4 * MB, peak
    return message


# ---------------------------------------------------------------------------
# A valid checkpoint, and archives built member by member
# ---------------------------------------------------------------------------

PARAMS = fnn.mlp([6, 5, 3], "relu", "identity", seed=0)


def _valid_bytes(tree=PARAMS):
    return fio._roundtrip_bytes(tree)


def _members(data=None):
    with zipfile.ZipFile(io.BytesIO(data or _valid_bytes())) as z:
        return {name: z.read(name) for name in z.namelist()}


def _zip(members, compression=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _npy(array=None, *, descr=None, shape=None, body=None):
    """A .npy member: the header of ``array`` (or of the given descr and shape) and its bytes (or ``body``)."""
    buf = io.BytesIO()
    if array is not None:
        np.save(buf, array, allow_pickle=array.dtype.hasobject)
        return buf.getvalue() if body is None else buf.getvalue()[: -array.nbytes or None] + body
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + (body or b"")


def _description(members):
    return json.loads(members["tree.json"])


def _with_description(members, edit):
    desc = _description(members)
    edit(desc)
    return {**members, "tree.json": json.dumps(desc).encode()}


def _first_array(desc):
    return desc["tree"]["c"][0]["c"][0]  # params[0].w of PARAMS


def test_the_valid_file_loads(tmp_path):
    path = tmp_path / "good.npz"
    path.write_bytes(_zip(_members()))
    assert fnn.tree.all_equal(fnn.load(path), PARAMS)


# ---------------------------------------------------------------------------
# Random bytes, truncations, flipped bytes
# ---------------------------------------------------------------------------


@FUZZ
@given(data=st.one_of(st.binary(max_size=2000), st.binary(max_size=500).map(lambda b: b"PK\x03\x04" + b),
                      st.binary(max_size=500).map(lambda b: b"\x93NUMPY" + b)))
def test_random_bytes(tmp_path, data):
    path = tmp_path / "random.npz"
    path.write_bytes(data)
    _load_error(path)


def test_every_truncation_fails_naming_the_file(tmp_path):
    data = _valid_bytes()
    cuts = sorted(set(range(0, len(data), max(1, len(data) // 80))) | set(range(len(data) - 80, len(data))))
    for cut in cuts:
        path = tmp_path / f"cut{cut}.npz"
        path.write_bytes(data[:cut])
        _load_error(path)


@FUZZ
@given(position=st.integers(0, 10**6), xor=st.integers(1, 255), deflated=st.booleans())
def test_flipped_bytes_load_the_same_tree_or_fail_cleanly(tmp_path, position, xor, deflated):
    data = bytearray(_zip(_members(), zipfile.ZIP_DEFLATED) if deflated else _valid_bytes())
    data[position % len(data)] ^= xor
    path = tmp_path / "flipped.npz"
    path.write_bytes(bytes(data))
    try:
        tree = fnn.load(path)
    except fio.CheckpointError as e:
        assert str(path) in str(e)
        return
    assert fnn.tree.all_equal(tree, PARAMS)  # a flip the format does not depend on (a timestamp, say)


@FUZZ
@given(data=st.data())
def test_fuzzed_descriptions(tmp_path, data):
    """tree.json replaced by random JSON: a clear error, or (rarely) a valid tree."""
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["array", "record", "tuple", "<f4", "w"]),
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
            st.sampled_from(["t", "c", "i", "dtype", "shape", "name", "fields", "keys", "v"]), kids, max_size=5),
        max_leaves=20,
    )
    tree = data.draw(json_values)
    desc = {"format": "fnn.save", "version": 1, "num_leaves": data.draw(st.integers(-1, 5)), "tree": tree}
    path = tmp_path / "desc.npz"
    path.write_bytes(_zip({**_members(), "tree.json": json.dumps(desc).encode()}))
    try:
        fnn.load(path)
    except fio.CheckpointError as e:
        assert str(path) in str(e)


# ---------------------------------------------------------------------------
# Hostile content: pickles, wrong descriptions, absurd shapes
# ---------------------------------------------------------------------------


class Boom:
    """Unpickling this would run code."""

    def __reduce__(self):
        return (pytest.fail, ("a pickle was loaded",))


def _pickled_members():
    evil = np.empty(1, dtype=object)
    evil[0] = Boom()
    return {**_members(), "leaf_0.npy": _npy(evil)}


HOSTILE = {
    "pickled_object_array": (_pickled_members, ["would need pickling"]),
    "object_dtype_described": (lambda: _with_description(
        _pickled_members(), lambda d: _first_array(d).update(dtype="|O", shape=[1])), ["never unpickles"]),
    "raw_pickle_as_member": (lambda: {**_members(), "leaf_0.npy": pickle.dumps(Boom())}, ["leaf_0"]),
    "not_json": (lambda: {**_members(), "tree.json": b"{not json"}, []),
    "json_list": (lambda: {**_members(), "tree.json": b"[1, 2]"}, ["not a file written by fnn.save"]),
    "wrong_format": (lambda: _with_description(_members(), lambda d: d.update(format="other")), ["fnn.save"]),
    "wrong_version": (lambda: _with_description(_members(), lambda d: d.update(version=99)), ["version 99"]),
    "missing_tree_json": (lambda: {k: v for k, v in _members().items() if k != "tree.json"}, ["tree.json"]),
    "missing_leaf": (lambda: {k: v for k, v in _members().items() if k != "leaf_1.npy"}, ["leaf_1"]),
    "num_leaves_negative": (lambda: _with_description(_members(), lambda d: d.update(num_leaves=-1)), []),
    "num_leaves_too_many": (lambda: _with_description(_members(), lambda d: d.update(num_leaves=9)), []),
    "leaf_index_out_of_range": (lambda: _with_description(
        _members(), lambda d: _first_array(d).update(i=7)), ["leaf index 7"]),
    "leaf_index_repeated": (lambda: _with_description(
        _members(), lambda d: _first_array(d).update(i=1)), ["leaf"]),
    "unknown_record": (lambda: _with_description(
        _members(), lambda d: d["tree"]["c"][0].update(name="evil.module.Payload")), ["evil.module.Payload"]),
    "record_fields_mismatch": (lambda: _with_description(
        _members(), lambda d: d["tree"]["c"][0].update(fields=["w", "b", "c"])), []),
    "unknown_node_kind": (lambda: _with_description(
        _members(), lambda d: d["tree"].update(t="exec")), ["exec"]),
    "bad_dtype_string": (lambda: _with_description(
        _members(), lambda d: _first_array(d).update(dtype="<f99")), ["<f99"]),
    "negative_shape": (lambda: _with_description(
        _members(), lambda d: _first_array(d).update(shape=[-6, 5])), []),
    "shape_not_a_list": (lambda: _with_description(
        _members(), lambda d: _first_array(d).update(shape="6, 5")), []),
    "shape_disagrees_with_npy": (lambda: _with_description(
        _members(), lambda d: _first_array(d).update(shape=[5, 6])), ["leaf_0", "[6, 5]", "[5, 6]"]),
    "dtype_disagrees_with_npy": (lambda: _with_description(
        _members(), lambda d: _first_array(d).update(dtype="<f8")), ["leaf_0", "<f4", "<f8"]),
    "deeply_nested_json": (lambda: {**_members(), "tree.json": b"[" * 100_000 + b"]" * 100_000}, []),
    "npy_payload_truncated": (lambda: {**_members(), "leaf_0.npy": _members()["leaf_0.npy"][:-8]}, ["leaf_0"]),
    "npy_payload_too_long": (lambda: {**_members(), "leaf_0.npy": _members()["leaf_0.npy"] + bytes(8)}, []),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_checkpoints(tmp_path, name):
    build, fragments = HOSTILE[name]
    path = tmp_path / f"{name}.npz"
    path.write_bytes(_zip(build()))
    _load_error(path, *fragments)


@pytest.mark.parametrize("shape", [[10**6, 10**6], [2**62 // 4], [10**12, 0, 10**12], [1] * 30 + [10**12]])
@pytest.mark.parametrize("where", ["both", "description", "npy_header"])
def test_absurd_shapes_fail_before_allocating(tmp_path, shape, where):
    """A description or .npy header claiming 10**12 elements fails with a few KB traced, not terabytes."""
    members = _members()
    if where in ("both", "description"):
        members = _with_description(members, lambda d: _first_array(d).update(shape=shape))
    if where in ("both", "npy_header"):
        members["leaf_0.npy"] = _npy(descr="<f4", shape=tuple(shape), body=bytes(120))
    path = tmp_path / "absurd.npz"
    path.write_bytes(_zip(members))
    if 0 in shape and where == "both":  # an empty array is legal, but then the body is too long or leaves mismatch
        out = _peak(lambda: fnn.load(path))[0]
        assert isinstance(out, (fio.CheckpointError, tuple)), repr(out)
        return
    _load_error(path)


def test_deflated_zip_bomb_member_is_bounded(tmp_path):
    """A member that inflates to 64 MB of zeros, described as small: fails without inflating it all."""
    members = _members()
    members["leaf_0.npy"] = _members()["leaf_0.npy"] + bytes(64 * MB)
    path = tmp_path / "bomb.npz"
    path.write_bytes(_zip(members, zipfile.ZIP_DEFLATED))
    assert path.stat().st_size < MB
    _load_error(path, "compressed")


def test_a_deflated_archive_is_refused_before_inflating(tmp_path):
    # issue 15 case 10: fnn.save stores entries as they are; load reads nothing else
    path = tmp_path / "deflated.npz"
    path.write_bytes(_zip(_members(), zipfile.ZIP_DEFLATED))
    _load_error(path, "compressed")
    members = _members()
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo("tree.json"), members["tree.json"], zipfile.ZIP_STORED)
        for name, data in members.items():
            if name != "tree.json":
                zf.writestr(zipfile.ZipInfo(name), data, zipfile.ZIP_DEFLATED)
    _load_error(path, "leaf_0", "is compressed")


def test_loaded_arrays_are_read_only(tmp_path):
    path = tmp_path / "good.npz"
    fnn.save(path, PARAMS)
    for leaf in fnn.tree.leaves(fnn.load(path)):
        if isinstance(leaf, np.ndarray):
            assert not leaf.flags.writeable


# ---------------------------------------------------------------------------
# IDX: the cases tests/test_datasets.py does not cover
# ---------------------------------------------------------------------------


def _idx(code, dims, payload=b""):
    return bytes([0, 0, code, len(dims)]) + np.asarray(dims, dtype=">u4").tobytes() + payload


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("code, dims", [
    (0x0E, [2**32 - 1] * 4),  # float64, (2**32 - 1)**4 elements: the count overflows int64
    (0x08, [2**32 - 1] * 255),  # the most dimensions a header can claim
    (0x0D, [10**6, 10**6, 0]),  # zero elements claimed next to huge ones: 0 bytes, so the payload is too long
    (0x0C, [1] * 200 + [10**9]),
])
def test_idx_absurd_headers_fail_before_allocating(tmp_path, code, dims, gz):
    data = _idx(code, dims, bytes(64))
    path = tmp_path / ("absurd.idx" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    out, peak = _peak(lambda: read_idx(path))
    assert isinstance(out, IDXError), repr(out)
    assert str(path) in str(out)
    assert peak < MB


@FUZZ
@given(data=st.binary(min_size=4, max_size=64), gz=st.booleans())
def test_idx_random_bytes_after_a_valid_magic(tmp_path, data, gz):
    raw = b"\x00\x00" + data
    path = tmp_path / ("fuzz.idx" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(raw, mtime=0) if gz else raw)
    out, peak = _peak(lambda: read_idx(path))
    assert isinstance(out, (np.ndarray, IDXError)), repr(out)
    if isinstance(out, IDXError):
        assert str(path) in str(out)
    assert peak < MB


# ---------------------------------------------------------------------------
# Issue 15, cases 10-12: bare .npy, lying records, gzip claims, memory caps
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(10**10,), (200_000_000,)])  # 74.5 GiB, and 1.6 GB that used to be allocated
def test_a_bare_npy_claiming_a_huge_array_fails_before_allocating(tmp_path, shape):
    path = tmp_path / "params.npz"
    path.write_bytes(_npy(descr="<f8", shape=shape, body=bytes(64)))
    assert path.stat().st_size < 256
    _load_error(path, "a single .npy array")


def test_records_with_extra_or_mistyped_fields_are_refused(tmp_path):
    def extra(desc):
        desc["tree"]["c"][0]["c"].append({"t": "none"})  # Dense(w, b, None)

    def evil(desc):
        desc["tree"]["c"][0]["c"][0] = {"t": "str", "v": "evil"}  # Dense(w='evil', ...)

    for edit, fragment in [(extra, "3 children for its 2 fields"), (evil, "field w is str 'evil'")]:
        path = tmp_path / "crafted.npz"
        path.write_bytes(_zip(_with_description(_members(), edit)))
        _load_error(path, fragment)
    crafted = {"format": "fnn.save", "version": 1, "num_leaves": 0, "tree": {
        "t": "record", "name": "fnn.optim.GradientTransformation", "fields": ["init", "update"],
        "c": [{"t": "str", "v": "a"}, {"t": "str", "v": "b"}]}}
    path = tmp_path / "optimizer.npz"
    path.write_bytes(_zip({"tree.json": json.dumps(crafted).encode()}))
    _load_error(path, "field init is str 'a'")


def test_save_honours_the_umask_and_refuses_bad_paths(tmp_path):
    import os

    old = os.umask(0o077)
    try:
        fnn.save(tmp_path / "private.npz", PARAMS)
    finally:
        os.umask(old)
    assert (tmp_path / "private.npz").stat().st_mode & 0o777 == 0o600
    (tmp_path / "file").write_text("x")
    for bad, fragment in [(tmp_path, "it is a folder"), ("", "needs a file path"),
                          (tmp_path / "file" / "p.npz", "is a file, not a folder"),
                          (tmp_path / "no" / "p.npz", "does not exist")]:
        with pytest.raises(fio.CheckpointError, match=fragment):
            fnn.save(bad, PARAMS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "private.npz"]  # no temporary files left


def test_read_idx_refuses_a_descriptor_and_leaves_it_open(tmp_path):
    import os

    path = tmp_path / "a.idx"
    path.write_bytes(_idx(0x08, [2], b"\x01\x02"))
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(TypeError, match="path must be a file name.*got int"):
            read_idx(fd)
        os.fstat(fd)  # still open
    finally:
        os.close(fd)


def test_read_idx_255_dimensions_is_an_idx_error(tmp_path):
    path = tmp_path / "deep.idx"
    path.write_bytes(_idx(0x08, [1] * 255, b"\x00"))
    with pytest.raises(IDXError, match="255 dimensions; numpy arrays have at most"):
        read_idx(path)


_CAPPED = """
import resource, sys
from fnn.datasets import IDXError, read_idx
with open("/proc/self/status") as f:
    vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize"))
resource.setrlimit(resource.RLIMIT_AS, (vm + 512 * 2**20, vm + 512 * 2**20))
try:
    read_idx(sys.argv[1])
except IDXError as e:
    print(e)
"""


def test_read_idx_allocates_the_claimed_array_first_and_names_a_failed_allocation(tmp_path):
    """A 2.5 MB gzip file claiming 2 GiB, under a memory cap of 512 MiB more than the process has."""
    import os
    import subprocess
    import sys

    payload = np.random.default_rng(0).integers(0, 256, 2_600_000, dtype=np.uint8).tobytes()  # incompressible
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_idx(0x08, [2**31 // 784, 28, 28], payload), compresslevel=1, mtime=0))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", _CAPPED, str(path)], capture_output=True, text=True, timeout=120,
                         env=env)
    assert res.returncode == 0, res.stderr
    assert str(path) in res.stdout and "GiB could not be allocated" in res.stdout, res.stdout
