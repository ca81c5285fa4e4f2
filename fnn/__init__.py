"""fnn: neural networks from scratch in NumPy, written as pure functions.

A network is a tuple of immutable layer records; ``forward``, ``loss``,
``grad`` and ``sgd_step`` are pure functions of it; training is a fold over
epochs. Randomness comes only from explicit seeds and keys.

>>> import fnn, numpy as np
>>> params = fnn.mlp([784, 16, 16, 10], seed=0)
>>> fnn.forward(params, np.zeros((2, 784), np.float32)).shape
(2, 10)
"""

from fnn import data, random, tree
from fnn.checks import check_grad
from fnn.costs import Cost, binary_cross_entropy, cross_entropy, mse
from fnn.init import dense, mlp
from fnn.io import load, save
from fnn.layers import (
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
    # modules
    "data",

    "random",
    "tree",
    # layers
    "Context",
    "Dense",
    "Identity",
    "LeakyReLU",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "register",
    "dense",
    "mlp",
    "check_grad",
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
    # saving and loading
    "save",
    "load",
]
