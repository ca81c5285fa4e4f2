"""Divergence: a NaN or inf loss (or parameters) stops training with the epoch and step, and nothing half-done.

``fnn.train`` raises :class:`fnn.DivergenceError` naming the epoch and the step, suggesting a
smaller learning rate; the error carries the last finite state (``error.state``), the run
returns nothing. ``on_divergence="continue"`` keeps going. The run directory of
:func:`fnn.runs.run` (the CLI) keeps the last finite checkpoint.
"""

import json
import math

import numpy as np
import pytest

import fnn
from fnn import costs, runs
from fnn import random as fr
from fnn import tree as ft


def _data(n=40, d=5, k=3, seed=0):
    g = np.random.default_rng(seed)
    x = g.standard_normal((n, d)).astype(np.float32)
    return x, g.integers(0, k, n)


NET = fnn.mlp([5, 8, 3], "identity", "identity", seed=0)
HUGE = 1e30  # float32 params of 1e30 overflow in the next forward pass


def _finite(params):
    return all(np.isfinite(a).all() for a in ft.leaves(params) if isinstance(a, np.ndarray))


@pytest.mark.parametrize("on_batch", [None, lambda state, value: None], ids=["plain", "on_batch"])
@pytest.mark.parametrize("errstate", ["default", "raise"])
def test_huge_learning_rate_reports_epoch_and_step(on_batch, errstate):
    kwargs = {} if on_batch is None else {"on_batch": on_batch}
    with np.errstate(all="raise" if errstate == "raise" else "warn"):
        with pytest.raises(fnn.DivergenceError, match=r"epoch 1, step \d+\. Try a smaller learning rate") as info:
            fnn.train(NET, _data(), epochs=3, batch_size=8, lr=HUGE, **kwargs)
    e = info.value
    assert isinstance(e, FloatingPointError)
    assert e.epoch == 1 and e.step >= 1
    assert not math.isfinite(e.value) or "the parameters became NaN or inf" in str(e)
    assert e.state is not None and e.state.step == e.step - 1 and e.state.epoch == e.epoch - 1
    assert _finite(e.state.params)  # the last finite state, ready to save


def test_the_reported_step_is_the_first_bad_one():
    """The same run with on_divergence='continue', watched step by step, goes bad at the reported step."""
    data = _data()
    with pytest.raises(fnn.DivergenceError) as info:
        fnn.train(NET, data, epochs=3, batch_size=8, lr=HUGE, seed=1)
    seen = []
    fnn.train(NET, data, epochs=3, batch_size=8, lr=HUGE, seed=1, on_divergence="continue",
              on_batch=lambda s, value: seen.append((s.epoch + 1, s.step, math.isfinite(value) and _finite(s.params))))
    first_bad = next((epoch, step) for epoch, step, ok in seen if not ok)
    assert (info.value.epoch, info.value.step) == first_bad


def _poisoned(marker):
    """mse, except that a batch holding the marker target row gives an inf loss."""
    def value(pred, y):
        return math.inf if (y == marker).all(axis=1).any() else costs.mse.value(pred, y)

    return fnn.Cost(value, costs.mse.grad, "poisoned")


def test_exact_epoch_and_step_of_a_poisoned_batch():
    """Batches come in the documented order, fnn.data.batches(fold_in(key(seed), epoch), ...): the step is known."""
    g = np.random.default_rng(2)
    x = g.standard_normal((30, 4)).astype(np.float32)
    y = g.standard_normal((30, 2)).astype(np.float32)
    y[17] = 7.0  # the poisoned example
    seed, batch_size = 5, 4
    order = fnn.data.batches(fr.fold_in(fr.key(seed), 0), (x, y), batch_size)
    expected = 1 + next(i for i, (_, yb) in enumerate(order) if (yb == 7.0).all(axis=1).any())
    net = fnn.mlp([4, 3, 2], "tanh", "identity", seed=0)
    with pytest.raises(fnn.DivergenceError, match=rf"the loss became inf in epoch 1, step {expected}\.") as info:
        fnn.train(net, (x, y), epochs=2, batch_size=batch_size, lr=0.01, cost=_poisoned(7.0), seed=seed)
    assert info.value.step == expected and info.value.value == math.inf
    assert info.value.state.step == expected - 1


class _CallCount:
    """A cost that turns bad on its n-th call (a stand-in for a run that diverges late)."""

    def __init__(self, n, bad_value=False, bad_grad=False):
        self.n, self.calls, self.bad_value, self.bad_grad = n, 0, bad_value, bad_grad

    def cost(self):
        def value(pred, y):
            self.calls += 1
            return math.nan if self.bad_value and self.calls >= self.n else costs.mse.value(pred, y)

        def grad(pred, y):
            g = costs.mse.grad(pred, y)
            return np.full_like(g, np.inf) if self.bad_grad and self.calls >= self.n else g

        return fnn.Cost(value, grad, "late")


def test_divergence_in_a_later_epoch():
    x, y = _data(n=24)
    late = _CallCount(8, bad_value=True)  # 3 steps per epoch: the 8th step is epoch 3, step 8
    with pytest.raises(fnn.DivergenceError, match=r"the loss became nan in epoch 3, step 8\.") as info:
        fnn.train(NET, (x, y), epochs=5, batch_size=8, lr=0.01, cost=late.cost())
    assert info.value.state.epoch == 2 and info.value.state.step == 7
    assert len(info.value.state.history) == 2


def test_parameters_that_become_inf_with_a_finite_loss_are_divergence():
    x, y = _data(n=24)
    late = _CallCount(2, bad_grad=True)
    with pytest.raises(fnn.DivergenceError, match=r"the parameters became NaN or inf \(the batch loss was [0-9.]+\) "
                                                  r"in epoch 1, step 2\.") as info:
        fnn.train(NET, (x, y), epochs=2, batch_size=8, lr=0.01, cost=late.cost())
    assert math.isfinite(info.value.value)
    assert _finite(info.value.state.params) and info.value.state.step == 1


def test_optimizers_report_divergence_too():
    with pytest.raises(fnn.DivergenceError, match=r"epoch \d+, step \d+"):
        fnn.train(NET, _data(), epochs=20, batch_size=8, optimizer=fnn.sgd(HUGE))


def test_continue_keeps_going_and_records_the_bad_losses():
    params, history = fnn.train(NET, _data(), epochs=3, batch_size=8, lr=HUGE, on_divergence="continue")
    assert len(history) == 3
    assert not all(math.isfinite(h.loss) for h in history)
    assert not _finite(params)


def test_divergence_leaves_the_callers_params_alone():
    snapshot = [a.copy() for a in ft.leaves(NET) if isinstance(a, np.ndarray)]
    with pytest.raises(fnn.DivergenceError):
        fnn.train(NET, _data(), epochs=2, batch_size=8, lr=HUGE)
    assert all(a.tobytes() == b.tobytes() for a, b in zip((a for a in ft.leaves(NET) if isinstance(a, np.ndarray)),
                                                         snapshot))


def test_run_directory_keeps_the_last_finite_checkpoint(tmp_path):
    out = tmp_path / "run"
    config = {"lr": HUGE, "epochs": 2, "layers": [784, 8, 10], "activation": "identity", "cost": "mse"}
    with pytest.raises(fnn.DivergenceError, match=r"epoch 1, step \d+"):
        runs.run(config, out)
    state = fnn.load(out / runs.CHECKPOINT_FILE).state
    assert isinstance(state, fnn.TrainState) and _finite(state.params)
    assert state.epoch == 0  # it diverged in the first epoch: the checkpoint is the start
    record = json.loads((out / runs.RECORD_FILE).read_text())
    assert record["status"] == "diverged" and "epoch 1, step" in record["error"]
