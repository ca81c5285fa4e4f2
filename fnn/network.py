"""The network functions: forward, loss, gradients, predictions, and a plain SGD step.

A network is a tuple of layer records (see :mod:`fnn.layers`). Every function
here is pure: it reads ``params`` and the batch and returns new values. Arrays
in returned params are read-only, so nothing downstream can change a network
that someone else holds.

Backpropagation is one loop in each direction. The forward pass keeps each
layer's input; the backward pass walks the layers in reverse, calling each
layer's registered ``vjp`` with its input, output and the incoming gradient:

    xs[0] = x;  xs[i + 1] = apply(params[i], xs[i])
    dy = cost.grad(xs[-1], y);  (dparams[i], dy) = vjp(params[i], xs[i], xs[i + 1], dy)

``train=True`` and a ``key`` reach only the layers that ask for them (dropout,
batch normalisation); for the rest the code path is the same either way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fnn import costs, layers, validate
from fnn import random as fr
from fnn import tree as ft
from fnn.costs import Cost, mse
from fnn.layers import Context

__all__ = [
    "Params",
    "Batch",
    "forward",
    "loss",
    "grad",
    "value_and_grad",
    "sgd_step",
    "apply_updates",
    "predict",
    "accuracy",
    "freeze",
]

Params = tuple
Batch = tuple[np.ndarray, np.ndarray]


def freeze(tree: Any) -> Any:
    """Mark every array leaf of ``tree`` read-only, in place; returns ``tree``.

    Only for arrays that fnn itself has just created and no caller has seen.
    """
    for leaf in ft.leaves(tree):
        if isinstance(leaf, np.ndarray):
            leaf.flags.writeable = False
    return tree


# ---------------------------------------------------------------------------
# The passes (private: no validation, trusted inputs)
# ---------------------------------------------------------------------------


def contexts(params: Params, train: bool, key: fr.KeyLike | None) -> tuple[Context, ...]:
    """One :class:`Context` per layer; layers registered with ``context=True`` get a key of their own."""
    if not train and key is None:
        return (Context(),) * len(params)
    root = None if key is None else fr.key(key)
    return tuple(
        Context(train, fr.fold_in(root, i) if root is not None and layers.rule(layer).context else None)
        for i, layer in enumerate(params)
    )


def rules(params: Params) -> tuple[layers.Rule, ...]:
    """The registered rule of every layer, looked up once (a training loop does it once per epoch)."""
    return tuple(layers.rule(layer) for layer in params)


def trace(
    params: Params, x: np.ndarray, ctxs: tuple[Context, ...], rules_: tuple[layers.Rule, ...] | None = None
) -> list[np.ndarray]:
    """The input of every layer and the network's output: ``[x, h1, ..., y]``.

    ``rules_`` are the layers' rules from :func:`rules`, when the caller has resolved them already.
    """
    xs = [x]
    for layer, r, ctx in zip(params, rules(params) if rules_ is None else rules_, ctxs):
        h = xs[-1]
        xs.append(r.apply(layer, h, ctx) if r.context else r.apply(layer, h))
    return xs


#: Evaluation-mode passes run this many examples at a time: layers treat examples independently
#: outside training, so the result is the same, and memory stays that of a minibatch whatever the
#: batch (a conv net's patch matrices for a whole 10,000-image test set would take gigabytes).
EVAL_ROWS = 256


def eval_forward(params: Params, x: np.ndarray) -> np.ndarray:
    """The network's output in evaluation mode, computed :data:`EVAL_ROWS` examples at a time."""
    rs, ctxs = rules(params), contexts(params, False, None)
    if len(x) <= EVAL_ROWS:
        return trace(params, x, ctxs, rs)[-1]
    return np.concatenate([trace(params, x[i : i + EVAL_ROWS], ctxs, rs)[-1] for i in range(0, len(x), EVAL_ROWS)])


def first_with_params(params: Params) -> int:
    """The index of the first layer holding a parameter (a floating array, in a field or nested in one); 0 if none."""
    return next((i for i, layer in enumerate(params) if any(map(layers.is_param, ft.leaves(layer)))), 0)


def backprop(
    params: Params,
    xs: list[np.ndarray],
    dy: np.ndarray,
    ctxs: tuple[Context, ...],
    rules_: tuple[layers.Rule, ...] | None = None,
    first: int | None = None,
) -> Params:
    """Gradients of every layer, from the traced activations and the output gradient ``dy``.

    Nobody needs the gradient with respect to the network's input, so backpropagation stops at
    the first layer with parameters (``first``, from :func:`first_with_params` when the caller
    has it), running its ``param_vjp`` rule when it has one (a dense or conv layer then skips
    its input gradient); layers before it (augmentation, a reshape) get
    :func:`fnn.layers.zero_grad` records without running their ``vjp`` at all.
    """
    rs = rules(params) if rules_ is None else rules_
    first = first_with_params(params) if first is None else first
    grads: list[Any] = [layers.zero_grad(layer) for layer in params[:first]] + [None] * (len(params) - first)
    for i in range(len(params) - 1, first, -1):
        r = rs[i]
        if r.context:
            grads[i], dy = r.vjp(params[i], xs[i], xs[i + 1], dy, ctxs[i])
        else:
            grads[i], dy = r.vjp(params[i], xs[i], xs[i + 1], dy)
    r, args = rs[first], (params[first], xs[first], xs[first + 1], dy) + ((ctxs[first],) if rs[first].context else ())
    grads[first] = r.vjp(*args)[0] if r.param_vjp is None else r.param_vjp(*args)
    return tuple(grads)


def updated_state(
    params: Params, xs: list[np.ndarray], ctxs: tuple[Context, ...], before: Params | None = None
) -> Params:
    """The network with the running statistics of stateful layers moved by this batch (training mode).

    ``before`` is the network the batch ran through, if ``params`` is that network after an
    optimizer step: the statistics move from ``before``'s values (the fields that ``update``
    changes), so weight decay or any other update never leaks into them.
    """
    before = params if before is None else before
    out = []
    for layer, old, x, ctx in zip(params, before, xs, ctxs):
        upd = layers.rule(layer).update
        if upd is None or not ctx.train:
            out.append(layer)
            continue
        moved = upd(old, x, ctx)
        out.append(type(layer)(*(m if m is not o else f for f, o, m in zip(layer, old, moved))))
    return tuple(out)


def _value_and_grad(params: Params, x: np.ndarray, y: np.ndarray, cost: Cost, ctxs: tuple[Context, ...]):
    xs = trace(params, x, ctxs)
    value, dy = costs.value_and_grad(cost, xs[-1], y)
    return value, backprop(params, xs, dy, ctxs), xs


# ---------------------------------------------------------------------------
# Public functions (validated at the boundary)
# ---------------------------------------------------------------------------


def forward(params: Params, x: np.ndarray, *, train: bool = False, key: fr.KeyLike | None = None) -> np.ndarray:
    """The network's output for a batch.

    Args:
      params: a tuple of layer records, e.g. from :func:`fnn.mlp`.
      x: inputs ``(batch, n_in)`` (``(batch, h, w, c)`` for convolutional nets); cast once
        to the params' dtype.
      train: training mode for layers that have one (dropout, batch normalisation).
      key: the key for random layers in training mode.

    Returns:
      ``(batch, n_out)`` outputs in the params' dtype.

    >>> import fnn, numpy as np
    >>> params = fnn.mlp([3, 4, 2], seed=0)
    >>> fnn.forward(params, np.zeros((5, 3))).shape
    (5, 2)
    """
    validate.network(params)
    x = validate.inputs(params, x)
    return trace(params, x, contexts(params, True, key))[-1] if train else eval_forward(params, x)


def loss(
    params: Params, batch: Batch, cost: Cost = mse, *, train: bool = False, key: fr.KeyLike | None = None
) -> float:
    """The mean cost of the network on ``batch = (x, y)``.

    ``y`` is integer labels ``(batch,)`` or targets ``(batch, n_out)``.

    >>> import fnn, numpy as np
    >>> params = fnn.mlp([2, 1], activation="sigmoid", output_activation="identity", seed=0)
    >>> round(fnn.loss(params, (np.zeros((1, 2)), np.zeros((1, 1)))), 6)
    0.0
    """
    validate.network(params)
    cost = validate.cost(cost)
    x, y = validate.batch(params, batch, cost)
    return cost.value(trace(params, x, contexts(params, True, key))[-1] if train else eval_forward(params, x), y)


def value_and_grad(
    params: Params, batch: Batch, cost: Cost = mse, *, train: bool = False, key: fr.KeyLike | None = None
) -> tuple[float, Params]:
    """The loss and its gradient with respect to every parameter, from one forward and one backward pass.

    Returns:
      ``(loss, grads)``; ``grads`` has exactly the structure of ``params``, with zeros in the
      place of settings that are not parameters (a LeakyReLU slope).

    >>> import fnn, numpy as np
    >>> params = fnn.mlp([3, 2], seed=0)
    >>> value, g = fnn.value_and_grad(params, (np.ones((4, 3)), np.array([0, 1, 1, 0])))
    >>> fnn.tree.structure(g) == fnn.tree.structure(params)
    True
    """
    validate.network(params)
    cost = validate.cost(cost)
    x, y = validate.batch(params, batch, cost)
    value, grads, _ = _value_and_grad(params, x, y, cost, contexts(params, train, key))
    return value, freeze(grads)


def grad(
    params: Params, batch: Batch, cost: Cost = mse, *, train: bool = False, key: fr.KeyLike | None = None
) -> Params:
    """The gradient of :func:`loss` with respect to ``params``: ``value_and_grad(...)[1]``."""
    return value_and_grad(params, batch, cost, train=train, key=key)[1]


def _step_leaf(p: Any, u: Any) -> Any:
    if not layers.is_param(p):
        return p
    out = p + u
    out.flags.writeable = False
    return out


def apply_updates(params: Any, updates: Any) -> Any:
    """``params + updates`` leaf by leaf; settings that are not parameters are kept as they are.

    The result's arrays are new and read-only; ``params`` is unchanged.

    >>> import numpy as np
    >>> apply_updates((np.ones(2), 0.5), (np.full(2, -0.25), 1.0))
    (array([0.75, 0.75]), 0.5)
    """
    validate.updates(params, updates, "updates")
    return ft.map(_step_leaf, params, updates)


def sgd_step(params: Params, grads: Params, lr: float) -> Params:
    """One step of plain gradient descent: ``params - lr * grads``.

    >>> import numpy as np
    >>> sgd_step((np.ones(2, np.float32),), (np.ones(2, np.float32),), lr=0.5)
    (array([0.5, 0.5], dtype=float32),)
    """
    lr = validate.learning_rate(lr)
    validate.updates(params, grads, "grads")
    return ft.map(lambda p, g: _step_leaf(p, g * np.asarray(-lr, g.dtype)) if layers.is_param(p) else p, params, grads)


def predict(params: Params, x: np.ndarray) -> np.ndarray:
    """Class indices: the argmax of the output's last axis, ``(batch,)`` (``(batch, time)`` for sequences).

    >>> import fnn, numpy as np
    >>> fnn.predict(fnn.mlp([3, 4], seed=0), np.zeros((2, 3))).shape
    (2,)
    """
    return forward(params, x).argmax(axis=-1)


def accuracy(params: Params, batch: Batch) -> float:
    """The fraction of examples (of positions, for sequences) whose predicted class equals the label.

    Labels are ``(batch,)`` or ``(batch, time)`` integers, or one-hot rows shaped like the output.

    >>> import fnn, numpy as np
    >>> params = (fnn.Dense(np.eye(2), np.zeros(2)),)
    >>> fnn.accuracy(params, (np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 0])))
    0.5
    """
    validate.network(params)
    x, y = validate.batch(params, batch)
    out = eval_forward(params, x)  # (batch, k) or (batch, time, k)
    labels = y if y.ndim == out.ndim - 1 else y.argmax(axis=-1)  # per position for sequences
    return float((out.argmax(axis=-1) == labels).mean())
