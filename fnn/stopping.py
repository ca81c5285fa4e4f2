r"""Early stopping: cut a lazy sequence of training states when a statistic stops improving.

:func:`fnn.training` is the endless sequence of states, one per epoch;
:func:`early_stopping` takes such a sequence (any iterable of :class:`fnn.TrainState`)
and yields its states until the watched statistic of the latest epoch has not improved
for ``patience`` epochs. The last state it yields carries the best epoch's params, so
``toolz.last`` of it is the trained network, and its history keeps every epoch run.
:func:`fnn.train` with ``patience=`` is this function applied to its states.

With :math:`m_e` the statistic of epoch :math:`e`, signed so that lower is better
(``val_loss`` as it is, ``val_accuracy`` negated), the best epoch so far is
:math:`b_t = \arg\min_{e \le t} m_e` (the first one on a tie: only a strictly better value
counts as an improvement, and a NaN never is) and the sequence stops after the first epoch
:math:`t` with :math:`t - b_t = \text{patience}`. Resumed from ``start``, the epochs of its
history count as well.

This module reads only a state's ``history``, ``params`` and ``_replace``: it imports
nothing from :mod:`fnn.training`, which uses it.

``fnn.train(params, data, epochs=n, patience=p, ...)`` is, observers aside, the last state of
``early_stopping(toolz.take(n, fnn.training(params, data, ...)), p, start=s0)``, ``s0`` the state
it starts from (:func:`fnn.init_state`, or ``initial_state``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

from fnn.arguments import positive_int

__all__ = ["MONITORS", "early_stopping"]

#: What early stopping may watch (a field of :class:`fnn.EpochStats`), and whether lower is better.
MONITORS = {"val_loss": True, "val_accuracy": False}

State = Any  # a fnn.TrainState: anything with history (EpochStats records), params and _replace(params=)


def early_stopping(
    states: Iterable[State], patience: int, *, monitor: str = "val_loss", start: State | None = None,
    best_params: Any = None,
) -> Iterator[State]:
    """The states until ``monitor`` has not improved for ``patience`` epochs; the last carries the best params.

    Args:
      states: training states, one per epoch, in order: :func:`fnn.training` or any part of it
        (``toolz.take(100, fnn.training(...))`` stops after 100 epochs if patience has not run out).
      patience: how many epochs without a strictly better ``monitor`` end the sequence (a positive int).
      monitor: a key of :data:`MONITORS`: ``"val_loss"`` (lower is better) or ``"val_accuracy"``
        (higher is better), read from each state's last :class:`fnn.EpochStats`; the states must
        come from a run with validation data.
      start: the state that ``states`` continues from, when it resumes a run (``initial_state=``):
        the best value so far and the epochs waited are read from its history, so a resumed run
        stops at the epoch, and with the params, of the run that never stopped. ``None``: a fresh run.
      best_params: with ``start``, the params of its best epoch when that is not its last one
        (a run directory's checkpoint keeps them); refused as missing when they are needed.

    Returns:
      A lazy iterator over ``states``, cut after the epoch where patience ran out. Every state
      is yielded as it came, but that last one, which carries the params of the best epoch
      (its history still records every epoch). ``patience`` and ``monitor`` are checked here,
      ``start`` against ``best_params`` when the first state is asked for, before it is computed.

    >>> import fnn, numpy as np, toolz
    >>> x, y = np.eye(4, dtype=np.float32), np.arange(4)
    >>> states = fnn.training(fnn.mlp([4, 4], seed=0), (x, y), batch_size=2, lr=2.0, validation=(x, y[::-1]))
    >>> last = toolz.last(early_stopping(toolz.take(100, states), patience=2))
    >>> [round(h.val_loss, 3) for h in last.history]  # the best in epoch 6, then 2 epochs without better
    [0.259, 0.251, 0.245, 0.242, 0.24, 0.239, 0.24, 0.242]
    >>> fnn.loss(last.params, (x, y[::-1])) == last.history[5].val_loss  # the params of epoch 6
    True
    """
    patience = positive_int(patience, "patience")
    if monitor not in MONITORS:
        raise ValueError(f"monitor must be one of {', '.join(map(repr, MONITORS))}, got {monitor!r}.")
    return _until_patience_runs_out(states, patience, monitor, start, best_params)


def _watch(best_value: float, waited: int, value: float) -> tuple[bool, float, int]:
    """One more epoch of early stopping, with the signed statistic ``value`` (lower is better):
    ``(improved, best value, epochs waited)``. Only a strictly lower value is an improvement: not a
    tie, nor a NaN, nor an inf while nothing finite came before (the best value starts at inf).

    >>> _watch(math.inf, 0, 0.5), _watch(0.5, 0, 0.5), _watch(math.inf, 0, math.nan)
    ((True, 0.5, 0), (False, 0.5, 1), (False, inf, 1))
    """
    if value < best_value:
        return True, value, 0
    return False, best_value, waited + 1


def _resume(start: State | None, best_params: Any, monitor: str) -> tuple[Any, float, int]:
    """``(best params, best value, epochs waited)`` as early stopping left them at ``start``.

    Replays ``start.history`` through :func:`_watch`, as the running loop would have met it (an epoch
    that did not record ``monitor`` counts as no improvement): a resumed run stops where the
    uninterrupted one would. When the best epoch is not ``start``'s last, its params are ``best_params``.
    Values are signed so that lower is better. Until an epoch improves on inf, there are no best params
    (``None``): if patience runs out before any epoch has a finite value, the last state is yielded
    as it is, resumed or not.
    """
    if start is None:
        return None, math.inf, 0
    sign = 1.0 if MONITORS[monitor] else -1.0
    best, best_value, waited = None, math.inf, 0  # best: the index of the best epoch so far
    for e, h in enumerate(start.history):
        value = getattr(h, monitor)
        improved, best_value, waited = _watch(best_value, waited, math.inf if value is None else sign * value)
        best = e if improved else best
    if best is None:  # no epoch has improved on inf: no best params yet, as in a fresh run
        return None, best_value, waited
    if waited == 0:
        return start.params, best_value, 0
    if best_params is None:
        raise ValueError(
            f"the state resumed from (start=, or train's initial_state=) has its best {monitor} in epoch "
            f"{best + 1}, not its last ({len(start.history)}): to continue early stopping exactly, pass "
            "best_params= (the params after that epoch)."
        )
    return best_params, best_value, waited


def _until_patience_runs_out(
    states: Iterable[State], patience: int, monitor: str, start: State | None, best_params: Any
) -> Iterator[State]:
    sign = 1.0 if MONITORS[monitor] else -1.0
    best, best_value, waited = _resume(start, best_params, monitor)  # on the first next(), before any epoch
    if waited >= patience:
        return
    for s in states:
        value = getattr(s.history[-1], monitor)
        if value is None:
            raise ValueError(
                f"early stopping watches {monitor}, which epoch {len(s.history)} did not record: "
                "train with validation data, e.g. fnn.training(..., validation=(x_val, y_val))."
            )
        improved, best_value, waited = _watch(best_value, waited, sign * value)
        if improved:
            best = s.params
            yield s
        else:
            yield s if waited < patience or best is None else s._replace(params=best)
            if waited >= patience:
                return
