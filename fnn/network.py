"""The network functions: forward, loss, gradients, predictions, and a plain SGD step.

A network is a tuple of layer records (see :mod:`fnn.layers`). Every function
here is pure: it reads ``params`` and the batch and returns new values. Arrays
in returned params are read-only, so nothing downstream can change a network
that someone else holds.

Backpropagation is one loop in each direction. The forward pass keeps each
layer's input; the backward pass walks the layers in reverse, calling each
layer's registered ``vjp`` with its input, output and the incoming gradient (and, for a layer
that registered ``forward``, the values its forward pass saved for it in the trace):

    xs[0] = x;  xs[i + 1] = apply(params[i], xs[i])
    dy = cost.grad(xs[-1], y);  (dparams[i], dy) = vjp(params[i], xs[i], xs[i + 1], dy)

``train=True`` and a ``key`` reach only the layers that ask for them (dropout,
batch normalisation); for the rest the code path is the same either way.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from fnn import costs, layers, validate
from fnn import random as fr
from fnn import tree as ft
from fnn.costs import Cost, mse
from fnn.layers import Context, trace
from fnn.tree import freeze

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
    "predicted_classes",
    "label_classes",
    "freeze",
    "Plan",
    "plan",
]

Params = tuple
Batch = tuple[np.ndarray, np.ndarray]


# ---------------------------------------------------------------------------
# The passes (private: no validation, trusted inputs)
# ---------------------------------------------------------------------------


class Plan(NamedTuple):
    """What every training step needs to know about a network, worked out once by :func:`plan`.

    ``rules``: each layer's registered rule; ``fields[i]``: for layer ``i``, ``None`` when it holds
    no parameter, else one code per field: 0 a setting, 1 a parameter array, 2 a container
    holding parameters (walked with :func:`fnn.tree.map`); ``first``: the first layer with
    parameters, where backpropagation stops; ``keyed``/``stateful``: whether any layer takes a key
    or keeps running statistics; ``ctxs``: the training contexts when no layer takes a key;
    ``dtype``: the parameters' dtype; ``size``: the number of scalars in parameter fields (code 1).
    """

    rules: tuple[layers.Rule, ...]
    fields: tuple[tuple[int, ...] | None, ...]
    first: int
    keyed: bool
    stateful: bool
    ctxs: tuple[Context, ...]
    dtype: np.dtype
    size: int


def _code(value: Any) -> int:
    if layers.is_param(value):
        return 1
    if isinstance(value, (tuple, list, dict)) and any(map(layers.is_param, ft.leaves(value))):
        return 2
    return 0


def plan(params: Params) -> Plan:
    """The :class:`Plan` of a network: its rules and the places of its parameters (trusted input).

    >>> import fnn
    >>> p = plan(fnn.mlp([3, 4, 2], activation="sigmoid"))
    >>> p.fields, p.first, p.size
    (((1, 1), None, (1, 1), None), 0, 26)
    """
    rules_ = rules(params)
    return _places(params)._replace(
        rules=rules_,
        keyed=any(r.context for r in rules_),
        stateful=any(r.update is not None for r in rules_),
        ctxs=contexts(params, True, None),
    )


def _places(records: Any) -> Plan:
    """A :class:`Plan` of where the parameters of a tuple of records are (no rules: enough for :func:`updated`)."""
    codes = tuple(tuple(map(_code, record)) for record in records)
    arrays = [p for record in records for p in ft.leaves(record) if layers.is_param(p)]
    return Plan(
        (),
        tuple(c if any(c) else None for c in codes),
        next((i for i, c in enumerate(codes) if any(c)), 0),
        False,
        False,
        (),
        arrays[0].dtype if arrays else np.dtype(np.float32),
        sum(f.size for record, c in zip(records, codes) for f, code in zip(record, c) if code == 1),
    )


def _leaf(p: np.ndarray, u: np.ndarray, c: np.ndarray | None) -> np.ndarray:
    """``p + c * u`` (``c`` ``None``: ``p + u``) for one parameter array, as a new read-only array.

    A 0-d ``p`` (a single learned number) stays a 0-d array, which NumPy's arithmetic on it is not.
    """
    if c is None:
        out = p + u
    elif u.dtype is p.dtype is c.dtype:
        out = u * c  # a new array of this function's own: adding p into it saves a second one
        out += p
    else:
        out = p + u * np.asarray(c, u.dtype)
    if not p.ndim:  # NumPy gave a scalar (np.float64 is no array: no parameter any more)
        out = np.array(out)
    out.setflags(write=False)
    return out


def updated(params: Params, updates: Params, plan_: Plan, scale: float | None = None,
            check: bool = False) -> tuple[Params, bool]:
    r"""``params + scale * updates`` on every parameter, and whether the new parameters are finite.

    The one parameter update, :math:`p + c\,u` leaf by leaf (:math:`p + u` for ``scale`` ``None``),
    behind :func:`apply_updates`, :func:`sgd_step` and :func:`fnn.step` (trusted inputs: shapes
    and structure as ``params``). New arrays are read-only; settings are kept as they are. With
    ``check``, finiteness costs one sum of squares per array (BLAS gives inf or NaN when any
    value is one, or the sum overflows: then the exact test decides).

    >>> import fnn
    >>> params = (fnn.Dense(np.ones((1, 1), np.float32), np.zeros(1, np.float32)), fnn.LeakyReLU(0.1))
    >>> grads = (fnn.Dense(np.ones((1, 1), np.float32), np.ones(1, np.float32)), fnn.LeakyReLU(0.0))
    >>> new, finite = updated(params, grads, plan(params), -0.5, check=True)
    >>> new, finite
    ((Dense(w=array([[0.5]], dtype=float32), b=array([-0.5], dtype=float32)), LeakyReLU(slope=0.1)), True)
    """
    dtype = plan_.dtype
    c = None if scale is None else np.asarray(scale, dtype)
    out, arrays = [], []
    for layer, upd, codes in zip(params, updates, plan_.fields):
        if codes is None:
            out.append(layer)
            continue
        fields = []
        for p, u, code in zip(layer, upd, codes):
            if code == 1:
                new = _leaf(p, u, c)
                arrays.append(new)
            elif code == 2:  # a container of parameters; its settings stay as they are
                new = ft.map(lambda a, b: _leaf(a, b, c) if layers.is_param(a) else a, p, u)
                arrays.extend(a for a in ft.leaves(new) if layers.is_param(a))
            else:
                new = p
            fields.append(new)
        out.append(type(layer)(*fields) if type(layer) is not tuple else tuple(fields))
    if check and not math.isfinite(math.fsum(map(np.vdot, arrays, arrays))):
        return tuple(out), all(map(validate.all_finite, arrays))
    return tuple(out), True


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
    :func:`fnn.layers.zero_grad` records without running their ``vjp`` at all. Layers registered
    with ``forward`` get the values they saved, from ``xs`` (a :class:`fnn.layers.Trace`, as
    :func:`fnn.layers.trace` returns; from a plain list of activations they recompute them).
    """
    rs = rules(params) if rules_ is None else rules_
    first = first_with_params(params) if first is None else first
    grads, _ = layers.backward(params, xs, dy, ctxs, rs, first)
    return grads if first == 0 else tuple(layers.zero_grad(layer) for layer in params[:first]) + grads[first:]


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

    ``y`` is integer labels ``(batch,)`` or targets ``(batch, n_out)``. A cost on logits
    (:data:`fnn.cross_entropy`, :data:`fnn.binary_cross_entropy`) refuses a network whose last
    layer squashes (ReLU, Sigmoid, ...) with a ``ValueError``: see the rule in :mod:`fnn.costs`.

    >>> import fnn, numpy as np
    >>> params = fnn.mlp([2, 1], activation="sigmoid", output_activation="identity", seed=0)
    >>> round(fnn.loss(params, (np.zeros((1, 2)), np.zeros((1, 1)))), 6)
    0.0
    """
    cost = validate.network_and_cost(params, cost)
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
    cost = validate.network_and_cost(params, cost)
    x, y = validate.batch(params, batch, cost)
    ctxs = contexts(params, train, key)
    xs = trace(params, x, ctxs)
    value, dy = costs.value_and_grad(cost, xs[-1], y)
    return value, freeze(backprop(params, xs, dy, ctxs))


def grad(
    params: Params, batch: Batch, cost: Cost = mse, *, train: bool = False, key: fr.KeyLike | None = None
) -> Params:
    """The gradient of :func:`loss` with respect to ``params``: ``value_and_grad(...)[1]``.

    >>> import fnn, numpy as np
    >>> params = (fnn.Dense(np.ones((2, 1)), np.zeros(1)),)
    >>> g = fnn.grad(params, (np.array([[1.0, 2.0]]), np.array([[0.0]])))
    >>> g[0].w.ravel(), g[0].b
    (array([ 6., 12.]), array([6.]))
    """
    return value_and_grad(params, batch, cost, train=train, key=key)[1]


def apply_updates(params: Any, updates: Any) -> Any:
    """``params + updates`` leaf by leaf; settings that are not parameters are kept as they are.

    The result's arrays are new and read-only; ``params`` is unchanged.

    >>> import numpy as np
    >>> apply_updates((np.ones(2), 0.5), (np.full(2, -0.25), 1.0))
    (array([0.75, 0.75]), 0.5)
    """
    validate.updates(params, updates, "updates")
    return updated(((params,),), ((updates,),), _places(((params,),)))[0][0][0]


def sgd_step(params: Params, grads: Params, lr: float) -> Params:
    """One step of plain gradient descent: ``params - lr * grads``.

    >>> import numpy as np
    >>> sgd_step((np.ones(2, np.float32),), (np.ones(2, np.float32),), lr=0.5)
    (array([0.5, 0.5], dtype=float32),)
    """
    lr = validate.learning_rate(lr)
    validate.updates(params, grads, "grads")
    return updated(((params,),), ((grads,),), _places(((params,),)), -lr)[0][0][0]


def predicted_classes(params: Params, out: np.ndarray) -> np.ndarray:
    """The class the network's outputs ``out: (batch, k)`` pick, ``(batch,)``.

    The argmax over the last axis; for a one-output network (``k == 1``, two classes) the output
    thresholded: class 1 where it exceeds 0.5 after a :class:`fnn.Sigmoid` last layer, where it
    exceeds 0 otherwise (logits, as :func:`fnn.binary_cross_entropy` takes them).

    >>> import fnn, numpy as np
    >>> predicted_classes((fnn.Sigmoid(),), np.array([[0.3], [0.7]])).tolist()
    [0, 1]
    >>> predicted_classes((fnn.Identity(),), np.array([[-0.2], [0.3]])).tolist()
    [0, 1]
    """
    if out.shape[-1] != 1:
        return out.argmax(axis=-1)
    threshold = 0.5 if isinstance(params[-1], layers.Sigmoid) else 0.0
    return (out[..., 0] > threshold).astype(np.intp)


def label_classes(y: np.ndarray) -> np.ndarray:
    """The true classes of checked targets ``y`` (see :func:`fnn.validate.batch`), ``(batch,)`` or ``(batch, time)``.

    Integer labels as they are; one-hot rows by their argmax; one-output targets ``(..., 1)``
    as class 1 where the target exceeds 0.5.

    >>> label_classes(np.array([[0.0, 1.0], [1.0, 0.0]])).tolist(), label_classes(np.array([[1.0], [0.0]])).tolist()
    ([1, 0], [1, 0])
    """
    if y.dtype.kind in "iu":
        return y
    if y.shape[-1] == 1:
        return (y[..., 0] > 0.5).astype(np.intp)
    return y.argmax(axis=-1)


def predict(params: Params, x: np.ndarray) -> np.ndarray:
    """Class indices, ``(batch,)`` (``(batch, time)`` for sequences): :func:`predicted_classes` of the output.

    >>> import fnn, numpy as np
    >>> fnn.predict(fnn.mlp([3, 4], seed=0), np.zeros((2, 3))).shape
    (2,)
    """
    return predicted_classes(params, forward(params, x))
