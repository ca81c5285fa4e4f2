"""The layer contract and its registry: what every layer type provides, and how it is looked up.

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

A layer may also hand values from its forward pass to its backward pass. It then registers
``forward(layer, x) -> (y, saved)`` in place of ``apply`` (``apply`` becomes ``forward(...)[0]``:
one implementation of the forward pass), and its ``vjp`` and ``param_vjp`` take ``saved`` as
one more, last, argument: ``vjp(layer, x, y, dy, saved)`` (``vjp(layer, x, y, dy, ctx, saved)``
with a context). Saved values are private to the layer: produced by its own ``forward``,
consumed by its own ``vjp``, never read by anything else (a softmax's probabilities, a
normalisation's ``1 / std``: whatever the backward pass would otherwise recompute).
:func:`trace` keeps them beside the activations, for as long as the activations live, and
backpropagation hands each layer its own; the public :func:`vjp` recomputes them by calling
``forward``, so a saving layer is called exactly like any other.

Two declarations describe a type to the rest of fnn: ``squashes=True`` says the layer's
output is squashed or rectified (sigmoid, tanh, ReLU, softmax, ...), so it cannot be the
logits that :data:`fnn.cross_entropy` and :data:`fnn.binary_cross_entropy` take; and
``statistics=("mean", "var")`` names float fields that ``update`` moves instead of an
optimizer (they are not counted by :func:`fnn.num_params`).

Arrays are batch-first: ``x`` is ``(batch, features)`` for dense layers. Outside training a
layer must treat the examples of a batch independently (evaluation runs a large batch in
slices); only training mode may mix them, as batch normalisation does.

fnn's own layer types live one family per module of this package (:mod:`fnn.layers.linear`,
:mod:`fnn.layers.activations`, :mod:`fnn.layers.conv`, ...), each with its record, rules and
builder side by side. Adding a layer type, inside fnn or in your own module, touches nothing else:

>>> from typing import NamedTuple
>>> import numpy as np
>>> class Square(NamedTuple):
...     pass
>>> _ = register(Square, apply=lambda layer, x: x * x,
...              vjp=lambda layer, x, y, dy: (layer, 2 * x * dy))
>>> apply(Square(), np.array([[3.0]]))
array([[9.]])

The same layer saving ``2 x`` for its backward pass:

>>> class Square2(NamedTuple):
...     pass
>>> _ = register(Square2, forward=lambda layer, x: (x * x, 2 * x),
...              vjp=lambda layer, x, y, dy, twice_x: (layer, twice_x * dy))
>>> vjp(Square2(), np.array([[3.0]]), np.array([[9.0]]), np.array([[1.0]]))[1]
array([[6.]])
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
    "trace",
    "Trace",
    "backward",
    "trainable",
    "zero_grad",
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
    squashes: bool = False
    statistics: tuple[str, ...] = ()
    indices: bool = False
    forward: Callable[..., tuple[np.ndarray, Any]] | None = None


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
    apply: Callable[..., np.ndarray] | None = None,
    vjp: Callable[..., tuple[Any, np.ndarray]] | None = None,
    *,
    forward: Callable[..., tuple[np.ndarray, Any]] | None = None,
    context: bool = False,
    update: Callable[..., Any] | None = None,
    param_vjp: Callable[..., Any] | None = None,
    squashes: bool = False,
    statistics: tuple[str, ...] = (),
    indices: bool = False,
) -> type:
    """Register the forward and backward rules of a layer type; returns the type.

    Args:
      layer_type: a ``NamedTuple`` class.
      apply: ``apply(layer, x) -> y`` (``apply(layer, x, ctx)`` when ``context``).
      vjp: ``vjp(layer, x, y, dy) -> (dlayer, dx)`` (one more ``ctx`` argument when ``context``;
        one more, last, ``saved`` argument when ``forward`` is given).
      forward: instead of ``apply``, ``forward(layer, x) -> (y, saved)`` (``forward(layer, x, ctx)``
        when ``context``) for a layer that hands ``saved``, values of its own choosing, to its
        ``vjp`` and ``param_vjp`` (see the module docstring); ``apply`` is then ``forward(...)[0]``.
      context: whether the functions take a :class:`Context` (train flag and key).
      update: for layers with running statistics, ``update(layer, x, ctx) -> layer``,
        the record after one training step on input ``x``.
      param_vjp: optionally, ``param_vjp(layer, x, y, dy) -> dlayer``, the ``dlayer`` half of
        ``vjp`` alone; backpropagation uses it for the first layer, whose ``dx`` nobody needs
        (for a dense layer that saves a third of its backward matrix products).
      squashes: whether the output is squashed or rectified (an activation such as sigmoid or
        ReLU): such a last layer does not give the logits a cross-entropy cost takes.
      statistics: the names of float fields that ``update`` moves and no optimizer trains
        (BatchNorm's running ``mean`` and ``var``).
      indices: whether the layer takes integer ids as input (an embedding): a network that
        starts with it keeps integer inputs as integers instead of casting them to floats.

    Returns:
      ``layer_type``, so ``register`` also works as a one-line statement after the class.

    A layer ``y = s * x`` with a learned scale per feature; ``ds = sum_batch(dy * x)``, ``dx = s * dy``:

    >>> from typing import NamedTuple
    >>> import numpy as np
    >>> class Scale(NamedTuple):
    ...     s: np.ndarray
    >>> register(Scale, apply=lambda layer, x: x * layer.s,
    ...          vjp=lambda layer, x, y, dy: (Scale((dy * x).sum(axis=0)), dy * layer.s)).__name__
    'Scale'
    >>> apply(Scale(np.array([2.0, 3.0])), np.array([[1.0, 1.0]]))
    array([[2., 3.]])
    """
    if not (isinstance(layer_type, type) and issubclass(layer_type, tuple) and hasattr(layer_type, "_fields")):
        raise TypeError(
            f"register expects a NamedTuple class, got {layer_type!r}; define the layer as "
            "`class MyLayer(NamedTuple): w: np.ndarray` and register that class."
        )
    unknown = [f for f in statistics if f not in layer_type._fields]
    if unknown:
        raise ValueError(
            f"statistics names fields {unknown} that {layer_type.__name__} does not have "
            f"(its fields: {list(layer_type._fields)}); name the fields that update moves."
        )
    if (apply is None) == (forward is None) or vjp is None:
        raise TypeError(
            f"register({layer_type.__name__}, ...) takes vjp= and exactly one of apply= and forward=; got "
            f"apply={'set' if apply is not None else None}, forward={'set' if forward is not None else None}, "
            f"vjp={'set' if vjp is not None else None}. Give apply=f(layer, x) -> y, or forward=f(layer, x) -> "
            "(y, saved) for a layer whose vjp takes values saved by its forward pass (then apply is derived)."
        )
    if forward is not None:
        apply = _first_of(forward, context)
    assert apply is not None  # exactly one of apply and forward, checked above
    _RULES[layer_type] = Rule(
        apply, vjp, context, update, param_vjp, bool(squashes), tuple(statistics), bool(indices), forward
    )
    return layer_type


def _first_of(forward: Callable[..., tuple[np.ndarray, Any]], context: bool) -> Callable[..., np.ndarray]:
    """``apply`` derived from a layer's ``forward``: its output without the saved values."""
    if context:
        return lambda layer, x, ctx: forward(layer, x, ctx)[0]
    return lambda layer, x: forward(layer, x)[0]


def registered() -> tuple[type, ...]:
    """The layer types registered so far, in the order of registration.

    Importing :mod:`fnn` registers fnn's own types; yours join them when their module runs
    :func:`register`. The contract test of the suite runs over this tuple.

    >>> import fnn
    >>> fnn.Dense in registered() and fnn.Conv2D in registered()
    True
    """
    return tuple(_RULES)


def rule(layer: Any) -> Rule:
    """The registered :class:`Rule` of ``layer``'s type; a clear error when there is none.

    >>> import fnn
    >>> r = rule(fnn.Dropout(0.5))
    >>> r.context, r.update is None
    (True, True)
    >>> rule((1, 2))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: tuple is not a registered layer type (got (1, 2)).
    ...
    """
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
    """Run one layer forward: ``y = apply(layer, x)``, e.g. ``(batch, n_in) -> (batch, n_out)`` for a dense layer.

    ``ctx`` (default: evaluation, no key) reaches only layers registered with ``context=True``.
    A network is run by :func:`fnn.forward`, which calls this layer by layer.

    >>> import fnn, numpy as np
    >>> apply(fnn.Dense(np.ones((2, 1)), np.zeros(1)), np.array([[1.0, 2.0]]))
    array([[3.]])
    >>> apply(fnn.Dropout(0.5), np.ones((1, 4)), Context(train=True, key=fnn.random.key(0)))
    array([[2., 2., 0., 0.]])
    """
    r = rule(layer)
    return r.apply(layer, x, ctx) if r.context else r.apply(layer, x)


def vjp(
    layer: Any, x: np.ndarray, y: np.ndarray, dy: np.ndarray, ctx: Context = _EVAL
) -> tuple[Any, np.ndarray]:
    """Run one layer backward: ``(dlayer, dx)`` for the input ``x``, output ``y`` and output gradient ``dy``.

    ``dy`` has the shape of ``y``, ``dx`` that of ``x``; ``dlayer`` is a record of the layer's type
    (zeros for settings). For a dense layer ``dw = x^T dy``, ``db = sum_batch(dy)``, ``dx = dy w^T``:

    >>> import fnn, numpy as np
    >>> layer, x = fnn.Dense(np.ones((2, 1)), np.zeros(1)), np.array([[1.0, 2.0]])
    >>> dlayer, dx = vjp(layer, x, apply(layer, x), np.array([[1.0]]))
    >>> dlayer.w.ravel(), dlayer.b, dx
    (array([1., 2.]), array([1.]), array([[1., 1.]]))

    For a layer registered with ``forward``, the values it saves for its ``vjp`` are recomputed
    here by running ``forward`` on ``x`` (backpropagation through a network takes them from
    :func:`trace` instead).
    """
    r = rule(layer)
    args = (layer, x, y, dy, ctx) if r.context else (layer, x, y, dy)
    if r.forward is None:
        return r.vjp(*args)
    return r.vjp(*args, _recompute(r, layer, x, ctx))


def _recompute(r: Rule, layer: Any, x: np.ndarray, ctx: Context) -> Any:
    """What layer ``layer`` (registered with ``forward``) saves on input ``x``, by running its forward pass."""
    assert r.forward is not None  # a layer registered with forward
    return (r.forward(layer, x, ctx) if r.context else r.forward(layer, x))[1]


class Trace(list):
    """The activations ``[x, h1, ..., y]`` of :func:`trace`, with ``saved``: the values the layers
    registered with ``forward`` saved for their ``vjp``, ``saved[i]`` for layer ``i`` (``None`` for
    the others). :func:`trace` returns one when some layer saved values, a plain list otherwise.
    """

    saved: list[Any]


def trace(
    layers: Any, x: np.ndarray, ctxs: tuple[Context, ...], rules: tuple[Rule, ...] | None = None
) -> list[np.ndarray]:
    """The input of every layer of a sequence ``layers`` and the last output: ``[x, h1, ..., y]``.

    ``ctxs`` holds one :class:`Context` per layer; ``rules`` the layers' rules, when the caller
    has looked them up already (a training step does it once per epoch). When a layer registered
    with ``forward`` saves values for its backward pass, the list is a :class:`Trace` holding them
    in ``saved`` (:func:`backward` and backpropagation hand each layer its own).

    >>> import fnn, numpy as np
    >>> xs = trace((fnn.Identity(), fnn.ReLU()), np.array([[-1.0, 2.0]]), (Context(), Context()))
    >>> [h.tolist() for h in xs]
    [[[-1.0, 2.0]], [[-1.0, 2.0]], [[0.0, 2.0]]]
    """
    xs, h, saved = [x], x, None
    for layer, r, ctx in zip(layers, tuple(rule(l) for l in layers) if rules is None else rules, ctxs):
        if r.forward is None:
            h = r.apply(layer, h, ctx) if r.context else r.apply(layer, h)
        else:
            if saved is None:
                saved = [None] * len(layers)
            h, saved[len(xs) - 1] = r.forward(layer, h, ctx) if r.context else r.forward(layer, h)
        xs.append(h)
    if saved is None:
        return xs
    out = Trace(xs)
    out.saved = saved
    return out


def backward(
    layers: Any,
    xs: list[np.ndarray],
    dy: np.ndarray,
    ctxs: tuple[Context, ...],
    rules: tuple[Rule, ...] | None = None,
    first: int | None = None,
) -> tuple[tuple[Any, ...], np.ndarray | None]:
    """The reverse of :func:`trace`: ``(dlayers, dx)`` for a sequence ``layers`` from its trace ``xs``.

    Runs each layer's ``vjp`` from the last layer to the first, handing layers registered with
    ``forward`` the values they saved in ``xs`` (recomputed when ``xs`` is a plain list).
    ``rules`` are the layers' rules, when the caller has looked them up. With ``first``, the
    pass stops at that layer: the layers before it are not run (their gradients are ``None``),
    and if it registered a ``param_vjp``, only that runs and ``dx`` is ``None``.

    >>> import fnn, numpy as np
    >>> ls, ctxs = (fnn.Dense(np.full((1, 1), 2.0), np.zeros(1)), fnn.ReLU()), (Context(), Context())
    >>> xs = trace(ls, np.array([[3.0]]), ctxs)
    >>> grads, dx = backward(ls, xs, np.ones((1, 1)), ctxs)
    >>> grads[0].w, dx
    (array([[3.]]), array([[2.]]))
    """
    rs = tuple(map(rule, layers)) if rules is None else rules
    saved = xs.saved if type(xs) is Trace else None
    grads: list[Any] = [None] * len(layers)
    g: np.ndarray | None = dy
    for j in range(len(layers) - 1, (first or 0) - 1, -1):
        r = rs[j]
        layer, x, y = layers[j], xs[j], xs[j + 1]
        args: tuple[Any, ...] = (layer, x, y, g, ctxs[j]) if r.context else (layer, x, y, g)
        if r.forward is not None:  # the values it saved in the trace, or recomputed
            args += (saved[j] if saved is not None else _recompute(r, layer, x, ctxs[j]),)
        if j == first and r.param_vjp is not None:
            grads[j], g = r.param_vjp(*args), None
        else:
            grads[j], g = r.vjp(*args)
    return tuple(grads), g


def is_param(leaf: Any) -> bool:
    """Whether a leaf of a network is a trainable parameter: a floating-point array.

    Other leaves (Python numbers such as a slope or a stride) are settings:
    optimizers and :func:`fnn.sgd_step` leave them as they are.

    >>> is_param(np.zeros(3, np.float32)), is_param(0.01)
    (True, False)
    """
    return isinstance(leaf, np.ndarray) and leaf.dtype.kind == "f"


def trainable(layer: Any) -> tuple[Any, ...]:
    """The trainable parameter arrays of one layer: its float arrays, less declared statistics.

    >>> from fnn.layers import Dense, LeakyReLU
    >>> [a.shape for a in trainable(Dense(np.zeros((2, 3)), np.zeros(3)))]
    [(2, 3), (3,)]
    >>> trainable(LeakyReLU(0.1))
    ()
    """
    stats = rule(layer).statistics
    fields = (f for name, f in zip(layer._fields, layer) if name not in stats)
    return tuple(leaf for f in fields for leaf in ft.leaves(f) if is_param(leaf))


def zero_grad(layer: Any) -> Any:
    """A layer's record with zeros in the place of every field: parameters as zero arrays, settings
    (numbers, tuples of numbers; ``None`` stays) as zeros of their type. The gradient of a layer
    without parameters, and of the layers backpropagation never needs to reach.

    >>> import fnn
    >>> zero_grad(fnn.LeakyReLU(0.1))
    LeakyReLU(slope=0.0)
    """
    return ft.map(lambda f: np.zeros_like(f) if is_param(f) else type(f)(0), layer)


def elementwise(
    layer_type: type,
    f: Callable[..., np.ndarray],
    df: Callable[..., np.ndarray],
    *,
    squashes: bool = True,
) -> type:
    """Register an elementwise activation from ``f(x)`` and ``df(x, y) = dy/dx``; returns the type.

    ``f`` and ``df`` may take the layer as a first argument when it has settings
    (see ``LeakyReLU``); the backward rule is ``dx = dy * df(x, y)``, for ``x, y, dy``
    of any one shape such as ``(batch, n)``. An activation
    squashes or rectifies its input unless told otherwise (see :func:`register`).

    Softplus, ``y = log(1 + exp(x))``, ``dy/dx = sigmoid(x) = 1 - exp(-y)``:

    >>> from typing import NamedTuple
    >>> import numpy as np
    >>> class Softplus(NamedTuple):
    ...     pass
    >>> _ = elementwise(Softplus, lambda x: np.logaddexp(0, x), lambda x, y: -np.expm1(-y))
    >>> y = apply(Softplus(), np.array([[0.0]]))
    >>> y.round(4), vjp(Softplus(), np.array([[0.0]]), y, np.ones((1, 1)))[1]
    (array([[0.6931]]), array([[0.5]]))
    """
    takes_layer = bool(getattr(layer_type, "_fields", ()))
    if takes_layer:
        return register(
            layer_type,
            lambda layer, x: f(layer, x),
            lambda layer, x, y, dy: (zero_grad(layer), dy * df(layer, x, y)),
            squashes=squashes,
        )
    return register(
        layer_type,
        lambda layer, x: f(x),
        lambda layer, x, y, dy: (layer, dy * df(x, y)),
        squashes=squashes,
    )
