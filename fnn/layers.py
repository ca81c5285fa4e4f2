"""Layers: immutable records, each with a forward rule and its hand-derived backward rule.

The contract, stated once. A layer type is a ``NamedTuple`` record whose
floating-point array fields are its parameters (``Dense(w, b)``) and whose
other fields are fixed settings (``LeakyReLU(slope)``). For each type two pure
functions are registered with :func:`register`:

- ``apply(layer, x) -> y``: the layer's output for a batch ``x``.
- ``vjp(layer, x, y, dy) -> (dlayer, dx)``: the vector-Jacobian product.
  Given the input ``x``, the output ``y = apply(layer, x)`` and ``dy``, the
  gradient of a scalar loss with respect to ``y``, return ``dlayer``, the
  gradient with respect to the layer's fields (a record of the same type, with
  zeros for fields that are settings, not parameters), and ``dx``, the gradient
  with respect to ``x``.

Layers that behave differently in training or draw random numbers (dropout,
batch normalisation) register with ``context=True``; their functions then take
one more argument, a :class:`Context` holding the ``train`` flag and a key of
their own. A layer that keeps running statistics also registers ``update``,
returning the record with its statistics moved after a training step. A layer may
also register ``param_vjp(layer, x, y, dy) -> dlayer``, the ``dlayer`` half of ``vjp``
alone: backpropagation uses it for a network's first layer, whose ``dx`` nobody needs.

Arrays are batch-first: ``x`` is ``(batch, features)`` for dense layers. Outside training a
layer must treat the examples of a batch independently (evaluation runs a large batch in
slices); only training mode may mix them, as batch normalisation does.
Adding a layer type, inside fnn or in your own module, touches nothing else:

>>> from typing import NamedTuple
>>> import numpy as np
>>> class Square(NamedTuple):
...     pass
>>> _ = register(Square, apply=lambda layer, x: x * x,
...              vjp=lambda layer, x, y, dy: (layer, 2 * x * dy))
>>> apply(Square(), np.array([[3.0]]))
array([[9.]])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from fnn import tree as ft
from fnn.random import Key

__all__ = [
    "Context",
    "training_key",
    "Rule",
    "register",
    "rule",
    "registered",
    "apply",
    "vjp",
    "is_param",
    "zero_grad",
    "Dense",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "LeakyReLU",
    "Softmax",
    "Identity",
    "GELU",
    "sigmoid",
    "gelu",
    "elementwise",
]


class Context(NamedTuple):
    """What a context layer sees besides its input: the mode and its own key."""

    train: bool = False
    key: Key | None = None


class Rule(NamedTuple):
    """The registered functions of a layer type (see the module docstring)."""

    apply: Callable[..., np.ndarray]
    vjp: Callable[..., tuple[Any, np.ndarray]]
    context: bool = False
    update: Callable[..., Any] | None = None
    param_vjp: Callable[..., Any] | None = None


_RULES: dict[type, Rule] = {}
_EVAL = Context()


def training_key(ctx: Context, layer_name: str) -> Key:
    """The key of a random layer in training mode; a clear error when the caller gave none.

    >>> training_key(Context(True, None), "Dropout")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Dropout in training mode needs a key: pass key= to fnn.forward/loss/grad, ...
    """
    if ctx.key is None:
        raise ValueError(
            f"{layer_name} in training mode needs a key: pass key= to fnn.forward/loss/grad, e.g. "
            "fnn.forward(params, x, train=True, key=step); fnn.train passes a fresh key every step."
        )
    return ctx.key


def register(
    layer_type: type,
    apply: Callable[..., np.ndarray],
    vjp: Callable[..., tuple[Any, np.ndarray]],
    *,
    context: bool = False,
    update: Callable[..., Any] | None = None,
    param_vjp: Callable[..., Any] | None = None,
) -> type:
    """Register the forward and backward rules of a layer type; returns the type.

    Args:
      layer_type: a ``NamedTuple`` class.
      apply: ``apply(layer, x) -> y`` (``apply(layer, x, ctx)`` when ``context``).
      vjp: ``vjp(layer, x, y, dy) -> (dlayer, dx)`` (one more ``ctx`` argument when ``context``).
      context: whether the functions take a :class:`Context` (train flag and key).
      update: for layers with running statistics, ``update(layer, x, ctx) -> layer``,
        the record after one training step on input ``x``.
      param_vjp: optionally, ``param_vjp(layer, x, y, dy) -> dlayer``, the ``dlayer`` half of
        ``vjp`` alone; backpropagation uses it for the first layer, whose ``dx`` nobody needs
        (for a dense layer that saves a third of its backward matrix products).
    """
    if not (isinstance(layer_type, type) and issubclass(layer_type, tuple) and hasattr(layer_type, "_fields")):
        raise TypeError(
            f"register expects a NamedTuple class, got {layer_type!r}; define the layer as "
            "`class MyLayer(NamedTuple): w: np.ndarray` and register that class."
        )
    _RULES[layer_type] = Rule(apply, vjp, context, update, param_vjp)
    return layer_type


def registered() -> tuple[type, ...]:
    """The layer types registered so far."""
    return tuple(_RULES)


def rule(layer: Any) -> Rule:
    """The registered :class:`Rule` of ``layer``'s type; a clear error when there is none."""
    found = _RULES.get(type(layer))
    if found is None:
        names = ", ".join(sorted(t.__name__ for t in _RULES))
        raise TypeError(
            f"{type(layer).__name__} is not a registered layer type (got {layer!r}).\n"
            f"Registered types: {names}.\n"
            "Register it with fnn.register(MyLayer, apply=..., vjp=...), or use one of those."
        )
    return found


def apply(layer: Any, x: np.ndarray, ctx: Context = _EVAL) -> np.ndarray:
    """Run one layer forward; ``ctx`` reaches only layers registered with ``context=True``."""
    r = rule(layer)
    return r.apply(layer, x, ctx) if r.context else r.apply(layer, x)


def vjp(
    layer: Any, x: np.ndarray, y: np.ndarray, dy: np.ndarray, ctx: Context = _EVAL
) -> tuple[Any, np.ndarray]:
    """Run one layer backward: ``(dlayer, dx)`` for output gradient ``dy``."""
    r = rule(layer)
    return r.vjp(layer, x, y, dy, ctx) if r.context else r.vjp(layer, x, y, dy)


def is_param(leaf: Any) -> bool:
    """Whether a leaf of a network is a trainable parameter: a floating-point array.

    Other leaves (Python numbers such as a slope or a stride) are settings:
    optimizers and :func:`fnn.sgd_step` leave them as they are.

    >>> is_param(np.zeros(3, np.float32)), is_param(0.01)
    (True, False)
    """
    return isinstance(leaf, np.ndarray) and leaf.dtype.kind == "f"


def zero_grad(layer: Any) -> Any:
    """A layer's record with zeros in the place of every field: parameters as zero arrays, settings
    (numbers, tuples of numbers; ``None`` stays) as zeros of their type. The gradient of a layer
    without parameters, and of the layers backpropagation never needs to reach.

    >>> zero_grad(LeakyReLU(0.1))
    LeakyReLU(slope=0.0)
    """
    return ft.map(lambda f: np.zeros_like(f) if is_param(f) else type(f)(0), layer)


# ---------------------------------------------------------------------------
# Dense
# ---------------------------------------------------------------------------


class Dense(NamedTuple):
    r"""A fully connected layer: ``y = x @ w + b``, on the last axis of ``x: (..., n_in)``.

    Fields: ``w: (n_in, n_out)``, ``b: (n_out,)``. Leading axes (batch, time, ...) are
    flattened into rows ``X: (rows, n_in)``; backward, for ``dY: (rows, n_out)``:

    .. math:: dw = X^T dY, \quad db = \textstyle\sum_{rows} dY, \quad dX = dY\, w^T

    >>> layer = Dense(np.ones((2, 3)), np.zeros(3))
    >>> apply(layer, np.array([[1.0, 2.0]]))
    array([[3., 3., 3.]])
    """

    w: np.ndarray
    b: np.ndarray


def _dense_apply(layer: Dense, x: np.ndarray) -> np.ndarray:
    y = x.reshape(-1, x.shape[-1]) @ layer.w  # (rows, n_out): one GEMM over all leading axes
    y += layer.b
    return y.reshape(x.shape[:-1] + y.shape[-1:])  # (..., n_out)


def _dense_param_vjp(layer: Dense, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> Dense:
    del y
    x2, dy2 = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])  # (rows, n_in), (rows, n_out)
    dw = x2.T @ dy2  # (n_in, n_out); BLAS reads the transpose in place
    db = np.add.reduce(dy2, axis=0)  # (n_out,)
    return Dense(dw, db)


def _dense_vjp(layer: Dense, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> tuple[Dense, np.ndarray]:
    dx = dy @ layer.w.T  # (..., n_in)
    return _dense_param_vjp(layer, x, y, dy), dx


register(Dense, _dense_apply, _dense_vjp, param_vjp=_dense_param_vjp)


# ---------------------------------------------------------------------------
# Elementwise activations: a record with no arrays, lifted from two one-liners
# ---------------------------------------------------------------------------


def elementwise(
    layer_type: type,
    f: Callable[..., np.ndarray],
    df: Callable[..., np.ndarray],
) -> type:
    """Register an elementwise activation from ``f(x)`` and ``df(x, y) = dy/dx``.

    ``f`` and ``df`` may take the layer as a first argument when it has settings
    (see ``LeakyReLU``); the backward rule is ``dx = dy * df(x, y)``.
    """
    takes_layer = bool(getattr(layer_type, "_fields", ()))
    if takes_layer:
        return register(
            layer_type,
            lambda layer, x: f(layer, x),
            lambda layer, x, y, dy: (zero_grad(layer), dy * df(layer, x, y)),
        )
    return register(
        layer_type,
        lambda layer, x: f(x),
        lambda layer, x, y, dy: (layer, dy * df(x, y)),
    )


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

    >>> apply(Sigmoid(), np.array([[0.0]]))
    array([[0.5]])
    """


class Tanh(NamedTuple):
    """``y = tanh(x)``; ``dy/dx = 1 - y^2``."""


class ReLU(NamedTuple):
    """``y = max(x, 0)``; ``dy/dx = [x > 0]``."""


class LeakyReLU(NamedTuple):
    """``y = x`` where ``x > 0``, else ``slope * x``; ``dy/dx`` is 1 or ``slope``.

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


register(Sigmoid, lambda layer, x: sigmoid(x), _sigmoid_vjp)
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

    >>> apply(Softmax(), np.array([[0.0, 0.0]]))
    array([[0.5, 0.5]])
    """


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the row maximum so it never overflows."""
    with np.errstate(under="ignore"):  # exp of a very negative shift is exactly 0, as intended
        e = np.exp(x - x.max(axis=-1, keepdims=True))  # (batch, k)
    e /= e.sum(axis=-1, keepdims=True)
    return e


register(
    Softmax,
    lambda layer, x: softmax(x),
    lambda layer, x, y, dy: (layer, y * (dy - (dy * y).sum(axis=-1, keepdims=True))),
)


class GELU(NamedTuple):
    r"""The Gaussian error linear unit, tanh form (PyTorch's ``GELU(approximate="tanh")``).

    With :math:`u = \sqrt{2/\pi}\,(x + 0.044715\,x^3)` and :math:`t = \tanh u`:

    .. math:: y = \tfrac12 x (1 + t), \qquad
              \frac{dy}{dx} = \tfrac12 (1 + t) + \tfrac12 x (1 - t^2) \sqrt{2/\pi}\,(1 + 3 \cdot 0.044715\, x^2)

    >>> apply(GELU(), np.array([[-1.0, 0.0, 1.0]])).round(4)
    array([[-0.1588,  0.    ,  0.8412]])
    """


_GELU_C = float(np.sqrt(2.0 / np.pi))


def gelu(x: np.ndarray) -> np.ndarray:
    """``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (see :class:`GELU`).

    >>> gelu(np.array([0.0, 3.0])).round(4)
    array([0.    , 2.9964])
    """
    t = x * x
    t *= _GELU_C * 0.044715
    t += _GELU_C
    t *= x
    np.tanh(t, out=t)  # tanh u
    t += 1
    t *= x
    t *= 0.5
    return t


def _gelu_vjp(layer: GELU, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> tuple[GELU, np.ndarray]:
    del y
    x2 = x * x
    t = x2 * (_GELU_C * 0.044715)
    t += _GELU_C
    t *= x
    np.tanh(t, out=t)  # tanh u
    k = x2  # k = 0.5 x du/dx, in x2's place
    k *= _GELU_C * 1.5 * 0.044715
    k += _GELU_C * 0.5
    k *= x
    dx = k * t  # dy/dx = 0.5 (1 + t) + k (1 - t^2) = (0.5 + k) + t (0.5 - k t)
    np.subtract(0.5, dx, out=dx)
    dx *= t
    dx += k
    dx += 0.5
    dx *= dy
    return layer, dx


register(GELU, lambda layer, x: gelu(x), _gelu_vjp)
