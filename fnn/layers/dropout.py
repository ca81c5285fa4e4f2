r"""Dropout: zero each input with probability ``rate`` in training, scale the rest by ``1 / (1 - rate)``.

``rate`` is the *drop* probability, as in PyTorch's ``nn.Dropout(p)`` (stax's
``Dropout(rate)`` means the keep probability; fnn does not). In training,
with a mask :math:`m_i \sim \text{Bernoulli}(1 - r)` drawn from the layer's key,

.. math:: y = \frac{m \odot x}{1 - r}, \qquad dx = \frac{m \odot dy}{1 - r},

so :math:`E[y] = x`; at evaluation ``y = x``. The backward rule draws the mask
again from the same key: same key, same mask, no state to carry.

The key comes from :func:`fnn.forward`'s ``key=`` (each layer folds in its index);
:func:`fnn.train` passes a fresh one every step.

>>> import fnn, numpy as np
>>> x = np.ones((2, 4), np.float32)
>>> fnn.forward((Dropout(0.5),), x)                       # evaluation: identity
array([[1., 1., 1., 1.],
       [1., 1., 1., 1.]], dtype=float32)
>>> sorted(set(fnn.forward((Dropout(0.5),), x, train=True, key=0).ravel().tolist()))
[0.0, 2.0]
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fnn import random as fr
from fnn.arguments import number
from fnn.layers.core import Context, register, training_key

__all__ = ["Dropout", "dropout_mask", "check_rate"]


class Dropout(NamedTuple):
    """Drop each input with probability ``rate`` in training; identity at evaluation (module docstring)."""

    rate: float = 0.5


def check_rate(rate: float, name: str = "Dropout's rate (the probability of dropping an input)",
               example: str = "Dropout(0.25)") -> float:
    """A drop probability checked at the boundary: a finite number in ``[0, 1)``, as a float.

    ``name`` and ``example`` word the error for where the rate came from (a config key, say).

    >>> check_rate(0.25)
    0.25
    >>> check_rate(1.0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Dropout's rate (the probability of dropping an input) must be a finite number in [0, 1), ...
    """
    return number(rate, name, example, 0.0, 1.0, open_high=True)


def dropout_mask(key: fr.KeyLike, rate: float, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """The scaled keep-mask ``m / (1 - rate)`` for ``key``: the same key gives the same mask.

    >>> dropout_mask(0, 0.5, (1, 6), np.dtype(np.float32))
    array([[2., 2., 0., 0., 2., 2.]], dtype=float32)
    """
    keep = fr.generator(key).random(shape, dtype=np.float32) >= rate
    return keep.astype(dtype) * np.asarray(1.0 / (1.0 - rate), dtype=dtype)


def _mask(layer: Dropout, x: np.ndarray, ctx: Context) -> np.ndarray | None:
    rate = check_rate(layer.rate)
    if not ctx.train or rate == 0:
        return None
    return dropout_mask(training_key(ctx, "Dropout"), rate, x.shape, x.dtype)


def _apply(layer: Dropout, x: np.ndarray, ctx: Context) -> np.ndarray:
    m = _mask(layer, x, ctx)
    return x if m is None else x * m


def _vjp(layer: Dropout, x: np.ndarray, y: np.ndarray, dy: np.ndarray, ctx: Context) -> tuple[Dropout, np.ndarray]:
    del y
    m = _mask(layer, x, ctx)
    return Dropout(0.0), dy if m is None else dy * m


register(Dropout, _apply, _vjp, context=True)
