r"""Activations: elementwise records with no parameters, and softmax; and the table of them by name.

Each activation is a record (``Sigmoid()``, ``LeakyReLU(slope)``) whose forward rule and
derivative sit side by side; most are lifted from two one-liners by :func:`fnn.layers.elementwise`,
with the backward rule ``dx = dy * dy/dx`` for ``x, y, dy`` of one shape such as ``(batch, n)``.

:data:`ACTIVATIONS` maps names to records; ``fnn.mlp``, config files and the CLI's
``--activation`` read it, and so do their help texts and error messages. Adding an activation
is one edit of this module (record, rule, table entry) plus one example in the contract test
(``tests/test_layers.py``).

>>> sorted(ACTIVATIONS)
['gelu', 'identity', 'leaky_relu', 'relu', 'sigmoid', 'softmax', 'tanh']
>>> from fnn.layers import apply
>>> apply(get_activation("relu"), np.array([[-1.0, 2.0]]))
array([[0., 2.]])
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from fnn.layers.core import elementwise, register, rule

__all__ = [
    "Sigmoid",
    "Tanh",
    "ReLU",
    "LeakyReLU",
    "Softmax",
    "Identity",
    "GELU",
    "sigmoid",
    "softmax",
    "gelu",
    "ACTIVATIONS",
    "get_activation",
]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function ``1 / (1 + exp(-x))``, computed as ``0.5 * (1 + tanh(x / 2))``.

    The tanh form never overflows, so it is exact and warning-free for any finite input.

    >>> sigmoid(np.array([-1e4, 0.0, 1e4]))
    array([0. , 0.5, 1. ])
    """
    half = np.asarray(0.5, dtype=x.dtype)
    y = np.multiply(x, half)
    np.tanh(y, out=y)
    y += 1
    y *= half
    return y


class Sigmoid(NamedTuple):
    """``y = sigmoid(x)``; ``dy/dx = y (1 - y)``.

    >>> from fnn.layers import apply
    >>> apply(Sigmoid(), np.array([[0.0]]))
    array([[0.5]])
    """


class Tanh(NamedTuple):
    """``y = tanh(x)``; ``dy/dx = 1 - y^2``."""


class ReLU(NamedTuple):
    """``y = max(x, 0)``; ``dy/dx = [x > 0]``."""


class LeakyReLU(NamedTuple):
    """``y = x`` where ``x > 0``, else ``slope * x``; ``dy/dx`` is 1 or ``slope``.

    >>> from fnn.layers import apply
    >>> apply(LeakyReLU(0.1), np.array([[-2.0, 3.0]]))
    array([[-0.2,  3. ]])
    """

    slope: float = 0.01


class Identity(NamedTuple):
    """``y = x``: the output layer for logits (use with :func:`fnn.cross_entropy`)."""


def _sigmoid_vjp(layer: Sigmoid, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> tuple[Sigmoid, np.ndarray]:
    del x
    dx = 1 - y  # (batch, n): dy * y (1 - y) with one new array
    dx *= y
    dx *= dy
    return layer, dx


register(Sigmoid, lambda layer, x: sigmoid(x), _sigmoid_vjp, squashes=True)
elementwise(Tanh, np.tanh, lambda x, y: 1 - y * y)
elementwise(ReLU, lambda x: np.maximum(x, 0), lambda x, y: (x > 0).astype(x.dtype))
elementwise(
    LeakyReLU,
    lambda layer, x: np.where(x > 0, x, x * np.asarray(layer.slope, x.dtype)),
    lambda layer, x, y: np.where(x > 0, np.asarray(1, x.dtype), np.asarray(layer.slope, x.dtype)),
)
register(Identity, lambda layer, x: x, lambda layer, x, y, dy: (layer, dy))


class Softmax(NamedTuple):
    r"""``y_i = exp(x_i) / sum_j exp(x_j)`` over the last axis.

    Backward: :math:`dx = y \odot (dy - \textstyle\sum_j dy_j y_j)`.
    For classification prefer ``Identity`` outputs with :func:`fnn.cross_entropy`,
    which works on logits and is exact for extreme values.

    >>> from fnn.layers import apply
    >>> apply(Softmax(), np.array([[0.0, 0.0]]))
    array([[0.5, 0.5]])
    """


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the row maximum so it never overflows.

    >>> softmax(np.array([[0.0, 1e4]]))
    array([[0., 1.]])
    """
    with np.errstate(under="ignore"):  # exp of a very negative shift is exactly 0, as intended
        e = np.exp(x - x.max(axis=-1, keepdims=True))  # (batch, k)
    e /= e.sum(axis=-1, keepdims=True)
    return e


register(
    Softmax,
    lambda layer, x: softmax(x),
    lambda layer, x, y, dy: (layer, y * (dy - (dy * y).sum(axis=-1, keepdims=True))),
    squashes=True,
)


class GELU(NamedTuple):
    r"""The Gaussian error linear unit, tanh form (PyTorch's ``GELU(approximate="tanh")``).

    With :math:`u = \sqrt{2/\pi}\,(x + 0.044715\,x^3)` and :math:`t = \tanh u`:

    .. math:: y = \tfrac12 x (1 + t), \qquad
              \frac{dy}{dx} = \tfrac12 (1 + t) + \tfrac12 x (1 - t^2) \sqrt{2/\pi}\,(1 + 3 \cdot 0.044715\, x^2)

    The forward pass saves :math:`dy/dx` for the backward pass, :math:`dx = dy \odot dy/dx`
    (see :mod:`fnn.layers.core`).

    >>> from fnn.layers import apply
    >>> apply(GELU(), np.array([[-1.0, 0.0, 1.0]])).round(4)
    array([[-0.1588,  0.    ,  0.8412]])
    """


_GELU_C = float(np.sqrt(2.0 / np.pi))


def gelu(x: np.ndarray) -> np.ndarray:
    """``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (see :class:`GELU`).

    >>> gelu(np.array([0.0, 3.0])).round(4)
    array([0.    , 2.9964])
    """
    return _gelu_forward(GELU(), x)[0]


#: ``|x|`` beyond which ``tanh u`` is exactly ``±1`` in float32 and float64 (``u(10) = 43.6``, ``tanh`` rounds
#: to 1 from ``u = 19.1``): clipping ``x`` there changes no value and keeps ``x^3`` from overflowing.
_GELU_SATURATES = 10.0


def _gelu_forward(layer: GELU, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``y`` and the saved local derivative ``dy/dx``: the backward pass is then one product.

    ``u`` and ``k`` are computed from ``x`` clipped to ``±10``, where ``tanh u = ±1`` already: for a
    huge ``|x|``, ``x^3`` would overflow and ``k (1 - t^2)`` be ``inf * 0``; clipped, it is ``k * 0 = 0``.
    """
    del layer
    xc = np.clip(x, -_GELU_SATURATES, _GELU_SATURATES)
    x2 = xc * xc
    t = x2 * (_GELU_C * 0.044715)
    t += _GELU_C
    t *= xc
    np.tanh(t, out=t)  # t = tanh u
    k = x2  # k = 0.5 x du/dx, in x2's place
    k *= _GELU_C * 1.5 * 0.044715
    k += _GELU_C * 0.5
    k *= xc
    y = t + 1
    y *= 0.5  # 0.5 (1 + t)
    np.multiply(t, t, out=t)
    np.subtract(1.0, t, out=t)
    t *= k
    t += y  # dy/dx = 0.5 (1 + t) + k (1 - t^2), in t's place
    y *= x
    return y, t


def _gelu_vjp(layer: GELU, x: np.ndarray, y: np.ndarray, dy: np.ndarray, slope: np.ndarray) -> tuple[GELU, np.ndarray]:
    del x, y
    return layer, dy * slope


register(GELU, vjp=_gelu_vjp, forward=_gelu_forward, squashes=True)


#: The activations by name: the one table ``fnn.mlp``, configs and the CLI read.
ACTIVATIONS: dict[str, Any] = {
    "sigmoid": Sigmoid(),
    "tanh": Tanh(),
    "relu": ReLU(),
    "leaky_relu": LeakyReLU(),
    "softmax": Softmax(),
    "identity": Identity(),
    "gelu": GELU(),
}


def get_activation(name: Any) -> Any:
    """An activation record from its name in :data:`ACTIVATIONS`; a registered record passes through.

    >>> get_activation("relu"), get_activation(LeakyReLU(0.2))
    (ReLU(), LeakyReLU(slope=0.2))
    >>> get_activation("swish")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown activation 'swish'; choose one of: 'sigmoid', 'tanh', ...
    """
    if isinstance(name, tuple) and hasattr(type(name), "_fields"):
        rule(name)
        return name
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of: {', '.join(map(repr, ACTIVATIONS))}.")
    return ACTIVATIONS[name]
