"""Describing a network: its trainable parameter count and a summary table of its layers.

A parameter is trainable when an optimizer updates it: a floating-point array
field of a layer, less the fields a layer type declares as statistics (BatchNorm's
running ``mean`` and ``var``, moved by its ``update`` rule). Settings (a LeakyReLU
slope, a convolution's stride) are not parameters at all. :func:`fnn.tree.size`,
by contrast, counts every scalar of every leaf.

>>> import fnn
>>> num_params(fnn.mlp([784, 16, 16, 10]))
13002
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from fnn import layers, validate
from fnn import tree as ft
from fnn.network import Params, contexts, trace

__all__ = ["num_params", "LayerSummary", "Summary", "summary"]


def _count(arrays: Sequence[np.ndarray]) -> int:
    return int(sum(a.size for a in arrays))


def num_params(params: Params) -> int:
    """The number of trainable parameters (scalars) of a network.

    >>> import fnn
    >>> num_params((fnn.batch_norm(16), fnn.LeakyReLU(0.1)))  # gamma and beta; not the statistics
    32
    """
    validate.network(params)
    return sum(_count(layers.trainable(layer)) for layer in params)


class LayerSummary(NamedTuple):
    """One row of a :class:`Summary`: the layer's index, type name, output shape per example, trainable count."""

    layer: int
    type: str
    output_shape: tuple[int, ...]
    params: int


class Summary(NamedTuple):
    """A network's layers, one :class:`LayerSummary` each, and its totals; ``str()`` prints a table.

    ``params`` is the trainable total; ``other`` counts the remaining float arrays' scalars
    (running statistics), which no optimizer trains.
    """

    input_shape: tuple[int, ...]
    layers: tuple[LayerSummary, ...]
    params: int
    other: int

    def __str__(self) -> str:
        rows = [("layer", "type", "output shape", "params")]
        rows += [(str(r.layer), r.type, str(r.output_shape), f"{r.params:,}") for r in self.layers]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = ["  ".join(c.rjust(w) if i in (0, 3) else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
                 for row in rows]
        rule = "-" * len(lines[0])
        total = f"trainable params: {self.params:,}" + (f" (and {self.other:,} statistics)" if self.other else "")
        return "\n".join([f"input shape {self.input_shape}", lines[0], rule, *lines[1:], rule, total])


def summary(params: Params, input_shape: int | Sequence[int]) -> Summary:
    """Each layer's type, output shape and trainable parameter count, with the totals.

    The shapes come from one example of zeros pushed through the network in evaluation
    mode: no data set is needed, and a shape that does not fit is named by its layer.

    Args:
      params: the network.
      input_shape: the shape of one example, without the batch axis: ``784`` or ``(784,)``
        for an MLP, ``(28, 28, 1)`` for a convolutional net.

    Returns:
      A :class:`Summary`; ``print`` it for a table.

    >>> import fnn
    >>> print(summary(fnn.mlp([784, 16, 16, 10]), 784))
    input shape (784,)
    layer  type     output shape  params
    ------------------------------------
        0  Dense    (16,)         12,560
        1  Sigmoid  (16,)              0
        2  Dense    (16,)            272
        3  Sigmoid  (16,)              0
        4  Dense    (10,)            170
        5  Sigmoid  (10,)              0
    ------------------------------------
    trainable params: 13,002
    """
    validate.network(params)
    shape = (input_shape,) if isinstance(input_shape, (int, np.integer)) else tuple(input_shape)
    if not shape or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0 for n in shape):
        raise ValueError(
            f"input_shape is the shape of one example, without the batch axis, in positive ints; got "
            f"{input_shape!r}. Pass e.g. 784 for an MLP on MNIST or (28, 28, 1) for a conv net."
        )
    shape = tuple(int(n) for n in shape)
    x = validate.inputs(params, np.zeros((1,) + shape), "an example of input_shape")
    outs = trace(params, x, contexts(params, False, None))[1:]
    rows = tuple(
        LayerSummary(i, type(layer).__name__, out.shape[1:], sum(a.size for a in layers.trainable(layer)))
        for i, (layer, out) in enumerate(zip(params, outs))
    )
    trained = sum(r.params for r in rows)
    floats = sum(leaf.size for layer in params for leaf in ft.leaves(layer) if layers.is_param(leaf))
    return Summary(shape, rows, trained, floats - trained)
