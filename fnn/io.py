"""Saving and loading pytrees: one ``.npz`` file, no pickles, atomic writes.

:func:`save` writes a pytree (a network, a :class:`fnn.TrainState`, an
optimizer state, any nesting of tuples, lists, dicts with ``str`` keys,
``None`` and registered ``NamedTuple`` records) as a zip archive holding

- ``leaf_0.npy, leaf_1.npy, ...``: the array leaves, in flatten order;
- ``tree.json``: the structure, as JSON: containers, record type names and
  field names, and each leaf's kind (an array with its dtype and shape, or a
  Python ``int``/``float``/``bool``/``str``/``None``).

:func:`load` reads it back with ``allow_pickle=False``, so a file can never
run code, and rebuilds records as the registered types: every layer type
registered with :func:`fnn.register`, fnn's own state records
(``TrainState``, ``EpochStats``, optimizer states) and any type passed to
:func:`register_record`. Loaded arrays are read-only.

Writes are atomic: the archive goes to a temporary file in the same folder,
is flushed and fsynced, then renamed over the target with ``os.replace``, so
a crash or a kill mid-save leaves the previous file intact. Ctrl-C during a
save lets the write finish, then raises ``KeyboardInterrupt``. The archive's
bytes are a function of the tree alone (fixed zip timestamps, no
compression): saving equal trees gives byte-identical files.

Every failure to read a file (truncated, not a zip, a pickled object array,
an unknown record type, a different architecture) raises
:class:`CheckpointError`, a ``ValueError`` naming the file.

>>> import fnn, os, tempfile
>>> params = fnn.mlp([4, 3, 2], seed=0)
>>> path = os.path.join(tempfile.mkdtemp(), "params.npz")
>>> save(path, params)
>>> fnn.tree.all_equal(load(path), params)
True
"""

from __future__ import annotations

import contextlib
import io
import json
import lzma
import math
import os
import signal
import struct
import sys
import tempfile
import threading
import tokenize
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from fnn import layers, validate
from fnn import tree as ft

__all__ = [
    "CheckpointError", "UnknownRecordError", "save", "load", "check_like", "register_record", "known_records",
    "atomic_write", "hold_interrupts",
]

FORMAT = "fnn.save"
VERSION = 1
_TREE_ENTRY = "tree.json"
_MAX_TREE_BYTES = 64 * 2**20  # the structure of any real tree is far smaller
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

_RECORDS: dict[str, type] = {}

#: Where fnn's layer modules lived before ``fnn.layers`` became a package: records stored under
#: these module names (files saved by earlier versions) load as the types that moved.
FORMER_MODULES: dict[str, str] = {
    "fnn.layers.linear": "fnn.layers",
    "fnn.layers.activations": "fnn.layers",
    "fnn.layers.conv": "fnn.conv",
    "fnn.layers.pooling": "fnn.pooling",
    "fnn.layers.reshape": "fnn.reshape",
    "fnn.layers.dropout": "fnn.dropout",
    "fnn.layers.normalization": "fnn.normalization",
    "fnn.layers.augment": "fnn.augment",
}


class CheckpointError(ValueError):
    """A file could not be saved or loaded as a pytree; the message names the file and the cause."""


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_record_type(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")


def register_record(cls: type) -> type:
    """Allow :func:`load` to rebuild records of the ``NamedTuple`` class ``cls``; returns ``cls``.

    Layer types registered with :func:`fnn.register` and fnn's own state records are
    allowed already; register your own state records (e.g. a custom optimizer's state).

    >>> from typing import NamedTuple
    >>> class MyState(NamedTuple):
    ...     count: int
    >>> register_record(MyState).__name__
    'MyState'
    """
    if not _is_record_type(cls):
        raise TypeError(
            f"register_record expects a NamedTuple class, got {cls!r}; define it as "
            "`class MyState(NamedTuple): ...` and register that class."
        )
    _RECORDS[_name(cls)] = cls
    return cls


def _module_records() -> Iterator[type]:
    """NamedTuple classes defined in fnn's loaded modules (state records: TrainState, optimizer states)."""
    for modname, module in list(sys.modules.items()):
        if module is None or not (modname == "fnn" or modname.startswith("fnn.")):
            continue
        for value in list(vars(module).values()):
            if _is_record_type(value) and getattr(value, "__module__", "") == modname:
                yield value


def known_records() -> dict[str, type]:
    """The record types :func:`load` may rebuild, by stored name (``module.QualName``).

    Layer records also answer to the names they were stored under before they moved
    (:data:`FORMER_MODULES`), so older files still load.

    >>> "fnn.layers.linear.Dense" in known_records() and "fnn.training.TrainState" in known_records()
    True
    >>> known_records()["fnn.conv.Conv2D"] is known_records()["fnn.layers.conv.Conv2D"]
    True
    """
    for optional in ("fnn.training", "fnn.optim", "fnn.schedules"):
        with contextlib.suppress(ImportError):
            __import__(optional)
    found = {_name(c): c for c in _module_records()}
    found.update({f"{FORMER_MODULES[c.__module__]}.{c.__qualname__}": c
                  for c in layers.registered() if c.__module__ in FORMER_MODULES})
    found.update({_name(c): c for c in layers.registered()})
    found.update(_RECORDS)
    return found


# ---------------------------------------------------------------------------
# Encoding: tree -> (JSON description, list of arrays)
# ---------------------------------------------------------------------------


def _encode(node: Any, arrays: list[np.ndarray], records: dict[str, type], where: str) -> dict[str, Any]:
    if node is None:
        return {"t": "none"}
    if isinstance(node, np.ndarray):
        if node.dtype.hasobject or node.dtype.kind == "V":
            raise TypeError(
                f"cannot save the array at {where}: dtype {node.dtype} needs pickling; "
                "save only numeric, bool or string arrays."
            )
        arrays.append(node)
        return {"t": "array", "i": len(arrays) - 1, "dtype": node.dtype.str, "shape": list(node.shape)}
    if isinstance(node, np.generic):
        arrays.append(np.asarray(node))
        return {"t": "scalar", "i": len(arrays) - 1, "dtype": node.dtype.str, "shape": []}
    if isinstance(node, bool):
        return {"t": "bool", "v": node}
    if isinstance(node, int):
        return {"t": "int", "v": node}
    if isinstance(node, float):
        return {"t": "float", "v": node if math.isfinite(node) else repr(node)}
    if isinstance(node, str):
        return {"t": "str", "v": node}
    if _is_record_type(type(node)):
        cls = type(node)
        name = _name(cls)
        if records.get(name) is not cls:
            raise TypeError(
                f"cannot save the record {cls.__name__} at {where}: load could not rebuild it. "
                "Register it first with fnn.io.register_record(cls) (or fnn.register for a layer)."
            )
        kids = [_encode(v, arrays, records, f"{where}.{f}") for f, v in zip(cls._fields, node)]
        return {"t": "record", "name": name, "fields": list(cls._fields), "c": kids}
    if type(node) in (tuple, list):
        kind = "tuple" if type(node) is tuple else "list"
        return {"t": kind, "c": [_encode(v, arrays, records, f"{where}[{i}]") for i, v in enumerate(node)]}
    if type(node) is dict:
        if not all(isinstance(k, str) for k in node):
            raise TypeError(f"cannot save the dict at {where}: its keys must be str, got {list(node)!r}.")
        keys = sorted(node)
        kids = [_encode(node[k], arrays, records, f"{where}[{k!r}]") for k in keys]
        return {"t": "dict", "k": keys, "c": kids}
    raise TypeError(
        f"cannot save {type(node).__name__} at {where}: leaves must be numpy arrays or Python "
        "int/float/bool/str/None, containers tuples, lists, str-keyed dicts or registered NamedTuples."
    )


class UnknownRecordError(CheckpointError):
    """A file holds a record type that is not registered in this session (the file itself is sound)."""


def _compatible(cls: Any, fields: list[Any]) -> bool:
    """Whether records saved with ``fields`` load as ``cls``: the same fields, or the first of them
    with defaults for the rest (a record that has gained fields since, as ``EpochStats`` did)."""
    names = list(cls._fields)
    return names[: len(fields)] == fields and all(f in cls._field_defaults for f in names[len(fields) :])


def _decode(desc: Any, leaf: Any, records: dict[str, type], where: str) -> Any:
    """Rebuild a node from its description; ``leaf(i, dtype, shape)`` reads array ``i``."""
    if not isinstance(desc, dict) or "t" not in desc:
        raise ValueError(f"malformed description at {where}: {str(desc)[:80]!r}")
    t = desc["t"]
    if t == "none":
        return None
    if t in ("array", "scalar"):
        value = leaf(desc["i"], desc["dtype"], desc["shape"], where)
        return value[()] if t == "scalar" else value
    if t in ("bool", "int", "str"):
        value = desc["v"]
        if type(value) is not {"bool": bool, "int": int, "str": str}[t]:
            raise ValueError(f"malformed {t} at {where}: {value!r}")
        return value
    if t == "float":
        return float(desc["v"])
    kids = desc.get("c")
    if not isinstance(kids, list):
        raise ValueError(f"malformed container at {where}")
    if t == "tuple":
        return tuple(_decode(c, leaf, records, f"{where}[{i}]") for i, c in enumerate(kids))
    if t == "list":
        return [_decode(c, leaf, records, f"{where}[{i}]") for i, c in enumerate(kids)]
    if t == "dict":
        keys = desc.get("k")
        if not isinstance(keys, list) or len(keys) != len(kids):
            raise ValueError(f"malformed dict at {where}")
        return {k: _decode(c, leaf, records, f"{where}[{k!r}]") for k, c in zip(keys, kids)}
    if t == "record":
        name = desc.get("name")
        cls: Any = records.get(name) if isinstance(name, str) else None
        if cls is None:
            public = sorted(n for n in records if not any(part.startswith("_") for part in n.split(".")))
            raise UnknownRecordError(
                f"unknown record type {name!r} at {where}: it is not registered in this session. "
                "Import the module that defines it and register it with fnn.io.register_record(cls) "
                f"(or fnn.register for a layer) before loading. Registered types: {', '.join(public)}."
            )
        fields = desc.get("fields")
        if isinstance(fields, list) and len(kids) != len(fields):
            raise ValueError(f"record {name} at {where} has {len(kids)} children for its {len(fields)} fields")
        if not isinstance(fields, list) or not _compatible(cls, fields):
            raise ValueError(
                f"record {name} at {where} was saved with fields {fields} but the "
                f"registered type has fields {list(cls._fields)}; load it with the fnn version that saved it."
            )
        record = cls(*(_decode(c, leaf, records, f"{where}.{f}") for f, c in zip(cls._fields, kids)))
        wrong = validate.record_fields(record)
        if wrong:
            raise ValueError(f"record {name} at {where}: {wrong}")
        return record
    raise ValueError(f"unknown node kind {t!r} at {where}")


# ---------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def hold_interrupts() -> Iterator[None]:
    """Hold Ctrl-C (and SIGTERM, when Python handles it) until the block is done, then deliver it.

    A signal that arrives in the block is delivered when it ends (``KeyboardInterrupt`` for
    Ctrl-C), so that several writes that must agree (a checkpoint and the record describing
    it) are all done or none started. Blocks nest: an inner one passes what it held to the
    outer one. An exception in the block drops what was held (the block failed anyway).
    Main thread only; elsewhere the block runs as is.

    >>> with hold_interrupts():
    ...     done = "both files written"
    >>> done
    'both files written'
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    held = [signal.SIGINT]
    if callable(signal.getsignal(signal.SIGTERM)):
        held.append(signal.SIGTERM)
    previous: dict[signal.Signals, Any] = {}
    try:
        for sig in held:
            previous[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum))
    except ValueError:  # not allowed here (e.g. an embedded interpreter)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for signum in dict.fromkeys(caught):
        handler = previous[signal.Signals(signum)]
        if callable(handler):
            handler(signum, None)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt


def _archive(tree: Any) -> Iterator[tuple[str, bytes | np.ndarray]]:
    arrays: list[np.ndarray] = []
    desc = _encode(tree, arrays, known_records(), "tree")
    header = {"format": FORMAT, "version": VERSION, "num_leaves": len(arrays), "tree": desc}
    yield _TREE_ENTRY, json.dumps(header, sort_keys=True, indent=1).encode()
    for i, a in enumerate(arrays):
        yield f"leaf_{i}.npy", a


def _write_zip(f: Any, entries: Iterator[tuple[str, bytes | np.ndarray]]) -> None:
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, content in entries:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as out:
                if isinstance(content, bytes):
                    out.write(content)
                else:
                    np.lib.format.write_array(out, content, allow_pickle=False)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(path: str | os.PathLike[str], tree: Any) -> None:
    """Write ``tree`` to ``path`` (an ``.npz`` archive), atomically.

    The structure is checked before anything is written: an unsupported leaf or an
    unregistered record type raises ``TypeError`` and leaves ``path`` untouched.
    ``path`` is used as given (no suffix is added); its folder must exist. A new file gets
    the permissions the umask allows (``0o666 & ~umask``), a replaced one keeps its own.
    A bad path (a folder, ``""``, a missing folder) or a failed write (no permission, disk
    full) raises :class:`CheckpointError` naming the file; nothing is left behind.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "t.npz")
    >>> save(path, {"w": np.arange(3.0), "n": 2})
    >>> load(path)
    {'n': 2, 'w': array([0., 1., 2.])}
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise CheckpointError(f"save needs a file path such as 'params.npz', got {path!r}.")
    path = Path(path)
    entries = list(_archive(tree))  # may raise TypeError before any file is touched
    folder = path.parent
    if path.is_dir():
        raise CheckpointError(f"cannot save {path}: it is a folder; give a file name, e.g. {path / 'params.npz'}.")
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist; create it first"
        raise CheckpointError(f"cannot save {path}: {folder} {what}.")
    try:
        with atomic_write(path) as f:
            _write_zip(f, iter(entries))
    except OSError as e:
        raise CheckpointError(f"cannot save {path}: {e.strerror or e} (in {folder}).") from e


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file to write that replaces ``path`` all at once, when the block ends without error.

    The bytes go to a temporary file beside ``path``, which is flushed, fsynced and renamed
    over ``path`` with ``os.replace``, so ``path`` holds the old content or the new, never a
    part. An exception in the block removes the temporary; a crash or a kill can leave one
    (``.<name>.<random>.tmp``). Ctrl-C during the block lets it finish, then raises
    ``KeyboardInterrupt``. A new file gets the permissions the umask allows (``0o666 & ~umask``),
    a replaced one keeps its own. Every file fnn writes its results to (checkpoints, IDX files,
    downloads, a run's JSON, CSV and plots) goes through here.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with atomic_write(folder / "notes.txt") as f:
    ...     _ = f.write(b"done")
    >>> [p.name for p in folder.iterdir()], (folder / "notes.txt").read_text()
    (['notes.txt'], 'done')
    """
    path = Path(path)
    with hold_interrupts():
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(path.parent)


def _umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def _read_header(archive: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    info = archive.getinfo(_TREE_ENTRY)  # KeyError when missing
    if info.file_size > _MAX_TREE_BYTES or info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"its {_TREE_ENTRY} is compressed or claims {info.file_size} bytes; fnn.save stores it as is")
    header = json.loads(archive.read(_TREE_ENTRY).decode())
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"it is not a file written by fnn.save (no {FORMAT!r} header)")
    if header.get("version") != VERSION:
        raise ValueError(f"it has format version {header.get('version')!r}; this fnn reads version {VERSION}")
    return header


def _read_leaf(archive: zipfile.ZipFile, name: str, dtype: Any, shape: Any, where: str, size: int) -> np.ndarray:
    """One array, checked against its description before a byte of it is allocated.

    Neither the description, the zip directory nor the ``.npy`` header is trusted alone:
    the entry must be stored uncompressed (as :func:`save` writes it), and the size they
    claim must agree and fit in the entry's stored bytes, which fit in the file on disk, so a
    hostile header (``shape: [10**12]``) or a deflated bomb fails here instead of allocating.
    """
    if not isinstance(dtype, str) or not isinstance(shape, list) or not all(
        type(d) is int and d >= 0 for d in shape
    ):
        raise ValueError(f"malformed description of {name} at {where}: dtype {dtype!r}, shape {shape!r}")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"{name} ({where}) has an unknown dtype {dtype!r}") from None
    if dt.hasobject or dt.str != dtype:
        raise ValueError(f"{name} ({where}) has dtype {dtype!r}; fnn never saves object arrays and never unpickles")
    nbytes = math.prod(shape) * dt.itemsize
    info = archive.getinfo(name + ".npy")  # KeyError when missing
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"{name} ({where}) is compressed; fnn.save stores every array uncompressed")
    if info.compress_size > size or info.file_size != info.compress_size or nbytes > info.file_size:
        raise ValueError(
            f"{name} ({where}) claims {dtype}{shape}, {nbytes} bytes, but its zip entry holds "
            f"{info.file_size} bytes (stored in {info.compress_size} of the file's {size})"
        )
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"{name} has .npy format version {version}")
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        try:
            got_shape, fortran, got_dtype = read_header(f)
        except (SyntaxError, tokenize.TokenError) as e:  # numpy re-parses a header it cannot read with tokenize
            raise ValueError(f"{name} ({where}) has a damaged .npy header ({type(e).__name__}: {e})") from None
        if got_dtype.str != dtype or list(got_shape) != shape:
            raise ValueError(
                f"{name} ({where}) is {got_dtype.str}{list(got_shape)} but the description says {dtype}{shape}"
            )
        data = f.read(nbytes)
        if len(data) != nbytes:
            raise ValueError(f"{name} ({where}) is truncated: {len(data)} of {nbytes} bytes")
        if f.read(1):
            raise ValueError(f"{name} ({where}) has data after its {nbytes} bytes")
    flat = np.frombuffer(data, dtype=dt)  # (prod(shape),)
    return flat.reshape(shape, order="F" if fortran else "C")


def _describe(tree: Any) -> str:
    def leaf(x: Any) -> str:
        if isinstance(x, (np.ndarray, np.generic)):
            return f"{x.dtype}{list(x.shape)}"
        return type(x).__name__

    return str(ft.structure(ft.map(leaf, tree))) + "\n    leaves: " + ", ".join(map(leaf, ft.leaves(tree)))


def check_like(path: str | os.PathLike[str], loaded: Any, like: Any) -> None:
    """Raise :class:`CheckpointError` naming ``path`` unless ``loaded`` has the layout of ``like``.

    The layout is the structure, the record types, and each array leaf's shape and dtype
    (each other leaf's type): :func:`fnn.validate.same_layout`. Both trees are printed.

    >>> import fnn
    >>> check_like("net.npz", fnn.mlp([2, 3]), fnn.mlp([2, 3], seed=1))
    >>> check_like("net.npz", fnn.mlp([2, 3]), fnn.mlp([2, 4]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fnn.io.CheckpointError: net.npz does not match the expected tree (a different architecture or state?)...
    """
    if not validate.same_layout(loaded, like):
        raise CheckpointError(
            f"{path} does not match the expected tree (a different architecture or state?).\n"
            f"  in the file: {_describe(loaded)}\n"
            f"  expected:    {_describe(like)}\n"
            "Build the model with the configuration that saved the file, or load without like=."
        )


def load(path: str | os.PathLike[str], like: Any = None) -> Any:
    """Read a tree written by :func:`save`; its arrays come back read-only.

    Args:
      path: the file.
      like: optionally, a tree the loaded one must match: the same structure and record
        types, and arrays of the same shapes and dtypes (the leaves' values do not matter).

    Raises:
      CheckpointError: the file is missing, truncated, not written by :func:`save`, holds a
        pickled object array, or does not match ``like``.
      UnknownRecordError: (a ``CheckpointError``) the file is sound but holds a record type not
        registered in this session; the message lists the registered public types.

    A record type that has gained fields with defaults since the file was saved (as
    :class:`fnn.EpochStats` did) loads, the new fields taking their defaults.

    >>> import os, tempfile, fnn
    >>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
    >>> save(path, fnn.mlp([2, 3], seed=1))
    >>> try:
    ...     load(path, like=fnn.mlp([2, 4]))
    ... except CheckpointError as e:
    ...     print(str(e).splitlines()[1:3])
    ['  in the file: (Dense(w=*, b=*), Sigmoid())', '    leaves: float32[2, 3], float32[3]']
    """
    path = Path(path)
    records = known_records()
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            magic = f.read(4)
            if magic != b"PK\x03\x04":
                kind = "a single .npy array" if magic.startswith(b"\x93NUM") else "not a zip archive"
                raise ValueError(f"it is {kind}, not an archive written by fnn.save")
            f.seek(0)
            with zipfile.ZipFile(f) as archive:
                header = _read_header(archive, path)
                n = header.get("num_leaves")
                if not isinstance(n, int) or n < 0:
                    raise ValueError("malformed header (num_leaves)")
                used: set[int] = set()

                def leaf(i: Any, dtype: Any, shape: Any, where: str) -> np.ndarray:
                    if not isinstance(i, int) or not 0 <= i < n or i in used:
                        raise ValueError(f"malformed description: leaf index {i!r} at {where}")
                    used.add(i)
                    array = _read_leaf(archive, f"leaf_{i}", dtype, shape, where, size)
                    array.flags.writeable = False
                    return array

                tree = _decode(header["tree"], leaf, records, "tree")
                if len(used) != n:
                    raise ValueError(f"the description uses {len(used)} of its {n} arrays")
    except FileNotFoundError:
        raise CheckpointError(f"cannot load {path}: no such file.") from None
    except UnknownRecordError as e:
        raise UnknownRecordError(f"cannot load {path}: {e}") from e
    except IsADirectoryError:
        raise CheckpointError(f"cannot load {path}: it is a folder, not a file written by fnn.save.") from None
    except MemoryError as e:
        raise CheckpointError(f"cannot load {path}: not enough memory for the arrays it holds ({e}).") from e
    except (zipfile.BadZipFile, ValueError, KeyError, EOFError, OSError, TypeError, RecursionError,
            NotImplementedError, RuntimeError, zlib.error, lzma.LZMAError, struct.error) as e:
        # zipfile raises NotImplementedError (unknown compression or flags), RuntimeError
        # ("encrypted"), zlib/lzma errors (corrupt compressed data) and struct.error on damaged bytes
        raise CheckpointError(
            f"cannot load {path}: {e}. The file is damaged (e.g. truncated by a crash), was not "
            "written by fnn.save, or holds data that would need pickling; fnn never unpickles."
        ) from e
    if like is not None:
        check_like(path, tree, like)
    return tree


def _roundtrip_bytes(tree: Any) -> bytes:
    """The bytes :func:`save` writes for ``tree`` (for tests and hashing)."""
    buf = io.BytesIO()
    _write_zip(buf, _archive(tree))
    return buf.getvalue()
