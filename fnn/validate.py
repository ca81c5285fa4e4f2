"""Checks run once at the public boundary, before any work starts.

Each check raises a ``TypeError`` or ``ValueError`` whose message says what
was expected, what was given, and how to fix it. The inner loops of training
call none of these: ``train`` validates its inputs once and then trusts them.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from fnn import layers
from fnn.costs import COSTS, Cost

__all__ = [
    "network",
    "inputs",
    "batch",
    "positive_int",
    "learning_rate",
    "cost",
    "param_dtype",
]


def param_dtype(params: Any) -> np.dtype:
    """The floating dtype of a network's parameters (float32 when it has none)."""
    for layer in params:
        for f in layer:
            if layers.is_param(f):
                return f.dtype
    return np.dtype(np.float32)


def network(params: Any, name: str = "params") -> None:
    """A network is a tuple of registered layer records whose parameters share one float dtype."""
    if isinstance(params, list):
        raise TypeError(f"{name} must be a tuple of layer records, got a list; pass tuple({name}).")
    if not isinstance(params, tuple) or hasattr(type(params), "_fields"):
        raise TypeError(
            f"{name} must be a tuple of layer records such as fnn.mlp([784, 16, 10]) returns, "
            f"got {type(params).__name__}; a single layer goes in a 1-tuple: ({name},)."
        )
    if not params:
        raise ValueError(f"{name} is an empty tuple; a network needs at least one layer.")
    dtypes = set()
    for i, layer in enumerate(params):
        layers.rule(layer) if hasattr(type(layer), "_fields") else _not_a_layer(name, i, layer)
        for field, value in zip(type(layer)._fields, layer):
            if isinstance(value, np.ndarray):
                if value.dtype.kind == "f":
                    dtypes.add(value.dtype)
                    if not np.isfinite(value).all():
                        raise ValueError(
                            f"{name}[{i}] ({type(layer).__name__}).{field} holds NaN or inf; "
                            "the network has diverged or was built wrongly. Rebuild it or load a checkpoint."
                        )
                elif value.dtype.kind in "cOSUV":
                    raise TypeError(
                        f"{name}[{i}] ({type(layer).__name__}).{field} has dtype {value.dtype}; "
                        "parameters must be float32 or float64 arrays."
                    )
    if len(dtypes) > 1:
        raise TypeError(
            f"{name} mixes parameter dtypes {sorted(map(str, dtypes))}; use one, e.g. "
            f"fnn.tree.map(lambda a: a.astype(np.float32), {name})."
        )


def _not_a_layer(name: str, i: int, value: Any) -> None:
    raise TypeError(
        f"{name}[{i}] is {type(value).__name__} {value!r:.80}, not a layer record; "
        "a network is a tuple of records such as fnn.Dense(w, b) and fnn.Sigmoid()."
    )


def _array(value: Any, name: str) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must be a real numeric array, got dtype {a.dtype}"
            + (" (complex)" if a.dtype.kind == "c" else "")
            + "; convert it with np.asarray(..., dtype=np.float32)."
        )
    return a


def inputs(params: Any, x: Any, name: str = "x") -> np.ndarray:
    """``x`` as an array in the params' dtype, checked for finiteness and for the first layer's shape."""
    a = _array(x, name)
    if a.ndim == 0 or a.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {a.shape}); pass a batch of at least one example.")
    if a.ndim == 1:
        raise ValueError(
            f"{name} has shape {a.shape}, one dimension; fnn works on batches (batch, features). "
            f"For one example use {name}.reshape(1, -1); for a batch of scalars use {name}.reshape(-1, 1)."
        )
    dtype = param_dtype(params)
    a = a.astype(dtype, copy=False)
    if not np.isfinite(a).all():
        bad = np.argwhere(~np.isfinite(a))[0]
        raise ValueError(f"{name} holds NaN or inf (first at index {tuple(int(i) for i in bad)}); clean or mask the data first.")
    _shapes(params, a, name)
    return a


def _shapes(params: Any, x: np.ndarray, name: str) -> None:
    """Run one example through the network so a shape mismatch names its layer before real work."""
    h = x[:1]
    for i, layer in enumerate(params):
        if isinstance(layer, layers.Dense):
            n_in = layer.w.shape[0]
            if h.ndim != 2 or h.shape[1] != n_in:
                given = h.shape if i else x.shape
                what = f"{name} of shape {given}" if i == 0 else f"an input of shape {given} from layer {i - 1}"
                raise ValueError(
                    f"layer {i} (Dense, w of shape {layer.w.shape}) expects (batch, {n_in}) inputs, got {what}. "
                    + (f"Reshape {name} to (batch, {n_in})." if i == 0 else "Make consecutive layer sizes chain.")
                )
        try:
            with np.errstate(all="ignore"):
                h = layers.apply(layer, h)
        except (ValueError, IndexError) as e:
            raise ValueError(
                f"layer {i} ({type(layer).__name__}) cannot take an input of shape {h.shape}: {e}"
            ) from None


def batch(params: Any, data: Any, cost_: Cost | None = None, name: str = "batch") -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` checked: same length, finite, labels in range or targets of the output width."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{name} must be a pair (x, y), got {type(data).__name__}; pass ({name[0]}x, y).")
    x = inputs(params, data[0], f"{name}[0] (x)")
    y = _array(data[1], f"{name}[1] (y)")
    if len(y) != len(x):
        raise ValueError(
            f"{name}: x has {len(x)} examples but y has {len(y)}; pass x and y with one row per example."
        )
    n_out = _output_width(params, x)
    if y.ndim == 1:
        if y.dtype.kind == "f":
            if not np.isfinite(y).all():
                raise ValueError(f"{name}[1] (y) holds NaN or inf; clean the targets first.")
            if n_out == 1:
                return x, y.reshape(-1, 1).astype(x.dtype)
            raise TypeError(
                f"{name}[1] (y) is a 1-D float array; class labels must be integers. "
                "Pass y.astype(np.int64), or one-hot targets of shape (batch, n_outputs)."
            )
        if y.dtype.kind == "b":
            y = y.astype(np.int64)
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= n_out:
            raise ValueError(
                f"{name}[1] (y): labels must lie in [0, {n_out}) for a network with {n_out} outputs, "
                f"got labels from {lo} to {hi}. Fix the labels or widen the last layer."
            )
        return x, y.astype(np.intp, copy=False)
    y = y.astype(x.dtype, copy=False)
    if not np.isfinite(y).all():
        raise ValueError(f"{name}[1] (y) holds NaN or inf; clean the targets first.")
    if y.shape[1:] != (n_out,) and y.ndim == 2:
        raise ValueError(
            f"{name}[1] (y) has shape {y.shape} but the network has {n_out} outputs; "
            f"pass one-hot targets of shape ({len(x)}, {n_out}) or integer labels of shape ({len(x)},)."
        )
    return x, y


def _output_width(params: Any, x: np.ndarray) -> int:
    with np.errstate(all="ignore"):
        h = x[:1]
        for layer in params:
            h = layers.apply(layer, h)
    return int(h.shape[-1])


def positive_int(value: Any, name: str) -> int:
    """A positive int (not a bool, not a float)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}; pass e.g. {name}=10.")
    return int(value)


def learning_rate(value: Any, name: str = "lr") -> float:
    """A finite, non-negative float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite non-negative number, got {value!r}; pass e.g. {name}=0.1.")
    return float(value)


def cost(value: Any) -> Cost:
    """A :class:`fnn.Cost`, or a clear error listing the ready ones."""
    if isinstance(value, Cost):
        return value
    raise TypeError(
        f"cost must be an fnn.Cost such as fnn.mse, got {value!r}. Ready costs: "
        + ", ".join(f"fnn.{n}" for n in COSTS)
        + "; or build your own with fnn.Cost(value, grad)."
    )
