r"""Embeddings: a table looked up by integer ids, and a learned position table added to a sequence.

- :class:`Embedding` maps ids ``(batch, time)`` to rows of ``table: (vocab, dim)``, giving
  ``(batch, time, dim)``. Backward, every position adds its ``dy`` to the row it read:

  .. math:: d\,table_v = \sum_{(b, t):\ ids_{bt} = v} dy_{bt}

  Ids are not differentiable: ``dx`` is zeros. A network whose first layer is an
  ``Embedding`` takes integer inputs (they are not cast to floats).
- :class:`PositionalEmbedding` adds ``table[:time]`` of ``table: (max_len, dim)`` to
  ``x: (batch, time, dim)``: :math:`y = x + table_{:T}`, so :math:`dx = dy` and
  :math:`d\,table_t = \sum_b dy_{bt}` for ``t < T`` (zeros beyond).

Both builders draw ``table ~ N(0, 1)``, PyTorch's ``nn.Embedding`` default.

>>> import fnn, numpy as np
>>> net = (embedding(0, 5, 3), positional_embedding(1, 4, 3))
>>> fnn.forward(net, np.array([[0, 4, 2]])).shape
(1, 3, 3)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from fnn import random as fr
from fnn.arguments import float_dtype, positive_int
from fnn.layers.core import register
from fnn.tree import freeze

__all__ = ["Embedding", "PositionalEmbedding", "embedding", "positional_embedding"]


class Embedding(NamedTuple):
    """Integer ids ``(batch, time)`` to vectors ``(batch, time, dim)``: rows of ``table: (vocab, dim)``.

    >>> import numpy as np
    >>> Embedding(np.arange(6.0).reshape(3, 2)).table[np.array([[2, 0]])]
    array([[[4., 5.],
            [0., 1.]]])
    """

    table: np.ndarray


def _check_ids(layer: Embedding, x: np.ndarray) -> None:
    vocab = len(layer.table)
    if x.dtype.kind not in "iu":
        raise TypeError(
            f"Embedding takes integer ids (batch, time), got an array of dtype {x.dtype}; "
            "pass ids as integers, e.g. ids.astype(np.int64) (a float array of ids is refused, not rounded)."
        )
    if x.size and (int(x.min()) < 0 or int(x.max()) >= vocab):
        raise ValueError(
            f"Embedding with a table of {vocab} rows takes ids in [0, {vocab}), got ids from "
            f"{int(x.min())} to {int(x.max())}; map the ids into range or build a larger table."
        )


def _embedding_apply(layer: Embedding, x: np.ndarray) -> np.ndarray:
    _check_ids(layer, x)
    return layer.table[x]  # (batch, time, dim)


def _embedding_param_vjp(layer: Embedding, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> Embedding:
    del y
    ids = x.reshape(-1)  # (batch * time,)
    order = np.argsort(ids, kind="stable")  # equal ids side by side, in their order
    seen, starts = np.unique(ids[order], return_index=True)
    dtable = np.zeros_like(layer.table)  # (vocab, dim)
    dtable[seen] = np.add.reduceat(dy.reshape(-1, dy.shape[-1])[order], starts, axis=0)  # repeated ids add up
    return Embedding(dtable)


def _embedding_vjp(layer: Embedding, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> tuple[Embedding, np.ndarray]:
    return _embedding_param_vjp(layer, x, y, dy), np.zeros(x.shape, dy.dtype)  # ids have no gradient


register(Embedding, _embedding_apply, _embedding_vjp, param_vjp=_embedding_param_vjp, indices=True)


class PositionalEmbedding(NamedTuple):
    """``y = x + table[:time]`` for ``x: (batch, time, dim)`` and ``table: (max_len, dim)``."""

    table: np.ndarray


def _positions(layer: PositionalEmbedding, x: np.ndarray) -> np.ndarray:
    max_len, dim = layer.table.shape
    if x.ndim != 3 or x.shape[2] != dim:
        raise ValueError(
            f"PositionalEmbedding of dim {dim} takes (batch, time, {dim}) inputs, got shape {x.shape}; "
            "put it after an Embedding of the same dim."
        )
    if x.shape[1] > max_len:
        raise ValueError(
            f"PositionalEmbedding holds {max_len} positions but the sequence has {x.shape[1]} steps; "
            f"cut the sequences to at most {max_len} steps or build it with max_len >= {x.shape[1]}."
        )
    return layer.table[: x.shape[1]]  # (time, dim)


def _positional_vjp(
    layer: PositionalEmbedding, x: np.ndarray, y: np.ndarray, dy: np.ndarray
) -> tuple[PositionalEmbedding, np.ndarray]:
    del y
    dtable = np.zeros_like(layer.table)  # (max_len, dim)
    dtable[: x.shape[1]] = dy.sum(axis=0)  # (time, dim)
    return PositionalEmbedding(dtable), dy


register(PositionalEmbedding, lambda layer, x: x + _positions(layer, x), _positional_vjp)


def _table(key: fr.KeyLike, rows: Any, dim: Any, dtype: Any, names: tuple[str, str]) -> np.ndarray:
    rows, dim = positive_int(rows, names[0]), positive_int(dim, names[1])
    dtype = float_dtype(dtype)
    return fr.generator(key).standard_normal((rows, dim)).astype(dtype)  # N(0, 1), as nn.Embedding


def embedding(key: fr.KeyLike, vocab: int, dim: int, dtype: Any = np.float32) -> Embedding:
    """An :class:`Embedding` of ``vocab`` rows of ``dim`` values, ``table ~ N(0, 1)`` from ``key``.

    >>> embedding(0, 30, 8).table.shape
    (30, 8)
    """
    return freeze(Embedding(_table(key, vocab, dim, dtype, ("vocab", "dim"))))


def positional_embedding(key: fr.KeyLike, max_len: int, dim: int, dtype: Any = np.float32) -> PositionalEmbedding:
    """A :class:`PositionalEmbedding` for up to ``max_len`` steps of ``dim`` values, ``table ~ N(0, 1)``.

    >>> positional_embedding(0, 16, 8).table.dtype
    dtype('float32')
    """
    return freeze(PositionalEmbedding(_table(key, max_len, dim, dtype, ("max_len", "dim"))))
