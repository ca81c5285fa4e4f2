r"""Multi-head self-attention over ``(batch, time, dim)``, causal by default.

With ``heads`` heads of size ``k = dim / heads``, for ``x: (batch, time, dim)``:

.. math::
    [q, k, v] = x\, w_{in} + b_{in}, \quad
    s = \frac{q k^T}{\sqrt{k}} + \text{mask}, \quad
    p = \text{softmax}(s), \quad o = p v, \quad y = o\, w_{out} + b_{out}

per head (``q, k, v, o: (batch, heads, time, k)``; the heads of ``o`` are joined back to
``dim`` before ``w_out``). The causal mask is :math:`-\infty` above the diagonal: step ``t``
attends to steps ``<= t``. Backward:

.. math::
    do = dy\, w_{out}^T, \quad dp = do\, v^T, \quad dv = p^T do, \quad
    ds = p \odot (dp - \textstyle\sum_j dp_j p_j), \quad
    dq = \frac{ds\, k}{\sqrt{k}}, \quad dk = \frac{ds^T q}{\sqrt{k}}

then :math:`dw_{in} = x^T [dq, dk, dv]`, :math:`dx = [dq, dk, dv]\, w_{in}^T`, and
:math:`dw_{out} = o^T dy`, with the biases the sums of their outputs' gradients. The
backward pass recomputes ``q, k, v, p, o`` from ``x`` (the contract passes only ``x`` and ``y``).

Fields map onto ``torch.nn.MultiheadAttention(dim, heads, batch_first=True)``:
``w_in = in_proj_weight.T``, ``b_in = in_proj_bias``, ``w_out = out_proj.weight.T``,
``b_out = out_proj.bias``. :func:`attention` initialises as PyTorch does: ``w_in`` Xavier
uniform over ``(dim, 3 dim)``, ``w_out ~ U(-1/sqrt(dim), 1/sqrt(dim))``, both biases 0.

>>> import fnn, numpy as np
>>> layer = attention(0, 8, 2)
>>> fnn.forward((layer,), np.ones((3, 5, 8))).shape
(3, 5, 8)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from fnn import random as fr
from fnn.arguments import positive_int
from fnn.layers.core import register
from fnn.tree import freeze

__all__ = ["MultiHeadAttention", "attention"]


class MultiHeadAttention(NamedTuple):
    """Self-attention with ``heads`` heads, causal when ``causal`` (module docstring for the math).

    Fields: ``w_in: (dim, 3 dim)`` (q, k, v side by side), ``b_in: (3 dim,)``, ``w_out: (dim, dim)``,
    ``b_out: (dim,)``; settings ``heads: int``, ``causal: bool``.
    """

    w_in: np.ndarray
    b_in: np.ndarray
    w_out: np.ndarray
    b_out: np.ndarray
    heads: int = 1
    causal: bool = True


def _check(layer: MultiHeadAttention, x: np.ndarray) -> None:
    dim = layer.w_out.shape[0]
    if dim % layer.heads:
        raise ValueError(
            f"MultiHeadAttention of dim {dim} cannot split into {layer.heads} heads; pick heads dividing {dim}."
        )
    if x.ndim != 3 or x.shape[2] != dim:
        raise ValueError(
            f"MultiHeadAttention of dim {dim} takes sequences (batch, time, {dim}), got shape {x.shape}; "
            f"put it after a layer giving {dim} features per step (an Embedding of dim {dim})."
        )


def _parts(layer: MultiHeadAttention, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(q, k, v, p)`` for ``x``: ``(batch, heads, time, k)`` each, and ``p: (batch, heads, time, time)``.

    ``p`` is the softmax computed in place on the scores' buffer (made here, never shared).
    """
    _check(layer, x)
    batch, steps, dim = x.shape
    qkv = x.reshape(-1, dim) @ layer.w_in  # (batch * time, 3 dim)
    qkv += layer.b_in
    qkv = qkv.reshape(batch, steps, 3, layer.heads, dim // layer.heads)  # (batch, time, 3, heads, k)
    q, k, v = qkv.transpose(2, 0, 3, 1, 4)  # (batch, heads, time, k) each
    s = q @ k.transpose(0, 1, 3, 2)  # (batch, heads, time, time)
    s *= 1.0 / np.sqrt(dim // layer.heads)
    if layer.causal:
        above, right = np.triu_indices(steps, 1)
        s[..., above, right] = -np.inf  # step t sees steps <= t
    s -= s.max(axis=-1, keepdims=True)  # a stable softmax, in place
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)
    return q, k, v, s


def _join(o: np.ndarray) -> np.ndarray:
    """Heads side by side again: ``(batch, heads, time, k) -> (batch * time, dim)``."""
    batch, heads, steps, k = o.shape
    return o.transpose(0, 2, 1, 3).reshape(batch * steps, heads * k)  # (batch * time, dim)


def _apply(layer: MultiHeadAttention, x: np.ndarray) -> np.ndarray:
    q, k, v, p = _parts(layer, x)
    y = _join(p @ v) @ layer.w_out  # (batch * time, dim)
    y += layer.b_out
    return y.reshape(x.shape)  # (batch, time, dim)


def _vjp(
    layer: MultiHeadAttention, x: np.ndarray, y: np.ndarray, dy: np.ndarray
) -> tuple[MultiHeadAttention, np.ndarray]:
    del y
    q, k, v, p = _parts(layer, x)
    batch, steps, dim = x.shape
    dy2 = dy.reshape(-1, dim)  # (batch * time, dim)
    dw_out = _join(p @ v).T @ dy2  # (dim, dim)
    do = (dy2 @ layer.w_out.T).reshape(batch, steps, layer.heads, -1).transpose(0, 2, 1, 3)  # (batch, heads, time, k)
    dqkv = np.empty((batch, steps, 3, layer.heads, dim // layer.heads), x.dtype)  # (batch, time, 3, heads, k)
    dq, dk, dv = dqkv.transpose(2, 0, 3, 1, 4)  # (batch, heads, time, k) each, views written below
    np.matmul(p.transpose(0, 1, 3, 2), do, out=dv)
    dp = do @ v.transpose(0, 1, 3, 2)  # (batch, heads, time, time)
    dp -= np.einsum("bhij,bhij->bhi", dp, p)[..., None]  # dp - sum_j dp_j p_j
    dp *= p
    dp *= 1.0 / np.sqrt(dim // layer.heads)  # ds
    np.matmul(dp, k, out=dq)
    np.matmul(dp.transpose(0, 1, 3, 2), q, out=dk)
    dqkv2 = dqkv.reshape(batch * steps, 3 * dim)  # (batch * time, 3 dim)
    dw_in = x.reshape(-1, dim).T @ dqkv2  # (dim, 3 dim)
    dx = (dqkv2 @ layer.w_in.T).reshape(x.shape)  # (batch, time, dim)
    grads = MultiHeadAttention(dw_in, dqkv2.sum(axis=0), dw_out, dy2.sum(axis=0), 0, False)
    return grads, dx


register(MultiHeadAttention, _apply, _vjp)


def attention(
    key: fr.KeyLike, dim: int, heads: int, causal: bool = True, dtype: Any = np.float32
) -> MultiHeadAttention:
    """A :class:`MultiHeadAttention` of ``dim`` features in ``heads`` heads, initialised as PyTorch does.

    >>> layer = attention(0, 64, 4)
    >>> layer.w_in.shape, layer.w_out.shape, layer.heads, layer.causal
    ((64, 192), (64, 64), 4, True)
    >>> attention(0, 64, 5)
    Traceback (most recent call last):
    ...
    ValueError: attention: dim 64 is not divisible by heads 5; each head takes dim / heads features, e.g. heads=4.
    """
    dim, heads = positive_int(dim, "dim"), positive_int(heads, "heads")
    if dim % heads:
        raise ValueError(
            f"attention: dim {dim} is not divisible by heads {heads}; "
            "each head takes dim / heads features, e.g. heads=4."
        )
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a float type such as np.float32, got {dtype}.")
    g = fr.generator(key)
    a = np.sqrt(6.0 / (dim + 3 * dim))  # Xavier uniform over in_proj_weight (3 dim, dim)
    w_in = g.uniform(-a, a, (dim, 3 * dim)).astype(dtype)
    w_out = g.uniform(-1 / np.sqrt(dim), 1 / np.sqrt(dim), (dim, dim)).astype(dtype)
    zeros = np.zeros(3 * dim, dtype)
    return freeze(MultiHeadAttention(w_in, zeros, w_out, zeros[:dim].copy(), heads, bool(causal)))
