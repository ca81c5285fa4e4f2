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
forward pass saves ``q, k, v, p`` and ``o`` for the backward pass (see :mod:`fnn.layers.core`).

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
from fnn.arguments import flag, float_dtype, positive_int
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


def _forward(layer: MultiHeadAttention, x: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """``y`` and the saved ``(qkv, p, o)``: the projections (``q`` already scaled by ``1/sqrt(k)``),
    the probabilities ``p[j, b, h, i]`` (the weight of step ``j`` for step ``i``) and the joined heads.

    ``p`` is stored with the attended step ``j`` first: the softmax's max and sum over ``j`` are
    then reductions over the outer axis, which NumPy vectorises over ``(batch, heads, time)``
    (over a short last axis they are several times slower).
    """
    _check(layer, x)
    batch, steps, dim = x.shape
    heads, hk = layer.heads, dim // layer.heads
    qkv = x.reshape(-1, dim) @ layer.w_in  # (batch * time, 3 dim)
    qkv += layer.b_in
    q, k, v = qkv.reshape(batch, steps, 3, heads, hk).transpose(2, 0, 3, 1, 4)  # (batch, heads, time, k) each
    q *= 1.0 / np.sqrt(hk)  # in qkv, made here: the scores' scale, on the smaller array
    p = np.empty((steps, batch, heads, steps), x.dtype)  # (time j, batch, heads, time i)
    np.matmul(k, q.transpose(0, 1, 3, 2), out=p.transpose(1, 2, 0, 3))  # s_ij = q_i . k_j
    if layer.causal:
        p += np.tril(np.full((steps, steps), -np.inf, x.dtype), -1)[:, None, None, :]  # step i sees j <= i
    p -= np.maximum.reduce(p, axis=0)  # a stable softmax over j, in place
    np.exp(p, out=p)
    p /= np.add.reduce(p, axis=0)
    o = np.empty((batch, steps, heads, hk), x.dtype)  # (batch, time, heads, k): the heads joined
    np.matmul(p.transpose(1, 2, 3, 0), v, out=o.transpose(0, 2, 1, 3))  # o_i = sum_j p_ij v_j
    o2 = o.reshape(batch * steps, dim)  # (batch * time, dim)
    y = o2 @ layer.w_out  # (batch * time, dim)
    y += layer.b_out
    return y.reshape(x.shape), (qkv, p, o2)  # (batch, time, dim)


def _vjp(
    layer: MultiHeadAttention, x: np.ndarray, y: np.ndarray, dy: np.ndarray, saved: tuple[np.ndarray, ...]
) -> tuple[MultiHeadAttention, np.ndarray]:
    del y
    qkv, p, o2 = saved
    batch, steps, dim = x.shape
    heads, hk = layer.heads, dim // layer.heads
    q, k, v = qkv.reshape(batch, steps, 3, heads, hk).transpose(2, 0, 3, 1, 4)  # (batch, heads, time, k) each
    dy2 = dy.reshape(-1, dim)  # (batch * time, dim)
    dw_out = o2.T @ dy2  # (dim, dim)
    do = (dy2 @ layer.w_out.T).reshape(batch, steps, heads, hk).transpose(0, 2, 1, 3)  # (batch, heads, time, k)
    dqkv = np.empty((batch, steps, 3, heads, hk), x.dtype)  # (batch, time, 3, heads, k)
    dq, dk, dv = dqkv.transpose(2, 0, 3, 1, 4)  # (batch, heads, time, k) each, views written below
    np.matmul(p.transpose(1, 2, 0, 3), do, out=dv)  # dv_j = sum_i p_ij do_i
    ds = np.empty_like(p)  # (time j, batch, heads, time i), as p
    np.matmul(v, do.transpose(0, 1, 3, 2), out=ds.transpose(1, 2, 0, 3))  # dp_ij = do_i . v_j
    ds -= np.einsum("jn,jn->n", ds.reshape(steps, -1), p.reshape(steps, -1)).reshape(p.shape[1:])  # dp - sum_j dp_j p_j
    ds *= p  # ds, for the scaled q
    np.matmul(ds.transpose(1, 2, 3, 0), k, out=dq)  # dq_i = sum_j ds_ij k_j / sqrt(k)
    dq *= 1.0 / np.sqrt(hk)
    np.matmul(ds.transpose(1, 2, 0, 3), q, out=dk)  # dk_j = sum_i ds_ij q_i / sqrt(k) (q holds the scale)
    del ds, do  # done with: dx may take their memory
    dqkv2 = dqkv.reshape(batch * steps, 3 * dim)  # (batch * time, 3 dim)
    dw_in = x.reshape(-1, dim).T @ dqkv2  # (dim, 3 dim)
    dx = (dqkv2 @ layer.w_in.T).reshape(x.shape)  # (batch, time, dim)
    grads = MultiHeadAttention(dw_in, dqkv2.sum(axis=0), dw_out, dy2.sum(axis=0), 0, False)
    return grads, dx


register(MultiHeadAttention, vjp=_vjp, forward=_forward)


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
    causal = flag(causal, "attention: causal", "causal=False to let every position attend to the whole sequence")
    dtype = float_dtype(dtype)
    g = fr.generator(key)
    a = np.sqrt(6.0 / (dim + 3 * dim))  # Xavier uniform over in_proj_weight (3 dim, dim)
    w_in = g.uniform(-a, a, (dim, 3 * dim)).astype(dtype)
    w_out = g.uniform(-1 / np.sqrt(dim), 1 / np.sqrt(dim), (dim, dim)).astype(dtype)
    zeros = np.zeros(3 * dim, dtype)
    return freeze(MultiHeadAttention(w_in, zeros, w_out, zeros[:dim].copy(), heads, bool(causal)))
