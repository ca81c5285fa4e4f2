r"""Residual: a block of layers with a skip connection, ``y = x + f(x)``, itself a layer.

``Residual(layers)`` holds a tuple of layer records ``f = (l_1, ..., l_n)`` run in turn; the
block returns its input plus their output, so ``f`` must keep the shape. Backward, with
:math:`(d\,l_j, g)` from the layers' own ``vjp`` rules run in reverse from :math:`g = dy`:

.. math:: dx = dy + g, \qquad d\,Residual = Residual((d\,l_1, \dots, d\,l_n))

The parameters nest (``Residual.layers[j]`` is an ordinary record), so everything that walks
a network as a pytree reaches inside: gradients, optimizers, :func:`fnn.save`/:func:`fnn.load`,
:func:`fnn.check_grad`. A block gets its own key in training and gives layer ``j`` inside it
``fold_in(key, j)``, so dropout inside a block draws fresh masks every step. The block saves
its inner trace (the inner activations and whatever its layers saved) for its backward pass,
which therefore runs only the inner layers' ``vjp`` rules, never their forward pass. Layers
with running statistics (BatchNorm) are refused inside a block: use LayerNorm, as
transformers do.

A pre-norm transformer block is two of them:

>>> import fnn, numpy as np
>>> d = 8
>>> block = (Residual((fnn.layer_norm(d), fnn.attention(0, d, 2))),
...          Residual((fnn.layer_norm(d), fnn.dense(1, d, 4 * d), fnn.GELU(), fnn.dense(2, 4 * d, d))))
>>> fnn.forward(block, np.zeros((2, 5, d), np.float32)).shape
(2, 5, 8)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from fnn import random as fr
from fnn.layers.core import Context, backward, register, rule, trace

__all__ = ["Residual"]


class Residual(NamedTuple):
    """``y = x + f(x)`` for ``f`` the tuple of layer records ``layers`` (module docstring)."""

    layers: tuple[Any, ...]


def _contexts(layer: Residual, ctx: Context) -> tuple[Context, ...]:
    """One context per inner layer: the block's mode, and ``fold_in(key, j)`` for layers that take a key."""
    if not isinstance(layer.layers, tuple) or not layer.layers:
        raise TypeError(
            f"Residual takes a non-empty tuple of layer records, got {type(layer.layers).__name__} "
            f"{layer.layers!r:.80}; e.g. Residual((fnn.layer_norm(64), fnn.attention(key, 64, 4)))."
        )
    rules = [rule(inner) for inner in layer.layers]
    for inner, r in zip(layer.layers, rules):
        if r.update is not None:
            raise TypeError(
                f"Residual cannot hold {type(inner).__name__}: its running statistics would not be updated "
                "inside a block; use fnn.layer_norm instead."
            )
    return tuple(
        Context(ctx.train, fr.fold_in(ctx.key, j) if ctx.key is not None and r.context else None)
        for j, r in enumerate(rules)
    )


def _check_shape(x: np.ndarray, h: np.ndarray) -> None:
    if h.shape != x.shape:
        raise ValueError(
            f"Residual adds its input to its layers' output, so they must keep the shape; "
            f"got {x.shape} in and {h.shape} out. Make the last layer of the block map back to {x.shape[-1]} features."
        )


def _forward(layer: Residual, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, list[np.ndarray]]:
    xs = trace(layer.layers, x, _contexts(layer, ctx))  # saved: the inner trace
    _check_shape(x, xs[-1])
    return x + xs[-1], xs


def _vjp(
    layer: Residual, x: np.ndarray, y: np.ndarray, dy: np.ndarray, ctx: Context, xs: list[np.ndarray]
) -> tuple[Residual, np.ndarray]:
    del y
    grads, g = backward(layer.layers, xs, dy, _contexts(layer, ctx))
    return Residual(grads), dy + g


register(Residual, vjp=_vjp, forward=_forward, context=True)
