r"""Normalisation layers: LayerNorm (per example) and BatchNorm (per feature, with running statistics).

Both compute :math:`\hat x = (x - \mu) / \sqrt{\sigma^2 + \epsilon}` and
:math:`y = \gamma \odot \hat x + \beta`; they differ in the axes that
:math:`\mu, \sigma^2` (biased variance) are taken over. With ``m`` the number of
values averaged and :math:`g = \gamma \odot dy`, the backward rule is

.. math:: d\gamma = \textstyle\sum dy \odot \hat x, \quad d\beta = \sum dy, \quad
          dx = \frac{1}{\sqrt{\sigma^2 + \epsilon}} \Big(g - \overline{g} - \hat x\, \overline{g \odot \hat x}\Big)

where the bars are means over the normalised axes (``m`` values).

- :class:`LayerNorm` normalises each example over its last ``gamma.ndim`` axes
  (PyTorch's ``normalized_shape``).
- :class:`BatchNorm` normalises each feature (the last axis: units of a dense layer,
  channels of NHWC images) over all other axes. In training it uses the batch's
  statistics; at evaluation the running ones, which are record fields moved by
  ``update`` after each training step (PyTorch's rule, ``momentum`` the weight of the new batch):

  .. math:: \mu_{run} \leftarrow (1 - m)\mu_{run} + m \mu_B, \quad
            \sigma^2_{run} \leftarrow (1 - m)\sigma^2_{run} + m \tfrac{n}{n - 1}\sigma^2_B

  The running statistics are float arrays but not trained: their gradients are zeros.
  At evaluation ``dx = \gamma\, dy / \sqrt{\sigma^2_{run} + \epsilon}``.

>>> import fnn, numpy as np
>>> x = np.array([[1.0, 3.0], [3.0, 5.0]])
>>> fnn.forward((layer_norm(2, dtype=np.float64),), x).round(3)
array([[-1.,  1.],
       [-1.,  1.]])
>>> fnn.forward((batch_norm(2, dtype=np.float64),), x, train=True).round(3)
array([[-1., -1.],
       [ 1.,  1.]])
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from fnn.arguments import float_dtype, number, positive_int
from fnn.layers.core import Context, register
from fnn.tree import freeze

__all__ = ["LayerNorm", "BatchNorm", "layer_norm", "batch_norm"]


def _normalise(x: np.ndarray, axes: tuple[int, ...], eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(xhat, mean, 1 / sqrt(var + eps))`` over ``axes`` (kept as size-1 dims)."""
    mu = x.mean(axis=axes, keepdims=True)
    xc = x - mu
    inv = 1.0 / np.sqrt((xc * xc).mean(axis=axes, keepdims=True) + np.asarray(eps, x.dtype))
    return xc * inv, mu, inv


def _dx(g: np.ndarray, xhat: np.ndarray, inv: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """The backward rule of the module docstring for ``g = gamma * dy``."""
    return inv * (g - g.mean(axis=axes, keepdims=True) - xhat * (g * xhat).mean(axis=axes, keepdims=True))


def _check_features(name: str, gamma: np.ndarray, x: np.ndarray) -> None:
    if x.shape[x.ndim - gamma.ndim :] != gamma.shape or x.ndim <= gamma.ndim:
        raise ValueError(
            f"{name} with gamma of shape {gamma.shape} expects inputs (batch, ..., "
            f"{', '.join(map(str, gamma.shape))}), "
            f"got shape {x.shape}; build it with the input's trailing size."
        )


# ---------------------------------------------------------------------------
# LayerNorm
# ---------------------------------------------------------------------------


class LayerNorm(NamedTuple):
    """Normalise each example over its last ``gamma.ndim`` axes, then scale and shift (module docstring).

    Fields: ``gamma, beta`` of the normalised shape, ``eps: float``. Build it with :func:`layer_norm`.
    """

    gamma: np.ndarray
    beta: np.ndarray
    eps: float = 1e-5


def _ln_axes(layer: LayerNorm, x: np.ndarray) -> tuple[int, ...]:
    _check_features("LayerNorm", layer.gamma, x)
    return tuple(range(x.ndim - layer.gamma.ndim, x.ndim))


def _ln_forward(layer: LayerNorm, x: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """``y`` and the saved ``(mean, 1 / std)``, both ``(rows, 1)``, for rows of the ``m`` normalised values.

    The backward pass rebuilds ``xhat = (x - mean) / std`` from them in one pass (holding the two
    columns instead of ``xhat`` keeps the step's memory smaller). Row means are matrix-vector
    products with ``1/m`` (BLAS), much faster than NumPy's reductions over a short last axis.
    """
    _ln_axes(layer, x)
    m = layer.gamma.size
    x2 = x.reshape(-1, m)  # (rows, m): the normalised axes flattened
    mean = np.full(m, 1.0 / m, x.dtype)  # (m,): a row mean as a dot product
    mu = (x2 @ mean)[:, None]  # (rows, 1)
    y = x2 - mu  # (rows, m), centred; becomes y
    inv = np.einsum("ij,ij->i", y, y)[:, None]  # (rows, 1): m * variance
    inv *= 1.0 / m
    inv += layer.eps
    np.sqrt(inv, out=inv)
    np.divide(1.0, inv, out=inv)
    y *= inv  # xhat
    y *= layer.gamma.reshape(-1)
    y += layer.beta.reshape(-1)
    return y.reshape(x.shape), (mu, inv)


def _ln_vjp(
    layer: LayerNorm, x: np.ndarray, y: np.ndarray, dy: np.ndarray, saved: tuple[np.ndarray, np.ndarray]
) -> tuple[LayerNorm, np.ndarray]:
    del y
    mu, inv = saved
    m = layer.gamma.size
    xhat = x.reshape(-1, m) - mu  # (rows, m)
    xhat *= inv
    dy2 = dy.reshape(-1, m)  # (rows, m)
    dgamma = np.einsum("ij,ij->j", dy2, xhat).reshape(layer.gamma.shape)
    grads = LayerNorm(dgamma, dy2.sum(axis=0).reshape(layer.gamma.shape), 0.0)
    g = dy2 * layer.gamma.reshape(-1)  # (rows, m)
    gx = np.einsum("ij,ij->i", g, xhat)[:, None]  # (rows, 1): m * mean(g xhat)
    gx *= 1.0 / m
    g -= (g @ np.full(m, 1.0 / m, x.dtype))[:, None]  # g minus its row means
    dx = xhat  # dx in xhat's buffer, made here: (g - mean(g) - xhat mean(g xhat)) / std
    dx *= gx
    np.subtract(g, dx, out=dx)
    dx *= inv
    return grads, dx.reshape(x.shape)


register(LayerNorm, vjp=_ln_vjp, forward=_ln_forward)


def _shape(n: Any) -> tuple[int, ...]:
    shape = (n,) if isinstance(n, (int, np.integer)) else tuple(n) if isinstance(n, (tuple, list)) else ()
    if not shape or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in shape):
        raise ValueError(f"the normalised shape must be a positive int or a tuple of them, got {n!r}; e.g. 128.")
    return tuple(int(s) for s in shape)


def _eps(eps: Any) -> float:
    return number(eps, "eps (a small positive number)", "eps=1e-5", 0.0, open_low=True)


def layer_norm(shape: int | tuple[int, ...], eps: float = 1e-5, dtype: Any = np.float32) -> LayerNorm:
    """A :class:`LayerNorm` over trailing axes of ``shape`` with ``gamma = 1``, ``beta = 0``.

    >>> layer_norm(4).gamma
    array([1., 1., 1., 1.], dtype=float32)
    """
    shape, dtype = _shape(shape), float_dtype(dtype)
    return freeze(LayerNorm(np.ones(shape, dtype), np.zeros(shape, dtype), _eps(eps)))


# ---------------------------------------------------------------------------
# BatchNorm
# ---------------------------------------------------------------------------


class BatchNorm(NamedTuple):
    """Normalise each feature (last axis) over the batch in training, by running statistics at evaluation.

    Fields: ``gamma, beta: (features,)`` (trained), ``mean, var: (features,)`` (running statistics,
    moved by ``update``, zero gradients), ``momentum, eps: float``. Build it with :func:`batch_norm`.
    """

    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    momentum: float = 0.1
    eps: float = 1e-5


def _bn_axes(layer: BatchNorm, x: np.ndarray) -> tuple[int, ...]:
    _check_features("BatchNorm", layer.gamma, x)
    return tuple(range(x.ndim - 1))


def _column_sums(a: np.ndarray) -> np.ndarray:
    """``a.sum(axis=0)`` for ``a: (rows, features)`` as one matrix-vector product (several times faster)."""
    return np.ones(a.shape[0], a.dtype) @ a  # (features,)


def _batch_stats(layer: BatchNorm, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x2 - mean, mean, 1 / sqrt(var + eps))`` with ``x2 = x`` as ``(rows, features)``; the batch statistics."""
    _bn_axes(layer, x)
    x2 = x.reshape(-1, x.shape[-1])  # (rows, features)
    mu = _column_sums(x2) / np.asarray(len(x2), x.dtype)  # (features,)
    xc = x2 - mu  # (rows, features)
    var = _column_sums(xc * xc) / np.asarray(len(x2), x.dtype)  # (features,), biased
    return xc, mu, 1.0 / np.sqrt(var + np.asarray(layer.eps, x.dtype))


def _bn_apply(layer: BatchNorm, x: np.ndarray, ctx: Context) -> np.ndarray:
    _bn_axes(layer, x)
    if ctx.train:
        xc, _, inv = _batch_stats(layer, x)
        xc *= layer.gamma * inv  # (rows, features): gamma * xhat
        xc += layer.beta
        return xc.reshape(x.shape)
    scale = layer.gamma / np.sqrt(layer.var + np.asarray(layer.eps, layer.var.dtype))  # (features,)
    y = x * scale
    y += layer.beta - layer.mean * scale
    return y


def _bn_vjp(
    layer: BatchNorm, x: np.ndarray, y: np.ndarray, dy: np.ndarray, ctx: Context
) -> tuple[BatchNorm, np.ndarray]:
    del y
    _bn_axes(layer, x)
    zeros = np.zeros_like(layer.mean)
    dy2 = dy.reshape(-1, dy.shape[-1])  # (rows, features)
    dbeta = _column_sums(dy2)  # (features,)
    if ctx.train:
        # dx = gamma inv (dy - mean(dy) - xhat mean(dy xhat)), with xhat = xc inv, written as
        # dx = a dy - xc k - a mean(dy), a = gamma inv, k = a inv dgamma / m: four passes over the batch
        xc, _, inv = _batch_stats(layer, x)
        dgamma = _column_sums(dy2 * xc) * inv  # (features,): sum(dy * xhat)
        m = np.asarray(len(dy2), dy.dtype)
        a = layer.gamma * inv  # (features,)
        xc *= a * inv * dgamma / m
        dx = dy2 * a  # (rows, features)
        dx -= xc
        dx -= a * dbeta / m
        return BatchNorm(dgamma, dbeta, zeros, zeros.copy(), 0.0, 0.0), dx.reshape(x.shape)
    inv = 1.0 / np.sqrt(layer.var + np.asarray(layer.eps, layer.var.dtype))  # (features,)
    dgamma = (_column_sums(dy2 * x.reshape(dy2.shape)) - layer.mean * dbeta) * inv  # sum(dy * xhat)
    return BatchNorm(dgamma, dbeta, zeros, zeros.copy(), 0.0, 0.0), dy * (layer.gamma * inv)


def _bn_update(layer: BatchNorm, x: np.ndarray, ctx: Context) -> BatchNorm:
    del ctx
    xc, mu, _ = _batch_stats(layer, x)
    n = len(xc)
    m = np.asarray(layer.momentum, layer.mean.dtype)
    var = _column_sums(xc * xc) / np.asarray(max(n - 1, 1), xc.dtype)  # unbiased, as PyTorch's running var
    mean = (1 - m) * layer.mean + m * mu
    var = (1 - m) * layer.var + m * var
    return freeze(layer._replace(mean=mean.astype(layer.mean.dtype), var=var.astype(layer.var.dtype)))


register(BatchNorm, _bn_apply, _bn_vjp, context=True, update=_bn_update, statistics=("mean", "var"))


def batch_norm(features: int, momentum: float = 0.1, eps: float = 1e-5, dtype: Any = np.float32) -> BatchNorm:
    """A :class:`BatchNorm` over ``features`` with ``gamma = 1``, ``beta = 0``, running mean 0 and variance 1.

    ``momentum`` is the weight of each new batch in the running statistics (PyTorch's convention).

    >>> bn = batch_norm(3)
    >>> bn.mean, bn.var, bn.momentum
    (array([0., 0., 0.], dtype=float32), array([1., 1., 1.], dtype=float32), 0.1)
    """
    n, dtype = positive_int(features, "features (the size of the last axis)", "batch_norm(128)"), float_dtype(dtype)
    momentum = number(momentum, "momentum (the weight of the new batch)", "momentum=0.1", 0.0, 1.0)
    ones, zeros = np.ones(n, dtype), np.zeros(n, dtype)
    return freeze(BatchNorm(ones, zeros, zeros.copy(), ones.copy(), momentum, _eps(eps)))
