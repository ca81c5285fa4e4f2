"""fnn: neural networks from scratch in NumPy, written as pure functions.

A network is a tuple of immutable layer records; ``forward``, ``loss``,
``grad`` and ``sgd_step`` are pure functions of it; training is a fold over
epochs. Randomness comes only from explicit seeds and keys.

>>> import fnn, numpy as np
>>> params = fnn.mlp([784, 16, 16, 10], seed=0)
>>> fnn.forward(params, np.zeros((2, 784), np.float32)).shape
(2, 10)
"""

from fnn import data, datasets, io, optim, parallel, random, schedules, tree
from fnn.attention import MultiHeadAttention, attention
from fnn.augment import RandomFlip
from fnn.checks import check_grad
from fnn.conv import Conv2D, conv2d
from fnn.costs import Cost, binary_cross_entropy, cross_entropy, mse
from fnn.dropout import Dropout
from fnn.embedding import Embedding, PositionalEmbedding, embedding, positional_embedding
from fnn.init import dense, mlp
from fnn.io import load, save
from fnn.layers import (
    GELU,
    Context,
    Dense,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    register,
)
from fnn.network import (
    accuracy,
    apply_updates,
    forward,
    grad,
    loss,
    predict,
    sgd_step,
    value_and_grad,
)
from fnn.normalization import BatchNorm, LayerNorm, batch_norm, layer_norm
from fnn.optim import (
    GradientTransformation,
    adam,
    adamw,
    add_decayed_weights,
    add_l2_penalty,
    chain,
    clip_by_global_norm,
    clip_by_value,
    learning_rate,
    momentum,
    optimizer_from_name,
    rmsprop,
    scale,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_schedule,
    sgd,
    trace,
)
from fnn.pooling import AvgPool2D, MaxPool2D
from fnn.presets import cnn, dropout_mlp
from fnn.recurrent import GRU, LSTM, RNN, Last, gru, lstm, rnn
from fnn.reshape import Flatten, Reshape
from fnn.residual import Residual
from fnn.schedules import (
    constant,
    cosine_decay,
    exponential_decay,
    join,
    linear_warmup,
    step_decay,
    warmup_cosine_decay,
)
from fnn.training import (
    DivergenceError,
    EpochStats,
    Settings,
    TrainState,
    epoch,
    init_state,
    step,
    train,
    training,
)

__version__ = "0.1.0"

__all__ = [
    # modules: pytrees, keys, data, files, optimizer states, parallel runs
    "tree",
    "random",
    "data",
    "datasets",
    "io",
    "optim",
    "schedules",
    "parallel",
    # layers and building networks
    "register",
    "Context",
    "Dense",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "LeakyReLU",
    "Softmax",
    "Identity",
    "Conv2D",
    "MaxPool2D",
    "AvgPool2D",
    "Flatten",
    "Reshape",
    "Dropout",
    "LayerNorm",
    "BatchNorm",
    "RandomFlip",
    "GELU",
    "Embedding",
    "PositionalEmbedding",
    "RNN",
    "LSTM",
    "GRU",
    "Last",
    "MultiHeadAttention",
    "Residual",
    "dense",
    "mlp",
    "conv2d",
    "layer_norm",
    "batch_norm",
    "cnn",
    "dropout_mlp",
    "embedding",
    "positional_embedding",
    "rnn",
    "lstm",
    "gru",
    "attention",
    # costs
    "Cost",
    "mse",
    "cross_entropy",
    "binary_cross_entropy",
    # functions of a network
    "forward",
    "loss",
    "grad",
    "value_and_grad",
    "sgd_step",
    "apply_updates",
    "predict",
    "accuracy",
    "check_grad",
    # optimizers and schedules (state records live in fnn.optim)
    "GradientTransformation",
    "chain",
    "sgd",
    "momentum",
    "adam",
    "adamw",
    "rmsprop",
    "optimizer_from_name",
    "learning_rate",
    "scale",
    "scale_by_schedule",
    "scale_by_learning_rate",
    "trace",
    "scale_by_adam",
    "scale_by_rms",
    "add_decayed_weights",
    "add_l2_penalty",
    "clip_by_global_norm",
    "clip_by_value",
    "constant",
    "step_decay",
    "exponential_decay",
    "cosine_decay",
    "linear_warmup",
    "warmup_cosine_decay",
    "join",
    # training
    "TrainState",
    "EpochStats",
    "Settings",
    "DivergenceError",
    "init_state",
    "step",
    "epoch",
    "training",
    "train",
    # files
    "save",
    "load",
]
