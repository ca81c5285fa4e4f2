"""Checks run once at the public boundary, before any work starts.

Each check raises a ``TypeError`` (the wrong kind of thing) or a ``ValueError``
(the right kind, a wrong value) whose message names the argument and says what
was expected, what was given, and how to fix it. None of them writes into what
it is given. The inner loops of training call none of these: ``train``
validates its inputs once and then trusts them.

What is checked:

- a network (:func:`network`): a tuple of registered layer records; parameters
  of one float dtype, all finite; settings (a slope, a rate) not NaN or inf;
- inputs (:func:`inputs`): a real numeric array of at least two dimensions,
  batch first, not empty, finite; one example is pushed through the network so a
  shape mismatch names its layer (Dense, Conv2D, pooling: any registered layer);
- a batch (:func:`batch`): ``x`` as above and ``y`` of the same length: integer
  labels in ``[0, n_outputs)`` (``(n,)``, or ``(n, time)`` for ``(n, time, k)`` outputs),
  or finite targets shaped like the output (0/1 labels are the targets of a one-output network);
  a softmax cost over one output is refused;
- gradients or updates against params (:func:`updates`): the same tree
  structure (:class:`fnn.tree.TreeMismatchError`, printing both) and leaf shapes;
- counts, rates, optimizers and costs (:func:`positive_int`, :func:`learning_rate`, :func:`optimizer`,
  :func:`cost`), and a cost on logits against a network whose last layer squashes (:func:`logits`;
  :func:`network_and_cost` runs the three checks of a network and its cost);
- a state to resume from (:func:`initial_state`) against the params and the optimizer, and a
  network standing in for the params (:func:`params_like`): same layout, finite;
- record fields against their annotations (:func:`fits`), shared with :func:`fnn.load`.

A 1-D ``x`` is refused, with the reshape that fixes it: fnn never guesses
whether ``(n,)`` is one example or ``n`` scalars.
"""

from __future__ import annotations

import functools
import math
import numbers
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from fnn import layers
from fnn import tree as ft
from fnn.arguments import FLOAT_DTYPES, describe, integer, nonfinite, number, positive_int
from fnn.costs import COSTS, Cost

__all__ = [
    "network",
    "inputs",
    "batch",
    "updates",
    "positive_int",
    "learning_rate",
    "cost",
    "logits",
    "network_and_cost",
    "optimizer",
    "param_dtype",
    "all_finite",
    "fits",
    "record_fields",
    "same_layout",
    "params_like",
    "initial_state",
    "callbacks",
    "softmax_outputs",
]

#: The parameter dtypes fnn computes in.
PARAM_DTYPES = FLOAT_DTYPES


def all_finite(a: np.ndarray) -> bool:
    """Whether a real array holds no NaN or inf, without a temporary as large as ``a``.

    ``vdot(a, a)``, a sum of squares, is finite exactly when every element is, unless
    large finite elements overflow it; only then is the exact elementwise test run.

    >>> all_finite(np.array([1.0, 2.0])), all_finite(np.array([1.0, np.nan]))
    (True, False)
    """
    if a.dtype.kind != "f" or a.size == 0:
        return True
    if a.dtype in (np.float32, np.float64) and math.isfinite(float(np.vdot(a, a))):  # BLAS: no flags
        return True
    return bool(np.isfinite(a).all())


def param_dtype(params: Any) -> np.dtype:
    """The floating dtype of a network's parameters (float32 when it has none).

    >>> param_dtype((layers.Dense(np.ones((1, 1)), np.zeros(1)),))
    dtype('float64')
    """
    for layer in params:
        for field in layer:
            for leaf in ft.leaves(field) if isinstance(field, (tuple, list, dict)) else (field,):
                if layers.is_param(leaf):
                    return leaf.dtype
    return np.dtype(np.float32)


def network(params: Any, name: str = "params") -> None:
    """Check that ``params`` is a network: a non-empty tuple of registered layer records.

    Parameters (floating arrays) must share one dtype and be finite; settings that are
    floats (a LeakyReLU slope, a dropout rate) must be finite; arrays must be real.

    >>> network((layers.Sigmoid(),))
    >>> network([layers.Sigmoid()])
    Traceback (most recent call last):
    ...
    TypeError: params must be a tuple of layer records, got a list; pass tuple(params).
    """
    if isinstance(params, list):
        raise TypeError(f"{name} must be a tuple of layer records, got a list; pass tuple({name}).")
    if not isinstance(params, tuple) or hasattr(type(params), "_fields"):
        raise TypeError(
            f"{name} must be a tuple of layer records such as fnn.mlp([784, 16, 10]) returns, "
            f"got {describe(params)}; a single layer goes in a 1-tuple: ({name},)."
        )
    if not params:
        raise ValueError(f"{name} is an empty tuple; a network needs at least one layer, e.g. fnn.mlp([4, 2]).")
    dtypes: dict[np.dtype, str] = {}
    for i, layer in enumerate(params):
        where = f"{name}[{i}] ({type(layer).__name__})"
        if not hasattr(type(layer), "_fields"):
            raise TypeError(
                f"{name}[{i}] is {describe(layer)}, not a layer record; "
                "a network is a tuple of records such as fnn.Dense(w, b) and fnn.Sigmoid()."
            )
        try:
            layers.rule(layer)
        except TypeError as e:
            raise TypeError(f"{name}[{i}]: {e}") from None
        for field, value in zip(type(layer)._fields, layer):
            for leaf in ft.leaves(value) if isinstance(value, (tuple, list, dict)) else (value,):
                _check_field(leaf, where, field, dtypes)
        wrong = record_fields(layer, arrays="float")
        if wrong:
            raise TypeError(f"{where}: {wrong}; build the layer with its builder (fnn.dense, fnn.conv2d, ...).")
    if len(dtypes) > 1:
        found = ", ".join(f"{d} ({w})" for d, w in dtypes.items())
        raise TypeError(
            f"{name} mixes parameter dtypes: {found}; use one, e.g. "
            f"fnn.tree.map(lambda a: a.astype(np.float32) if fnn.layers.is_param(a) else a, {name})."
        )


def _check_field(leaf: Any, layer: str, field: str, dtypes: dict[np.dtype, str]) -> None:
    if isinstance(leaf, np.ndarray):
        kind = leaf.dtype.kind
        if kind == "f":
            if leaf.dtype not in PARAM_DTYPES:
                raise TypeError(
                    f"{layer}.{field} has dtype {leaf.dtype}; parameters must be float32 or float64 arrays: "
                    f"convert the network with fnn.tree.map(lambda a: a.astype(np.float32) "
                    "if fnn.layers.is_param(a) else a, params)."
                )
            if leaf.dtype not in dtypes:
                dtypes[leaf.dtype] = f"{layer}.{field}"
            if not all_finite(leaf):
                raise ValueError(
                    f"{layer}.{field} holds NaN or inf; the network has diverged or was built wrongly. "
                    "Rebuild it, or load the last good checkpoint."
                )
        elif kind not in "biu":
            raise TypeError(
                f"{layer}.{field} has dtype {leaf.dtype}; parameters must be float32 or float64 arrays "
                "(settings may be ints or bools)."
            )
    elif leaf is None or type(leaf) in (int, bool, str):
        return
    elif isinstance(leaf, (float, np.floating)):
        if not math.isfinite(leaf):
            raise ValueError(
                f"{layer}.{field} is {leaf!r}; a setting must be a finite number, e.g. LeakyReLU(0.01)."
            )
    elif isinstance(leaf, numbers.Complex) and not isinstance(leaf, numbers.Real):
        raise TypeError(f"{layer}.{field} is the complex number {leaf!r}; settings must be real numbers.")


def _array(value: Any, name: str) -> np.ndarray:
    """``value`` as a real numeric numpy array (no copy if it already is one)."""
    try:
        a = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"{name} cannot be made into an array ({e}); pass a rectangular numeric array, "
            "e.g. np.asarray(rows, dtype=np.float32) with rows of equal length."
        ) from None
    if a.dtype.kind not in "biuf":
        kind = {"c": "complex", "O": "object", "U": "string", "S": "bytes", "V": "structured", "M": "datetime"}
        raise TypeError(
            f"{name} must be a real numeric array, got dtype {a.dtype} ({kind.get(a.dtype.kind, 'not numeric')}); "
            "convert it with np.asarray(..., dtype=np.float32)"
            + (", keeping the real part (x.real) or the magnitude (abs(x))." if a.dtype.kind == "c" else ".")
        )
    return a


def inputs(params: Any, x: Any, name: str = "x") -> np.ndarray:
    """``x`` as an array in the params' dtype, checked for finiteness and for the network's shapes.

    ``x`` is batch first: ``(batch, features)`` for dense networks, ``(batch, h, w, c)`` for
    convolutional ones; a 1-D ``x`` is refused with the reshape that fixes it.

    >>> inputs((layers.Dense(np.ones((2, 1)), np.zeros(1)),), [[1, 2]])
    array([[1., 2.]])
    >>> inputs((layers.Dense(np.ones((2, 1)), np.zeros(1)),), [1, 2])
    Traceback (most recent call last):
    ...
    ValueError: x has shape (2,), one dimension; fnn works on batches, batch first. \
For one example use x.reshape(1, -1); for a batch of scalars use x.reshape(-1, 1).
    """
    return _inputs(params, x, name)[0]


def _inputs(params: Any, x: Any, name: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """``(x, out)``: the checked inputs and the network's output shape for one example."""
    a = _array(x, name)
    if a.ndim == 0:
        raise ValueError(
            f"{name} is a scalar ({a!r}); pass a batch, batch first: e.g. np.array([[{a.item()!r}]])."
        )
    if a.ndim == 1:
        raise ValueError(
            f"{name} has shape {a.shape}, one dimension; fnn works on batches, batch first. "
            f"For one example use {name}.reshape(1, -1); for a batch of scalars use {name}.reshape(-1, 1)."
        )
    if a.shape[0] == 0 or a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape}); pass a batch of at least one example.")
    if a.dtype.kind in "iu" and layers.rule(params[0]).indices:  # ids stay integers for an Embedding
        return a, _shapes(params, a, name)
    cast = _finite_in(a, param_dtype(params), name, "examples", "the inputs (e.g. fnn.data.normalize)")
    return cast, _shapes(params, cast, name)


def _finite_in(a: np.ndarray, dtype: np.dtype, name: str, what: str, scale: str) -> np.ndarray:
    """``a`` cast to ``dtype``, refused if it holds NaN or inf or finite values too large for ``dtype``.

    ``what`` names the rows to clean ("examples", "targets"), ``scale`` what to scale.
    """
    if not all_finite(a):
        raise nonfinite(a, name, f"clean or drop those {what} first, e.g. with np.nan_to_num or a mask.")
    with np.errstate(over="ignore", under="ignore"):  # overflow is reported below; underflow to 0 is rounding
        cast = a.astype(dtype, copy=False)
    if cast is not a and not all_finite(cast):  # a narrower dtype can overflow; the same array was checked
        raise ValueError(
            f"{name} holds finite values too large for the network's {dtype} (largest magnitude "
            f"{float(np.abs(a).max()):.3g}, {dtype} ends at {float(np.finfo(dtype).max):.3g}); "
            f"scale {scale} or use a float64 network."
        )
    return cast


#: Layer types whose output has the shape of their input: ``_shapes`` steps over them without running them.
#: Every activation of :data:`fnn.layers.ACTIVATIONS` (elementwise or softmax) is one.
SAME_SHAPE: set[type] = {type(a) for a in layers.ACTIVATIONS.values()}


def _shapes(params: Any, x: np.ndarray, name: str) -> tuple[int, ...]:
    """The network's output shape for one example, found before real work so a mismatch names its layer.

    Dense layers are checked against their weight shapes and the layers in :data:`SAME_SHAPE`
    are stepped over, both without computing anything; any other layer (Conv2D, pooling,
    Flatten, your own) is run on one example (zeros of the right shape) and its own error
    wrapped with its index and the shape it was given. An MLP costs no arithmetic; a conv net
    costs at most one example's forward pass.
    """
    shape = (1,) + x.shape[1:]
    h: np.ndarray | None = x[:1]
    for i, layer in enumerate(params):
        kind = type(layer)
        if kind is layers.Dense:
            w, b = np.shape(layer.w), np.shape(layer.b)
            if len(w) != 2 or b != w[1:] or 0 in w:
                raise ValueError(
                    f"layer {i} (Dense) has w of shape {w} and b of shape {b}; "
                    "expected w: (n_in, n_out) and b: (n_out,) with n_in, n_out >= 1. "
                    "Build it with fnn.dense(key, n_in, n_out)."
                )
            if len(shape) < 2 or shape[-1] != w[0]:
                flatten = " (put an fnn.Flatten() before it)" if len(shape) > 2 else ""
                fix = f"Reshape {name} to (batch, {w[0]}){flatten}." if i == 0 else f"Make layer sizes chain{flatten}."
                raise ValueError(
                    f"layer {i} (Dense, w of shape {w}) expects (batch, {w[0]}) inputs, "
                    f"got {_source(name, x, i, shape)}. {fix}"
                )
            shape, h = shape[:-1] + (w[1],), None
        elif kind not in SAME_SHAPE:
            if h is None:
                h = np.zeros(shape, x.dtype)
            try:
                with np.errstate(all="ignore"):
                    h = layers.apply(layer, h)
            except (ValueError, IndexError, TypeError) as e:
                raise ValueError(f"layer {i} ({kind.__name__}) cannot take {_source(name, x, i, shape)}: {e}") from e
            shape = h.shape
    return shape


def _source(name: str, x: np.ndarray, i: int, shape: tuple[int, ...]) -> str:
    if i == 0:
        return f"{name} of shape {x.shape}"
    return f"an input of shape {shape} from layer {i - 1} (for {name} of shape {x.shape})"


def batch(params: Any, data: Any, cost_: Cost | None = None, name: str = "batch") -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` checked: same length, finite, labels in range or targets of the output width.

    ``y`` is integer labels ``(n,)`` in ``[0, n_outputs)``, or real targets ``(n, n_outputs)``
    (one-hot rows or values); for ``(n, time, k)`` outputs, labels ``(n, time)`` or targets
    ``(n, time, k)``. For a one-output network a ``(n,)`` (``(n, time)``) of 0/1 integers or of reals
    is taken as the targets ``(n, 1)`` (``(n, time, 1)``), never one-hot: label 0 is target 0.
    Integer labels come back as ``intp``, targets in the params' dtype (whatever the dtype of ``x``:
    an Embedding takes integer ids). A ``cost_`` on the softmax of the outputs (:data:`fnn.cross_entropy`)
    is refused for a network with one output: its loss is always 0.

    >>> net = (layers.Dense(np.ones((2, 3)), np.zeros(3)),)
    >>> batch(net, (np.ones((2, 2)), np.array([0, 2])))[1]
    array([0, 2])
    >>> batch(net, (np.ones((2, 2)), np.array([0, 3])))
    Traceback (most recent call last):
    ...
    ValueError: batch[1] (y): labels must lie in [0, 3) for a network with 3 outputs, got labels \
from 0 to 3. Fix the labels or widen the last layer.
    """
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        got = f"a {type(data).__name__} of length {len(data)}" if isinstance(data, (tuple, list)) else describe(data)
        raise TypeError(f"{name} must be a pair (x, y), got {got}; pass {name}=(x, y).")
    x, out = _inputs(params, data[0], f"{name}[0] (x)")
    yname = f"{name}[1] (y)"
    y = _array(data[1], yname)
    if y.ndim == 0:
        raise ValueError(f"{yname} is a scalar; pass one label or target row per example, shape ({len(x)},).")
    if len(y) != len(x):
        raise ValueError(
            f"{name}: x has {len(x)} examples but y has {len(y)} (x shape {x.shape}, y shape {y.shape}); "
            "pass x and y with one row per example."
        )
    n_out = int(out[-1])
    if cost_ is not None:
        softmax_outputs(cost_, n_out)
    if n_out == 1 and y.shape[1:] == out[1:-1]:  # (n,), or (n, time) for (n, time, 1) outputs
        if y.dtype.kind in "biu" and y.size and (int(y.min()) < 0 or int(y.max()) > 1):
            raise ValueError(
                f"{yname}: a one-output network takes 0/1 targets, got integers from {int(y.min())} to "
                f"{int(y.max())}. For more classes widen the last layer to one output per class."
            )
        y = y[..., None]  # (n, 1) or (n, time, 1): 0/1 labels are the targets themselves, never one-hot
    if y.ndim == 1 and y.dtype.kind == "f":
        raise TypeError(
            f"{yname} is a 1-D float array; class labels must be integers. "
            "Pass y.astype(np.int64), or one-hot targets of shape (batch, n_outputs)."
        )
    if y.dtype.kind in "iu" and y.ndim >= 2 and len(out) == y.ndim + 1 and y.shape[1:] == out[1:-1]:
        return x, _labels(y, n_out, yname)  # (batch, time) labels of (batch, time, k) outputs
    if y.ndim == 1:
        if len(out) != 2:
            raise ValueError(
                f"{yname} holds class labels but the network's output has shape {out[1:]} per example; "
                "labels need (batch, n_outputs) outputs. End the network with fnn.Flatten() and a Dense layer."
            )
        return x, _labels(y, n_out, yname)
    if y.shape[1:] != out[1:]:
        raise ValueError(
            f"{yname} has shape {y.shape} but the network gives {out[1:]} outputs per example; "
            f"pass targets of shape ({len(x)}, {', '.join(map(str, out[1:]))}) "
            + (
                f"(one-hot rows: fnn.data.one_hot(labels, {n_out})) or integer labels of shape ({len(x)},)."
                if len(out) == 2
                else "shaped like the network's output."
            )
        )
    return x, _finite_in(y, param_dtype(params), yname, "targets", "the targets (e.g. y / np.abs(y).max())")


def softmax_outputs(cost_: Cost, n_out: int) -> None:
    """Refuse a cost on the softmax of the outputs (:data:`fnn.cross_entropy`) for a network with one output.

    >>> softmax_outputs(COSTS["binary_cross_entropy"], 1)
    >>> softmax_outputs(COSTS["cross_entropy"], 1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: cross_entropy takes the softmax over the outputs, but the network has one output: ...
    """
    if n_out == 1 and cost_.probabilities is layers.softmax:
        raise ValueError(
            f"{cost_.name} takes the softmax over the outputs, but the network has one output: the softmax "
            "of one logit is always 1, so the loss is always 0 and nothing is learnt. For two classes use "
            "fnn.binary_cross_entropy with one output (0/1 targets), or two outputs (e.g. fnn.mlp([n_in, ..., 2], "
            f'output_activation="identity")) with {cost_.name}.'
        )


def _labels(y: np.ndarray, n_out: int, yname: str) -> np.ndarray:
    """Integer class labels checked to lie in ``[0, n_out)``, as ``intp``."""
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= n_out:
        raise ValueError(
            f"{yname}: labels must lie in [0, {n_out}) for a network with {n_out} outputs, "
            f"got labels from {lo} to {hi}. Fix the labels or widen the last layer."
        )
    return y.astype(np.intp, copy=False)


def updates(params: Any, new: Any, name: str = "grads") -> None:
    """Check that ``new`` (gradients or updates) matches ``params``: the same structure and leaf shapes.

    >>> p = (layers.Dense(np.ones((2, 1)), np.zeros(1)),)
    >>> updates(p, (layers.Dense(np.ones((2, 1)), np.zeros(1)),))
    >>> updates(p, (layers.Dense(np.ones((1, 2)), np.zeros(1)),))
    Traceback (most recent call last):
    ...
    ValueError: grads[0].w has shape (1, 2) but params[0].w has shape (2, 1); pass grads computed for \
these params, e.g. fnn.grad(params, batch).
    """
    leaves, treedef = ft.flatten(params)
    new_leaves, new_def = ft.flatten(new)
    if treedef != new_def:
        width = max(len("params"), len(name)) + 1
        raise ft.TreeMismatchError(
            f"{name} does not have the structure of params.\n"
            f"  {'params:':<{width}} {treedef}\n"
            f"  {name + ':':<{width}} {new_def}\n"
            f"Pass {name} built for these params, e.g. fnn.grad(params, batch) or an optimizer's updates."
        )
    for j, (p, u) in enumerate(zip(leaves, new_leaves)):
        if layers.is_param(p) and np.shape(u) != p.shape:
            where = ft.paths(params)[j][0]
            raise ValueError(
                f"{name}{where} has shape {np.shape(u)} but params{where} has shape {p.shape}; "
                f"pass {name} computed for these params, e.g. fnn.grad(params, batch)."
            )
        if layers.is_param(p) and np.asarray(u).dtype != p.dtype:
            where = ft.paths(params)[j][0]
            raise TypeError(
                f"{name}{where} has dtype {np.asarray(u).dtype} but params{where} has dtype {p.dtype}; an "
                f"update must not change the params' dtype (nor be integer): pass {name} in {p.dtype}, "
                f"e.g. fnn.tree.map(lambda g: g.astype(np.{p.dtype}), {name})."
            )


def learning_rate(value: Any, name: str = "lr") -> float:
    """A finite, non-negative number: plain SGD's rate (:func:`fnn.arguments.number` with ``low=0``).

    >>> learning_rate(0.1)
    0.1
    """
    return number(value, name, f"{name}=0.1", 0.0)


def optimizer(value: Any, name: str = "optimizer") -> Any:
    """An optimizer: anything with ``init`` and ``update`` functions, such as a :func:`fnn.chain`.

    >>> optimizer("adam")
    Traceback (most recent call last):
    ...
    TypeError: optimizer must have init and update functions, got the string 'adam'; \
pass fnn.adam(1e-3), or fnn.optimizer_from_name('adam', 1e-3).
    """
    if callable(getattr(value, "init", None)) and callable(getattr(value, "update", None)):
        return value
    given = f"the string {value!r}; pass fnn.{value}(1e-3), or " if isinstance(value, str) else f"{describe(value)}; "
    example = f"fnn.optimizer_from_name({value!r}, 1e-3)" if isinstance(value, str) else "e.g. fnn.adam(1e-3)"
    raise TypeError(f"{name} must have init and update functions, got {given}{example}.")


def cost(value: Any) -> Cost:
    """A :class:`fnn.Cost`, or a clear error listing the ready ones.

    >>> cost("mse")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: cost must be an fnn.Cost, got the string 'mse'; pass fnn.mse. Ready costs: fnn.mse, ...
    """
    if isinstance(value, Cost):
        return value
    ready = ", ".join(f"fnn.{n}" for n in COSTS)
    given = (
        f"the string {value!r}; pass fnn.{value}" if isinstance(value, str) and value in COSTS else describe(value)
    )
    raise TypeError(
        f"cost must be an fnn.Cost, got {given}. Ready costs: {ready}; "
        "or build your own with fnn.Cost(value, grad)."
    )


def logits(params: Any, cost_: Cost) -> None:
    """Refuse a cost on logits after a last layer that squashes or rectifies (the rule in :mod:`fnn.costs`).

    >>> logits((layers.Dense(np.ones((2, 3)), np.zeros(3)), layers.ReLU()), Cost(None, None, "ce", None, np.exp))
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: ce takes logits, ... the network ends in ReLU (layer 1), which squashes or rectifies them. ...
    """
    if not cost_.takes_logits or not params:
        return
    last = params[-1]
    if layers.rule(last).squashes:
        raise ValueError(
            f"{cost_.name} takes logits, the raw scores of a last Dense, Conv2D or Identity layer, but the "
            f"network ends in {type(last).__name__} (layer {len(params) - 1}), which squashes or rectifies them. "
            'Give the network a linear output: fnn.mlp(sizes, activation=..., output_activation="identity"), '
            "or drop the last layer (params[:-1])."
        )


def network_and_cost(params: Any, cost_: Any) -> Cost:
    """Check a network (:func:`network`), a cost (:func:`cost`) and that they fit (:func:`logits`); the cost.

    The checks every function of a network and a cost (``loss``, ``grad``, ``train``, ...) runs first.

    >>> network_and_cost((layers.Dense(np.ones((2, 3)), np.zeros(3)),), COSTS["cross_entropy"]).name
    'cross_entropy'
    """
    network(params)
    cost_ = cost(cost_)
    logits(params, cost_)
    return cost_


# ---------------------------------------------------------------------------
# Records, trees and training states
# ---------------------------------------------------------------------------


def fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` may stand in a record field annotated ``hint``.

    ``float`` takes any real number but a bool, ``int`` any integer but a bool, a union
    any of its members, a generic such as ``tuple[int, ...]`` its container type, a
    callable type (``Callable``, a ``Protocol``) only callables; ``Any`` takes everything.

    >>> fits(0.5, float), fits("a", float), fits(None, int | None), fits((1, 2), tuple[int, ...])
    (True, False, True, True)
    """
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, h) for h in typing.get_args(hint))
    if hint is Callable or origin is Callable:
        return callable(value)
    if origin is not None:
        return isinstance(origin, type) and isinstance(value, origin)
    if hint is None or hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if hint is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    if isinstance(hint, type):
        if getattr(hint, "_is_protocol", False):
            return callable(value)
        return isinstance(value, hint)
    return True


def record_fields(record: Any, arrays: str = "any") -> str:
    """What is wrong with a ``NamedTuple`` record's fields against its annotations; ``""`` when nothing.

    ``arrays="float"`` also requires a field annotated ``np.ndarray`` to hold a float32 or
    float64 array (true of every layer: such fields are parameters or running statistics);
    ``arrays="any"`` lets any numeric array stand in a field that is not callable, as in the
    gradients and optimizer states, which are networks with every field mapped to an array.

    >>> record_fields(layers.Dense(np.ones((1, 1)), np.zeros(1)))
    ''
    >>> record_fields(layers.LeakyReLU("a"))
    "field slope is str 'a', expected float"
    """
    hints = _hints(type(record))  # type: ignore[arg-type]  # classes are hashable
    for field, value in zip(type(record)._fields, record):
        hint = hints.get(field, Any)
        if hint is Any or (hint is np.ndarray and type(value) is np.ndarray and value.dtype in PARAM_DTYPES):
            continue  # the common cases, first: a parameter array
        mapped = arrays == "any" and isinstance(value, (np.ndarray, np.generic)) and not _wants_callable(hint)
        if not mapped and not fits(value, hint):
            shown = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
            return f"field {field} is {describe(value)}, expected {shown}"
        if arrays == "float" and hint is np.ndarray and value.dtype not in PARAM_DTYPES:
            return f"field {field} is a {value.dtype} array, expected a float32 or float64 array"
    return ""


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A record type's resolved field annotations, looked up once per type ({} when they do not resolve)."""
    try:
        return typing.get_type_hints(cls)
    except Exception:  # annotations that do not resolve: nothing to check against
        return {}


def _wants_callable(hint: Any) -> bool:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return all(_wants_callable(h) or h is type(None) for h in typing.get_args(hint))
    return hint is Callable or typing.get_origin(hint) is Callable or getattr(hint, "_is_protocol", False)


def _layout(leaf: Any) -> Any:
    if isinstance(leaf, (np.ndarray, np.generic)):
        return ("array", np.shape(leaf), np.asarray(leaf).dtype)
    return type(leaf)


def same_layout(a: Any, b: Any) -> bool:
    """Whether two trees have the same structure and record types, and leaves of the same shapes
    and dtypes (arrays) or types (other leaves); the values do not matter.

    >>> same_layout((np.zeros(2), 1), (np.ones(2), 5)), same_layout((np.zeros(2),), (np.zeros(3),))
    (True, False)
    """
    (la, da), (lb, db) = ft.flatten(a), ft.flatten(b)
    return da == db and all(_layout(x) == _layout(y) for x, y in zip(la, lb))


_STATE_FIELDS = ("params", "opt_state", "key", "epoch", "step", "history")
_STATS_FIELDS = ("epoch", "loss", "val_loss", "val_accuracy", "accuracy", "lr", "seconds")  # fnn.EpochStats's


def initial_state(state: Any, params: Any, optimizer: Any = None, name: str = "initial_state") -> None:
    """Check a :class:`fnn.TrainState` to resume from against ``params`` and ``optimizer``.

    Its params must have the layout of ``params`` (structure, shapes, dtypes), its optimizer
    state that of ``optimizer.init(params)`` (``()`` for plain SGD: the kind of optimizer
    shows in the state's record types), its key that of ``fnn.random.key(0)``, its counters
    must be integers ``0 <= epoch <= step`` with one history entry, an :class:`fnn.EpochStats`,
    per epoch, and its params and optimizer state must hold no NaN or inf (checked last: a state
    of the wrong form says so first).

    >>> import fnn
    >>> net = fnn.mlp([3, 2], seed=0)
    >>> initial_state(fnn.init_state(net, fnn.adam(1e-3)), net, fnn.adam(1e-3))
    >>> initial_state(fnn.init_state(net, fnn.adam(1e-3)), net)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: initial_state.opt_state does not fit the optimizer: it holds (ScaleByAdamState(...), \
plain SGD (lr=) starts from (). Resume with the optimizer (and learning-rate schedule) the state was saved with.
    """
    from fnn import random as fr

    if not isinstance(state, tuple) or getattr(type(state), "_fields", None) != _STATE_FIELDS:
        raise TypeError(
            f"{name} must be an fnn.TrainState (from fnn.init_state or fnn.load), got {describe(state)}."
        )
    state_: Any = state
    state = state_
    _layout_like(state.params, params, f"{name}.params",
                 "Resume with the network the state was saved from, e.g. params=fnn.mlp(<the same sizes>).")
    expected = () if optimizer is None else optimizer.init(params)
    if not same_layout(state.opt_state, expected):
        what = (
            "plain SGD (lr=) starts from ()" if optimizer is None
            else f"this optimizer starts from {ft.structure(expected)}"
        )
        raise ValueError(
            f"{name}.opt_state does not fit the optimizer: it holds {ft.structure(state.opt_state)}, {what}. "
            "Resume with the optimizer (and learning-rate schedule) the state was saved with."
        )
    if not same_layout(state.key, fr.key(0)):
        raise ValueError(f"{name}.key must be a key like fnn.random.key(0), got {describe(state.key)}.")
    epoch, step, history = state.epoch, state.step, state.history
    for field, v in (("epoch", epoch), ("step", step)):
        integer(v, f"{name}.{field}", "a state that fnn saved (it counts from 0)", low=0)
    if step < epoch or not isinstance(history, tuple) or len(history) != epoch:
        entries = len(history) if isinstance(history, tuple) else "?"
        raise ValueError(
            f"{name} is inconsistent: epoch {epoch}, step {step}, {entries} history entries "
            "(expected one per epoch and at least one step per epoch); pass a state that fnn saved."
        )
    for i, h in enumerate(history):
        if not isinstance(h, tuple) or getattr(type(h), "_fields", None) != _STATS_FIELDS:
            raise TypeError(
                f"{name}.history[{i}] is {describe(h)}, not an fnn.EpochStats as training records; "
                "pass a state that fnn saved (fnn.load restores one), or build its history with fnn.EpochStats(...)."
            )
        wrong = record_fields(h)
        if wrong:
            raise TypeError(
                f"{name}.history[{i}] is an fnn.EpochStats whose {wrong}; "
                "pass a state that fnn saved (fnn.load restores one)."
            )
    _finite(state.params, f"{name}.params", _DIVERGED)
    _finite(state.opt_state, f"{name}.opt_state", _DIVERGED)


_DIVERGED = (
    "the run that saved it had diverged. Resume from an earlier checkpoint (a DivergenceError's "
    ".state is the last finite one), or start afresh with a smaller learning rate."
)


def params_like(value: Any, params: Any, name: str, fix: str) -> None:
    """Check that ``value``, a network standing in for ``params`` (a state's, the best so far), has
    the layout of ``params`` (:func:`same_layout`, both printed when not) and finite parameters.

    ``fix`` ends the error: how to pass the right network.

    >>> net = (layers.Dense(np.ones((2, 1)), np.zeros(1)),)
    >>> params_like(net, net, "best_params", "")
    >>> params_like((layers.Dense(np.ones((3, 1)), np.zeros(1)),), net, "best_params", "Pass the right one.")
    Traceback (most recent call last):
    ...
    ValueError: best_params does not have the layout of params (another architecture or dtype?).
      best_params: (Dense(w='float64[3, 1]', b='float64[1]'),)
      params:      (Dense(w='float64[2, 1]', b='float64[1]'),)
    Pass the right one.
    """
    _layout_like(value, params, name, fix)
    _finite(value, name, _DIVERGED)


def _layout_like(value: Any, params: Any, name: str, fix: str) -> None:
    if not same_layout(value, params):
        width = max(len(name), len("params")) + 1
        raise ValueError(
            f"{name} does not have the layout of params (another architecture or dtype?).\n"
            f"  {name + ':':<{width}} {ft.map(_short, value)}\n"
            f"  {'params:':<{width}} {ft.map(_short, params)}\n"
            f"{fix}"
        )


def _finite(tree: Any, name: str, fix: str) -> None:
    """Refuse NaN or inf in a float leaf of ``tree``, naming the leaf, how many and the first; ``fix`` says what to do.

    >>> _finite((np.zeros(2), {"a": np.array([1.0, np.inf])}), "state", "Load a good one.")
    Traceback (most recent call last):
    ...
    ValueError: state[1]['a'] holds NaN or inf (1 of 2 values, the first at index (1,)); Load a good one.
    """
    for where, leaf in ft.paths(tree):
        if isinstance(leaf, float) and not math.isfinite(leaf):
            raise ValueError(f"{name}{where} is {leaf!r}; {fix}")
        if isinstance(leaf, (np.ndarray, np.generic)) and not all_finite(np.asarray(leaf)):
            raise nonfinite(np.atleast_1d(leaf), f"{name}{where}", fix)


def _short(leaf: Any) -> str:
    return f"{leaf.dtype}{list(leaf.shape)}" if isinstance(leaf, np.ndarray) else type(leaf).__name__


def callbacks(functions: Iterable[Any] | None, name: str) -> tuple[Callable[..., Any], ...]:
    """``functions`` as a tuple of callables (``None`` is none); refused before any work otherwise.

    >>> callbacks([print], "observers")
    (<built-in function print>,)
    >>> callbacks([1], "observers")
    Traceback (most recent call last):
    ...
    TypeError: observers[0] is int 1, not a function; pass functions, e.g. observers=[print].
    """
    if functions is None:
        return ()
    if callable(functions):
        functions = (functions,)
    try:
        found = tuple(functions)
    except TypeError:
        raise TypeError(
            f"{name} must be a list of functions, got {describe(functions)}; e.g. {name}=[print]."
        ) from None
    for i, f in enumerate(found):
        if not callable(f):
            raise TypeError(f"{name}[{i}] is {describe(f)}, not a function; pass functions, e.g. {name}=[print].")
    return found
