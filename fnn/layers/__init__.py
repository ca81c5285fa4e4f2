"""Layers: the contract and registry (:mod:`fnn.layers.core`), then one module per family.

- :mod:`fnn.layers.core`: the contract (``register``, ``rule``, ``registered``, ``apply``, ``vjp``,
  ``Context``, ``training_key``, ``trace``, ``Trace``, ``backward``, ``is_param``, ``zero_grad``,
  ``elementwise``);
- :mod:`fnn.layers.linear`: ``Dense`` and its builder ``dense``;
- :mod:`fnn.layers.initializers`: ``INITS``, the dense initialisers by name;
- :mod:`fnn.layers.activations`: ``Sigmoid``, ``Tanh``, ``ReLU``, ``LeakyReLU``, ``Softmax``,
  ``Identity``, and ``ACTIVATIONS``, the activations by name;
- :mod:`fnn.layers.conv`: ``Conv2D`` and ``conv2d``;
- :mod:`fnn.layers.pooling`: ``MaxPool2D``, ``AvgPool2D``;
- :mod:`fnn.layers.reshape`: ``Flatten``, ``Reshape``;
- :mod:`fnn.layers.dropout`: ``Dropout``;
- :mod:`fnn.layers.normalization`: ``LayerNorm``, ``BatchNorm``, ``layer_norm``, ``batch_norm``;
- :mod:`fnn.layers.augment`: ``RandomFlip``;
- :mod:`fnn.layers.embeddings`: ``Embedding``, ``PositionalEmbedding`` and their builders;
- :mod:`fnn.layers.recurrent`: ``RNN``, ``LSTM``, ``GRU``, ``Last`` and ``rnn``, ``lstm``, ``gru``;
- :mod:`fnn.layers.self_attention`: ``MultiHeadAttention`` and ``attention``;
- :mod:`fnn.layers.residual`: ``Residual``, a block ``x + f(x)``.

This package only re-exports: ``fnn.layers.X`` is each module's ``X``. Networks built from
these layers (``mlp``, ``cnn``, ``dropout_mlp``) are in :mod:`fnn.models`.

>>> import fnn
>>> fnn.layers.Dense is fnn.layers.linear.Dense is fnn.Dense
True
"""

from fnn.layers import (
    activations,
    augment,
    conv,
    core,
    dropout,
    embeddings,
    initializers,
    linear,
    normalization,
    pooling,
    recurrent,
    reshape,
    residual,
    self_attention,
)
from fnn.layers.activations import *  # noqa: F403
from fnn.layers.augment import *  # noqa: F403
from fnn.layers.conv import *  # noqa: F403
from fnn.layers.core import *  # noqa: F403
from fnn.layers.dropout import *  # noqa: F403
from fnn.layers.embeddings import *  # noqa: F403
from fnn.layers.initializers import *  # noqa: F403
from fnn.layers.linear import *  # noqa: F403
from fnn.layers.normalization import *  # noqa: F403
from fnn.layers.pooling import *  # noqa: F403
from fnn.layers.recurrent import *  # noqa: F403
from fnn.layers.reshape import *  # noqa: F403
from fnn.layers.residual import *  # noqa: F403
from fnn.layers.self_attention import *  # noqa: F403

__all__ = [
    *core.__all__,
    *linear.__all__,
    *initializers.__all__,
    *activations.__all__,
    *conv.__all__,
    *pooling.__all__,
    *reshape.__all__,
    *dropout.__all__,
    *normalization.__all__,
    *augment.__all__,
    *embeddings.__all__,
    *recurrent.__all__,
    *self_attention.__all__,
    *residual.__all__,
]
