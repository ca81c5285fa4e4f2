"""fnn.datasets: the strict IDX reader, the embedded digits, and the MNIST-format loaders."""

import gzip
import hashlib
import io
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fnn.data
import fnn.datasets
from fnn.datasets import IDXError, _mnist, read_idx, write_idx

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
# SHA-256 of the six arrays load_digits returns, in order: pins the data and the split rule.
DIGITS_SHA256 = "0531a416352d48a24e6818d40bdb184ff83e2f0efbc221beda7bfab7fd9df572"
# SHA-256 of fnn/datasets/digits.npz, as printed by scripts/make_digits.py.
DIGITS_NPZ_SHA256 = "29f7e412a2d57447c339a8f5d6f3240bf5917b436b5717d9d749fe43ab28592d"


@pytest.fixture(autouse=True)
def _no_download_no_user_data(monkeypatch, tmp_path_factory):
    """No test may download, or see the user's FNN_DATA or ~/.cache/fnn."""
    monkeypatch.delenv("FNN_DOWNLOAD", raising=False)
    monkeypatch.delenv("FNN_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))

    def no_network(*args, **kwargs):
        raise AssertionError("tests must not download")

    monkeypatch.setattr(_mnist.urllib.request, "urlopen", no_network)


def _header(code, dims):
    return bytes([0, 0, code, len(dims)]) + np.asarray(dims, dtype=">u4").tobytes()


def _peak_bytes(f):
    """``(result or exception, peak traced bytes)`` of calling ``f()``."""
    tracemalloc.start()
    try:
        try:
            out = f()
        except Exception as e:  # noqa: BLE001
            out = e
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# IDX round trips -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["a-idx", "a-idx.gz"])
@pytest.mark.parametrize("shape", [(5,), (3, 4, 2), (0, 28, 28)])
def test_round_trip_every_element_type(tmp_path, dtype, name, shape):
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else np.finfo(dtype)
    values = [info.min, info.max, 0, 1, 7] + (
        [0.1, -2.5, np.inf, np.nan] if np.dtype(dtype).kind == "f" else []
    )
    array = np.resize(np.array(values, dtype=dtype), int(np.prod(shape))).reshape(shape)
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative and back.shape == shape
    assert back.flags.writeable
    np.testing.assert_array_equal(back, array)


def test_write_idx_format_and_rejections(tmp_path):
    write_idx(tmp_path / "x", np.array([[1, 2]], dtype=np.int16))
    assert (tmp_path / "x").read_bytes() == bytes.fromhex("00000b02 00000001 00000002 0001 0002")
    write_idx(tmp_path / "big-endian", np.array([7], dtype=">i4"))
    assert read_idx(tmp_path / "big-endian").tolist() == [7]
    with pytest.raises(TypeError, match="int64"):
        write_idx(tmp_path / "y", np.arange(3))
    with pytest.raises(ValueError, match="dimensions"):
        write_idx(tmp_path / "y", np.uint8(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big-endian", "x"]  # no temporary files left


def test_real_mnist_header_is_read(tmp_path):
    # The first bytes of MNIST's t10k-labels file, with 3 labels instead of 10,000.
    (tmp_path / "labels").write_bytes(bytes.fromhex("00000801 00000003 070201"))
    assert read_idx(tmp_path / "labels").tolist() == [7, 2, 1]


# IDX errors ------------------------------------------------------------------------------------------


def _write(tmp_path, name, data, gz=False):
    path = tmp_path / (name + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


GOOD = _header(0x08, [2, 3]) + bytes(range(6))


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "data, words",
    [
        (GOOD[:-1], ["truncated", "(2, 3) uint8 array (12 header + 6 payload bytes)"]),
        (GOOD[:10], ["truncated dimensions", "8 bytes"]),
        (GOOD[:3], ["truncated header"]),
        (b"", ["truncated header"]),
        (GOOD + b"\x00", ["too long"]),
        (b"\x01\x02" + GOOD[2:], ["not an IDX file", "01 02 08 02"]),
        (b"\x00\x00\x0a\x02" + GOOD[4:], ["unknown IDX element type code 0x0A", "0x08 uint8"]),
        (b"\x00\x00\x08\x00" + GOOD[4:], ["0 dimensions"]),
        (_header(0x08, [2, 4]) + bytes(6), ["truncated", "(2, 4) uint8 array (12 header + 8 payload bytes)"]),
        (_header(0x0C, [2, 3]) + bytes(6), ["truncated", "(2, 3) int32 array", "24 payload"]),
        (_header(0x08, [1, 5]) + bytes(6), ["too long"]),
    ],
)
def test_bad_files_raise_idx_error_naming_the_file(tmp_path, data, words, gz):
    path = _write(tmp_path, "bad-file", data, gz)
    with pytest.raises(IDXError) as info:
        read_idx(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert all(w in message for w in words), message
    assert isinstance(info.value, ValueError)


def test_truncated_and_corrupt_gzip(tmp_path):
    packed = gzip.compress(_header(0x08, [1000]) + bytes(range(250)) * 4, mtime=0)
    path = _write(tmp_path, "cut.gz", packed[:-9])
    with pytest.raises(IDXError, match="cut.gz: (corrupt gzip|truncated)"):
        read_idx(path)
    flipped = bytearray(packed)
    flipped[-8] ^= 0xFF  # the CRC
    path = _write(tmp_path, "crc.gz", bytes(flipped))
    with pytest.raises(IDXError, match="crc.gz: corrupt gzip"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_absurd_header_fails_before_allocating(tmp_path, gz):
    # 10**12 uint8 items claimed, 100 bytes present.
    path = _write(tmp_path, "absurd", _header(0x08, [10**6, 10**6]) + bytes(100), gz)
    error, peak = _peak_bytes(lambda: read_idx(path))
    assert isinstance(error, IDXError), error
    assert "1000000000000" in str(error)
    assert peak < 1 << 20


def test_gzip_bomb_stops_at_the_size_the_header_claims(tmp_path):
    bomb = gzip.compress(_header(0x08, [100]) + bytes(50 << 20), compresslevel=9, mtime=0)  # 50 MB of zeros
    assert len(bomb) < 100_000
    path = _write(tmp_path, "bomb.gz", bomb)
    error, peak = _peak_bytes(lambda: read_idx(path))
    assert isinstance(error, IDXError) and "too long" in str(error), error
    assert peak < 4 << 20


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nothing")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.one_of(
        st.binary(max_size=64),
        st.tuples(
            st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]),
            st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=4),
            st.binary(max_size=48),
        ).map(lambda t: _header(t[0], t[1]) + t[2]),
        st.tuples(st.integers(0, 40), st.binary(max_size=8)).map(lambda t: GOOD[: t[0]] + t[1]),
    ),
    gz=st.booleans(),
)
def test_fuzzed_files_give_an_array_or_idx_error(tmp_path, data, gz):
    path = _write(tmp_path, "fuzz", data, gz)
    out, peak = _peak_bytes(lambda: read_idx(path))
    if isinstance(out, np.ndarray):
        assert out.nbytes <= len(data)
    else:
        assert isinstance(out, IDXError), repr(out)
    assert peak < 1 << 20


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 200), junk=st.binary(max_size=4))
def test_fuzzed_gzip_truncations_give_idx_error_never_garbage(tmp_path, cut, junk):
    original = np.arange(20, dtype=np.float32).reshape(4, 5)
    packed = gzip.compress(_header(0x0D, [4, 5]) + original.astype(">f4").tobytes(), mtime=0)
    path = _write(tmp_path, "fuzz.gz", packed[: min(cut, len(packed) - 1)] + junk)
    try:
        out = read_idx(path)
    except IDXError:
        return
    np.testing.assert_array_equal(out, original)  # only when junk restored the file (or is zero padding)


# load_digits -----------------------------------------------------------------------------------------


def _digest(arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def test_digits_file_is_the_one_make_digits_builds():
    path = Path(fnn.datasets.__file__).with_name("digits.npz")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == DIGITS_NPZ_SHA256


def test_load_digits_shapes_counts_and_split():
    (x, y), (x_test, y_test) = fnn.datasets.load_digits()
    assert x.shape == (8000, 28, 28) and x_test.shape == (2000, 28, 28)
    assert x.dtype == x_test.dtype == np.uint8 and y.dtype == y_test.dtype == np.int64
    assert y.shape == (8000,) and y_test.shape == (2000,)
    per_class = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]  # the npm package's files
    assert (np.bincount(y) + np.bincount(y_test)).tolist() == per_class
    assert np.bincount(y_test).tolist() == [200, 225, 198, 206, 196, 173, 203, 214, 189, 196]
    assert np.abs(np.bincount(y_test) / np.array(per_class) - 0.2).max() < 0.001  # stratified
    assert np.abs(np.bincount(y[:1000], minlength=10) - 100).max() <= 15  # classes interleaved
    assert x.max() == 255 and x.min() == 0 and 30 < x.mean() < 37  # MNIST's mean pixel is ~33
    assert (x.reshape(8000, -1).max(1) > 128).all()  # every image has ink
    train_rows = {row.tobytes() for row in x.reshape(8000, -1)}
    assert sum(row.tobytes() in train_rows for row in x_test.reshape(2000, -1)) <= 5  # disjoint sets


def test_load_digits_is_identical_across_calls_and_fresh_each_time():
    first = fnn.datasets.load_digits()
    first[0][0][0, 0, 0] = 99  # mutating a result must not leak into the next call
    again = fnn.datasets.load_digits()
    assert again[0][0][0, 0, 0] == 0
    arrays = [a for part in again for a in part]
    assert _digest(arrays) == DIGITS_SHA256


def test_load_digits_is_identical_across_processes():
    code = (
        "import hashlib, fnn.datasets\n"
        "h = hashlib.sha256()\n"
        "for a in [a for part in fnn.datasets.load_digits() for a in part]:\n"
        "    h.update(str((a.dtype.str, a.shape)).encode()); h.update(a.tobytes())\n"
        "print(h.hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == DIGITS_SHA256


def test_the_issue_example_runs():
    (x, y), (x_test, y_test) = fnn.datasets.load_digits()
    x, x_test = fnn.data.normalize(x), fnn.data.normalize(x_test)
    assert x.shape == (8000, 784) and x.dtype == np.float32 and 0 == x.min() and x.max() == 1
    seen = 0
    for xb, yb in fnn.data.batches(key=0, data=(x, y), batch_size=10):
        assert xb.shape == (10, 784) and yb.shape == (10,)
        seen += len(yb)
    assert seen == 8000


# MNIST-format loaders ----------------------------------------------------------------------------------


def _fake_mnist(directory, n_train=6, n_test=4, gz=True):
    """Four tiny IDX files in ``directory``; images hold their own index in pixel (0, 0)."""
    directory.mkdir(parents=True, exist_ok=True)
    for part, n in [("train", n_train), ("t10k", n_test)]:
        images = np.zeros((n, 28, 28), np.uint8)
        images[:, 0, 0] = np.arange(n)
        suffix = ".gz" if gz else ""
        write_idx(directory / f"{part}-images-idx3-ubyte{suffix}", images)
        write_idx(directory / f"{part}-labels-idx1-ubyte{suffix}", (np.arange(n) % 10).astype(np.uint8))
    return directory


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_from_path(tmp_path, gz):
    (x, y), (x_test, y_test) = fnn.datasets.load_mnist(_fake_mnist(tmp_path / "m", gz=gz))
    assert x.shape == (6, 28, 28) and x.dtype == np.uint8 and x_test.shape == (4, 28, 28)
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 2, 3, 4, 5] and y_test.tolist() == [0, 1, 2, 3]
    assert x[:, 0, 0].tolist() == [0, 1, 2, 3, 4, 5]


def test_search_order(tmp_path, monkeypatch):
    home = Path(os.environ["HOME"])
    _fake_mnist(home / ".cache" / "fnn" / "mnist", n_train=1)
    assert len(fnn.datasets.load_mnist()[0][0]) == 1  # ~/.cache/fnn/mnist
    monkeypatch.setenv("FNN_DATA", str(tmp_path / "data"))
    _fake_mnist(tmp_path / "data" / "mnist", n_train=2)
    assert len(fnn.datasets.load_mnist()[0][0]) == 2  # $FNN_DATA/mnist before the cache
    assert len(fnn.datasets.load_mnist(_fake_mnist(tmp_path / "p", n_train=3))[0][0]) == 3  # path first
    (tmp_path / "empty").mkdir()
    assert len(fnn.datasets.load_mnist(tmp_path / "empty")[0][0]) == 2  # falls through to $FNN_DATA
    with pytest.raises(FileNotFoundError, match="the data folder .*nonexistent does not exist"):
        fnn.datasets.load_mnist(tmp_path / "nonexistent")  # issue 15 case 6: never silently ignored
    with pytest.raises(TypeError, match="download must be True or False, got str 'no'"):
        fnn.datasets.load_mnist(download="no")  # issue 15 case 12
    incomplete = _fake_mnist(tmp_path / "incomplete", n_train=4)
    (incomplete / "t10k-labels-idx1-ubyte.gz").unlink()
    assert len(fnn.datasets.load_mnist(incomplete)[0][0]) == 2  # one directory must hold all four


def test_missing_files_message(tmp_path, monkeypatch):
    monkeypatch.setenv("FNN_DATA", str(tmp_path / "data"))
    nowhere = tmp_path / "nowhere"
    monkeypatch.setattr(_mnist, "FASHION_MNIST", _mnist.FASHION_MNIST._replace(system_dirs=(str(nowhere),)))
    _fake_mnist(tmp_path / "given")
    (tmp_path / "given" / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError) as info:
        fnn.datasets.load_fashion_mnist(tmp_path / "given")
    message = str(info.value)
    for place in [
        tmp_path / "given",
        tmp_path / "data" / "fashion-mnist",
        Path(os.environ["HOME"]) / ".cache",
    ]:
        assert str(place) in message, message
    assert str(nowhere) in message
    assert "given: missing train-images-idx3-ubyte (raw or .gz)" in message
    assert "t10k-labels-idx1-ubyte" in message
    for hint in ["apt-get install dataset-fashion-mnist", "FNN_DATA", "download=True", "FNN_DOWNLOAD=1"]:
        assert hint in message, message
    with pytest.raises(FileNotFoundError) as info:
        fnn.datasets.load_mnist()
    assert "apt-get" not in str(info.value) and "load_mnist(download=True)" in str(info.value)


def test_wrong_files_are_rejected(tmp_path):
    d = _fake_mnist(tmp_path / "m")
    write_idx(d / "t10k-images-idx3-ubyte.gz", np.zeros((4, 28, 27), np.uint8))
    with pytest.raises(
        IDXError, match=r"t10k-images-idx3-ubyte.gz: expected uint8 images of shape \(n, 28, 28\)"
    ):
        fnn.datasets.load_mnist(d)
    d = _fake_mnist(tmp_path / "n")
    write_idx(d / "train-labels-idx1-ubyte.gz", np.arange(5, dtype=np.uint8))
    with pytest.raises(IDXError, match="train-labels-idx1-ubyte.gz: expected 6 uint8 labels 0-9"):
        fnn.datasets.load_mnist(d)


def _serve(files):
    """A stand-in for urllib.request.urlopen serving ``files`` by name, recording the URLs asked for."""
    asked = []

    def urlopen(url, timeout):
        asked.append(url)
        name = url.rsplit("/", 1)[1]
        if name not in files:
            raise OSError(f"404 {url}")
        return io.BytesIO(files[name])

    return urlopen, asked


def test_download_verifies_sha256_and_writes_atomically(tmp_path, monkeypatch):
    source = _fake_mnist(tmp_path / "source")
    files = {p.name: p.read_bytes() for p in source.iterdir()}
    good = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    monkeypatch.setattr(
        _mnist, "MNIST", _mnist.MNIST._replace(mirrors=("https://a/", "https://b/"), sha256=good)
    )
    urlopen, asked = _serve({**files, "t10k-labels-idx1-ubyte.gz": b"tampered"})
    monkeypatch.setattr(_mnist.urllib.request, "urlopen", urlopen)
    target = tmp_path / "target"
    with pytest.raises(OSError, match="SHA-256"):  # both mirrors serve a file with the wrong hash
        fnn.datasets.load_mnist(target, download=True)
    assert "https://b/t10k-labels-idx1-ubyte.gz" in asked
    assert not (target / "t10k-labels-idx1-ubyte.gz").exists()
    assert not [p for p in target.iterdir() if p.name.startswith(".tmp")]  # no partial files
    urlopen, asked = _serve(files)
    monkeypatch.setattr(_mnist.urllib.request, "urlopen", urlopen)
    monkeypatch.setenv("FNN_DOWNLOAD", "1")
    (x, y), _ = fnn.datasets.load_mnist(target)
    assert asked == ["https://a/t10k-labels-idx1-ubyte.gz"]  # only the missing file
    assert y.tolist() == [0, 1, 2, 3, 4, 5]
    assert sorted(p.name for p in target.iterdir()) == sorted(files)


def test_canonical_hashes_are_well_formed():
    for source in (_mnist.MNIST, _mnist.FASHION_MNIST):
        assert sorted(source.sha256) == sorted(f"{base}.gz" for base in _mnist._FILES)
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in source.sha256.values())


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
def test_fashion_mnist_from_debian():
    (x, y), (x_test, y_test) = fnn.datasets.load_fashion_mnist()
    assert x.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x.dtype == x_test.dtype == np.uint8 and y.dtype == y_test.dtype == np.int64
    assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(y_test).tolist() == [1000] * 10
    assert x.max() == 255 and 60 < x.mean() < 80  # Fashion-MNIST's mean pixel is ~73
    rows = fnn.data.normalize(x_test[:100])
    assert rows.shape == (100, 784) and rows.dtype == np.float32
