r"""Data augmentation as a layer: random horizontal flips of NHWC images in training.

``RandomFlip(p)`` mirrors each image of a training batch left to right with
probability ``p``, choosing the images from the layer's key; at evaluation it is
the identity (as Keras' ``RandomFlip("horizontal")``). A flip is a permutation of
the pixels and its own inverse, so the backward rule flips ``dy`` the same way:

.. math:: y_n = F^{m_n} x_n, \qquad dx_n = F^{m_n} dy_n, \qquad m_n \sim \text{Bernoulli}(p)

with ``F`` the reversal of the width axis. Put it first, in front of the convolutions;
:func:`fnn.train` passes it a fresh key every step, so every epoch sees new flips.

>>> import fnn, numpy as np
>>> x = np.arange(4.0).reshape(1, 1, 4, 1)
>>> fnn.forward((RandomFlip(),), x)[0, 0, :, 0]                      # evaluation: identity
array([0., 1., 2., 3.], dtype=float32)
>>> fnn.forward((RandomFlip(1.0),), x, train=True, key=0)[0, 0, :, 0]
array([3., 2., 1., 0.], dtype=float32)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fnn import random as fr
from fnn.arguments import number
from fnn.layers.core import Context, register, training_key

__all__ = ["RandomFlip"]


class RandomFlip(NamedTuple):
    """Mirror each training image left to right with probability ``p``; identity at evaluation."""

    p: float = 0.5


def _chosen(layer: RandomFlip, x: np.ndarray, ctx: Context) -> np.ndarray | None:
    """Which images of the batch to flip, ``(batch, 1, 1, 1)`` bools; ``None`` when none are."""
    p = number(layer.p, "RandomFlip's p (the probability of flipping an image)", "RandomFlip(0.5)", 0.0, 1.0)
    if x.ndim != 4:
        raise ValueError(f"RandomFlip expects NHWC images (batch, h, w, c), got shape {x.shape}; "
                         "reshape first, e.g. fnn.Reshape((28, 28, 1)).")
    if not ctx.train or p == 0:
        return None
    return (fr.generator(training_key(ctx, "RandomFlip")).random(len(x)) < p).reshape(-1, 1, 1, 1)


def _flip(a: np.ndarray, chosen: np.ndarray | None) -> np.ndarray:
    return a if chosen is None else np.where(chosen, a[:, :, ::-1, :], a)  # (batch, h, w, c)


register(
    RandomFlip,
    lambda layer, x, ctx: _flip(x, _chosen(layer, x, ctx)),
    lambda layer, x, y, dy, ctx: (RandomFlip(0.0), _flip(dy, _chosen(layer, x, ctx))),
    context=True,
)
