"""Data sets: real digits shipped in the package, and MNIST-format loaders.

:func:`load_digits` needs no download: 10,000 real MNIST digits ship inside
fnn. :func:`load_mnist` and :func:`load_fashion_mnist` read the four standard
IDX files from disk (searching ``path``, ``$FNN_DATA/<name>``,
``~/.cache/fnn/<name>``, and Debian's directory for Fashion-MNIST) and
download them, SHA-256 verified, only when asked. :func:`read_idx` and
:func:`write_idx` read and write the IDX format itself, strictly.

Every loader returns ``((x_train, y_train), (x_test, y_test))`` with images
``uint8`` of shape ``(n, 28, 28)`` and labels ``int64`` of shape ``(n,)``;
:func:`fnn.data.normalize` turns images into ``float32`` rows in ``[0, 1]``.
:func:`load_words` turns Debian's word list (``apt-get install wamerican``) into a
next-character task for sequence models.

>>> (x, y), (x_test, y_test) = load_digits()
>>> x.shape, y.shape, x_test.shape, y_test.shape
((8000, 28, 28), (8000,), (2000, 28, 28), (2000,))
"""

from fnn.datasets._digits import load_digits
from fnn.datasets._idx import IDXError, read_idx, write_idx
from fnn.datasets._mnist import DownloadError, load_fashion_mnist, load_mnist
from fnn.datasets._words import Words, load_words

__all__ = ["IDXError", "DownloadError", "read_idx", "write_idx", "load_digits", "load_mnist", "load_fashion_mnist",
           "Words", "load_words"]
