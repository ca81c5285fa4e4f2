"""Training as a fold: a step folds over minibatches, an epoch folds over steps.

The whole run is carried in a :class:`TrainState`: the params, the optimizer
state, the root key, the counts of epochs and steps done, and the history of
per-epoch statistics. Everything that decides the result is in it, so a run
resumed from a saved state ends bit-identical to one that never stopped (all
but the wall times, :attr:`EpochStats.seconds`, which measure the machine).

- :func:`step` is one minibatch: ``TrainState -> TrainState``.
- :func:`epoch` is ``toolz.reduce(step, batches)`` with the batch order drawn
  from ``fold_in(state.key, state.epoch)``, then one :class:`EpochStats`.
- :func:`training` is the lazy sequence of states after each epoch
  (``toolz.iterate(epoch, state)``); compose it with ``toolz.take``,
  ``takewhile`` or ``accumulate``.
- :func:`train` is the fold of :func:`epoch` over the epochs.

Without an ``optimizer``, a step is plain SGD, ``params - lr * grads``. Backpropagation is
linear in the output gradient, so the step backpropagates ``-lr * dy`` and adds what comes
out: the math of :func:`fnn.sgd_step` with one small multiplication instead of one per
parameter array (the last bit of a weight can round differently).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import toolz

from fnn import data as fdata
from fnn import heap, layers, metrics, network, optim, validate
from fnn import random as fr
from fnn import tree as ft
from fnn.costs import Cost, mse, value_and_grad
from fnn.network import (
    Batch,
    Params,
    backprop,
    contexts,
    eval_forward,
    trace,
    updated_state,
)
from fnn.stopping import early_stopping
from fnn.tree import freeze

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
    """What one epoch did.

    - ``epoch``: its number, from 1; ``loss``: the mean training loss over its steps.
    - ``val_loss``, ``val_accuracy``: on the validation data after the epoch (``None`` without it).
    - ``accuracy``: the running training accuracy, as Keras reports it: the fraction of the
      epoch's examples that the step training on them classified correctly (:func:`fnn.metrics.correct`
      on the step's own forward output, in training mode, the params changing from step to step;
      no extra pass). ``None`` when the steps ran on an executor (``executor=``), whose
      forward passes stay on the workers.
    - ``lr``: the learning rate of the epoch's last step (``lr`` for plain SGD,
      :func:`fnn.learning_rate` of the optimizer state after the epoch); ``None`` for an
      optimizer of your own that keeps no learning rate, or several.
    - ``seconds``: the wall time of the epoch, its evaluations included.
    """

    epoch: int
    loss: float
    val_loss: float | None = None
    val_accuracy: float | None = None
    accuracy: float | None = None
    lr: float | None = None
    seconds: float | None = None


class TrainState(NamedTuple):
    """Everything a run needs to continue: a pytree, saved and restored exactly by :func:`fnn.save`."""

    params: Params
    opt_state: Any
    key: np.ndarray
    epoch: int
    step: int
    history: tuple[EpochStats, ...] = ()


class Settings(NamedTuple):
    """The fixed parts of a run that every step shares (nothing here changes during training).

    ``value_and_grad(params, batch, cost, ctxs) -> (loss, grads)``, when given, replaces the
    step's own forward and backward pass (the data-parallel hook of ``train(executor=)``);
    ``plan`` is the network's :func:`fnn.network.plan`, which :func:`epoch` fills in once.
    """

    cost: Cost = mse
    optimizer: Any = None
    lr: float | None = None
    batch_size: int = 32
    on_divergence: str = "raise"
    value_and_grad: Callable[..., tuple[float, Params]] | None = None
    plan: network.Plan | None = None


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


def step(state: TrainState, batch: Batch, settings: Settings) -> tuple[TrainState, float]:
    """One minibatch: forward, backward, update.

    Returns:
      A pair ``(state, loss)``: the :class:`TrainState` after the step and the batch's mean
      loss (a float). Unpack it before the next step: ``state, loss = step(state, batch, settings)``.

    Trusts its inputs (``train`` validates them once) and uses ``settings.plan`` (``epoch`` works
    it out once; without one, the step does). Layers with a training mode run in it, keyed by
    ``fold_in(fold_in(state.key, epoch), step)``. With ``on_divergence="raise"``, a NaN or inf
    loss or parameter raises :class:`DivergenceError` carrying ``state``, the last finite one.
    The first step in a process has glibc keep freed memory for the next (:mod:`fnn.heap`).

    >>> import fnn, numpy as np
    >>> params = (fnn.Dense(np.ones((2, 1), np.float32), np.zeros(1, np.float32)),)
    >>> batch = (np.array([[1.0, 2.0]], np.float32), np.array([[0.0]], np.float32))
    >>> new, loss = step(init_state(params), batch, Settings(lr=0.1))
    >>> loss, new.step, new.params[0].w.ravel()
    (9.0, 1, array([ 0.39999998, -0.20000005], dtype=float32))
    """
    if not isinstance(state, TrainState):
        pair = " (step returns a pair (state, loss): unpack it, state, loss = fnn.step(...))" if (
            isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], TrainState)) else ""
        raise TypeError(
            f"step takes a fnn.TrainState, got {type(state).__name__}{pair}; start from fnn.init_state(params)."
        )
    new, value, _ = _step(state, batch, settings)
    return new, value


def _step(state: TrainState, batch: Batch, settings: Settings) -> tuple[TrainState, float, np.ndarray | None]:
    """:func:`step`, also returning the network's output on the batch (``None`` from a ``value_and_grad`` hook)."""
    heap.keep_freed()  # once per process: glibc keeps the memory this step frees for the next one
    plan = network.plan(state.params) if settings.plan is None else settings.plan
    x, y = batch
    params = state.params
    descent = -(settings.lr or 0.0)  # plain SGD's factor on the gradients
    if plan.keyed:
        ctxs = contexts(params, True, fr.fold_in(fr.fold_in(state.key, state.epoch), state.step))
    else:
        ctxs = plan.ctxs
    xs = out = None
    if settings.value_and_grad is None:
        xs = trace(params, x, ctxs, plan.rules)
        out = xs[-1]  # (batch, n_out)
        value, dy = value_and_grad(settings.cost, out, y)
        if settings.optimizer is None:  # backprop is linear in dy: -lr * dy gives the SGD updates, -lr * grads
            dy = dy * np.asarray(descent, dy.dtype)  # (batch, n_out)
        grads = backprop(params, xs, dy, ctxs, plan.rules, plan.first)
        del dy
        if not plan.stateful:
            xs = None  # the activations are done with: free them before the optimizer's arrays are made
    else:
        value, grads = settings.value_and_grad(params, (x, y), settings.cost, ctxs)
    check = settings.on_divergence == "raise"
    if check and not math.isfinite(value):
        raise DivergenceError(state.epoch + 1, state.step + 1, value, state)
    if settings.optimizer is None:
        opt_state = state.opt_state
        scale = None if settings.value_and_grad is None else descent  # the hook's are gradients
        new, finite = network.updated(params, grads, plan, scale, check and xs is None)
    else:
        updates, opt_state = settings.optimizer.update(grads, state.opt_state, params)
        del grads  # done with: its memory can hold the new params
        new, finite = network.updated(params, updates, plan, None, check and xs is None)
    if xs is not None:  # running statistics move from the values the batch ran through
        new = freeze(updated_state(new, xs, ctxs, before=params))
        finite = not check or all(validate.all_finite(a) for a in ft.leaves(new) if layers.is_param(a))
    if not finite:
        raise DivergenceError(state.epoch + 1, state.step + 1, value, state, params=True)
    return TrainState(new, opt_state, state.key, state.epoch, state.step + 1, state.history), value, out


def _positions(y: np.ndarray) -> int:
    """How many predictions the checked targets ``y`` label (one per example, or per example and step),
    counted from the shape: as many as :func:`fnn.network.label_classes` gives, without computing them."""
    return y.size if y.dtype.kind in "iu" else y[..., 0].size


def _evaluate(params: Params, validation: Batch | None, cost: Cost) -> tuple[float | None, float | None]:
    if validation is None:
        return None, None
    x, y = validation
    out = eval_forward(params, x)
    return cost.value(out, y), metrics.correct(params, out, y) / _positions(y)


def _last_rate(state: TrainState, settings: Settings) -> float | None:
    """The learning rate of the last step: plain SGD's ``lr``, or the optimizer state's (``None`` without one)."""
    if settings.optimizer is None:
        return settings.lr
    try:
        return optim.learning_rate(state.opt_state)
    except ValueError:  # an optimizer of your own, with no learning rate in its state (or several)
        return None


_Carry = tuple[TrainState, float, "int | None", int]  # state, loss sum, examples classified right (None: executor), n


def epoch(
    state: TrainState,
    data: Batch,
    settings: Settings,
    validation: Batch | None = None,
    on_batch: Callable[[TrainState, float], Any] | None = None,
) -> TrainState:
    """One pass over ``data`` in an order drawn from ``fold_in(state.key, state.epoch)``.

    ``toolz.reduce(step, batches)``: the network's plan is worked out once, here, and every
    step shares it. ``on_batch(state, loss)``, if given, sees every step's state (immutable:
    an array it sees is never changed afterwards); it cannot change the result.

    >>> import fnn, numpy as np
    >>> x, y = np.eye(4, dtype=np.float32), np.arange(4)
    >>> s = epoch(init_state(fnn.mlp([4, 4])), (x, y), Settings(lr=1.0, batch_size=2))
    >>> s.epoch, s.step, len(s.history)
    (1, 2, 1)
    """
    started = time.perf_counter()
    if settings.plan is None:
        settings = settings._replace(plan=network.plan(state.params))  # rules and places, once per epoch

    def fold(carry: _Carry, batch: Batch) -> _Carry:
        s, total, hits, n = carry
        before = s.params
        s, value, out = _step(s, batch, settings)
        if on_batch is not None:
            on_batch(s, value)
        y = batch[1]
        hits = None if out is None or hits is None else hits + metrics.correct(before, out, y)
        return s, total + value * len(y), hits, n + len(y)

    order = fr.fold_in(state.key, state.epoch)
    # Overflow shows up as an inf or NaN loss or parameter, which step reports as a DivergenceError.
    with np.errstate(over="ignore", invalid="ignore"):
        s, total, hits, n = toolz.reduce(fold, fdata.batches(order, data, settings.batch_size), (state, 0.0, 0, 0))
    val_loss, val_acc = _evaluate(s.params, validation, settings.cost)
    positions = _positions(data[1])  # the batches cover the data once
    stats = EpochStats(state.epoch + 1, total / n, val_loss, val_acc, None if hits is None else hits / positions,
                       _last_rate(s, settings), time.perf_counter() - started)
    return s._replace(epoch=state.epoch + 1, history=state.history + (stats,))


DataParallel = Callable[[Params, Batch, Any, "int | None"], tuple[Batch, Callable[..., tuple[float, Params]]]]
_DATA_PARALLEL: DataParallel | None = None


def register_data_parallel(factory: DataParallel) -> DataParallel:
    """Plug in how ``train(executor=, shards=)`` computes its gradients; returns ``factory``.

    ``factory(params, data, executor, shards) -> (rows, hook)``: a stand-in data set whose
    minibatches are row indices, and a :attr:`Settings.value_and_grad` hook that computes a
    step's loss and gradient from those rows on ``executor``. ``fnn/__init__.py`` plugs in
    :func:`fnn.parallel.data_parallel`, so this module imports nothing from :mod:`fnn.parallel`
    (which depends on :mod:`fnn.network` alone).

    >>> import fnn
    >>> register_data_parallel(fnn.parallel.data_parallel) is fnn.parallel.data_parallel
    True
    """
    global _DATA_PARALLEL
    _DATA_PARALLEL = factory
    return factory


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

    Inputs are validated once, here, before any work. Take what you need with toolz:

    >>> import fnn, numpy as np, toolz
    >>> x = np.eye(4, dtype=np.float32); y = np.arange(4)
    >>> states = training(fnn.mlp([4, 4]), (x, y), batch_size=2, lr=1.0)
    >>> [s.epoch for s in toolz.take(3, states)]
    [1, 2, 3]
    """
    cost = validate.network_and_cost(params, cost)
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
    settings = Settings(cost, optimizer, lr, batch_size, on_divergence)
    if executor is not None or shards is not None:
        if executor is None:
            raise ValueError(f"shards={shards!r} needs an executor; pass e.g. executor=client.get_executor().")
        if _DATA_PARALLEL is None:
            raise RuntimeError("executor= needs fnn.parallel's data-parallel hook; import fnn (which plugs it in).")
        data, hook = _DATA_PARALLEL(params, data, executor, shards)  # epochs fold over row indices
        settings = settings._replace(value_and_grad=hook)
    if initial_state is not None:
        validate.initial_state(initial_state, params, optimizer)
    on_batch = None if on_batch is None else validate.callbacks([on_batch], "on_batch")[0]
    state = init_state(params, optimizer, seed) if initial_state is None else initial_state
    run_epoch = partial(epoch, data=data, settings=settings, validation=validation, on_batch=on_batch)
    return toolz.drop(1, toolz.iterate(run_epoch, state))


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
    monitor: str = "val_loss",
    observers: Iterable[Callable[[TrainState], Any]] = (),
    on_divergence: str = "raise",
    executor: Any = None,
    shards: int | None = None,
    on_batch: Callable[[TrainState, float], Any] | None = None,
    best_params: Params | None = None,
) -> tuple[Params, tuple[EpochStats, ...]]:
    """Train a network; returns ``(params, history)``.

    A fold of :func:`epoch` over the epochs (cut by :func:`fnn.stopping.early_stopping` with
    ``patience``), starting from ``init_state(params, optimizer, seed)``
    or from ``initial_state`` (a saved :class:`TrainState`) to resume. ``epochs`` is the total:
    a state that has done 3 epochs trains 2 more for ``epochs=5``.

    Args:
      params: the network, a tuple of layer records.
      data: ``(x, y)``, ``x: (n, features)``, ``y`` integer labels ``(n,)`` or targets ``(n, n_out)``.
      epochs, batch_size: positive ints. A ``batch_size`` larger than the data gives one batch per epoch.
      lr: the rate of plain SGD (``params - lr * grads``); or give ``optimizer``, e.g. ``fnn.adam(1e-3)``.
      cost: e.g. :data:`fnn.mse` or :data:`fnn.cross_entropy` (which takes logits: a network ending
        in an activation such as ReLU or Sigmoid is refused, see :mod:`fnn.costs`).
      seed: drives the minibatch order and random layers; same seed, same bits.
      validation: ``(x_val, y_val)`` to record validation loss and accuracy each epoch.
      patience: stop after this many epochs without a better ``monitor``, returning the best params
        (those of the best epoch; the history keeps every epoch run). Resumed from ``initial_state``,
        the best value and the epochs waited are read from its history.
      monitor: what ``patience`` watches: ``"val_loss"`` (lower is better) or ``"val_accuracy"``
        (higher is better).
      best_params: with ``patience`` and ``initial_state``, the params of the best epoch so far when
        that is not the state's last (a run directory's checkpoint keeps them).
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
    if patience is None and monitor != "val_loss":
        raise ValueError(f"monitor={monitor!r} is what patience watches: pass patience= as well (e.g. patience=5).")
    observers = validate.callbacks(observers, "observers")
    if best_params is not None:
        validate.params_like(best_params, params, "best_params",
                             "Pass the params of the resumed run's best epoch (a run directory's checkpoint has them).")
    states = training(
        params, data, batch_size=batch_size, lr=lr, optimizer=optimizer, cost=cost, seed=seed, validation=validation,
        initial_state=initial_state, on_divergence=on_divergence, executor=executor, shards=shards, on_batch=on_batch,
    )
    done = 0 if initial_state is None else initial_state.epoch  # a fresh run's first state is training's own
    states = toolz.take(max(epochs - done, 0), states)
    if patience is not None:  # patience and monitor are checked here, before any epoch runs
        states = early_stopping(states, patience, monitor=monitor, start=initial_state, best_params=best_params)
        if validation is None:
            raise ValueError(f"patience stops on {monitor}: pass validation=(x_val, y_val) as well.")

    def observe(_: TrainState | None, s: TrainState) -> TrainState:
        for watch in observers:
            watch(s)
        return s

    final = toolz.reduce(observe, states, initial_state)  # epochs >= 1: a fresh run yields a state
    theirs = initial_state is not None and (final.params is initial_state.params or final.params is best_params)
    return (_read_only(final.params) if theirs else final.params), final.history


def _read_only(params: Params) -> Params:
    """``params`` with read-only arrays: the caller's own (from ``initial_state`` when no epoch ran, or
    ``best_params``) go out as frozen copies where writeable, their flags untouched; training's are frozen already."""
    return ft.map(lambda a: freeze(a.copy()) if isinstance(a, np.ndarray) and a.flags.writeable else a, params)

