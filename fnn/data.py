"""Pure data pipelines: shuffle, split and minibatch tuples of arrays.

A *data set* here is a tuple of arrays that share their first axis, the
examples axis: ``(x, y)`` with ``x`` of shape ``(n, features)`` and ``y`` of
shape ``(n,)``, or any number of such arrays. Every function takes a data set
and returns new arrays of the same kind; none writes into its arguments.

Randomness is an argument: each function that reorders examples takes a
``key`` (an ``int`` seed or a key from :func:`fnn.random.key`) and draws its
permutation from ``fnn.random.generator(key)``, so the same key gives the same
order in any process. Use a new key per epoch, e.g.
``fnn.random.fold_in(key, epoch)``.

A pipeline is ordinary iteration: :func:`batches` is a lazy generator, and
per-batch steps (augmentation, noise, one-hot encoding) are ``map`` over it,
each step taking its own key.

>>> import numpy as np
>>> x, y = np.arange(10.0).reshape(5, 2), np.array([0, 1, 0, 1, 0])
>>> [yb.tolist() for _, yb in batches(0, (x, y), batch_size=2)]
[[1, 0], [0, 1], [0]]
>>> sorted(np.concatenate([xb[:, 0] for xb, _ in batches(0, (x, y), 2)]).tolist())
[0.0, 2.0, 4.0, 6.0, 8.0]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from fnn import random
from fnn.arguments import describe, integer, nonfinite, number, positive_int

__all__ = [
    "Data", "batches", "num_batches", "steps_per_epoch", "shuffle", "split", "proportional", "one_hot", "normalize",
]

Data = tuple[np.ndarray, ...]


def _check_data(data: Any, fn: str) -> Data:
    """``data`` as a tuple of arrays with one non-zero, shared first dimension."""
    if isinstance(data, np.ndarray) or not isinstance(data, (tuple, list)):
        raise TypeError(
            f"{fn}: data must be a tuple of arrays such as (x, y), got {type(data).__name__}; "
            "wrap a single array as (x,)."
        )
    if not data:
        raise ValueError(f"{fn}: data is an empty tuple; pass at least one array, e.g. data=(x, y).")
    arrays = tuple(np.asarray(a) for a in data)
    if any(a.ndim == 0 for a in arrays):
        shapes = [a.shape for a in arrays]
        raise ValueError(
            f"{fn}: every array in data needs an examples axis, got shapes {shapes}; "
            "pass arrays of shape (n, ...)."
        )
    lengths = [len(a) for a in arrays]
    if len(set(lengths)) != 1:
        shapes = [a.shape for a in arrays]
        raise ValueError(
            f"{fn}: the arrays in data must have the same first dimension (number of examples), "
            f"got shapes {shapes}; pass arrays with one row per example."
        )
    if lengths[0] == 0:
        raise ValueError(f"{fn}: data has no examples (first dimension 0); pass at least one example.")
    return arrays


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches :func:`batches` yields for ``n`` examples.

    ``ceil(n / batch_size)``, or ``n // batch_size`` with ``drop_last``.

    >>> num_batches(10, 3), num_batches(10, 3, drop_last=True), num_batches(10, 64)
    (4, 3, 1)
    """
    n = integer(n, "n", "num_batches(60000, batch_size=32)", low=0)
    batch_size = positive_int(batch_size, "batch_size", "num_batches(60000, batch_size=32)")
    return n // batch_size if drop_last else -(-n // batch_size)


#: :func:`num_batches` under the name schedules want: the steps of one epoch, so a schedule over
#: a whole run is ``fnn.cosine_decay(lr, steps=epochs * steps_per_epoch(n, batch_size))``.
#: ``steps_per_epoch(60_000, 32)`` is 1875.
steps_per_epoch = num_batches


def _take(arrays: Data, order: np.ndarray, batch_size: int, stop: int) -> Iterator[Data]:
    for start in range(0, stop, batch_size):
        index = order[start : start + batch_size]  # (batch,)
        yield tuple(a.take(index, axis=0) for a in arrays)  # one gather per array


def batches(
    key: random.KeyLike, data: Sequence[Any], batch_size: int, *, drop_last: bool = False
) -> Iterator[Data]:
    """Lazily yield minibatches of ``data`` in an order fixed by ``key``.

    One pass is one epoch: every example appears exactly once, in the order of
    ``fnn.random.generator(key).permutation(n)``. Each batch is a tuple with one
    new array per array of ``data``, of shape ``(batch_size, ...)``; the last
    batch is smaller when ``batch_size`` does not divide ``n``, unless
    ``drop_last=True`` drops it. A ``batch_size`` of ``n`` or more gives one
    batch holding every example (or none with ``drop_last``).

    Arguments are checked when ``batches`` is called, before iteration starts.
    Memory beyond the batches themselves is one permutation of ``n`` ints.

    Args:
      key: an ``int`` seed or an ``fnn.random`` key; use a new one per epoch.
      data: a tuple of arrays ``(x, y, ...)`` with equal first dimensions ``n``.
      batch_size: a positive int.
      drop_last: drop the last, smaller batch.

    Returns:
      An iterator of ``num_batches(n, batch_size, drop_last)`` tuples.

    >>> import numpy as np
    >>> x, y = np.zeros((7, 3)), np.arange(7)
    >>> [(xb.shape, yb.shape) for xb, yb in batches(1, (x, y), 3)]
    [((3, 3), (3,)), ((3, 3), (3,)), ((1, 3), (1,))]
    >>> len(list(batches(1, (x, y), 3, drop_last=True)))
    2
    """
    arrays = _check_data(data, "batches")
    batch_size = positive_int(batch_size, "batch_size", "batches(key, data, batch_size=32)")
    n = len(arrays[0])
    order = random.generator(key).permutation(n)  # (n,)
    stop = n - n % batch_size if drop_last else n
    return _take(arrays, order, batch_size, stop)


def shuffle(key: random.KeyLike, data: Sequence[Any]) -> Data:
    """New arrays holding the examples of ``data`` in an order fixed by ``key``.

    All arrays are reordered by the same permutation, so rows stay paired.

    >>> import numpy as np
    >>> x, y = np.arange(4) * 10, np.arange(4)
    >>> xs, ys = shuffle(0, (x, y))
    >>> bool((xs == ys * 10).all()), sorted(ys.tolist())
    (True, [0, 1, 2, 3])
    """
    arrays = _check_data(data, "shuffle")
    order = random.generator(key).permutation(len(arrays[0]))  # (n,)
    return tuple(a[order] for a in arrays)


def proportional(counts: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` into integer parts proportional to ``counts`` (largest remainder).

    Part ``i`` is ``floor(total * counts[i] / sum(counts))``, and the parts with the largest
    remainders get one more until they add up to ``total``: exact integer arithmetic, ties to
    the earlier part. The per-class sizes of a stratified :func:`split`.

    >>> proportional(np.array([5, 3, 2]), 5).tolist()
    [3, 1, 1]
    """
    total = integer(total, "total", "proportional(np.bincount(labels), 100)", low=0)
    given = np.asarray(counts)
    if given.ndim != 1 or given.dtype.kind not in "iu" or given.size == 0 or given.min() < 0 or given.sum() == 0:
        raise ValueError(
            f"proportional needs a 1-D array of non-negative integer counts with a positive sum, "
            f"got {describe(counts)}; pass e.g. np.bincount(labels)."
        )
    counts = given.astype(np.int64)
    n = int(counts.sum())
    quota, remainder = np.divmod(counts * total, n)
    short = total - int(quota.sum())
    quota[np.argsort(-remainder, kind="stable")[:short]] += 1
    return quota


def split(
    key: random.KeyLike, data: Sequence[Any], fraction: float, stratify: bool = True
) -> tuple[Data, Data]:
    """Split ``data`` at random into ``(first, second)``, ``first`` holding ``fraction`` of it.

    ``first`` gets ``round(fraction * n)`` examples and ``second`` the rest,
    each set in a random order. With ``stratify``, when the last array of ``data``
    holds class labels (integers or bools ``(n,)``, or one-hot rows ``(n, k)``), every
    class is split in the same proportion (:func:`proportional`, its ties broken in
    an order of the classes drawn from ``key``), so both sets keep the class balance;
    any other last array (real-valued targets, sequences, the inputs alone) is split
    plainly at random, as with ``stratify=False``.

    Args:
      key: an ``int`` seed or an ``fnn.random`` key.
      data: a tuple of arrays ``(x, ..., labels)`` with equal first dimensions.
      fraction: the share of examples in ``first``, strictly between 0 and 1.
      stratify: keep the class proportions of the last array in both sets.

    Returns:
      ``(first, second)``, two tuples of new arrays shaped like ``data``.

    >>> import numpy as np
    >>> x, y = np.arange(10), np.array([0] * 5 + [1] * 5)
    >>> (x_train, y_train), (x_val, y_val) = split(0, (x, y), 0.8)
    >>> np.bincount(y_train).tolist(), np.bincount(y_val).tolist()
    ([4, 4], [1, 1])
    >>> sorted(np.concatenate([x_train, x_val]).tolist()) == list(range(10))
    True
    """
    arrays = _check_data(data, "split")
    fraction = number(fraction, "split: fraction", "split(key, data, 0.8)", 0.0, 1.0, open_low=True, open_high=True)
    n = len(arrays[0])
    total = int(np.floor(fraction * n + 0.5))
    draw = random.generator(key)
    order = draw.permutation(n)  # (n,)
    classes = _classes(arrays[-1]) if stratify else None
    if classes is None:
        in_first = np.arange(n) < total
    else:
        classes = classes[order]  # (n,) class index of each example, in shuffled order
        counts = np.bincount(classes)  # (k,)
        drawn = draw.permutation(len(counts))  # (k,): tied remainders go to the class drawn first
        quota = np.empty_like(counts)
        quota[drawn] = proportional(counts[drawn], total)  # (k,) examples of each class in first
        by_class = np.argsort(classes, kind="stable")  # (n,)
        rank = np.empty(n, dtype=np.int64)
        rank[by_class] = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
        in_first = rank < quota[classes]  # (n,)
    first, second = order[in_first], order[~in_first]
    return tuple(a[first] for a in arrays), tuple(a[second] for a in arrays)


def _classes(labels: np.ndarray) -> np.ndarray | None:
    """The class index of each example, ``(n,)``, if ``labels`` are class labels; ``None`` otherwise.

    Class labels are integers or bools ``(n,)`` (one class per distinct value) or one-hot rows
    ``(n, k)`` (the class of a row is the column of its 1).

    >>> _classes(np.array([5, 2, 5])).tolist(), _classes(np.eye(3)[[2, 0]]).tolist(), _classes(np.ones(2))
    ([1, 0, 1], [2, 0], None)
    """
    if labels.ndim == 1 and labels.dtype.kind in "biu":
        return np.unique(labels, return_inverse=True)[1]
    if labels.ndim == 2 and labels.dtype.kind in "biuf" and labels.shape[1] > 0:
        if ((labels == 0) | (labels == 1)).all() and (np.count_nonzero(labels, axis=1) == 1).all():
            return labels.argmax(axis=1)
    return None


def one_hot(labels: Any, k: int, dtype: Any = np.float32) -> np.ndarray:
    """Integer labels of shape ``(...)`` as one-hot rows of shape ``(..., k)``.

    >>> one_hot([2, 0], 3)
    array([[0., 0., 1.],
           [1., 0., 0.]], dtype=float32)
    """
    k = positive_int(k, "k", "one_hot(labels, k=10)")
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(
            f"one_hot: labels must be integers, got dtype {labels.dtype}; "
            "convert with labels.astype(int) or, for one-hot input, labels.argmax(-1)."
        )
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(
            f"one_hot: labels must lie in [0, {k}) for k={k}, got values from {labels.min()} to "
            f"{labels.max()}; pass k = labels.max() + 1 or fix the labels."
        )
    return np.eye(k, dtype=dtype)[labels]  # (..., k)


def normalize(images: Any) -> np.ndarray:
    """Images as ``float32`` rows in ``[0, 1]``: shape ``(n, ...)`` becomes ``(n, features)``.

    ``uint8`` pixels are divided by 255; floating images must already lie in
    ``[0, 1]`` and are only flattened and cast. Returns a new array.

    >>> import numpy as np
    >>> normalize(np.array([[[0, 255], [51, 102]]], dtype=np.uint8))
    array([[0. , 1. , 0.2, 0.4]], dtype=float32)
    """
    images = np.asarray(images)
    if images.ndim == 0:
        raise ValueError("normalize: images need an examples axis, got a scalar; pass shape (n, ...).")
    rows = images.reshape(len(images), int(np.prod(images.shape[1:])))  # (n, features)
    if images.dtype == np.uint8:
        out = rows.astype(np.float32)  # (n, features)
        out /= np.float32(255)
        return out
    if images.dtype.kind != "f":
        raise TypeError(
            f"normalize: images must be uint8 pixels (0-255) or floats in [0, 1], got dtype "
            f"{images.dtype}; convert with images.astype(np.uint8) or scale them to [0, 1] first."
        )
    if not np.isfinite(images).all():
        raise nonfinite(images, "normalize: the image array",
                        "clean or drop those images first, e.g. with np.nan_to_num or a mask.")
    if images.size and not (images.min() >= 0 and images.max() <= 1):
        raise ValueError(
            f"normalize: floating images must lie in [0, 1], got values from {images.min()} to "
            f"{images.max()}; pass uint8 pixels or divide by the maximum pixel value first."
        )
    return rows.astype(np.float32)  # (n, features)
