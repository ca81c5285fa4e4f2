"""fnn.stopping.early_stopping: where it stops, which params it keeps, exact resume, errors; with fnn.training."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import pytest
import toolz

import fnn
from fnn.stopping import MONITORS, early_stopping


class State(NamedTuple):
    """The parts of a fnn.TrainState that early stopping reads: params (here the epoch's number) and history."""

    params: Any
    history: tuple = ()


def states(values: list[float | None], monitor: str = "val_loss") -> list[State]:
    """One state per epoch, its params the epoch number, its history the monitored values so far."""
    stats = [fnn.EpochStats(e, 1.0, **{monitor: v}) for e, v in enumerate(values, 1)]
    return [State(e, tuple(stats[:e])) for e in range(1, len(values) + 1)]


LOSSES = [0.9, 0.5, 0.6, 0.4, 0.45, 0.4, 0.7, 0.3]


@pytest.mark.parametrize("patience, yielded, best", [
    (1, [1, 2, 3], 2),  # epoch 3 is worse than epoch 2: stop, with epoch 2's params
    (2, [1, 2, 3, 4, 5, 6], 4),  # 0.4 again in epoch 6 is no improvement (only strictly better counts)
    (3, [1, 2, 3, 4, 5, 6, 7], 4),
    (4, [1, 2, 3, 4, 5, 6, 7, 8], 8),  # patience never runs out: every state as it came
])
def test_stops_after_patience_epochs_without_a_better_value_and_keeps_the_best_params(patience, yielded, best):
    out = list(early_stopping(states(LOSSES), patience))
    assert [len(s.history) for s in out] == yielded
    assert out[-1].params == best
    assert [s.params for s in out[:-1]] == yielded[:-1]  # the others are yielded unchanged


def test_val_accuracy_is_better_when_higher():
    out = list(early_stopping(states([0.5, 0.8, 0.7, 0.8], "val_accuracy"), 2, monitor="val_accuracy"))
    assert [len(s.history) for s in out] == [1, 2, 3, 4] and out[-1].params == 2


def test_it_is_lazy_and_stops_pulling_states():
    pulled = []
    endless = (pulled.append(s) or s for s in toolz.concat([states(LOSSES), states([math.nan] * 100)]))
    out = list(early_stopping(endless, 1))
    assert len(out) == 3 and len(pulled) == 3


def test_nan_is_never_an_improvement():
    out = list(early_stopping(states([math.nan, 0.5, math.nan, 0.4]), 2))
    assert [s.params for s in out] == [1, 2, 3, 4]
    out = list(early_stopping(states([0.5, math.nan, math.nan, 0.4]), 2))
    assert [s.params for s in out] == [1, 2, 1]
    out = list(early_stopping(states([math.nan, math.nan, 0.4]), 2))  # no best yet: the last state as it is
    assert [s.params for s in out] == [1, 2]


@pytest.mark.parametrize("patience", [1, 2, 3])
@pytest.mark.parametrize("cut", range(0, 8))
def test_resumed_from_any_epoch_it_stops_where_the_whole_run_stops(patience, cut):
    whole = list(early_stopping(states(LOSSES), patience))
    all_states = states(LOSSES)
    if cut > len(whole) - 1:  # the whole run stopped before this cut: no state to resume from mid-run
        return
    start = State(0, ()) if cut == 0 else all_states[cut - 1]
    done = [1.0 * v for v in LOSSES[:cut]]
    best_epoch = done.index(min(done)) + 1 if done else 0
    best_params = best_epoch if best_epoch != cut else None
    rest = list(early_stopping(all_states[cut:], patience, start=start, best_params=best_params))
    assert [len(s.history) for s in rest] == [len(s.history) for s in whole[cut:]]
    assert rest[-1].params == whole[-1].params


@pytest.mark.parametrize("values", [
    [math.nan, 0.5, 0.4, 0.3, 0.2, 0.1],  # a NaN first: no best epoch yet, one epoch waited
    [math.inf, 0.9, 0.8, 0.85, 0.9],  # an inf first is no improvement either (inf < inf is false)
    [math.nan, math.inf, 0.4, 0.4, 0.5, 0.3],
    [0.5, math.nan, 0.5, math.inf, 0.4, 0.45, 0.6],
])
@pytest.mark.parametrize("patience", [1, 2, 3])
def test_resumed_after_epochs_without_a_finite_value_it_stops_where_the_whole_run_stops(values, patience):
    whole = list(early_stopping(states(values), patience))
    all_states = states(values)
    for cut in range(1, len(whole)):  # resume after epoch `cut`, while the whole run still went on
        best = None  # the first epoch strictly below all before it and below inf
        for e, v in enumerate(values[:cut], 1):
            best = e if v < (math.inf if best is None else values[best - 1]) else best
        rest = list(early_stopping(all_states[cut:], patience, start=all_states[cut - 1],
                                   best_params=None if best in (None, cut) else best))
        assert [(len(s.history), s.params) for s in rest] == [(len(s.history), s.params) for s in whole[cut:]]


def test_a_start_before_any_epoch_is_a_fresh_run():
    values = [math.nan, math.nan]  # patience runs out before any finite value: the last state as it is
    assert [s.params for s in early_stopping(states(values), 2, start=State(0, ()))] == [1, 2]
    assert [s.params for s in early_stopping(states(values), 2)] == [1, 2]


def test_resuming_needs_the_best_params_when_the_best_epoch_is_not_the_last():
    s = states(LOSSES)
    stopper = early_stopping(s[3:], 3, start=s[2])  # epoch 2 was the best, epoch 3 waited
    with pytest.raises(ValueError, match=r"best val_loss in epoch 2, not its last \(3\).*pass best_params="):
        next(stopper)


def test_a_start_that_already_ran_out_of_patience_yields_nothing():
    s = states(LOSSES)
    assert list(early_stopping(s[3:], 1, start=s[2], best_params=2)) == []


def test_arguments_are_refused_when_it_is_called():
    with pytest.raises(ValueError, match="monitor must be one of 'val_loss', 'val_accuracy', got 'loss'"):
        early_stopping(iter(()), 2, monitor="loss")
    with pytest.raises(ValueError, match="patience must be a positive integer, got 0"):
        early_stopping(iter(()), 0)
    with pytest.raises(TypeError, match="patience must be a positive integer, got float 2.0"):
        early_stopping(iter(()), 2.0)
    assert list(MONITORS) == ["val_loss", "val_accuracy"]


def test_states_without_the_monitored_value_are_a_clear_error():
    with pytest.raises(ValueError, match=r"watches val_loss, which epoch 1 did not record: .*validation="):
        list(early_stopping(states([None]), 2))


def test_composed_with_training_it_is_train_with_patience():
    g = np.random.default_rng(0)
    centres = g.standard_normal((3, 8)) * 4
    labels = g.integers(0, 3, 120)
    x = (centres[labels] + g.standard_normal((120, 8))).astype(np.float32)
    params = fnn.mlp([8, 64, 3], "relu", "identity", seed=0)
    kw = dict(batch_size=4, lr=1.0, cost=fnn.cross_entropy, validation=(x[60:], labels[60:]), seed=1)
    trained, history = fnn.train(params, (x[:60], labels[:60]), epochs=60, patience=2, **kw)
    last = toolz.last(early_stopping(toolz.take(60, fnn.training(params, (x[:60], labels[:60]), **kw)), 2))
    assert len(history) < 60  # it did stop early
    assert fnn.tree.all_equal(last.params, trained)
    assert [h._replace(seconds=None) for h in last.history] == [h._replace(seconds=None) for h in history]
    assert fnn.early_stopping is early_stopping
