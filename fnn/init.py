"""Building networks: initialised dense layers and multilayer perceptrons.

Randomness comes only from the key or seed passed in: the same seed gives
bit-identical arrays in any process. Names (``"sigmoid"``, ``"he"``) are
resolved here, at the edge, into records and functions.

Initialisers, for a layer with ``n_in`` inputs and ``n_out`` outputs:

- ``"xavier"``: ``w ~ U(-a, a)``, ``a = sqrt(6 / (n_in + n_out))``, ``b = 0`` (Glorot and Bengio, 2010);
- ``"he"``: ``w ~ N(0, 2 / n_in)``, ``b = 0`` (He et al., 2015), for ReLU networks;
- ``"normal"``: ``w, b ~ N(0, 1)``, the classic from-scratch scheme;
- ``"torch"``: ``w, b ~ U(-1/sqrt(n_in), 1/sqrt(n_in))``, PyTorch's ``nn.Linear`` default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fnn import layers
from fnn import random as fr
from fnn.tree import freeze

__all__ = ["dense", "mlp", "ACTIVATIONS", "INITS", "get_activation"]

ACTIVATIONS: dict[str, Any] = {
    "sigmoid": layers.Sigmoid(),
    "tanh": layers.Tanh(),
    "relu": layers.ReLU(),
    "leaky_relu": layers.LeakyReLU(),
    "softmax": layers.Softmax(),
    "identity": layers.Identity(),
}


def _xavier(g: np.random.Generator, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.sqrt(6.0 / (n_in + n_out))
    return g.uniform(-a, a, (n_in, n_out)), np.zeros(n_out)


def _he(g: np.random.Generator, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    return g.normal(0.0, np.sqrt(2.0 / n_in), (n_in, n_out)), np.zeros(n_out)


def _normal(g: np.random.Generator, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    return g.standard_normal((n_in, n_out)), g.standard_normal(n_out)


def _torch(g: np.random.Generator, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    a = 1.0 / np.sqrt(n_in)
    return g.uniform(-a, a, (n_in, n_out)), g.uniform(-a, a, n_out)


INITS: dict[str, Callable[[np.random.Generator, int, int], tuple[np.ndarray, np.ndarray]]] = {
    "xavier": _xavier,
    "he": _he,
    "normal": _normal,
    "torch": _torch,
}


def _lookup(table: dict[str, Any], name: Any, what: str) -> Any:
    if name not in table:
        raise ValueError(f"unknown {what} {name!r}; choose one of: {', '.join(map(repr, table))}.")
    return table[name]


def get_activation(name: Any) -> Any:
    """An activation record from its name; a record passes through.

    >>> get_activation("relu")
    ReLU()
    """
    if isinstance(name, tuple) and hasattr(type(name), "_fields"):
        layers.rule(name)
        return name
    return _lookup(ACTIVATIONS, name, "activation")


def dense(
    key: fr.KeyLike, n_in: int, n_out: int, init: str = "xavier", dtype: Any = np.float32
) -> layers.Dense:
    """A :class:`fnn.Dense` layer with ``w: (n_in, n_out)`` and ``b: (n_out,)`` drawn from ``key``.

    Args:
      key: an int seed or a key from :mod:`fnn.random`.
      n_in, n_out: the numbers of inputs and outputs.
      init: ``"xavier"``, ``"he"``, ``"normal"`` or ``"torch"`` (see the module docstring).
      dtype: ``np.float32`` (default) or ``np.float64``.

    >>> layer = dense(0, 784, 16)
    >>> layer.w.shape, layer.b.shape, layer.w.dtype
    ((784, 16), (16,), dtype('float32'))
    """
    from fnn.validate import positive_int

    n_in, n_out = positive_int(n_in, "n_in"), positive_int(n_out, "n_out")
    make = _lookup(INITS, init, "init")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a float type such as np.float32, got {dtype}.")
    w, b = make(fr.generator(key), n_in, n_out)
    return freeze(layers.Dense(w.astype(dtype), b.astype(dtype)))


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
      activation: name or record of the hidden activation.
      output_activation: name or record after the last layer; ``None`` means the same as
        ``activation`` (the classic all-sigmoid network). Use ``"identity"`` for logits.
      seed: an int seed or key; layer ``i`` uses ``fnn.random.split(seed, n)[i]``.
      init: the initialiser name for every ``Dense`` layer.
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
