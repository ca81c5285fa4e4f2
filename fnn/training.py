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
from fnn import layers, validate
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
    evaluate,
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

    ``flat``: every field of every layer is an array or a scalar, so updates can rebuild the
    records field by field instead of flattening whole trees; ``params[i]`` says which fields
    of layer ``i`` are parameters (``None`` for a layer without any), ``where`` lists them as
    ``(layer, field)`` pairs.
    """

    rules: tuple[layers.Rule, ...]
    keyed: bool
    stateful: bool
    ctxs: tuple[Context, ...]
    flat: bool
    params: tuple[tuple[bool, ...] | None, ...]
    where: tuple[tuple[int, int], ...]


def _plan(params: Params) -> _Plan:
    rules_ = rules(params)
    masks = tuple(tuple(layers.is_param(f) for f in layer) for layer in params)
    flat = not any(isinstance(f, (tuple, list, dict)) for layer in params for f in layer)
    return _Plan(
        rules_,
        any(r.context for r in rules_),
        any(r.update is not None for r in rules_),
        contexts(params, True, None),
        flat,
        tuple(m if any(m) else None for m in masks),
        tuple((i, j) for i, mask in enumerate(masks) for j, m in enumerate(mask) if m),
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


def _thaw(params: Params, plan: _Plan) -> Params:
    """Private, writeable copies of every parameter array, for an epoch's in-place steps."""
    return tuple(
        layer if mask is None else type(layer)(*[p.copy() if m else p for p, m in zip(layer, mask)])
        for layer, mask in zip(params, plan.params)
    )


class _InPlace:
    """An epoch's private working state, which no caller ever sees.

    The params are private copies updated in place; ``scratch`` (plain SGD only) holds
    ``-lr * grads``. ``bound`` is an upper bound on the params' norm (twice the float sum of
    squares' root, grown by twice each step's norm): while it stays below ``safe`` (a quarter
    of the dtype's largest value), an update with a finite norm cannot make a parameter
    NaN or inf, so the divergence check costs one sum of squares of the update.
    """

    __slots__ = ("params", "arrays", "scratch", "bound", "safe")

    def __init__(self, params: Params, plan: _Plan, sgd: bool) -> None:
        self.params = _thaw(params, plan)
        self.arrays = _arrays(self.params, plan)
        self.scratch = [np.empty_like(a) for a in self.arrays] if sgd else None
        self.safe = float(np.finfo(validate.param_dtype(params)).max) / 4
        self.bound = 2 * math.sqrt(_sum_squares(self.arrays))


def _arrays(params: Params, plan: _Plan) -> list[np.ndarray]:
    """The parameter arrays of a network whose records are flat, in order."""
    return [params[i][j] for i, j in plan.where]


def _sum_squares(arrays: list[np.ndarray]) -> float:
    return sum(float(np.vdot(a, a)) for a in arrays)  # BLAS: inf or NaN on overflow, without flags


def _scaled(grads: list[np.ndarray], lr: float, out: list[np.ndarray]) -> list[np.ndarray]:
    """``grads * -lr`` (as :func:`_sgd` computes it) written into the arrays ``out``; returns ``out``."""
    for g, o in zip(grads, out):
        np.multiply(g, np.asarray(-lr, g.dtype), out=o)
    return out


def _add_in_place(deltas: list[np.ndarray], work: _InPlace, check: bool) -> bool:
    """``work``'s params ``+= deltas``, the bits of ``params + deltas``; with ``check``, only if every
    new parameter is finite (else ``False``, with the params untouched)."""
    pairs = list(zip(work.arrays, deltas))
    if check:
        norm = math.sqrt(_sum_squares([d for _, d in pairs]))
        if not work.bound + 2 * norm < work.safe:  # also when norm is NaN: test exactly
            if not all(validate.all_finite(p + d) for p, d in pairs):
                return False
            for p, d in pairs:
                np.add(p, d, out=p)
            work.bound = 2 * math.sqrt(_sum_squares([p for p, _ in pairs]))
            return True
        work.bound += 2 * norm
    for p, d in pairs:
        np.add(p, d, out=p)
    return True


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


def _step(
    plan: _Plan, settings: Settings, state: TrainState, batch: Batch, work: _InPlace | None = None
) -> tuple[TrainState, float]:
    """:func:`step`, given the epoch's plan; with ``work``, ``state.params`` are an epoch's private
    copies and are updated in place (see :func:`epoch`)."""
    x, y = batch
    params = state.params
    if plan.keyed:
        ctxs = contexts(params, True, fr.fold_in(fr.fold_in(state.key, state.epoch), state.step))
    else:
        ctxs = plan.ctxs
    if settings.value_and_grad is None:
        xs: list[np.ndarray] | None = trace(params, x, ctxs, plan.rules)
        value, dy = value_and_grad(settings.cost, xs[-1], y)  # type: ignore[index]
        grads = backprop(params, xs, dy, ctxs, plan.rules)  # type: ignore[arg-type]
    else:
        value, grads = settings.value_and_grad(params, (x, y), settings.cost, ctxs)
        xs = None
    if not math.isfinite(value) and settings.on_divergence == "raise":
        raise DivergenceError(state.epoch + 1, state.step + 1, value, state)
    if work is not None:
        del xs, dy  # the activations are done with: free them before the optimizer's arrays are made
        if work.scratch is not None:
            deltas, opt_state = _scaled(_arrays(grads, plan), settings.lr or 0.0, work.scratch), state.opt_state
        else:
            updates, opt_state = settings.optimizer.update(grads, state.opt_state, params)
            deltas = _arrays(updates, plan)
        del grads
        if not _add_in_place(deltas, work, settings.on_divergence == "raise"):
            raise DivergenceError(state.epoch + 1, state.step + 1, value, state, params=True)
        return state._replace(opt_state=opt_state, step=state.step + 1), value
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
    out = evaluate(params, x)
    labels = y if y.ndim == 1 else y.argmax(axis=-1)
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
    params once into private arrays and updates those in place instead of allocating new ones
    each step; the result, frozen, is bit-identical to folding :func:`step` (which is what
    ``on_batch`` sees).
    """
    plan = _plan(state.params)  # rules and structure looked up once, not per step
    private = on_batch is None and plan.flat and not plan.stateful and settings.value_and_grad is None
    work = _InPlace(state.params, plan, settings.optimizer is None) if private else None

    def fold(carry: tuple[TrainState, float, int], batch: Batch) -> tuple[TrainState, float, int]:
        s, total, n = carry
        s, value = _step(plan, settings, s, batch, work)
        if on_batch is not None:
            on_batch(s, value)
        return s, total + value * len(batch[0]), n + len(batch[0])

    start = state if work is None else state._replace(params=work.params)
    order = fr.fold_in(state.key, state.epoch)
    # Overflow shows up as an inf or NaN loss, which step reports as a DivergenceError.
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            s, total, n = toolz.reduce(fold, fdata.batches(order, data, settings.batch_size), (start, 0.0, 0))
    except DivergenceError as e:
        if private and e.state is not None:
            e.state = e.state._replace(params=freeze(e.state.params))  # the last good params, now the caller's
        raise
    if private:
        s = s._replace(params=freeze(s.params))  # the private buffers become the caller's, read-only
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

