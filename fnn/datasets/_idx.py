"""The IDX format of MNIST, read strictly.

An IDX file is a header and a payload, big-endian throughout::

    bytes 0-1   0x00 0x00                 magic
    byte  2     element type code         0x08 uint8, 0x09 int8, 0x0B int16,
                                          0x0C int32, 0x0D float32, 0x0E float64
    byte  3     ndim                      number of dimensions, at least 1
    4 * ndim    dims                      uint32 each
    payload     prod(dims) elements       exactly, nothing after

:func:`read_idx` checks every field and the exact payload length before it
allocates the array, so a wrong header can never make it allocate more than
the file holds. Gzip files (detected by their first bytes, whatever the name)
are decompressed as a stream, chunk by chunk, into an array allocated for the
length the header claims before a byte is decompressed (a failed allocation is
an :class:`IDXError` naming the file and the size); a header claiming more than
a gzip file of that size could possibly decompress to is rejected before reading.
"""

from __future__ import annotations

import gzip
import os
import sys
import zlib
from typing import Any

import numpy as np

from fnn import io as fio

__all__ = ["IDXError", "read_idx", "write_idx"]

_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder("="): code for code, dtype in _DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_DEFLATE_RATIO = 1032  # deflate cannot expand by more than ~1032:1
_CHUNK = 1 << 20
_MAX_DIMS = 64 if int(np.__version__.split(".")[0]) >= 2 else 32


class IDXError(ValueError):
    """An IDX file is truncated, corrupt, or not an IDX file at all."""


def _error(path: Any, what: str) -> IDXError:
    return IDXError(f"{os.fspath(path)}: {what}")


def _read_exactly(f: Any, n: int, path: Any, what: str) -> bytes:
    got = f.read(n)
    if len(got) != n:
        raise _error(path, f"truncated {what}: expected {n} bytes, the file has only {len(got)}.")
    return got


def _header(f: Any, path: Any) -> tuple[np.dtype, tuple[int, ...], int]:
    """``(dtype, shape, header_bytes)`` from the header at the start of ``f``."""
    magic = _read_exactly(f, 4, path, "header")
    if magic[:2] != b"\x00\x00":
        raise _error(
            path,
            f"not an IDX file: the magic number must start with bytes 00 00, got {magic.hex(' ')}.",
        )
    code, ndim = magic[2], magic[3]
    if code not in _DTYPES:
        known = ", ".join(f"0x{c:02X} {d.name}" for c, d in _DTYPES.items())
        raise _error(path, f"unknown IDX element type code 0x{code:02X}; expected one of {known}.")
    if ndim == 0:
        raise _error(path, "the header gives 0 dimensions; an IDX file needs at least 1.")
    if ndim > _MAX_DIMS:
        raise _error(path, f"the header gives {ndim} dimensions; numpy arrays have at most {_MAX_DIMS}.")
    dims = tuple(int(d) for d in np.frombuffer(_read_exactly(f, 4 * ndim, path, "dimensions"), dtype=">u4"))
    if np.prod([d for d in dims if d], dtype=object) * _DTYPES[code].itemsize > sys.maxsize:
        raise _error(
            path, f"the dimensions {dims} describe an array too large for numpy; the header is corrupt."
        )
    return _DTYPES[code], dims, 4 + 4 * ndim


def _allocate(nbytes: int, path: Any, layout: str) -> np.ndarray:
    """The payload's buffer, ``(nbytes,)`` uint8; a failed allocation is an :class:`IDXError` naming
    the file and the size."""
    try:
        return np.empty(nbytes, np.uint8)
    except MemoryError:
        raise _error(
            path, f"the header describes {layout}; {nbytes / 2**30:.1f} GiB could not be allocated."
        ) from None


def _payload_raw(f: Any, path: Any, nbytes: int, header: int, layout: str) -> np.ndarray:
    size = os.fstat(f.fileno()).st_size
    if size != header + nbytes:
        kind = "truncated" if size < header + nbytes else "too long"
        raise _error(
            path,
            f"{kind}: the header describes {layout}, {header + nbytes} bytes in all, the file has {size}; "
            "the file is damaged or incomplete, download it again.",
        )
    buf = _allocate(nbytes, path, layout)
    if f.readinto(buf) != nbytes:
        raise _error(path, "the file changed size while being read.")
    return buf


def _payload_gzip(f: Any, path: Any, nbytes: int, header: int, layout: str) -> np.ndarray:
    size = os.fstat(f.fileno()).st_size
    if header + nbytes > _MAX_DEFLATE_RATIO * size + 1024:
        raise _error(
            path,
            f"the header describes {layout}, more than a gzip file of {size} bytes can "
            "decompress to; the header is corrupt.",
        )
    buf = _allocate(nbytes, path, layout)  # all of it, before decompressing a byte
    view, done = memoryview(buf.data).cast("B"), 0
    while done < nbytes:
        got = f.readinto(view[done : done + _CHUNK])
        if not got:
            raise _error(
                path,
                f"truncated: the header describes {layout}, the decompressed payload has only "
                f"{done} bytes; the file is damaged or incomplete, download it again.",
            )
        done += got
    if f.read(1):
        raise _error(
            path,
            f"too long: the header describes {layout}, the decompressed file has more; "
            "the file is damaged or not what its name says.",
        )
    return buf


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a numpy array.

    The magic number, element type, dimensions and exact payload length are
    all checked; a file that fails any check raises :class:`IDXError` naming
    the file and the problem. Nothing larger than the file can justify is
    allocated, and gzip files are decompressed with a cap of the header's size.

    Args:
      path: a file in IDX format, e.g. ``train-images-idx3-ubyte(.gz)``.

    Returns:
      A new, writeable array in native byte order with the file's shape and
      element type (``uint8``, ``int8``, ``int16``, ``int32``, ``float32`` or
      ``float64``).

    Raises:
      IDXError: (a ``ValueError``) the file is not a well-formed IDX file.
      FileNotFoundError: there is no file at ``path``.

    >>> import os, tempfile
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "a-idx2-ubyte.gz")
    ...     write_idx(p, np.arange(6, dtype=np.uint8).reshape(2, 3))
    ...     read_idx(p)
    array([[0, 1, 2],
           [3, 4, 5]], dtype=uint8)
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"read_idx: path must be a file name (str or os.PathLike), got {type(path).__name__} {path!r}"
            + ("; for an open file descriptor pass f'/dev/fd/{fd}'." if isinstance(path, int) else ".")
        )
    with open(path, "rb") as raw:
        if raw.read(2) != _GZIP_MAGIC:
            raw.seek(0)
            return _read(raw, path, _payload_raw)
        raw.seek(0)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                return _read(f, path, _payload_gzip)
        except (OSError, EOFError, zlib.error) as e:
            raise _error(path, f"corrupt gzip data ({e}); the file is damaged, download it again.") from e


def _read(f: Any, path: Any, payload: Any) -> np.ndarray:
    dtype, shape, header = _header(f, path)
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    layout = f"a {shape} {dtype.newbyteorder('=').name} array ({header} header + {nbytes} payload bytes)"
    buf = payload(f, path, nbytes, header, layout)
    flat = np.frombuffer(buf, dtype=dtype)  # (prod(shape),) big-endian view of buf
    return flat.reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def write_idx(path: str | os.PathLike[str], array: Any) -> None:
    """Write ``array`` to ``path`` in IDX format, gzip-compressed if the name ends in ``.gz``.

    The element type must be one IDX knows: ``uint8``, ``int8``, ``int16``,
    ``int32``, ``float32`` or ``float64``; ``read_idx(path)`` gives the array
    back. The file is written to a temporary name and renamed into place.

    >>> import os, tempfile
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_idx(os.path.join(d, "x.idx"), np.array([1.5, -2.0], dtype=np.float32))
    ...     with open(os.path.join(d, "x.idx"), "rb") as f:
    ...         f.read(8).hex(" ")
    '00 00 0d 01 00 00 00 02'
    """
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(
            f"write_idx: IDX cannot store dtype {array.dtype}; convert to one of "
            f"{', '.join(d.newbyteorder('=').name for d in _DTYPES.values())} first, "
            "e.g. array.astype(np.int32)."
        )
    if not 1 <= array.ndim <= 255 or any(d >= 2**32 for d in array.shape):
        raise ValueError(
            f"write_idx: IDX stores 1 to 255 dimensions of fewer than 2**32 each, got shape {array.shape}."
        )
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(array, dtype=_DTYPES[code]).tobytes()
    data = header + payload
    if os.fspath(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    with fio.atomic_write(path) as f:
        f.write(data)
