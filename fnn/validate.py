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
  or finite targets shaped like the output;
- gradients or updates against params (:func:`updates`): the same tree
  structure (:class:`fnn.tree.TreeMismatchError`, printing both) and leaf shapes;
- counts, rates and costs (:func:`positive_int`, :func:`learning_rate`, :func:`cost`).

A 1-D ``x`` is refused, with the reshape that fixes it: fnn never guesses
whether ``(n,)`` is one example or ``n`` scalars.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from fnn import layers
from fnn import tree as ft
from fnn.costs import COSTS, Cost

__all__ = [
    "network",
    "inputs",
    "batch",
    "updates",
    "positive_int",
    "positive_float",
    "learning_rate",
    "cost",
    "optimizer",
    "param_dtype",
    "all_finite",
]


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


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:80]}{'...' if len(text) > 80 else ''}"


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
            f"got {_describe(params)}; a single layer goes in a 1-tuple: ({name},)."
        )
    if not params:
        raise ValueError(f"{name} is an empty tuple; a network needs at least one layer, e.g. fnn.mlp([4, 2]).")
    dtypes: dict[np.dtype, str] = {}
    for i, layer in enumerate(params):
        where = f"{name}[{i}] ({type(layer).__name__})"
        if not hasattr(type(layer), "_fields"):
            raise TypeError(
                f"{name}[{i}] is {_describe(layer)}, not a layer record; "
                "a network is a tuple of records such as fnn.Dense(w, b) and fnn.Sigmoid()."
            )
        try:
            layers.rule(layer)
        except TypeError as e:
            raise TypeError(f"{name}[{i}]: {e}") from None
        for field, value in zip(type(layer)._fields, layer):
            for leaf in ft.leaves(value) if isinstance(value, (tuple, list, dict)) else (value,):
                _check_field(leaf, where, field, dtypes)
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


def _nonfinite(a: np.ndarray, name: str, what: str) -> ValueError:
    bad = np.argwhere(~np.isfinite(a))
    first = tuple(int(i) for i in bad[0])
    return ValueError(
        f"{name} holds NaN or inf ({len(bad)} of {a.size} values, the first at index {first}); "
        f"clean or drop those {what} first, e.g. with np.nan_to_num or a mask."
    )


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
    if not (a.dtype.kind in "iu" and type(params[0]) in INDEX_INPUTS):  # ids stay integers for an Embedding
        a = a.astype(param_dtype(params), copy=False)
    if not all_finite(a):
        raise _nonfinite(a, name, "examples")
    return a, _shapes(params, a, name)


#: Layer types that take integer ids as the network's input (``fnn.Embedding`` adds itself):
#: integer inputs to a network that starts with one are kept as integers, not cast to floats.
INDEX_INPUTS: set[type] = set()

#: Layer types whose output has the shape of their input: ``_shapes`` steps over them without running them.
SAME_SHAPE: set[type] = {
    layers.Sigmoid, layers.Tanh, layers.ReLU, layers.LeakyReLU, layers.Softmax, layers.Identity, layers.GELU
}


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
            if len(w) != 2 or b != w[1:]:
                raise ValueError(
                    f"layer {i} (Dense) has w of shape {w} and b of shape {b}; "
                    "expected w: (n_in, n_out) and b: (n_out,). Build it with fnn.dense(key, n_in, n_out)."
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
    (one-hot rows or values); for a one-output network a real ``(n,)`` is taken as ``(n, 1)``.
    Integer labels come back as ``intp``, targets in the params' dtype.

    >>> net = (layers.Dense(np.ones((2, 3)), np.zeros(3)),)
    >>> batch(net, (np.ones((2, 2)), np.array([0, 2])))[1]
    array([0, 2])
    >>> batch(net, (np.ones((2, 2)), np.array([0, 3])))
    Traceback (most recent call last):
    ...
    ValueError: batch[1] (y): labels must lie in [0, 3) for a network with 3 outputs, got labels \
from 0 to 3. Fix the labels or widen the last layer.
    """
    del cost_  # every cost takes the same targets; kept for a uniform signature
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        got = f"a {type(data).__name__} of length {len(data)}" if isinstance(data, (tuple, list)) else _describe(data)
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
    if y.ndim == 1 and y.dtype.kind == "f":
        if out[1:] != (1,):
            raise TypeError(
                f"{yname} is a 1-D float array; class labels must be integers. "
                "Pass y.astype(np.int64), or one-hot targets of shape (batch, n_outputs)."
            )
        y = y.reshape(-1, 1)  # (n, 1) targets of a one-output network
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
    y = y.astype(x.dtype, copy=False)
    if not all_finite(y):
        raise _nonfinite(y, yname, "targets")
    return x, y


def _labels(y: np.ndarray, n_out: int, yname: str) -> np.ndarray:
    """Integer class labels checked to lie in ``[0, n_out)``, as ``intp``."""
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= n_out:
        hint = (
            " A one-output network (e.g. with binary_cross_entropy) takes float targets: pass "
            "y.astype(np.float32).reshape(-1, 1)."
            if n_out == 1
            else ""
        )
        raise ValueError(
            f"{yname}: labels must lie in [0, {n_out}) for a network with {n_out} outputs, "
            f"got labels from {lo} to {hi}. Fix the labels or widen the last layer.{hint}"
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
            where = _path(params, j)
            raise ValueError(
                f"{name}{where} has shape {np.shape(u)} but params{where} has shape {p.shape}; "
                f"pass {name} computed for these params, e.g. fnn.grad(params, batch)."
            )


def _path(params: Any, j: int) -> str:
    """``[i].field`` of the ``j``-th leaf of a network (``[j]`` for other trees)."""
    if isinstance(params, tuple) and all(hasattr(type(layer), "_fields") for layer in params):
        for i, layer in enumerate(params):
            for field, value in zip(type(layer)._fields, layer):
                n = len(ft.leaves(value))
                if j < n:
                    return f"[{i}].{field}" + (f"[{j}]" if n > 1 else "")
                j -= n
    return f" leaf {j}"


def positive_int(value: Any, name: str) -> int:
    """A positive int (numpy ints too; not a bool, not a float).

    >>> positive_int(32, "batch_size")
    32
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be a positive integer, got {_describe(value)}; pass e.g. {name}=10"
            + (f" (int({value!r}))." if isinstance(value, numbers.Real) and float(value).is_integer() else ".")
        )
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}; pass e.g. {name}=10.")
    return int(value)


def _real(value: Any, name: str, example: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}; pass e.g. {name}={example}.")
    return float(value)


def positive_float(value: Any, name: str, example: str = "1e-6") -> float:
    """A finite number greater than zero.

    >>> positive_float(1e-6, "eps")
    1e-06
    """
    v = _real(value, name, example)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number greater than 0, got {value!r}; pass e.g. {name}={example}.")
    return v


def learning_rate(value: Any, name: str = "lr") -> float:
    """A finite, non-negative number.

    >>> learning_rate(0.1)
    0.1
    """
    v = _real(value, name, "0.1")
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a finite non-negative number, got {value!r}; pass e.g. {name}=0.1.")
    return v


def optimizer(value: Any) -> Any:
    """An optimizer: anything with ``init`` and ``update`` functions (``None`` passes, meaning plain SGD).

    >>> optimizer("adam")
    Traceback (most recent call last):
    ...
    TypeError: optimizer must have init and update functions, got the string 'adam'; \
pass fnn.adam(1e-3), or fnn.optimizer_from_name('adam', 1e-3).
    """
    if value is None or (callable(getattr(value, "init", None)) and callable(getattr(value, "update", None))):
        return value
    given = f"the string {value!r}; pass fnn.{value}(1e-3), or " if isinstance(value, str) else f"{_describe(value)}; "
    example = f"fnn.optimizer_from_name({value!r}, 1e-3)" if isinstance(value, str) else "e.g. fnn.adam(1e-3)"
    raise TypeError(f"optimizer must have init and update functions, got {given}{example}.")


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
        f"the string {value!r}; pass fnn.{value}" if isinstance(value, str) and value in COSTS else _describe(value)
    )
    raise TypeError(
        f"cost must be an fnn.Cost, got {given}. Ready costs: {ready}; "
        "or build your own with fnn.Cost(value, grad)."
    )
