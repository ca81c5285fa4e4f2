"""Initialisation schemes for dense layers, by name: the one table :func:`fnn.dense`, ``fnn.mlp`` and the CLI read.

Randomness comes only from the generator passed in (made from a key or seed by
:func:`fnn.random.generator`): the same seed gives bit-identical arrays in any process.

Each scheme is ``init(g, n_in, n_out) -> (w: (n_in, n_out), b: (n_out,))`` in float64 (the
builder casts). For a layer with ``n_in`` inputs and ``n_out`` outputs:

- ``"xavier"``: ``w ~ U(-a, a)``, ``a = sqrt(6 / (n_in + n_out))``, ``b = 0`` (Glorot and Bengio, 2010);
- ``"he"``: ``w ~ N(0, 2 / n_in)``, ``b = 0`` (He et al., 2015), for ReLU networks;
- ``"normal"``: ``w, b ~ N(0, 1)``, the classic from-scratch scheme;
- ``"torch"``: ``w, b ~ U(-1/sqrt(n_in), 1/sqrt(n_in))``, PyTorch's ``nn.Linear`` default.

Adding a scheme is one entry in :data:`INITS`; names, help texts and error messages read the table.

>>> sorted(INITS)
['he', 'normal', 'torch', 'xavier']
>>> w, b = get_init("he")(np.random.default_rng(0), 3, 2)
>>> w.shape, b.shape
((3, 2), (2,))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["INITS", "get_init"]

Init = Callable[[np.random.Generator, int, int], tuple[np.ndarray, np.ndarray]]


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


#: The initialisers by name (module docstring).
INITS: dict[str, Init] = {
    "xavier": _xavier,
    "he": _he,
    "normal": _normal,
    "torch": _torch,
}


def get_init(name: Any) -> Init:
    """The initialiser called ``name`` in :data:`INITS`; a clear error naming the valid ones.

    >>> get_init("xavier") is INITS["xavier"]
    True
    >>> get_init("glorot")
    Traceback (most recent call last):
    ...
    ValueError: unknown init 'glorot'; choose one of: 'xavier', 'he', 'normal', 'torch'.
    """
    if name not in INITS:
        raise ValueError(f"unknown init {name!r}; choose one of: {', '.join(map(repr, INITS))}.")
    return INITS[name]
