"""Layers that only change the shape of each example: Flatten and Reshape.

Both keep the batch axis and reshape the rest; the backward rule reshapes
``dy`` back to the input's shape (``dx = dy.reshape(x.shape)``).

>>> import fnn, numpy as np
>>> fnn.forward((Flatten(),), np.zeros((2, 7, 7, 64))).shape
(2, 3136)
>>> fnn.forward((Reshape((28, 28, 1)),), np.zeros((2, 784))).shape
(2, 28, 28, 1)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fnn.layers.core import register, zero_grad

__all__ = ["Flatten", "Reshape"]


class Flatten(NamedTuple):
    """``(batch, ...) -> (batch, prod(...))``: images to rows for a dense head."""


class Reshape(NamedTuple):
    """``(batch, ...) -> (batch, *shape)``; ``shape`` may hold one ``-1``, e.g. ``Reshape((28, 28, 1))``."""

    shape: tuple[int, ...]


def _reshape_apply(layer: Reshape, x: np.ndarray) -> np.ndarray:
    try:
        return x.reshape(x.shape[0], *layer.shape)  # (batch, *shape)
    except (ValueError, TypeError):
        raise ValueError(
            f"Reshape{tuple(layer.shape)} cannot take examples of shape {x.shape[1:]} "
            f"({int(np.prod(x.shape[1:]))} values each); give a shape with the same number of values."
        ) from None


register(
    Flatten,
    lambda layer, x: x.reshape(x.shape[0], -1),  # (batch, features)
    lambda layer, x, y, dy: (layer, dy.reshape(x.shape)),
)
register(Reshape, _reshape_apply, lambda layer, x, y, dy: (zero_grad(layer), dy.reshape(x.shape)))
