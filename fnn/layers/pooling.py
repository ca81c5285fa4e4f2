r"""Max and average pooling over windows of NHWC images, as ``window**2`` strided slices.

For ``x: (batch, h, w, c)``, a ``k x k`` window and stride ``s`` (default ``k``), the
output is ``(batch, oh, ow, c)`` with ``oh = (h - k) // s + 1`` (rows that do not fill a
window are dropped, as PyTorch does by default). Each kernel offset ``(p, q)`` sees the
strided view ``x[:, p::s, q::s, :]`` of the input, so both passes are ``k * k`` whole-array
operations, never loops over pixels:

- max:  :math:`y = \max_{p,q} x_{s i + p,\, s j + q}`; the gradient ``dy`` goes to the
  first maximum of each window in row-major order (as PyTorch), other entries get zero.
- average: :math:`y = \frac{1}{k^2} \sum_{p,q} x_{s i + p,\, s j + q}`; every entry of
  a window gets ``dy / k^2``.

Overlapping windows (``s < k``) add their contributions. When windows tile the image
(``s == k``, the usual case) the backward pass works on the input viewed as
``(batch, oh, k, ow, k, c)`` and broadcasts ``dy`` over each window in one product.

>>> import fnn, numpy as np
>>> x = np.arange(16.0).reshape(1, 4, 4, 1)
>>> fnn.forward((MaxPool2D(2),), x)[0, :, :, 0]
array([[ 5.,  7.],
       [13., 15.]], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from fnn.layers.core import register, zero_grad

__all__ = ["MaxPool2D", "AvgPool2D"]


class MaxPool2D(NamedTuple):
    """Max over ``window x window`` patches taken every ``stride`` pixels (``None``: ``stride = window``)."""

    window: int = 2
    stride: int | None = None


class AvgPool2D(NamedTuple):
    """Mean over ``window x window`` patches taken every ``stride`` pixels (``None``: ``stride = window``)."""

    window: int = 2
    stride: int | None = None


def _positive_int(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and bool(v >= 1)


def _geometry(layer: MaxPool2D | AvgPool2D, x: np.ndarray) -> tuple[int, int, int, int]:
    k = layer.window
    s = k if layer.stride is None else layer.stride
    if not (_positive_int(k) and _positive_int(s)):
        name = type(layer).__name__
        raise ValueError(f"{name} needs a positive int window and stride, got {layer!r}; e.g. {name}(2).")
    if x.ndim != 4 or x.shape[1] < k or x.shape[2] < k:
        raise ValueError(
            f"{type(layer).__name__}({k}) expects NHWC images (batch, h, w, c) of at least {k}x{k} pixels, "
            f"got shape {x.shape}; reshape the input or use a smaller window."
        )
    return k, s, (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1


def _views(x: np.ndarray, k: int, s: int, oh: int, ow: int) -> Iterator[tuple[slice, slice]]:
    """The index of the strided view ``x[:, p::s, q::s]`` (cut to ``(oh, ow)``) for each kernel offset."""
    del x
    for p in range(k):
        for q in range(k):
            yield slice(p, p + s * (oh - 1) + 1, s), slice(q, q + s * (ow - 1) + 1, s)


def _max_apply(layer: MaxPool2D, x: np.ndarray) -> np.ndarray:
    k, s, oh, ow = _geometry(layer, x)
    views = _views(x, k, s, oh, ow)
    rows, cols = next(views)
    y = x[:, rows, cols, :].copy()  # (batch, oh, ow, c)
    for rows, cols in views:
        np.maximum(y, x[:, rows, cols, :], out=y)
    return y


def _windows(x: np.ndarray, k: int, oh: int, ow: int) -> np.ndarray:
    """``x`` cut to whole windows and viewed as ``(batch, oh, k, ow, k, c)`` (for ``stride == window``)."""
    n, _, _, c = x.shape
    return x[:, : oh * k, : ow * k, :].reshape(n, oh, k, ow, k, c)  # (batch, oh, k, ow, k, c)


def _uncut(dxr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A window-shaped gradient ``(batch, oh, k, ow, k, c)`` as ``shape``, zero on rows/columns no window covers."""
    n, oh, k, ow, _, c = dxr.shape
    dx = dxr.reshape(n, oh * k, ow * k, c)  # (batch, oh*k, ow*k, c)
    if dx.shape == shape:
        return dx
    full = np.zeros(shape, dtype=dx.dtype)  # (batch, h, w, c)
    full[:, : oh * k, : ow * k, :] = dx
    return full


def _first_max(hit: np.ndarray) -> None:
    """Keep only the first ``True`` of each window of ``hit: (batch, oh, k, ow, k, c)`` (row-major), in place."""
    k = hit.shape[2]
    taken = np.zeros(hit[:, :, 0, :, 0, :].shape, dtype=bool)  # (batch, oh, ow, c)
    for p in range(k):
        for q in range(k):
            m = hit[:, :, p, :, q, :]
            np.greater(m, taken, out=m)  # hit and not taken
            taken |= m


def _max_vjp(layer: MaxPool2D, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> tuple[MaxPool2D, np.ndarray]:
    k, s, oh, ow = _geometry(layer, x)
    if s == k:
        hit = _windows(x, k, oh, ow) == y[:, :, None, :, None, :]  # (batch, oh, k, ow, k, c)
        if np.count_nonzero(hit) != y.size:  # ties (e.g. windows of ReLU zeros): the first maximum only
            _first_max(hit)
        return zero_grad(layer), _uncut(np.multiply(hit, dy[:, :, None, :, None, :]), x.shape)
    dx = np.zeros_like(x)  # (batch, h, w, c)
    taken = np.zeros(y.shape, dtype=bool)  # (batch, oh, ow, c): the window's max already found
    hit = np.empty(y.shape, dtype=bool)
    for rows, cols in _views(x, k, s, oh, ow):
        np.equal(x[:, rows, cols, :], y, out=hit)
        np.greater(hit, taken, out=hit)  # hit and not taken: only the first maximum
        taken |= hit
        dx[:, rows, cols, :] += np.where(hit, dy, 0)
    return zero_grad(layer), dx


def _avg_apply(layer: AvgPool2D, x: np.ndarray) -> np.ndarray:
    k, s, oh, ow = _geometry(layer, x)
    y = np.zeros((x.shape[0], oh, ow, x.shape[3]), dtype=x.dtype)  # (batch, oh, ow, c)
    for rows, cols in _views(x, k, s, oh, ow):
        y += x[:, rows, cols, :]
    y *= np.asarray(1.0 / (k * k), dtype=x.dtype)
    return y


def _avg_vjp(layer: AvgPool2D, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> tuple[AvgPool2D, np.ndarray]:
    del y
    k, s, oh, ow = _geometry(layer, x)
    share = dy * np.asarray(1.0 / (k * k), dtype=dy.dtype)  # (batch, oh, ow, c)
    if s == k:
        n, _, _, c = share.shape
        dxr = np.broadcast_to(share[:, :, None, :, None, :], (n, oh, k, ow, k, c))  # (batch, oh, k, ow, k, c)
        return zero_grad(layer), _uncut(np.ascontiguousarray(dxr), x.shape)
    dx = np.zeros_like(x)  # (batch, h, w, c)
    for rows, cols in _views(x, k, s, oh, ow):
        dx[:, rows, cols, :] += share
    return zero_grad(layer), dx


register(MaxPool2D, _max_apply, _max_vjp)
register(AvgPool2D, _avg_apply, _avg_vjp)
