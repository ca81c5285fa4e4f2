r"""The fully connected layer: ``Dense``, its rules and its builder :func:`dense`.

For ``x: (batch, n_in)``, ``w: (n_in, n_out)``, ``b: (n_out,)``:

.. math:: y = x w + b, \qquad dw = x^T dy, \quad db = \textstyle\sum_{batch} dy, \quad dx = dy\, w^T

with ``dy, y: (batch, n_out)``. A network's first dense layer registers ``param_vjp`` too, so
backpropagation skips its ``dx`` (a third of the backward matrix products).

(The module is ``linear``, not ``dense``, so that ``fnn.layers.dense`` is the builder and never
shadows a submodule of the same name.)

>>> import fnn, numpy as np
>>> layer = dense(0, 784, 16)
>>> fnn.forward((layer,), np.zeros((2, 784), np.float32)).shape
(2, 16)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from fnn import random as fr
from fnn.arguments import float_dtype, positive_int
from fnn.layers.core import register
from fnn.layers.initializers import get_init
from fnn.tree import freeze

__all__ = ["Dense", "dense"]


class Dense(NamedTuple):
    r"""A fully connected layer: ``y = x @ w + b``, on the last axis of ``x: (..., n_in)``.

    Fields: ``w: (n_in, n_out)``, ``b: (n_out,)``. Leading axes (batch, time, ...) are
    flattened into rows ``X: (rows, n_in)``; backward, for ``dY: (rows, n_out)``:

    .. math:: dw = X^T dY, \quad db = \textstyle\sum_{rows} dY, \quad dX = dY\, w^T

    Build one with :func:`dense`.

    >>> from fnn.layers import apply
    >>> layer = Dense(np.ones((2, 3)), np.zeros(3))
    >>> apply(layer, np.array([[1.0, 2.0]]))
    array([[3., 3., 3.]])
    """

    w: np.ndarray
    b: np.ndarray


def _rows(a: np.ndarray) -> np.ndarray:
    """``a`` as a matrix with one row per position: ``(..., n) -> (rows, n)`` (a batch of rows as it is)."""
    return a if a.ndim == 2 else a.reshape(-1, a.shape[-1])  # (rows, n)


def _dense_apply(layer: Dense, x: np.ndarray) -> np.ndarray:
    y = x @ layer.w  # (..., n_out): matmul makes one GEMM of all leading axes
    y += layer.b
    return y


def _dense_param_vjp(layer: Dense, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> Dense:
    del y
    x2, dy2 = _rows(x), _rows(dy)  # (rows, n_in), (rows, n_out)
    return Dense(x2.T @ dy2, np.add.reduce(dy2, axis=0))  # (n_in, n_out): BLAS reads the transpose in place; (n_out,)


def _dense_vjp(layer: Dense, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> tuple[Dense, np.ndarray]:
    dx = _rows(dy) @ layer.w.T  # (rows, n_in): one GEMM (matmul on a 3-D dy and a transposed w runs per example)
    return _dense_param_vjp(layer, x, y, dy), dx if dx.ndim == x.ndim else dx.reshape(x.shape)  # (..., n_in)


register(Dense, _dense_apply, _dense_vjp, param_vjp=_dense_param_vjp)


def dense(key: fr.KeyLike, n_in: int, n_out: int, init: str = "xavier", dtype: Any = np.float32) -> Dense:
    """A :class:`Dense` layer with ``w: (n_in, n_out)`` and ``b: (n_out,)`` drawn from ``key``.

    Args:
      key: an int seed or a key from :mod:`fnn.random`.
      n_in, n_out: the numbers of inputs and outputs.
      init: a name from :data:`fnn.layers.INITS` (``"xavier"``, ``"he"``, ``"normal"``, ``"torch"``;
        see :mod:`fnn.layers.initializers`).
      dtype: ``np.float32`` (default) or ``np.float64``.

    >>> layer = dense(0, 784, 16)
    >>> layer.w.shape, layer.b.shape, layer.w.dtype
    ((784, 16), (16,), dtype('float32'))
    """

    n_in, n_out = positive_int(n_in, "n_in"), positive_int(n_out, "n_out")
    make = get_init(init)
    dtype = float_dtype(dtype)
    w, b = make(fr.generator(key), n_in, n_out)  # (n_in, n_out), (n_out,)
    return freeze(Dense(w.astype(dtype), b.astype(dtype)))
