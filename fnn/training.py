"""Training as a fold: a step folds over minibatches, an epoch folds over steps.

The whole run is carried in a :class:`TrainState`: the params, the optimizer
state, the root key, the counts of epochs and steps done, and the history of
per-epoch statistics. Everything that decides the result is in it, so a run
resumed from a saved state ends bit-identical to one that never stopped.

- :func:`step` is one minibatch: ``TrainState -> TrainState``.
- :func:`epoch` is ``toolz.reduce(step, batches)`` with the batch order drawn
  from ``fold_in(state.key, state.epoch)``, then one :class:`EpochStats`.
- :func:`training` is the lazy sequence of states after each epoch
  (``toolz.iterate(epoch, state)``); compose it with ``toolz.take``,
  ``takewhile`` or ``accumulate``.
- :func:`train` is the fold of :func:`epoch` over the epochs.

Without an ``optimizer``, a step is plain :func:`fnn.sgd_step` with ``lr``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import toolz

from fnn import data as fdata
from fnn import layers, optim, validate
from fnn import random as fr
from fnn import tree as ft
from fnn.costs import Cost, mse, value_and_grad
from fnn.layers import Context
from fnn.network import (
    Batch,
    Params,
    _step_leaf,
    backprop,
    contexts,
    eval_forward,
    first_with_params,
    freeze,
    rules,
    trace,
    updated_state,
)

__all__ = [
    "EpochStats",
    "TrainState",
    "Settings",
    "DivergenceError",
    "init_state",
    "step",
    "epoch",
    "training",
    "train",
]


class EpochStats(NamedTuple):
    """What one epoch did: its number (from 1), mean training loss, and validation metrics."""

    epoch: int
    loss: float
    val_loss: float | None = None
    val_accuracy: float | None = None


class TrainState(NamedTuple):
    """Everything a run needs to continue: a pytree, saved and restored exactly by :func:`fnn.save`."""

    params: Params
    opt_state: Any
    key: np.ndarray
    epoch: int
    step: int
    history: tuple[EpochStats, ...] = ()


class Settings(NamedTuple):
    """The fixed parts of a run that every step shares (nothing here changes during training)."""

    cost: Cost = mse
    optimizer: Any = None
    lr: float | None = None
    batch_size: int = 32
    on_divergence: str = "raise"
    value_and_grad: Callable[..., tuple[float, Params]] | None = None


class DivergenceError(FloatingPointError):
    """The training loss, or the parameters after a step, became NaN or inf.

    ``epoch`` and ``step`` count from 1 (``step`` over the whole run), ``value`` is the
    batch loss, and ``state`` is the :class:`TrainState` before the failing step: its
    params are finite, ready to save as the last good checkpoint.
    """

    def __init__(
        self, epoch: int, step: int, value: float, state: TrainState | None = None, params: bool = False
    ) -> None:
        what = (
            f"the parameters became NaN or inf (the batch loss was {value})" if params else f"the loss became {value}"
        )
        super().__init__(
            f"training diverged: {what} in epoch {epoch}, step {step}. "
            "Try a smaller learning rate (or clip gradients with fnn.clip_by_global_norm); "
            "pass on_divergence='continue' to keep going regardless."
        )
        self.epoch, self.step, self.value, self.state = epoch, step, value, state


def init_state(params: Params, optimizer: Any = None, seed: fr.KeyLike = 0) -> TrainState:
    """The state before the first epoch.

    >>> import fnn
    >>> s = init_state(fnn.mlp([2, 2]), seed=0)
    >>> s.epoch, s.step, s.opt_state
    (0, 0, ())
    """
    return TrainState(params, () if optimizer is None else optimizer.init(params), fr.key(seed), 0, 0, ())


class _Plan(NamedTuple):
    """What every step of an epoch needs to know about the network, worked out once per epoch.

    ``flat``: no parameter sits inside a container field (settings such as Conv2D's padding
    may be tuples), so updates can rebuild the records field by field instead of flattening
    whole trees; ``params[i]`` says which fields of layer ``i`` are parameters (``None`` for a
    layer without any), ``where`` lists them as ``(layer, field)`` pairs; ``first`` is the first
    layer with parameters, where backpropagation stops.
    """

    rules: tuple[layers.Rule, ...]
    keyed: bool
    stateful: bool
    ctxs: tuple[Context, ...]
    flat: bool
    params: tuple[tuple[bool, ...] | None, ...]
    where: tuple[tuple[int, int], ...]
    first: int


def _plan(params: Params) -> _Plan:
    rules_ = rules(params)
    masks = tuple(tuple(layers.is_param(f) for f in layer) for layer in params)
    nested = (f for layer in params for f in layer if isinstance(f, (tuple, list, dict)))
    flat = not any(layers.is_param(leaf) for f in nested for leaf in ft.leaves(f))
    return _Plan(
        rules_,
        any(r.context for r in rules_),
        any(r.update is not None for r in rules_),
        contexts(params, True, None),
        flat,
        tuple(m if any(m) else None for m in masks),
        tuple((i, j) for i, mask in enumerate(masks) for j, m in enumerate(mask) if m),
        first_with_params(params),
    )


def _add_updates(params: Params, updates: Params, plan: _Plan) -> Params:
    """``apply_updates(params, updates)`` for a network, one record at a time (trusted inputs)."""
    if not plan.flat:
        return ft.map(_step_leaf, params, updates)
    return tuple(
        layer if mask is None else type(layer)(*[_step_leaf(p, u) if m else p for p, u, m in zip(layer, upd, mask)])
        for layer, upd, mask in zip(params, updates, plan.params)
    )


def _sgd(params: Params, grads: Params, lr: float, plan: _Plan) -> Params:
    """``sgd_step(params, grads, lr)`` for a network, one record at a time (trusted inputs)."""
    if not plan.flat:
        return ft.map(lambda p, g: _step_leaf(p, g * np.asarray(-lr, g.dtype)) if layers.is_param(p) else p,
                      params, grads)
    return tuple(
        layer if mask is None else type(layer)(
            *[_step_leaf(p, g * np.asarray(-lr, g.dtype)) if m else p for p, g, m in zip(layer, grad, mask)]
        )
        for layer, grad, mask in zip(params, grads, plan.params)
    )


_ALIGN = 64  # bytes: each private parameter starts on a cache line
_CHUNK = 1 << 15  # elements per pass of the fused step on a large network: well inside the L2 cache


class _Diverged(Exception):
    """An optimizer's in-place step made a parameter NaN or inf: the epoch is replayed on the public path."""


def _buffer(arrays: list[np.ndarray], dtype: np.dtype) -> tuple[np.ndarray, list[np.ndarray]]:
    """A zero buffer with an aligned place for every array, and a view shaped like each (the gaps stay zero)."""
    per = _ALIGN // dtype.itemsize
    sizes = [-(-a.size // per) * per for a in arrays]
    raw = np.zeros(sum(sizes) + per, dtype)
    buf = raw[(-raw.ctypes.data % _ALIGN) // dtype.itemsize :][: sum(sizes)]
    starts = np.cumsum([0, *sizes[:-1]]).tolist()
    return buf, [buf[s : s + a.size].reshape(a.shape) for s, a in zip(starts, arrays)]


class _Private:
    """An epoch's private working state, which no caller ever sees.

    ``params`` is the network with its parameters copied into one aligned buffer (``arrays``:
    their views, in flatten order); each step adds ``updates * factor`` to them in place, with
    the bits of ``params + updates * factor``. A small network steps in one pass over the whole
    buffer (``tmp`` has its layout), a large one in ``pieces``: cache-sized chunks of each array.

    Plain SGD (``form`` ``None``) is the factor ``-lr`` on the gradients; nothing is written
    before the step is known to keep the params finite. An optimizer runs in its in-place form
    (:class:`fnn.optim._InPlace`) on ``work``, private copies of its state, which it moves before
    the params are checked: when a step leaves a parameter NaN or inf, :class:`_Diverged` sends
    :func:`epoch` back to fold the public :func:`step` from the epoch's start (costs and layers
    are pure functions, so the replay is the same computation), which raises the error.

    ``bound`` is an upper bound on the params' norm (twice the float sum of squares' root,
    grown by twice each step's norm): while it stays below ``safe`` (a quarter of the dtype's
    largest value), a step with a finite norm cannot make a parameter NaN or inf, so the
    divergence check costs one sum of squares of the step.
    """

    __slots__ = ("params", "arrays", "buffer", "tmp", "tmp_views", "pieces", "form", "work", "c", "bound", "safe")

    def __init__(self, state: TrainState, plan: _Plan, settings: Settings, form: Any, work: Any) -> None:
        originals = _arrays(state.params, plan)
        dtype = originals[0].dtype
        self.buffer, self.arrays = _buffer(originals, dtype)
        for a, p in zip(self.arrays, originals):
            np.copyto(a, p)
        it = iter(self.arrays)
        self.params = tuple(
            layer if mask is None else type(layer)(*[next(it) if m else f for f, m in zip(layer, mask)])
            for layer, mask in zip(state.params, plan.params)
        )
        if self.buffer.size <= _CHUNK:
            self.tmp, self.tmp_views = _buffer(self.arrays, dtype)
            self.pieces: list[tuple[int, int, int, np.ndarray, np.ndarray]] = []
        else:
            self.tmp, self.tmp_views = np.empty(_CHUNK, dtype), []
            self.pieces = [
                (i, lo, min(lo + _CHUNK, a.size), a.reshape(-1)[lo : lo + _CHUNK], self.tmp[: min(_CHUNK, a.size - lo)])
                for i, a in enumerate(self.arrays)
                for lo in range(0, a.size, _CHUNK)
            ]
        self.form, self.work = form, work
        self.c = np.asarray(-(settings.lr or 0.0), dtype)  # plain SGD's factor, as sgd_step makes it
        self.safe = float(np.finfo(dtype).max) / 4
        self.bound = 0.0
        self._rebound()

    @classmethod
    def start(cls, state: TrainState, plan: _Plan, settings: Settings) -> _Private | None:
        """The private state for an epoch, or ``None`` when the epoch must fold the public :func:`step`."""
        if not plan.flat or plan.stateful or settings.value_and_grad is not None or not plan.where:
            return None
        if len({state.params[i][j].dtype for i, j in plan.where}) > 1:  # one buffer holds one dtype
            return None
        if settings.optimizer is None:
            return cls(state, plan, settings, None, None)
        form = optim._in_place(settings.optimizer)  # a transformation of your own has none: it might keep params
        if form is None:
            return None
        leaves, treedef = ft.flatten(state.params)
        where = tuple(k for k, leaf in enumerate(leaves) if layers.is_param(leaf))
        work = form.thaw(state.opt_state, optim._Layout(treedef, where, tuple(leaves[k] for k in where)))
        return None if work is None else cls(state, plan, settings, form, work)

    def _rebound(self) -> None:
        self.bound = 2 * math.sqrt(float(np.vdot(self.buffer, self.buffer)))  # BLAS: inf or NaN on overflow

    def _proves_finite(self, norm: float) -> bool:
        """Whether a step of this norm cannot make a parameter NaN or inf (the bound then grows by it)."""
        if self.bound + 2 * norm < self.safe:  # False when norm is NaN
            self.bound += 2 * norm
            return True
        return False

    def _fill(self, u: list[np.ndarray], c: np.ndarray | None) -> None:
        """``tmp = u * c`` (``u`` for ``c`` ``None``), a small network's whole step."""
        for a, t in zip(u, self.tmp_views):
            np.copyto(t, a) if c is None else np.multiply(a, c, out=t)

    def _add_chunks(self, u: list[np.ndarray], c: np.ndarray | None) -> float:
        """``params += u * c`` a chunk at a time, as ``params + u * c``; returns the step's sum of squares."""
        flat = [a.reshape(-1) for a in u]
        square = 0.0
        for i, lo, hi, p, t in self.pieces:
            np.copyto(t, flat[i][lo:hi]) if c is None else np.multiply(flat[i][lo:hi], c, out=t)
            np.add(p, t, out=p)
            square += float(np.vdot(t, t))
        return square

    def _opt_step(self, grads: list[np.ndarray], check: bool) -> bool:
        """The optimizer's in-place step on the private params; raises :class:`_Diverged` when it
        leaves a parameter NaN or inf."""
        u, c = self.form.step(self.work, grads, self.arrays)
        factor = None if c is None else np.asarray(c, self.buffer.dtype)
        if self.pieces:
            square = self._add_chunks(u, factor)
        else:
            self._fill(u, factor)
            np.add(self.buffer, self.tmp, out=self.buffer)
            square = float(np.vdot(self.tmp, self.tmp)) if check else 0.0
        if check and not self._proves_finite(math.sqrt(square)):
            if not all(validate.all_finite(a) for a in self.arrays):
                raise _Diverged
            self._rebound()
        return True

    def _sgd(self, grads: list[np.ndarray], check: bool) -> bool:
        """A plain SGD step on the private params; ``False``, with nothing written, when it would make
        a parameter NaN or inf."""
        c = self.c
        if not self.pieces:
            for g, t in zip(grads, self.tmp_views):
                np.multiply(g, c, out=t)
            if check and not self._proves_finite(math.sqrt(float(np.vdot(self.tmp, self.tmp)))):
                if not all(validate.all_finite(p + t) for p, t in zip(self.arrays, self.tmp_views)):
                    return False
                np.add(self.buffer, self.tmp, out=self.buffer)
                self._rebound()
                return True
            np.add(self.buffer, self.tmp, out=self.buffer)
            return True
        # |fl(g * c)| <= |g| |c| (1 + eps): the gradients' norm bounds the step's before it is taken
        if check and not self._proves_finite(abs(float(c)) * math.sqrt(sum(float(np.vdot(g, g)) for g in grads))):
            new = [p + g * c for p, g in zip(self.arrays, grads)]
            if not all(validate.all_finite(a) for a in new):
                return False
            for p, a in zip(self.arrays, new):
                np.copyto(p, a)
            self._rebound()
            return True
        self._add_chunks(grads, c)
        return True

    def finish(self, state: TrainState, steps: int) -> TrainState:
        """``state`` after ``steps`` private steps: the buffers become the caller's, read-only."""
        opt_state = state.opt_state if self.form is None else self.form.freeze(self.work)
        freeze(self.params)
        self.buffer.flags.writeable = False
        if self.buffer.base is not None:
            self.buffer.base.flags.writeable = False
        return state._replace(params=self.params, opt_state=opt_state, step=state.step + steps)

    def run(self, state: TrainState, data: Batch, settings: Settings, plan: _Plan) -> tuple[TrainState, float, int]:
        """Every step of the epoch on the private arrays: ``(state after, summed loss, examples)``."""
        params, rules_, check, ctxs = self.params, plan.rules, settings.on_divergence == "raise", plan.ctxs
        cost = settings.cost
        fused = cost.value_and_grad or (lambda pred, y: value_and_grad(cost, pred, y))  # looked up once
        step = self._sgd if self.form is None else self._opt_step
        order = fr.fold_in(state.key, state.epoch)
        steps, total, n = 0, 0.0, 0
        for x, y in fdata.batches(order, data, settings.batch_size):
            if plan.keyed:
                ctxs = contexts(params, True, fr.fold_in(order, state.step + steps))
            xs = trace(params, x, ctxs, rules_)
            value, dy = fused(xs[-1], y)
            grads = _arrays(backprop(params, xs, dy, ctxs, rules_, plan.first), plan)
            del xs, dy  # the activations are done with: free them before the optimizer's arrays are made
            if check and not math.isfinite(value):
                raise DivergenceError(state.epoch + 1, state.step + steps + 1, value, self.finish(state, steps))
            if not step(grads, check):
                raise DivergenceError(state.epoch + 1, state.step + steps + 1, value, self.finish(state, steps),
                                      params=True)
            del grads
            steps, total, n = steps + 1, total + value * len(y), n + len(y)
        return self.finish(state, steps), total, n


def _arrays(params: Params, plan: _Plan) -> list[np.ndarray]:
    """The parameter arrays of a network whose records are flat, in order."""
    return [params[i][j] for i, j in plan.where]


def _finite(params: Params, plan: _Plan) -> bool:
    """Whether every parameter array is finite: one sum of squares, the exact test only if it overflows."""
    if not plan.flat:
        arrays = [p for p in ft.leaves(params) if layers.is_param(p)]
    else:
        arrays = [p for layer, mask in zip(params, plan.params) if mask is not None for p, m in zip(layer, mask) if m]
    if math.isfinite(sum(float(np.vdot(p, p)) for p in arrays)):
        return True
    return all(validate.all_finite(p) for p in arrays)


def step(state: TrainState, batch: Batch, settings: Settings) -> tuple[TrainState, float]:
    """One minibatch: forward, backward, update. Returns the new state and the batch loss.

    Trusts its inputs (``train`` and ``training`` validate them once); layers with a
    training mode run in it, with the key ``fold_in(fold_in(state.key, epoch), step)``.
    """
    return _step(_plan(state.params), settings, state, batch)


def _step(plan: _Plan, settings: Settings, state: TrainState, batch: Batch) -> tuple[TrainState, float]:
    """:func:`step`, given the epoch's plan."""
    x, y = batch
    params = state.params
    if plan.keyed:
        ctxs = contexts(params, True, fr.fold_in(fr.fold_in(state.key, state.epoch), state.step))
    else:
        ctxs = plan.ctxs
    if settings.value_and_grad is None:
        xs: list[np.ndarray] | None = trace(params, x, ctxs, plan.rules)
        value, dy = value_and_grad(settings.cost, xs[-1], y)  # type: ignore[index]
        grads = backprop(params, xs, dy, ctxs, plan.rules, plan.first)  # type: ignore[arg-type]
    else:
        value, grads = settings.value_and_grad(params, (x, y), settings.cost, ctxs)
        xs = None
    if not math.isfinite(value) and settings.on_divergence == "raise":
        raise DivergenceError(state.epoch + 1, state.step + 1, value, state)
    if xs is not None and not plan.stateful:
        del xs, dy  # the activations are done with: free them before the optimizer's arrays are made
        xs = None
    if settings.optimizer is None:
        new_params, opt_state = _sgd(params, grads, settings.lr or 0.0, plan), state.opt_state
    else:
        updates, opt_state = settings.optimizer.update(grads, state.opt_state, params)
        new_params = _add_updates(params, updates, plan)
    if xs is not None and plan.stateful:
        new_params = freeze(updated_state(new_params, xs, ctxs, before=params))
    if settings.on_divergence == "raise" and not _finite(new_params, plan):
        raise DivergenceError(state.epoch + 1, state.step + 1, value, state, params=True)
    return state._replace(params=new_params, opt_state=opt_state, step=state.step + 1), value


def _evaluate(params: Params, validation: Batch | None, cost: Cost) -> tuple[float | None, float | None]:
    if validation is None:
        return None, None
    x, y = validation
    out = eval_forward(params, x)
    labels = y if y.ndim == out.ndim - 1 else y.argmax(axis=-1)  # per position for sequences
    return cost.value(out, y), float((out.argmax(axis=-1) == labels).mean())


def epoch(
    state: TrainState,
    data: Batch,
    settings: Settings,
    validation: Batch | None = None,
    on_batch: Callable[[TrainState, float], Any] | None = None,
) -> TrainState:
    """One pass over ``data`` in an order drawn from ``fold_in(state.key, state.epoch)``.

    ``on_batch(state, loss)``, if given, sees every step's state; it cannot change the result.

    Without ``on_batch``, no caller can see the states between steps, so the epoch copies the
    params and the optimizer's state once into private arrays and updates those in place instead
    of allocating new ones each step (for plain SGD and the optimizers of :mod:`fnn.optim`; one of
    your own runs through its ``update``). The result, frozen, is bit-identical to folding
    :func:`step` (which is what ``on_batch`` sees). Should a step diverge, the epoch is run again
    by folding :func:`step`, which raises the :class:`DivergenceError` with the state before it.
    """
    plan = _plan(state.params)  # rules and structure looked up once, not per step

    def fold(carry: tuple[TrainState, float, int], batch: Batch) -> tuple[TrainState, float, int]:
        s, total, n = carry
        s, value = _step(plan, settings, s, batch)
        if on_batch is not None:
            on_batch(s, value)
        return s, total + value * len(batch[0]), n + len(batch[0])

    work = _Private.start(state, plan, settings) if on_batch is None else None
    # Overflow shows up as an inf or NaN loss, which step reports as a DivergenceError.
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            done = None if work is None else work.run(state, data, settings, plan)
        except _Diverged:
            done = None
        if done is None:
            order = fr.fold_in(state.key, state.epoch)
            done = toolz.reduce(fold, fdata.batches(order, data, settings.batch_size), (state, 0.0, 0))
    s, total, n = done
    val_loss, val_acc = _evaluate(s.params, validation, settings.cost)
    stats = EpochStats(state.epoch + 1, total / n, val_loss, val_acc)
    return s._replace(epoch=state.epoch + 1, history=state.history + (stats,))


def _prepare(
    params: Params,
    data: Batch,
    *,
    batch_size: int,
    lr: float | None,
    optimizer: Any,
    cost: Cost,
    validation: Batch | None,
    on_divergence: str,
) -> tuple[Batch, Settings, Batch | None]:
    validate.network(params)
    cost = validate.cost(cost)
    batch_size = validate.positive_int(batch_size, "batch_size")
    if optimizer is None:
        if lr is None:
            raise ValueError("train needs a learning rate or an optimizer: pass lr=0.1, or optimizer=fnn.adam(1e-3).")
        lr = validate.learning_rate(lr)
    elif lr is not None:
        raise ValueError("pass either lr= (plain SGD) or optimizer=, not both; the optimizer holds its own rate.")
    else:
        validate.optimizer(optimizer)
    if on_divergence not in ("raise", "continue"):
        raise ValueError(f"on_divergence must be 'raise' or 'continue', got {on_divergence!r}.")
    data = validate.batch(params, data, cost, name="data")
    if validation is not None:
        validation = validate.batch(params, validation, cost, name="validation")
    return data, Settings(cost, optimizer, lr, batch_size, on_divergence), validation


def _data_parallel(
    params: Params, data: Batch, settings: Settings, executor: Any, shards: int | None
) -> tuple[Batch, Settings]:
    """Steps computed in shards on ``executor`` (see :mod:`fnn.parallel`): epochs fold over row indices."""
    if executor is None:
        raise ValueError(f"shards={shards!r} needs an executor; pass e.g. executor=client.get_executor().")
    from fnn import parallel

    rows, hook = parallel.data_parallel(params, data, executor, shards)
    return rows, settings._replace(value_and_grad=hook)


def training(
    params: Params,
    data: Batch,
    *,
    batch_size: int,
    lr: float | None = None,
    optimizer: Any = None,
    cost: Cost = mse,
    seed: fr.KeyLike = 0,
    validation: Batch | None = None,
    initial_state: TrainState | None = None,
    on_divergence: str = "raise",
    executor: Any = None,
    shards: int | None = None,
    on_batch: Callable[[TrainState, float], Any] | None = None,
) -> Iterator[TrainState]:
    """The lazy, endless sequence of training states, one after each epoch.

    Inputs are validated once, here. Take what you need with toolz:

    >>> import fnn, numpy as np, toolz
    >>> x = np.eye(4, dtype=np.float32); y = np.arange(4)
    >>> states = training(fnn.mlp([4, 4]), (x, y), batch_size=2, lr=1.0)
    >>> [s.epoch for s in toolz.take(3, states)]
    [1, 2, 3]
    """
    data, settings, validation = _prepare(
        params, data, batch_size=batch_size, lr=lr, optimizer=optimizer, cost=cost,
        validation=validation, on_divergence=on_divergence,
    )
    if executor is not None or shards is not None:
        data, settings = _data_parallel(params, data, settings, executor, shards)
    state = init_state(params, optimizer, seed) if initial_state is None else initial_state
    run_epoch = partial(epoch, data=data, settings=settings, validation=validation, on_batch=on_batch)
    return toolz.drop(1, toolz.iterate(run_epoch, state))


def _best_by_patience(states: Iterable[TrainState], patience: int) -> Iterator[TrainState]:
    """States until validation loss has not improved for ``patience`` epochs; the last has the best params."""
    best: TrainState | None = None
    best_loss, waited = math.inf, 0
    for s in states:
        loss_ = s.history[-1].val_loss
        if loss_ is None:
            raise ValueError("patience needs validation data: pass validation=(x_val, y_val).")
        if loss_ < best_loss:
            best, best_loss, waited = s, loss_, 0
            yield s
        else:
            waited += 1
            yield s if waited < patience else s._replace(params=best.params)  # type: ignore[union-attr]
            if waited >= patience:
                return


def train(
    params: Params,
    data: Batch,
    *,
    epochs: int,
    batch_size: int,
    lr: float | None = None,
    optimizer: Any = None,
    cost: Cost = mse,
    seed: fr.KeyLike = 0,
    validation: Batch | None = None,
    initial_state: TrainState | None = None,
    patience: int | None = None,
    observers: Iterable[Callable[[TrainState], Any]] = (),
    on_divergence: str = "raise",
    executor: Any = None,
    shards: int | None = None,
    on_batch: Callable[[TrainState, float], Any] | None = None,
) -> tuple[Params, tuple[EpochStats, ...]]:
    """Train a network; returns ``(params, history)``.

    A fold of :func:`epoch` over the epochs, starting from ``init_state(params, optimizer, seed)``
    or from ``initial_state`` (a saved :class:`TrainState`) to resume. ``epochs`` is the total:
    a state that has done 3 epochs trains 2 more for ``epochs=5``.

    Args:
      params: the network, a tuple of layer records.
      data: ``(x, y)``, ``x: (n, features)``, ``y`` integer labels ``(n,)`` or targets ``(n, n_out)``.
      epochs, batch_size: positive ints. A ``batch_size`` larger than the data gives one batch per epoch.
      lr: the rate of plain SGD (``params - lr * grads``); or give ``optimizer``, e.g. ``fnn.adam(1e-3)``.
      cost: e.g. :data:`fnn.mse` or :data:`fnn.cross_entropy`.
      seed: drives the minibatch order and random layers; same seed, same bits.
      validation: ``(x_val, y_val)`` to record validation loss and accuracy each epoch.
      patience: stop after this many epochs without a better validation loss, returning the best params.
      on_batch: ``on_batch(state, loss)`` after every minibatch (a progress bar); like observers,
        it sees the run but cannot change it.
      observers: functions called with the state after each epoch (logging, checkpoints);
        they see the run but cannot change it.
      on_divergence: ``"raise"`` (default) a :class:`DivergenceError` naming the epoch and step when
        the loss becomes NaN or inf, or ``"continue"``.
      executor, shards: compute every step's gradient in ``shards`` pieces on a
        ``concurrent.futures`` executor (e.g. Dask's ``client.get_executor()``); equal to the
        single-process run within :data:`fnn.parallel.TOLERANCE` per step. See :mod:`fnn.parallel`.

    Returns:
      The trained params (read-only arrays) and one :class:`EpochStats` per epoch.

    >>> import fnn, numpy as np
    >>> x = np.eye(4, dtype=np.float32); y = np.arange(4)
    >>> trained, history = fnn.train(fnn.mlp([4, 4]), (x, y), epochs=3, batch_size=2, lr=1.0)
    >>> [h.epoch for h in history]
    [1, 2, 3]
    """
    epochs = validate.positive_int(epochs, "epochs")
    validate.network(params)
    validate.optimizer(optimizer)
    if patience is not None:
        patience = validate.positive_int(patience, "patience")
    start = init_state(params, optimizer, seed) if initial_state is None else initial_state
    states = training(
        params, data, batch_size=batch_size, lr=lr, optimizer=optimizer, cost=cost, seed=seed,
        validation=validation, initial_state=start, on_divergence=on_divergence,
        executor=executor, shards=shards, on_batch=on_batch,
    )
    states = toolz.take(max(epochs - start.epoch, 0), states)
    if patience is not None:
        states = _best_by_patience(states, validate.positive_int(patience, "patience"))
    observers = tuple(observers)

    def observe(_: TrainState, s: TrainState) -> TrainState:
        for watch in observers:
            watch(s)
        return s

    final = toolz.reduce(observe, states, start)
    return final.params, final.history

