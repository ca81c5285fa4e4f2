"""MNIST and Fashion-MNIST from the four standard IDX files, found on disk or downloaded."""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fnn import io as fio
from fnn.arguments import flag
from fnn.datasets._idx import IDXError, read_idx

__all__ = ["DownloadError", "load_mnist", "load_fashion_mnist"]

_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class _Source(NamedTuple):
    name: str  # directory name under $FNN_DATA and ~/.cache/fnn
    title: str
    mirrors: tuple[str, ...]
    sha256: dict[str, str]  # of the .gz files as the mirrors serve them
    system_dirs: tuple[str, ...] = ()
    install_hint: str = ""


MNIST = _Source(
    name="mnist",
    title="MNIST",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    sha256={
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
)

FASHION_MNIST = _Source(
    name="fashion-mnist",
    title="Fashion-MNIST",
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    sha256={
        "train-images-idx3-ubyte.gz": "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
        "train-labels-idx1-ubyte.gz": "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
        "t10k-images-idx3-ubyte.gz": "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
        "t10k-labels-idx1-ubyte.gz": "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
    },
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    install_hint="install Debian's copy with `apt-get install dataset-fashion-mnist`, or ",
)

Split = tuple[np.ndarray, np.ndarray]
_MAX_DOWNLOAD = 64 << 20  # the largest file, Fashion-MNIST's train images, is 26 MB


def _places(source: _Source, path: str | os.PathLike[str] | None) -> list[Path]:
    """The directories to search: ``path``, ``$FNN_DATA/<name>``, ``~/.cache/fnn/<name>``, system ones."""
    places = [Path(path).expanduser()] if path is not None else []
    if os.environ.get("FNN_DATA"):
        places.append(Path(os.environ["FNN_DATA"]).expanduser() / source.name)
    places.append(Path.home() / ".cache" / "fnn" / source.name)
    return places + [Path(d) for d in source.system_dirs]


def _find(directory: Path, base: str) -> Path | None:
    for candidate in (directory / base, directory / f"{base}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _download(source: _Source, directory: Path, filename: str) -> None:
    """Fetch ``filename`` from the first mirror that serves it with the known SHA-256, atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    failures = []
    for mirror in source.mirrors:
        url = mirror + filename
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                data = response.read(_MAX_DOWNLOAD + 1)
        except OSError as e:
            failures.append(f"  {url}: {e}")
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest != source.sha256[filename]:
            failures.append(f"  {url}: SHA-256 {digest}, expected {source.sha256[filename]}")
            continue
        with fio.atomic_write(directory / filename) as f:
            f.write(data)
        return
    raise DownloadError(f"could not download {source.title} file {filename}:\n" + "\n".join(failures))


class DownloadError(OSError):
    """The data files are not on disk and could not be downloaded; the message says where to put them."""


def _missing_message(source: _Source, places: list[Path], fn: str) -> str:
    lines = [f"{fn}: the {source.title} files were not found. The places searched and what each lacks:"]
    for place in places:
        missing = [base for base in _FILES if _find(place, base) is None]
        lines.append(f"  {place}: missing {', '.join(missing)} (raw or .gz)")
    lines.append(
        f"To get them, {source.install_hint}put the four files (raw or .gz) in one of these places "
        f"(e.g. set FNN_DATA=/some/dir and use /some/dir/{source.name}), or call "
        f"{fn}(download=True) (or set FNN_DOWNLOAD=1) to download them, SHA-256 verified, to {places[0]}."
    )
    return "\n".join(lines)


def _download_message(source: _Source, places: list[Path], fn: str, error: OSError) -> str:
    files = ", ".join(f"{base}.gz" for base in _FILES)
    return (
        f"{fn}: the {source.title} files are not on disk and could not be downloaded ({error}). "
        f"Put the four files {files} (raw or .gz) in one folder and pass it as --data-dir DIR "
        f"(path= in Python), or in $FNN_DATA/{source.name} or ~/.cache/fnn/{source.name}; "
        f"searched: {', '.join(map(str, places))}."
    ).replace("\n", " ")


def _load(
    source: _Source, path: str | os.PathLike[str] | None, download: bool, fn: str
) -> tuple[Split, Split]:
    download = flag(download, f"{fn}: download", f"{fn}(download=True)")
    wants_download = download or os.environ.get("FNN_DOWNLOAD") == "1"
    if path is not None and not Path(path).expanduser().is_dir() and not wants_download:
        raise FileNotFoundError(
            f"{fn}: the data folder {path} does not exist (or is not a folder); pass the folder that "
            f"holds the four {source.title} files, or no path to search the usual places."
        )
    places = _places(source, path)
    found = next((d for d in places if all(_find(d, base) for base in _FILES)), None)
    if found is None and wants_download:
        found = places[0]
        try:
            for base in _FILES:
                if _find(found, base) is None:
                    _download(source, found, f"{base}.gz")
        except OSError as e:
            raise DownloadError(_download_message(source, places, fn, e)) from e
    if found is None:
        raise FileNotFoundError(_missing_message(source, places, fn))
    files = [_find(found, base) for base in _FILES]
    x_train, y_train, x_test, y_test = (read_idx(f) for f in files if f is not None)
    for images, labels, i in ((x_train, y_train, 0), (x_test, y_test, 2)):
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise IDXError(
                f"{files[i]}: expected uint8 images of shape (n, 28, 28), got {images.dtype} {images.shape}."
            )
        if labels.dtype != np.uint8 or labels.shape != images.shape[:1] or labels.max(initial=0) > 9:
            raise IDXError(
                f"{files[i + 1]}: expected {len(images)} uint8 labels 0-9 to match {files[i]}, "
                f"got {labels.dtype} {labels.shape} with maximum {labels.max(initial=0)}."
            )
    return (x_train, y_train.astype(np.int64)), (x_test, y_test.astype(np.int64))


def load_mnist(path: str | os.PathLike[str] | None = None, *, download: bool = False) -> tuple[Split, Split]:
    """The MNIST handwritten digits (LeCun, Cortes, Burges; CC BY-SA 3.0) from IDX files.

    The four files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each raw or
    ``.gz``) are read from the first directory that holds all four, searching
    ``path``, then ``$FNN_DATA/mnist``, then ``~/.cache/fnn/mnist``. Every file
    is checked by :func:`fnn.datasets.read_idx`.

    Args:
      path: a directory to search first; it must exist (unless downloading into it).
      download: when no directory holds the files, download the missing ones
        from the canonical mirrors into the first place searched, verify their
        SHA-256 and only then move each into place. The environment variable
        ``FNN_DOWNLOAD=1`` does the same. Off by default.

    Returns:
      ``((x_train, y_train), (x_test, y_test))``: images ``uint8`` of shape
      ``(n, 28, 28)`` with values 0-255, labels ``int64`` of shape ``(n,)``
      with values 0-9; ``n`` is 60,000 and 10,000.

    Raises:
      FileNotFoundError: ``path`` is given but is not a folder (and not downloading),
        or the files are in none of those places and downloading
        is off; the message lists what is missing where, and how to get it.
      DownloadError: (an ``OSError``) downloading failed; the message names the files
        and the places to put them.
      IDXError: a file is damaged or is not what its name says.

    >>> import tempfile
    >>> import numpy as np
    >>> from fnn.datasets import write_idx
    >>> with tempfile.TemporaryDirectory() as d:  # four tiny stand-in files
    ...     for part, n in [("train", 3), ("t10k", 2)]:
    ...         write_idx(f"{d}/{part}-images-idx3-ubyte.gz", np.zeros((n, 28, 28), np.uint8))
    ...         write_idx(f"{d}/{part}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8))
    ...     (x, y), (x_test, y_test) = load_mnist(d)
    >>> x.shape, y.tolist(), y.dtype, x_test.shape
    ((3, 28, 28), [0, 1, 2], dtype('int64'), (2, 28, 28))
    """
    return _load(MNIST, path, download, "load_mnist")


def load_fashion_mnist(
    path: str | os.PathLike[str] | None = None, *, download: bool = False
) -> tuple[Split, Split]:
    """Fashion-MNIST, Zalando's clothing images (Xiao, Rasul, Vollgraf; MIT), from IDX files.

    Like :func:`load_mnist`, searching ``path``, then ``$FNN_DATA/fashion-mnist``,
    then ``~/.cache/fnn/fashion-mnist``, then Debian's
    ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``).
    ``download=True`` (or ``FNN_DOWNLOAD=1``) fetches missing files from the
    canonical mirrors with SHA-256 verification; it is off by default.

    Returns:
      ``((x_train, y_train), (x_test, y_test))``: images ``uint8`` of shape
      ``(n, 28, 28)``, labels ``int64`` of shape ``(n,)``; ``n`` is 60,000 and
      10,000. Labels: 0 T-shirt/top, 1 trouser, 2 pullover, 3 dress, 4 coat,
      5 sandal, 6 shirt, 7 sneaker, 8 bag, 9 ankle boot.

    Raises:
      FileNotFoundError: ``path`` is given but is not a folder (and not downloading),
        or the files are in none of those places and downloading
        is off; the message lists what is missing where, and how to get it.
      DownloadError: (an ``OSError``) downloading failed; the message names the files
        and the places to put them.
      IDXError: a file is damaged or is not what its name says.

    >>> import os
    >>> if os.path.isdir("/usr/share/datasets/fashion-mnist"):
    ...     (x, y), (x_test, y_test) = load_fashion_mnist()
    ...     assert x.shape == (60000, 28, 28) and y_test.shape == (10000,)
    """
    return _load(FASHION_MNIST, path, download, "load_fashion_mnist")
