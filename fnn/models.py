"""Ready networks, as plain tuples of layer records: the MLP, a small CNN and a regularised MLP.

Each builder only builds params; train the result like any network. Names (``"sigmoid"``,
``"he"``) are resolved here, at the edge, through the tables :data:`fnn.layers.ACTIVATIONS`
and :data:`fnn.layers.INITS`. The Fashion-MNIST runs in the README use these through
``fnn train`` (``--model cnn``, ``--dropout``, ``--weight-decay``); close equivalents in Python:

- CNN, NHWC images ``(batch, 28, 28, 1)``, a fresh key per step for dropout and flips (the
  README's 0.9318 run): ``fnn.train(fnn.cnn(seed, channels=(32, 64), flip=True, dropout=0.25),
  (x, y), epochs=40, batch_size=128, optimizer=fnn.adam(fnn.cosine_decay(1e-3, steps)),
  cost=fnn.cross_entropy)``.
- Regularised MLP (dropout after the hidden layers, decoupled weight decay):
  ``fnn.train(fnn.dropout_mlp([784, 1024, 1024, 10], rate=0.3), (x, y), epochs=30, batch_size=128,
  optimizer=fnn.adamw(fnn.cosine_decay(1e-3, steps), weight_decay=0.01), cost=fnn.cross_entropy)``.

Every layer is an ordinary record, so a model is a starting point: slice it,
splice layers in, or write the tuple out by hand (the README shows one).

>>> import fnn, numpy as np
>>> params = cnn(seed=0)
>>> [type(l).__name__ for l in params][:4]
['Conv2D', 'ReLU', 'MaxPool2D', 'Conv2D']
>>> fnn.forward(params, np.zeros((2, 28, 28, 1), np.float32)).shape
(2, 10)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fnn import layers
from fnn import random as fr
from fnn.arguments import describe, flag, integer, positive_int
from fnn.layers import (
    Dropout,
    Flatten,
    MaxPool2D,
    RandomFlip,
    check_rate,
    conv2d,
    dense,
    get_activation,
)
from fnn.layers import batch_norm as _batch_norm

__all__ = ["mlp", "cnn", "dropout_mlp"]


def mlp(
    sizes: Sequence[int],
    activation: Any = "sigmoid",
    output_activation: Any = None,
    *,
    seed: fr.KeyLike = 0,
    init: str = "xavier",
    dtype: Any = np.float32,
) -> tuple[Any, ...]:
    """A multilayer perceptron: ``Dense`` layers of the given sizes with activations between them.

    Args:
      sizes: ``[n_in, hidden..., n_out]``, e.g. ``[784, 16, 16, 10]``.
      activation: a name from :data:`fnn.layers.ACTIVATIONS` or a record: the hidden activation.
      output_activation: name or record after the last layer; ``None`` means the same as
        ``activation`` (the classic all-sigmoid network). Use ``"identity"`` for logits.
      seed: an int seed or key; layer ``i`` uses ``fnn.random.split(seed, n)[i]``.
      init: a name from :data:`fnn.layers.INITS`, for every ``Dense`` layer.
      dtype: the parameters' float dtype.

    Returns:
      The tuple of layer records ``(Dense, act, Dense, act, ..., Dense, out_act)``.

    >>> [type(l).__name__ for l in mlp([784, 16, 16, 10])]
    ['Dense', 'Sigmoid', 'Dense', 'Sigmoid', 'Dense', 'Sigmoid']
    """
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output size, got {sizes}; e.g. [784, 16, 10].")
    hidden = get_activation(activation)
    out = hidden if output_activation is None else get_activation(output_activation)
    keys = fr.split(seed, len(sizes) - 1)
    net: list[Any] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        net += [dense(keys[i], n_in, n_out, init=init, dtype=dtype), hidden if i < len(sizes) - 2 else out]
    return tuple(net)


def _image_shape(shape: Any) -> tuple[int, int, int]:
    """``cnn``'s ``input_shape``, checked: ``(height, width, channels)``, three positive ints."""
    if not (isinstance(shape, (tuple, list)) and len(shape) == 3):
        raise TypeError(f"input_shape must be (height, width, channels) of one image, got {describe(shape)}; "
                        "pass e.g. input_shape=(28, 28, 1) for grey 28x28 images.")
    h, w, c = (positive_int(v, f"input_shape's {n}", "input_shape=(28, 28, 1)")
               for v, n in zip(shape, ("height", "width", "channels")))
    return h, w, c


def cnn(
    seed: fr.KeyLike = 0,
    *,
    input_shape: tuple[int, int, int] = (28, 28, 1),
    n_classes: int = 10,
    channels: Sequence[int] = (32, 64),
    kernel: int = 3,
    hidden: int = 128,
    dropout: float = 0.25,
    hidden_dropout: float = 0.5,
    batch_norm: bool = False,
    flip: bool = False,
    dtype: Any = np.float32,
) -> tuple[Any, ...]:
    """A small CNN: conv blocks ``Conv2D(same) [-> BatchNorm] -> ReLU -> MaxPool2D(2)``, then a dense head.

    The head is ``Flatten -> Dropout(dropout) -> Dense(hidden) -> ReLU -> Dropout(hidden_dropout)
    -> Dense(n_classes)`` (logits: use :data:`fnn.cross_entropy`); ``hidden=0`` drops the hidden
    layer, a rate of 0 drops that Dropout.

    Args:
      seed: an int seed or key; layer ``i`` draws from ``fnn.random.split(seed, n)[i]``.
      input_shape: ``(h, w, c)`` of one image.
      n_classes: the number of outputs.
      channels: output channels of each conv block; each block halves ``h`` and ``w``.
      kernel: the conv kernel size.
      hidden: units of the dense hidden layer (0 for none).
      dropout, hidden_dropout: drop probabilities before and after the hidden layer.
      batch_norm: put a :class:`fnn.BatchNorm` after each convolution.
      flip: start with :class:`fnn.RandomFlip` (random horizontal flips in training: augmentation).
      dtype: the parameters' float dtype.

    >>> [type(l).__name__ for l in cnn(channels=(8,), hidden=0, dropout=0.0)]
    ['Conv2D', 'ReLU', 'MaxPool2D', 'Flatten', 'Dense']
    """
    h, w, c = _image_shape(input_shape)
    channels = [positive_int(ch, "channels") for ch in channels]
    hidden = integer(hidden, "hidden", "cnn(hidden=128), or hidden=0 for no hidden layer", low=0)
    batch_norm, flip = flag(batch_norm, "batch_norm", "cnn(batch_norm=True)"), flag(flip, "flip", "cnn(flip=True)")
    dropout = check_rate(dropout, "dropout", "cnn(dropout=0.25)")
    hidden_dropout = check_rate(hidden_dropout, "hidden_dropout", "cnn(hidden_dropout=0.5)")
    keys = fr.split(seed, len(channels) + 2)
    net: list[Any] = [RandomFlip()] if flip else []
    for i, c_out in enumerate(channels):
        net.append(conv2d(keys[i], c, c_out, kernel, dtype=dtype))
        if batch_norm:
            net.append(_batch_norm(c_out, dtype=dtype))
        net += [layers.ReLU(), MaxPool2D(2)]
        c, h, w = c_out, h // 2, w // 2
        if h < 1 or w < 1:
            raise ValueError(
                f"input_shape {input_shape} is too small for {len(channels)} pooling blocks; "
                "use fewer entries in channels."
            )
    net.append(Flatten())
    if dropout > 0:
        net.append(Dropout(dropout))
    n_in = h * w * c
    if hidden:
        net += [dense(keys[-2], n_in, hidden, init="he", dtype=dtype), layers.ReLU()]
        if hidden_dropout > 0:
            net.append(Dropout(hidden_dropout))
        n_in = hidden
    net.append(dense(keys[-1], n_in, positive_int(n_classes, "n_classes"), dtype=dtype))
    return tuple(net)


def dropout_mlp(
    sizes: Sequence[int],
    rate: float = 0.2,
    *,
    input_rate: float = 0.0,
    seed: fr.KeyLike = 0,
    dtype: Any = np.float32,
) -> tuple[Any, ...]:
    """A ReLU MLP with ``Dropout(rate)`` after every hidden layer and logits out.

    ``Dense -> ReLU -> Dropout -> ... -> Dense``, He-initialised; ``input_rate > 0`` also drops
    inputs. Pair it with weight decay: ``optimizer=fnn.adamw(1e-3, weight_decay=1e-4)``.

    >>> [type(l).__name__ for l in dropout_mlp([784, 256, 10], rate=0.2)]
    ['Dense', 'ReLU', 'Dropout', 'Dense']
    """
    sizes = [positive_int(n, "sizes") for n in sizes]
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output size, got {sizes}; e.g. [784, 512, 10].")
    rate = check_rate(rate, "rate", "dropout_mlp(sizes, rate=0.2)")
    input_rate = check_rate(input_rate, "input_rate", "dropout_mlp(sizes, input_rate=0.1)")
    keys = fr.split(seed, len(sizes) - 1)
    net: list[Any] = [Dropout(input_rate)] if input_rate > 0 else []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        net.append(dense(keys[i], n_in, n_out, init="xavier" if last else "he", dtype=dtype))
        if not last:
            net.append(layers.ReLU())
            if rate > 0:
                net.append(Dropout(rate))
    return tuple(net)
