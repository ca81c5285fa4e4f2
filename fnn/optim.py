"""Optimizers as gradient transformations: data plus two pure functions.

The contract (optax's): an optimizer is a :class:`GradientTransformation`, a
record of two pure functions,

    init(params) -> state
    update(updates, state, params=None) -> (updates, new_state)

and ``fnn.apply_updates(params, updates)`` makes the step. ``update`` turns
gradients into the *change* to add to the params (already negated and scaled
by the learning rate). Every state is a pytree of arrays and ``NamedTuple``
records, one record type per transformation, with the step count in it as an
int64 scalar array, so a state flattens, saves and restores exactly and a
resumed run continues bit for bit. Every array that ``init`` or ``update`` makes
(state and updates) is read-only, so whoever is shown a state (an observer,
``on_batch``) cannot change the run through it; the caller's own arrays passed
through are left as they are.

Small transformations compose with :func:`chain`; the ready optimizers
(:func:`sgd`, :func:`adam`, :func:`adamw`, :func:`rmsprop`) are chains:

    adam(lr) = chain(scale_by_adam(b1, b2, eps), scale_by_learning_rate(lr))

The math of each transformation is written once, for one array, in one function
``f(u, *state) -> (u, *state)`` that one helper lifts over the params tree (as
``jax.example_libraries.optimizers`` does). Leaves that are settings rather than parameters
(anything :func:`fnn.layers.is_param` rejects, e.g. a LeakyReLU slope) pass
through untouched, are never decayed, and do not count in a global norm;
:func:`fnn.apply_updates` ignores their updates. Updates keep each array's dtype.

``learning_rate(state)`` reads the rate of the latest update (before any, the rate of the first),
for logging.

>>> import fnn, numpy as np
>>> params = (fnn.Dense(np.ones((2, 1)), np.zeros(1)),)
>>> grads = (fnn.Dense(np.full((2, 1), 0.5), np.ones(1)),)
>>> opt = fnn.chain(fnn.clip_by_global_norm(1.0), fnn.adam(fnn.cosine_decay(1e-3, steps=1000)))
>>> state = opt.init(params)
>>> updates, state = opt.update(grads, state, params)
>>> fnn.apply_updates(params, updates)[0].w.ravel()
array([0.999, 0.999])
>>> fnn.learning_rate(state)  # the rate of the update just made
0.001
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import numpy as np
import toolz

from fnn import tree as ft
from fnn import validate
from fnn.arguments import flag, number
from fnn.layers import is_param
from fnn.schedules import Schedule, constant

__all__ = [
    "InitFn",
    "UpdateFn",
    "GradientTransformation",
    "EmptyState",
    "ScaleByScheduleState",
    "ScaleByLearningRateState",
    "TraceState",
    "ScaleByAdamState",
    "ScaleByRmsState",
    "chain",
    "identity",
    "scale",
    "scale_by_schedule",
    "scale_by_learning_rate",
    "trace",
    "scale_by_adam",
    "scale_by_rms",
    "add_decayed_weights",
    "add_l2_penalty",
    "clip_by_global_norm",
    "clip_by_value",
    "sgd",
    "momentum",
    "adam",
    "adamw",
    "rmsprop",
    "learning_rate",
    "OPTIMIZERS",
    "optimizer_from_name",
]

PyTree = Any
ScalarOrSchedule = float | Schedule


# ---------------------------------------------------------------------------
# The contract
# ---------------------------------------------------------------------------


class InitFn(Protocol):
    """``init(params) -> state``: the state before the first update."""

    def __call__(self, params: PyTree) -> PyTree: ...


class UpdateFn(Protocol):
    """``update(updates, state, params=None) -> (updates, new_state)``; pure, arguments unchanged."""

    def __call__(self, updates: PyTree, state: PyTree, params: PyTree | None = None) -> tuple[PyTree, PyTree]: ...


class GradientTransformation(NamedTuple):
    """An optimizer, or a piece of one: a pair of pure functions ``(init, update)``.

    >>> opt = scale(-0.1)
    >>> state = opt.init(np.ones(2))
    >>> opt.update(np.ones(2), state)
    (array([-0.1, -0.1]), EmptyState())
    """

    init: InitFn
    update: UpdateFn


class EmptyState(NamedTuple):
    """The state of a transformation that keeps none (a node with no leaves)."""


class ScaleByScheduleState(NamedTuple):
    """``step``: the number of updates done (an int64 scalar array)."""

    step: np.ndarray


class ScaleByLearningRateState(NamedTuple):
    """``step``: updates done (int64 scalar array); ``learning_rate``: the rate of the latest update,
    or before any update the rate the first will use (float64 scalar array)."""

    step: np.ndarray
    learning_rate: np.ndarray


class TraceState(NamedTuple):
    """The momentum buffer, one array per parameter."""

    trace: PyTree


class ScaleByAdamState(NamedTuple):
    """Adam's step count and first and second moment estimates (``mu``, ``nu``)."""

    step: np.ndarray
    mu: PyTree
    nu: PyTree


class ScaleByRmsState(NamedTuple):
    """The running mean of squared gradients."""

    nu: PyTree


# ---------------------------------------------------------------------------
# Helpers: lifting one-array math to trees; step counts
# ---------------------------------------------------------------------------


def _lift(f: Callable[..., tuple[Any, ...]]) -> Callable[..., tuple[PyTree, ...]]:
    """Lift ``f(u, *s) -> (u, *s)``, a transformation's math for one parameter array, to trees.

    ``lifted(updates, *states)`` calls ``f`` on each parameter leaf of ``updates`` with the
    matching leaves of the ``states`` (trees shaped like the params) and returns the trees of
    its outputs: the new updates and the new states. Every array ``f`` made is returned
    read-only (no copy); an input that ``f`` returns as it is keeps its flags. Leaves that are
    settings rather than parameters pass through untouched, as do their state leaves. For a 0-d
    parameter (a single learned number), whose math NumPy does in scalars, the outputs are 0-d
    arrays of their dtype again (:func:`_array0`), so the next transformation still sees a parameter.

    >>> double = _lift(lambda u, m: (2 * u, m + u))
    >>> double((np.ones(1), 0.5), (np.zeros(1), 0.0))
    ((array([2.]), 0.5), (array([1.]), 0.0))
    >>> double(np.array(1.0), np.array(0.0))
    (array(2.), array(1.))
    >>> double(np.ones(1), np.zeros(1))[1].flags.writeable
    False
    """

    def one(*xs: Any) -> tuple[Any, ...]:
        if not is_param(xs[0]):
            return xs
        out = f(*xs)
        if not xs[0].ndim:
            out = tuple(map(_array0, out))  # a 0-d param: NumPy gave scalars
        for a in out:  # every array f made goes out read-only; an input returned as it is keeps its flags
            for x in xs:
                if a is x:
                    break
            else:
                a.setflags(write=False)
        return out

    def lifted(updates: PyTree, *states: PyTree) -> tuple[PyTree, ...]:
        try:
            return ft.map(one, updates, *states, outputs=1 + len(states))
        except ft.TreeMismatchError:
            want = ft.structure(updates)
            i, got = next((i, d) for i, d in enumerate(map(ft.structure, states), 1) if d != want)
            raise ft.TreeMismatchError(
                f"{f.__qualname__}: state {i} does not have the structure of the updates.\n"
                f"  updates: {want}\n  state {i}: {got}\n"
                "Pass the state that this transformation's init made for these params."
            ) from None

    return lifted


def _array0(x: Any) -> Any:
    """A NumPy scalar (``np.float64``...) as the read-only 0-d array of its dtype; anything else as it is.

    Arithmetic on 0-d arrays returns scalars, which :func:`fnn.layers.is_param` rejects as settings:
    the math of a 0-d parameter (a single learned number) goes back into arrays here.

    >>> _array0(np.array(2.0) * np.array(3.0)), _array0(0.5)
    (array(6.), 0.5)
    """
    return ft.freeze(np.array(x)) if isinstance(x, np.generic) else x


def _zeros(p: Any) -> np.ndarray:
    """A read-only zero state leaf: the shape and dtype of a parameter, a float64 scalar for a setting."""
    return ft.freeze(np.zeros_like(p) if is_param(p) else np.zeros(()))


def _count0() -> np.ndarray:
    return ft.freeze(np.zeros((), np.int64))


def _next(count: np.ndarray) -> np.ndarray:
    return ft.freeze(np.array(int(count) + 1, np.int64))


def _times(updates: PyTree, c: float) -> PyTree:
    """``updates * c``, each parameter array in its own dtype: every rescaling here (scale, schedule,
    learning rate, clipping)."""
    return _lift(lambda u: (u * np.asarray(c, u.dtype),))(updates)[0]


def _average_square(g: np.ndarray, v: np.ndarray, decay: float) -> np.ndarray:
    """``v * decay + (g * g) * (1 - decay)``, as new arrays: a running mean of squares (Adam's, RMSprop's)."""
    new = g * g
    new *= np.asarray(1.0 - decay, g.dtype)
    out = v * np.asarray(decay, v.dtype)
    out += new
    return out


# ---------------------------------------------------------------------------
# Composition
# ---------------------------------------------------------------------------


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply transformations one after another; the state is the tuple of their states.

    ``chain(a, b).update(g, (sa, sb), p)`` is ``b.update(*a.update(g, sa, p)..., sb, p)``:
    the updates flow through ``a`` then ``b``. A chain is itself a transformation, so
    chains nest.

    >>> opt = chain(scale(2.0), scale(-0.5))
    >>> opt.update(np.ones(2), opt.init(np.ones(2)))
    (array([-1., -1.]), (EmptyState(), EmptyState()))
    """
    for i, t in enumerate(transforms):
        validate.optimizer(t, f"chain's argument {i} (a transformation such as fnn.clip_by_global_norm(1.0))")

    def init(params: PyTree) -> tuple[PyTree, ...]:
        return tuple(t.init(params) for t in transforms)

    def update(updates: PyTree, state: PyTree, params: PyTree | None = None) -> tuple[PyTree, tuple[PyTree, ...]]:
        if not isinstance(state, tuple) or len(state) != len(transforms):
            raise ValueError(
                f"chain of {len(transforms)} transformations needs a tuple of {len(transforms)} states, "
                f"got {type(state).__name__} {state!r:.200}. Pass the state from this chain's init "
                "(or from its previous update)."
            )

        def one(carry: tuple[PyTree, tuple[PyTree, ...]], pair: tuple[GradientTransformation, PyTree]):
            u, states = carry
            t, s = pair
            u, s = t.update(u, s, params)
            return u, states + (s,)

        return toolz.reduce(one, zip(transforms, state), (updates, ()))

    return GradientTransformation(init, update)


def _stateless(f: Callable[[PyTree, PyTree | None], PyTree]) -> GradientTransformation:
    """A transformation that keeps no state, from ``f(updates, params) -> updates``."""

    def init(params: PyTree) -> EmptyState:
        del params
        return EmptyState()

    def update(updates: PyTree, state: EmptyState, params: PyTree | None = None) -> tuple[PyTree, EmptyState]:
        return f(updates, params), state

    return GradientTransformation(init, update)


def _moments(record: type[Any], one: Callable[..., tuple[PyTree, ...]]) -> GradientTransformation:
    """A transformation whose state ``record`` holds trees shaped like the params, zeros at first, and moves
    them with ``one(updates, *trees) -> (updates, *trees)``, a :func:`_lift`-ed per-array rule."""

    def init(params: PyTree) -> PyTree:
        return record(*(ft.map(_zeros, params) for _ in record._fields))

    def update(updates: PyTree, state: PyTree, params: PyTree | None = None) -> tuple[PyTree, PyTree]:
        del params
        updates, *trees = one(updates, *state)
        return updates, record(*trees)

    return GradientTransformation(init, update)


def identity() -> GradientTransformation:
    """Updates unchanged; no state.

    >>> identity().update(np.ones(2), EmptyState())
    (array([1., 1.]), EmptyState())
    """
    return _stateless(lambda updates, params: updates)


# ---------------------------------------------------------------------------
# Scaling
# ---------------------------------------------------------------------------


def scale(step_size: float) -> GradientTransformation:
    """Multiply updates by a constant: ``u -> step_size * u`` (dtype kept).

    >>> scale(0.5).update(np.ones(2, np.float32), EmptyState())[0]
    array([0.5, 0.5], dtype=float32)
    """
    c = number(step_size, "step_size", "scale(-0.1)")
    return _stateless(lambda updates, params: _times(updates, c))


def scale_by_schedule(schedule: Schedule) -> GradientTransformation:
    """Multiply updates by ``schedule(count)``, ``count`` being the number of updates done before.

    >>> opt = scale_by_schedule(lambda t: 1.0 / (t + 1))
    >>> u, s = opt.update(np.ones(1), opt.init(np.ones(1)))
    >>> u, s = opt.update(np.ones(1), s)
    >>> u, int(s.step)
    (array([0.5]), 2)
    """
    if not callable(schedule):
        raise TypeError(f"scale_by_schedule needs a function of the step count, got {schedule!r}; "
                        "e.g. fnn.cosine_decay(1e-3, steps=1000). For a constant use fnn.scale.")

    def init(params: PyTree) -> ScaleByScheduleState:
        del params
        return ScaleByScheduleState(_count0())

    def update(updates: PyTree, state: ScaleByScheduleState, params: PyTree | None = None):
        del params
        c = float(schedule(int(state.step)))
        return _times(updates, c), ScaleByScheduleState(_next(state.step))

    return GradientTransformation(init, update)


def scale_by_learning_rate(lr: ScalarOrSchedule) -> GradientTransformation:
    r"""Descend: ``u -> -lr_t * u``, with ``lr`` a float or a schedule of the step count.

    Update ``t`` (counting from 0) uses ``lr(t)``. The state keeps the count and the rate
    the latest update used (before any update, the rate of the first), so that
    :func:`learning_rate` can read it for logging.

    >>> opt = scale_by_learning_rate(lambda t: 0.1 * (t + 1))
    >>> state = opt.init(np.ones(2))
    >>> float(state.learning_rate)
    0.1
    >>> u, state = opt.update(np.ones(2), state)
    >>> u, float(state.learning_rate)
    (array([-0.1, -0.1]), 0.1)
    >>> u, state = opt.update(np.ones(2), state)
    >>> u, float(state.learning_rate)
    (array([-0.2, -0.2]), 0.2)
    """
    example = "lr=1e-3, or a schedule such as fnn.cosine_decay(1e-3, steps=1000)"
    schedule = lr if callable(lr) else constant(number(lr, "lr", example, 0.0))

    def rate(count: np.ndarray) -> np.ndarray:
        return ft.freeze(np.array(float(schedule(int(count))), np.float64))

    def init(params: PyTree) -> ScaleByLearningRateState:
        del params
        return ScaleByLearningRateState(_count0(), rate(_count0()))

    def update(updates: PyTree, state: ScaleByLearningRateState, params: PyTree | None = None):
        del params
        used = rate(state.step)
        c = -float(used)
        return _times(updates, c), ScaleByLearningRateState(_next(state.step), used)

    return GradientTransformation(init, update)


# ---------------------------------------------------------------------------
# Moments
# ---------------------------------------------------------------------------


def trace(decay: float, nesterov: bool = False) -> GradientTransformation:
    r"""Momentum (heavy ball), or Nesterov momentum.

    .. math:: b_t = \mu\, b_{t-1} + g_t, \quad b_0 = 0; \qquad
              u_t = b_t \text{ (heavy ball)}, \quad u_t = g_t + \mu\, b_t \text{ (Nesterov)}

    This is PyTorch's ``SGD(momentum=mu, nesterov=...)`` with ``dampening=0``: its
    buffer starts as the first gradient, which is what ``b_0 = 0`` gives.

    The heavy-ball update is the new buffer itself, returned read-only (no copy, as every array
    :func:`_lift` returns): a later transformation cannot change the state by writing into its updates.

    >>> opt = trace(0.5)
    >>> u, s = opt.update(np.ones(1), opt.init(np.ones(1)))
    >>> opt.update(np.ones(1), s)[0]
    array([1.5])
    >>> u is s.trace, u.flags.writeable
    (True, False)
    """
    mu = number(decay, "decay", "trace(0.9)", 0.0)
    nesterov = flag(nesterov, "nesterov", "trace(0.9, nesterov=True)")

    @_lift
    def one(g: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b = b * np.asarray(mu, b.dtype)  # a new array: the state passed in is never written
        b += g
        return (g + b * np.asarray(mu, b.dtype) if nesterov else b), b

    return _moments(TraceState, one)


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> GradientTransformation:
    r"""Adam's direction: bias-corrected first moment over the root of the second.

    .. math:: m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,

    .. math:: u_t = \frac{m_t / (1 - \beta_1^t)}{\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    (PyTorch's arrangement: ``eps`` is added after the bias correction of the root.)
    Kingma & Ba, *Adam: A Method for Stochastic Optimization* (2015).

    >>> opt = scale_by_adam()
    >>> u, s = opt.update(np.array([2.0, -3.0]), opt.init(np.zeros(2)))
    >>> u.round(6), int(s.step)
    (array([ 1., -1.]), 1)
    """
    b1 = number(b1, "b1", "b1=0.9", 0.0, 1.0, open_high=True)
    b2 = number(b2, "b2", "b2=0.999", 0.0, 1.0, open_high=True)
    eps = number(eps, "eps", "eps=1e-8", 0.0)

    def step(count: int) -> Callable[..., tuple[PyTree, ...]]:
        bc1, root_bc2 = 1.0 - b1 ** count, math.sqrt(1.0 - b2 ** count)

        @_lift
        def one(g: np.ndarray, m: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            m, v, dt = m * np.asarray(b1, m.dtype), _average_square(g, v, b2), g.dtype
            m += g * np.asarray(1.0 - b1, dt)
            return (m / np.asarray(bc1, dt)) / (np.sqrt(v) / np.asarray(root_bc2, dt) + np.asarray(eps, dt)), m, v

        return one

    def init(params: PyTree) -> ScaleByAdamState:
        return ScaleByAdamState(_count0(), ft.map(_zeros, params), ft.map(_zeros, params))

    def update(updates: PyTree, state: ScaleByAdamState, params: PyTree | None = None):
        del params
        count = _next(state.step)
        updates, mu, nu = step(int(count))(updates, state.mu, state.nu)
        return updates, ScaleByAdamState(count, mu, nu)

    return GradientTransformation(init, update)


def scale_by_rms(decay: float = 0.99, eps: float = 1e-8) -> GradientTransformation:
    r"""Divide by the root of a running mean of squared gradients (RMSprop's direction).

    .. math:: v_t = \rho\, v_{t-1} + (1-\rho)\, g_t^2, \quad v_0 = 0, \qquad u_t = g_t / (\sqrt{v_t} + \epsilon)

    PyTorch's convention: ``eps`` outside the root, ``v`` starting at zero.

    >>> opt = scale_by_rms(decay=0.75, eps=0.0)
    >>> opt.update(np.array([2.0]), opt.init(np.zeros(1)))[0]
    array([2.])
    """
    rho = number(decay, "decay", "decay=0.99", 0.0, 1.0)
    eps = number(eps, "eps", "eps=1e-8", 0.0)

    @_lift
    def one(g: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = _average_square(g, v, rho)
        return g / (np.sqrt(v) + np.asarray(eps, v.dtype)), v

    return _moments(ScaleByRmsState, one)


# ---------------------------------------------------------------------------
# Weight decay
# ---------------------------------------------------------------------------


def _add_scaled_params(weight: float, name: str) -> GradientTransformation:
    @_lift
    def add(u: np.ndarray, p: Any) -> tuple[np.ndarray, Any]:
        return (u + p * np.asarray(weight, p.dtype) if is_param(p) else u), p

    def update(updates: PyTree, params: PyTree | None) -> PyTree:
        if params is None:
            raise ValueError(f"{name} needs the params: call update(grads, state, params).")
        try:
            return add(updates, params)[0]
        except ft.TreeMismatchError:
            raise ft.TreeMismatchError(
                f"{name}: the params do not have the structure of the updates.\n"
                f"  updates: {ft.structure(updates)}\n  params:  {ft.structure(params)}\n"
                "Pass the params that the gradients were computed for: update(grads, state, params)."
            ) from None

    return _stateless(update)


def add_decayed_weights(weight_decay: float) -> GradientTransformation:
    r"""Decoupled weight decay: ``u -> u + weight_decay * p``, placed *after* the moment transform.

    Scaled by the learning rate afterwards, this is ``p -= lr * weight_decay * p`` each step,
    independent of Adam's normalisation (Loshchilov & Hutter, *Decoupled Weight Decay
    Regularization*, 2019). Settings (non-float leaves) are never decayed.

    >>> add_decayed_weights(0.1).update((np.zeros(1), 0.0), EmptyState(), (np.full(1, 2.0), 0.5))[0]
    (array([0.2]), 0.0)
    """
    wd = number(weight_decay, "weight_decay", "weight_decay=1e-4", 0.0)
    return _add_scaled_params(wd, "add_decayed_weights")


def add_l2_penalty(weight: float) -> GradientTransformation:
    r"""An L2 penalty ``(weight / 2) * ||p||^2`` on the loss: ``g -> g + weight * p``, placed *first*.

    The penalty's gradient then passes through momentum or Adam's scaling like the loss's
    (PyTorch's ``weight_decay=`` argument of ``SGD``, ``Adam``, ``RMSprop``). Settings are
    never penalised.

    >>> opt = chain(add_l2_penalty(0.1), sgd(1.0))
    >>> opt.update(np.zeros(1), opt.init(np.ones(1)), np.full(1, 2.0))[0]
    array([-0.2])
    """
    w = number(weight, "weight", "add_l2_penalty(1e-4)", 0.0)
    return _add_scaled_params(w, "add_l2_penalty")


# ---------------------------------------------------------------------------
# Clipping
# ---------------------------------------------------------------------------


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    r"""Rescale all updates together so that their global L2 norm is at most ``max_norm``.

    .. math:: u \to u \cdot \min(1, \text{max\_norm} / \lVert u \rVert_2),
              \quad \lVert u \rVert_2^2 = \textstyle\sum_{\text{param leaves}} \sum u^2

    The norm runs over parameter leaves only (settings are ignored), accumulated in float64.
    Pascanu et al., *On the difficulty of training recurrent neural networks* (2013).

    >>> clip_by_global_norm(1.0).update((np.array([3.0]), np.array([[4.0]])), EmptyState())[0]
    (array([0.6]), array([[0.8]]))
    """
    limit = number(max_norm, "max_norm", "clip_by_global_norm(1.0)", 0.0)

    def clip(updates: PyTree, params: PyTree | None) -> PyTree:
        squares = [np.sum(np.square(u, dtype=np.float64)) for u in ft.leaves(updates) if is_param(u)]
        norm = math.sqrt(float(sum(squares, 0.0)))
        return updates if norm <= limit else _times(updates, limit / norm)

    return _stateless(clip)


def clip_by_value(max_abs: float) -> GradientTransformation:
    """Clip every update value into ``[-max_abs, max_abs]`` (PyTorch's ``clip_grad_value_``).

    >>> clip_by_value(1.0).update(np.array([-3.0, 0.5, 2.0]), EmptyState())[0]
    array([-1. ,  0.5,  1. ])
    """
    limit = number(max_abs, "max_abs", "clip_by_value(1.0)", 0.0)

    @_lift
    def clip(u: np.ndarray) -> tuple[np.ndarray]:
        return (np.clip(u, np.asarray(-limit, u.dtype), np.asarray(limit, u.dtype)),)

    return _stateless(lambda updates, params: clip(updates)[0])


# ---------------------------------------------------------------------------
# Ready optimizers
# ---------------------------------------------------------------------------


def sgd(lr: ScalarOrSchedule, momentum: float = 0.0, nesterov: bool = False) -> GradientTransformation:
    r"""Stochastic gradient descent, with optional (Nesterov) momentum.

    ``chain(trace(momentum, nesterov), scale_by_learning_rate(lr))``, the trace left out when
    ``momentum == 0``. Equals ``torch.optim.SGD(lr=lr, momentum=momentum, nesterov=nesterov)``
    (``dampening=0``): ``b = momentum * b + g`` with ``b`` starting as the first gradient,
    ``p -= lr * b`` or, with Nesterov, ``p -= lr * (g + momentum * b)``.

    >>> opt = sgd(0.1, momentum=0.9)
    >>> s = opt.init(np.zeros(1))
    >>> u, s = opt.update(np.ones(1), s)
    >>> u, s = opt.update(np.ones(1), s)
    >>> u.round(6)
    array([-0.19])
    """
    mu = number(momentum, "momentum", "momentum=0.9", 0.0)
    if nesterov and mu == 0.0:
        raise ValueError("Nesterov momentum needs momentum > 0: pass e.g. sgd(0.1, momentum=0.9, nesterov=True).")
    if mu == 0.0:
        return chain(scale_by_learning_rate(lr))
    return chain(trace(mu, nesterov), scale_by_learning_rate(lr))


def momentum(lr: ScalarOrSchedule, momentum: float = 0.9, nesterov: bool = False) -> GradientTransformation:
    """:func:`sgd` with momentum 0.9 by default (the name ``"momentum"`` in :data:`OPTIMIZERS`).

    >>> len(momentum(0.1).init(np.zeros(1)))
    2
    """
    return sgd(lr, momentum=momentum, nesterov=nesterov)


def adam(lr: ScalarOrSchedule = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> GradientTransformation:
    """Adam: ``chain(scale_by_adam(b1, b2, eps), scale_by_learning_rate(lr))``.

    Equals ``torch.optim.Adam(lr=lr, betas=(b1, b2), eps=eps)``. The first step moves each
    parameter by about ``lr`` against the sign of its gradient.

    >>> opt = adam(0.1)
    >>> opt.update(np.array([5.0, -0.2]), opt.init(np.zeros(2)))[0].round(6)
    array([-0.1,  0.1])
    """
    return chain(scale_by_adam(b1, b2, eps), scale_by_learning_rate(lr))


def adamw(lr: ScalarOrSchedule = 1e-3, weight_decay: float = 1e-2, b1: float = 0.9, b2: float = 0.999,
          eps: float = 1e-8) -> GradientTransformation:
    """Adam with decoupled weight decay: ``chain(scale_by_adam, add_decayed_weights, scale_by_learning_rate)``.

    Each step is ``p -= lr * (adam_direction + weight_decay * p)``, which is
    ``torch.optim.AdamW(lr=lr, betas=(b1, b2), eps=eps, weight_decay=weight_decay)`` (torch
    first shrinks ``p *= 1 - lr * weight_decay``, then takes the Adam step).

    >>> opt = adamw(0.1, weight_decay=0.5)
    >>> opt.update(np.zeros(1), opt.init(np.ones(1)), np.ones(1))[0]
    array([-0.05])
    """
    return chain(scale_by_adam(b1, b2, eps), add_decayed_weights(weight_decay), scale_by_learning_rate(lr))


def rmsprop(lr: ScalarOrSchedule = 1e-2, decay: float = 0.99, eps: float = 1e-8,
            momentum: float = 0.0) -> GradientTransformation:
    """RMSprop: ``chain(scale_by_rms(decay, eps), trace(momentum), scale_by_learning_rate(lr))``.

    Equals ``torch.optim.RMSprop(lr=lr, alpha=decay, eps=eps, momentum=momentum)`` (not
    centered): ``v = decay * v + (1 - decay) * g**2``; ``d = g / (sqrt(v) + eps)``
    (``eps`` outside the root); with momentum ``b = momentum * b + d``, ``p -= lr * b``.

    >>> opt = rmsprop(0.01, decay=0.75, eps=0.0)
    >>> opt.update(np.array([3.0]), opt.init(np.zeros(1)))[0]
    array([-0.02])
    """
    mu = number(momentum, "momentum", "momentum=0.9", 0.0)
    moment = (trace(mu),) if mu > 0.0 else ()
    return chain(scale_by_rms(decay, eps), *moment, scale_by_learning_rate(lr))


# ---------------------------------------------------------------------------
# Reading the state; names at the edge
# ---------------------------------------------------------------------------


def _find_rates(node: Any) -> list[ScaleByLearningRateState]:
    if isinstance(node, ScaleByLearningRateState):
        return [node]
    if isinstance(node, (tuple, list)):
        return [r for child in node for r in _find_rates(child)]
    if isinstance(node, dict):
        return [r for k in sorted(node) for r in _find_rates(node[k])]
    return []


def learning_rate(state: PyTree) -> float:
    """The learning rate of the latest update, read from an optimizer state (for logging).

    Finds the :class:`ScaleByLearningRateState` that every ready optimizer keeps (in a
    chain of any depth, or inside a :class:`fnn.TrainState`) and returns its value:
    after ``count`` updates, ``schedule(count - 1)``, the rate the last of them used
    (as optax's ``inject_hyperparams`` keeps it); before any update, ``schedule(0)``, the
    rate the first will use. After the last step of a cosine decay to 0, it is the small
    rate of that step, not the 0 that would come next.

    >>> from fnn.schedules import step_decay
    >>> opt = sgd(step_decay(0.1, every=1, factor=0.5))
    >>> state = opt.init(np.zeros(1))
    >>> learning_rate(state)
    0.1
    >>> _, state = opt.update(np.ones(1), state)
    >>> learning_rate(state)
    0.1
    >>> _, state = opt.update(np.ones(1), state)
    >>> learning_rate(state)
    0.05
    """
    found = _find_rates(state)
    if not found:
        raise ValueError(
            "learning_rate: this state has no learning rate in it (no ScaleByLearningRateState). "
            "Pass the state of an optimizer built with fnn.sgd/adam/adamw/rmsprop or one whose chain "
            "ends in fnn.scale_by_learning_rate(lr)."
        )
    if len(found) > 1:
        raise ValueError(
            f"learning_rate: this state holds {len(found)} learning rates "
            f"({[float(r.learning_rate) for r in found]}); read the one you mean from its part of the state."
        )
    return float(found[0].learning_rate)


OPTIMIZERS: dict[str, Callable[..., GradientTransformation]] = {
    "sgd": sgd,
    "momentum": momentum,
    "adam": adam,
    "adamw": adamw,
    "rmsprop": rmsprop,
}


def optimizer_from_name(name: str, lr: ScalarOrSchedule, **kwargs: Any) -> GradientTransformation:
    """Resolve a name from :data:`OPTIMIZERS` into an optimizer, at the edge (the CLI).

    ``optimizer_from_name("adamw", 1e-3, weight_decay=1e-4)`` is ``adamw(1e-3, weight_decay=1e-4)``.

    >>> opt = optimizer_from_name("adam", 1e-3)
    >>> learning_rate(opt.init(np.zeros(1)))
    0.001
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid names: {', '.join(sorted(OPTIMIZERS))}.")
    try:
        return OPTIMIZERS[name](lr, **kwargs)
    except TypeError as e:
        raise TypeError(f"optimizer {name!r}: {e}; see help(fnn.{OPTIMIZERS[name].__name__}) for its arguments.") from e
