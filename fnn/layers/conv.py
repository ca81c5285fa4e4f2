r"""2-D convolution on batch-first NHWC images, computed as one GEMM over image patches.

Layout (the JAX/TensorFlow one): images ``x: (batch, h, w, c_in)``, weights
``w: (kh, kw, c_in, c_out)`` (HWIO), bias ``b: (c_out,)``. With stride ``s``
and the input zero-padded by ``padding = ((top, bottom), (left, right))``:

.. math:: y_{n,i,j,o} = b_o + \sum_{p,q,c} x_{n,\,s i + p,\,s j + q,\,c}\; w_{p,q,c,o}

Forward (im2col): copy the ``kh * kw`` shifted, strided views of the padded
input side by side into ``cols: (batch * oh * ow, kh * kw * c_in)`` -- one
strided copy per kernel offset, never a loop over pixels -- and multiply once
by ``w`` reshaped to ``(kh * kw * c_in, c_out)``.

Backward, for ``dy: (batch, oh, ow, c_out)`` flattened to ``(batch * oh * ow, c_out)``:

.. math:: dw = \mathrm{cols}^T dy, \quad db = \textstyle\sum_{n,i,j} dy, \quad
          d\mathrm{cols}_{p,q} = dy\, w_{p,q}^T

and ``dx`` is col2im, one kernel offset at a time: each offset's block
``dcols_{p,q}: (batch * oh * ow, c_in)`` comes out of its own GEMM, contiguous, and is
added back into the input at that offset with the layer's stride (parts that fall on the
padding are dropped). Both passes are GEMM-shaped. A network's first convolution
registers ``param_vjp`` too, so it skips ``dx`` altogether.

The padded input, the patch matrix and the ``dcols`` block are work arrays that never leave these
functions; they are kept per thread and reused from one batch to the next (tens of
megabytes per step would otherwise be allocated, faulted in and freed each time).

>>> import fnn, numpy as np
>>> layer = conv2d(0, 1, 4, 3)
>>> fnn.forward((layer,), np.zeros((2, 28, 28, 1), np.float32)).shape
(2, 28, 28, 4)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, NamedTuple

import numpy as np

from fnn import random as fr
from fnn.arguments import describe, float_dtype, positive_int
from fnn.layers.core import register
from fnn.tree import freeze

__all__ = ["Conv2D", "conv2d", "resolve_padding"]

Padding = tuple[tuple[int, int], tuple[int, int]]


class Conv2D(NamedTuple):
    """A 2-D convolution (cross-correlation, as in every deep-learning library); see the module docstring.

    Fields: ``w: (kh, kw, c_in, c_out)``, ``b: (c_out,)``, ``stride: int``,
    ``padding: ((top, bottom), (left, right))`` in pixels. Build it with :func:`conv2d`.
    """

    w: np.ndarray
    b: np.ndarray
    stride: int = 1
    padding: Padding = ((0, 0), (0, 0))


def _out_size(n: int, k: int, s: int) -> int:
    return (n - k) // s + 1


_WORK = threading.local()
_WORK_KEPT = 8  # work arrays kept per thread: a padded input and a patch matrix per conv layer shape
_WORK_MAX_BYTES = 64 * 2**20  # larger ones (an evaluation of a whole test set at once) are not kept


def _work(tag: tuple[Any, ...], shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A work array for ``tag`` and ``shape``, the same one on every call from this thread.

    It is all zeros when first made and holds whatever the last caller left after that, so
    callers write what they read (a padded buffer only ever has its interior written, so its
    border stays zero) and never return the array or a view of it.
    """
    kept: OrderedDict | None = getattr(_WORK, "arrays", None)
    if kept is None:
        kept = _WORK.arrays = OrderedDict()
    k = (tag, shape, dtype.str)
    a = kept.pop(k, None)
    if a is None:
        a = np.zeros(shape, dtype)
        if a.nbytes > _WORK_MAX_BYTES:
            return a
        while len(kept) >= _WORK_KEPT:
            kept.popitem(last=False)
    kept[k] = a  # most recently used last
    return a


def _pad(x: np.ndarray, padding: Padding) -> np.ndarray:
    """``x`` zero-padded, in a work array (``x`` itself when there is no padding)."""
    (t, bo), (le, r) = padding
    if t == bo == le == r == 0:
        return x
    n, h, w, c = x.shape
    xp = _work(("pad", padding), (n, h + t + bo, w + le + r, c), x.dtype)  # (batch, hp, wp, c_in)
    xp[:, t : t + h, le : le + w, :] = x
    return xp


def _im2col(xp: np.ndarray, kh: int, kw: int, s: int) -> np.ndarray:
    """``(batch, oh, ow, kh, kw, c)`` patches of the padded input, one strided copy per kernel offset,
    in a work array."""
    n, hp, wp, c = xp.shape
    oh, ow = _out_size(hp, kh, s), _out_size(wp, kw, s)
    cols = _work(("cols",), (n, oh, ow, kh, kw, c), xp.dtype)  # (batch, oh, ow, kh, kw, c_in)
    for p in range(kh):
        for q in range(kw):
            cols[:, :, :, p, q, :] = xp[:, p : p + s * (oh - 1) + 1 : s, q : q + s * (ow - 1) + 1 : s, :]
    return cols


def _check_input(layer: Conv2D, x: np.ndarray) -> None:
    kh, kw, c_in, _ = layer.w.shape
    (t, bo), (le, r) = layer.padding
    if x.ndim != 4 or x.shape[3] != c_in:
        raise ValueError(
            f"Conv2D with w of shape {layer.w.shape} expects NHWC images (batch, h, w, {c_in}), got shape {x.shape}; "
            f"reshape the input, e.g. x.reshape(-1, 28, 28, {c_in})."
        )
    if x.shape[1] + t + bo < kh or x.shape[2] + le + r < kw:
        raise ValueError(
            f"Conv2D: a {kh}x{kw} kernel does not fit images of size {x.shape[1]}x{x.shape[2]} "
            f"with padding {layer.padding}; use padding='same' or a smaller kernel."
        )


def _conv_apply(layer: Conv2D, x: np.ndarray) -> np.ndarray:
    _check_input(layer, x)
    kh, kw, c_in, c_out = layer.w.shape
    cols = _im2col(_pad(x, layer.padding), kh, kw, layer.stride)  # (batch, oh, ow, kh, kw, c_in)
    n, oh, ow = cols.shape[:3]
    y = cols.reshape(n * oh * ow, kh * kw * c_in) @ layer.w.reshape(kh * kw * c_in, c_out)  # (batch*oh*ow, c_out)
    y += layer.b
    return y.reshape(n, oh, ow, c_out)  # (batch, oh, ow, c_out)


def _patches_and_dy(layer: Conv2D, x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The patch matrix ``(batch*oh*ow, kh*kw*c_in)`` (a work array) and ``dy`` as ``(batch*oh*ow, c_out)``."""
    kh, kw, c_in, c_out = layer.w.shape
    cols = _im2col(_pad(x, layer.padding), kh, kw, layer.stride)  # (batch, oh, ow, kh, kw, c_in)
    rows = cols.shape[0] * cols.shape[1] * cols.shape[2]
    return cols.reshape(rows, kh * kw * c_in), dy.reshape(rows, c_out)  # (rows, kh*kw*c_in), (rows, c_out)


def _param_grads(layer: Conv2D, cols: np.ndarray, dy2: np.ndarray) -> Conv2D:
    dw = cols.T @ dy2  # (kh*kw*c_in, c_out)
    db = np.ones(len(dy2), dy2.dtype) @ dy2  # (c_out,): the column sums as one product (faster than sum(axis=0))
    return Conv2D(dw.reshape(layer.w.shape), db, 0, ((0, 0), (0, 0)))


def _conv_param_vjp(layer: Conv2D, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> Conv2D:
    del y
    cols, dy2 = _patches_and_dy(layer, x, dy)
    return _param_grads(layer, cols, dy2)


def _conv_vjp(layer: Conv2D, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> tuple[Conv2D, np.ndarray]:
    del y
    cols, dy2 = _patches_and_dy(layer, x, dy)
    return _param_grads(layer, cols, dy2), _input_grad(layer, dy2, dy.shape, x.shape)


def _inside(offset: int, pad: int, size: int, stride: int, n_out: int) -> tuple[int, int, int]:
    """For one kernel offset: the outputs ``i0 <= i < i1`` whose input pixel ``stride * i + offset - pad``
    lies inside the unpadded image, and the first such pixel."""
    i0 = max(0, -(-(pad - offset) // stride))
    i1 = min(n_out, (size - 1 + pad - offset) // stride + 1)
    return i0, i1, stride * i0 + offset - pad


def _input_grad(layer: Conv2D, dy2: np.ndarray, dy_shape: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """``dx`` of ``shape``: each kernel offset's ``dcols`` block added back at its offset (module docstring).

    Writes straight into the unpadded image (parts that fall on the padding are cut off), so ``dx``
    comes out contiguous, with no padded buffer to crop.
    """
    kh, kw, c_in, _ = layer.w.shape
    n, oh, ow, _ = dy_shape
    s, ((t, _), (le, _)) = layer.stride, layer.padding
    dx = np.zeros(shape, dtype=dy2.dtype)  # (batch, h, w, c_in)
    block = _work(("dcols",), (n * oh * ow, c_in), dy2.dtype)  # (batch*oh*ow, c_in)
    block4 = block.reshape(n, oh, ow, c_in)  # (batch, oh, ow, c_in)
    for p in range(kh):
        i0, i1, r0 = _inside(p, t, shape[1], s, oh)
        for q in range(kw):
            j0, j1, c0 = _inside(q, le, shape[2], s, ow)
            if i0 < i1 and j0 < j1:
                np.matmul(dy2, layer.w[p, q].T, out=block)  # (batch*oh*ow, c_in): dcols at offset (p, q)
                rows = slice(r0, r0 + s * (i1 - i0 - 1) + 1, s)
                cols = slice(c0, c0 + s * (j1 - j0 - 1) + 1, s)
                dx[:, rows, cols, :] += block4[:, i0:i1, j0:j1, :]
    return dx


register(Conv2D, _conv_apply, _conv_vjp, param_vjp=_conv_param_vjp)


def _pair(value: Any, name: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    ):
        return int(value[0]), int(value[1])
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}; pass e.g. {name}=3 or {name}=(3, 3).")


def _size(size: Any) -> tuple[int, int]:
    """The input ``(h, w)``, checked: a pair of positive ints."""
    if not (isinstance(size, (tuple, list)) and len(size) == 2):
        raise TypeError(f"size must be the input (h, w), a pair of positive ints, got {describe(size)}; "
                        "pass e.g. size=(28, 28).")
    return positive_int(size[0], "size's h", "size=(28, 28)"), positive_int(size[1], "size's w", "size=(28, 28)")


def resolve_padding(
    padding: Any, kernel: tuple[int, int], stride: int = 1, size: tuple[int, int] | None = None
) -> Padding:
    """``"same"``, ``"valid"``, an int or a pair of ints, as ``((top, bottom), (left, right))`` pixels.

    ``"same"`` gives an output of ``ceil(size / stride)`` pixels; with stride 1 it needs no ``size``
    and pads ``k - 1`` in total, the extra pixel of an even kernel at the bottom/right (as TensorFlow).

    >>> resolve_padding("same", (3, 3)), resolve_padding("valid", (3, 3)), resolve_padding(2, (5, 5))
    (((1, 1), (1, 1)), ((0, 0), (0, 0)), ((2, 2), (2, 2)))
    """
    size = None if size is None else _size(size)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "same":
            if stride == 1:
                th, tw = kernel[0] - 1, kernel[1] - 1
            elif size is None:
                raise ValueError(
                    "padding='same' with stride > 1 depends on the image size; pass size=(h, w) or ints."
                )
            else:
                th, tw = (max((-(-n // stride) - 1) * stride + k - n, 0) for n, k in zip(size, kernel))
            return ((th // 2, th - th // 2), (tw // 2, tw - tw // 2))
        raise ValueError(f"padding must be 'same', 'valid', an int or a pair of ints, got {padding!r}.")
    ph, pw = _pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be non-negative, got {padding!r}.")
    return ((ph, ph), (pw, pw))


def conv2d(
    key: fr.KeyLike,
    c_in: int,
    c_out: int,
    kernel: int | tuple[int, int],
    stride: int = 1,
    padding: str | int | tuple[int, int] = "same",
    dtype: Any = np.float32,
    *,
    size: tuple[int, int] | None = None,
) -> Conv2D:
    """A :class:`Conv2D` with He-normal weights ``N(0, 2 / (kh * kw * c_in))`` and zero bias, drawn from ``key``.

    Args:
      key: an int seed or a key from :mod:`fnn.random`.
      c_in, c_out: input and output channels.
      kernel: ``k`` or ``(kh, kw)``.
      stride: the step between patches, the same along both axes.
      padding: ``"same"`` (output size ``ceil(size / stride)``), ``"valid"`` (no padding), or pixels
        per side as an int or ``(ph, pw)``. Resolved here to ints.
      dtype: ``np.float32`` (default) or ``np.float64``.
      size: the input ``(h, w)``; needed only for ``padding="same"`` with ``stride > 1``.

    >>> layer = conv2d(0, 3, 8, 5, padding="valid")
    >>> layer.w.shape, layer.b.shape, layer.padding
    ((5, 5, 3, 8), (8,), ((0, 0), (0, 0)))
    """

    c_in, c_out = positive_int(c_in, "c_in"), positive_int(c_out, "c_out")
    kh, kw = _pair(kernel, "kernel")
    if kh < 1 or kw < 1:
        raise ValueError(f"kernel sizes must be positive, got {kernel!r}.")
    stride = positive_int(stride, "stride")
    dtype = float_dtype(dtype)
    pads = resolve_padding(padding, (kh, kw), stride, size)
    fan_in = kh * kw * c_in
    w = fr.generator(key).normal(0.0, np.sqrt(2.0 / fan_in), (kh, kw, c_in, c_out))
    return freeze(Conv2D(w.astype(dtype), np.zeros(c_out, dtype), stride, pads))


