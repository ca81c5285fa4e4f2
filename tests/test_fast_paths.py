"""The training loop's fast paths give exactly the bits of the plain definitions.

An epoch without ``on_batch`` updates private copies of the params, and of the optimizer's
state, in place; with ``on_batch`` it folds the public :func:`fnn.step`. The two must agree bit
for bit: params, optimizer state, history, and where and how a run diverges. Costs with a fused
``value_and_grad`` and layers with a ``param_vjp`` rule must agree bit for bit with their plain
functions.
"""

from __future__ import annotations

import copy
import tracemalloc

import numpy as np
import pytest
import toolz

import fnn
from fnn import costs, layers, optim
from fnn.network import backprop, contexts, trace
from tests.timeless import timeless

OPTIMIZERS = {
    "lr": {"lr": 0.5},
    "sgd": {"optimizer": fnn.sgd(0.5)},
    "momentum": {"optimizer": fnn.sgd(0.05, momentum=0.9)},
    "nesterov": {"optimizer": fnn.sgd(0.05, momentum=0.9, nesterov=True)},
    "adam": {"optimizer": fnn.adam(1e-2)},
    "adamw": {"optimizer": fnn.adamw(1e-2, weight_decay=0.1)},
    "rmsprop_momentum": {"optimizer": fnn.rmsprop(1e-3, momentum=0.9)},
    "clipped_adam_cosine": {"optimizer": fnn.chain(fnn.clip_by_global_norm(0.5),
                                                   fnn.adam(fnn.cosine_decay(1e-2, steps=20)))},
    "clip_value_l2_sgd": {"optimizer": fnn.chain(fnn.clip_by_value(0.05), fnn.add_l2_penalty(1e-2), fnn.sgd(0.5))},
    "schedule": {"optimizer": fnn.chain(fnn.scale_by_schedule(fnn.exponential_decay(1.0, 0.5, 4)),
                                        fnn.sgd(0.3, momentum=0.5))},
    "scale": {"optimizer": fnn.chain(optim.identity(), optim.trace(0.9), optim.scale(-0.05))},
}


def _data(n: int = 120, d: int = 12, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    g = np.random.default_rng(seed)
    return g.random((n, d), dtype=np.float32), g.integers(0, k, n)


def _writeable(tree: object) -> list[bool]:
    return [leaf.flags.writeable for leaf in fnn.tree.leaves(tree) if isinstance(leaf, np.ndarray)]


NETWORKS = {
    "sigmoid": lambda: fnn.mlp([13, 8, 4], "sigmoid", "identity", seed=1),
    "leaky": lambda: fnn.mlp([13, 8, 4], "leaky_relu", "identity", seed=1),  # a setting leaf (the slope)
    "large": lambda: fnn.mlp([13, 2600, 4], "relu", "identity", seed=1),  # > _CHUNK params: the step in pieces
    "dropout": lambda: (lambda n: n[:2] + (fnn.Dropout(0.5),) + n[2:])(fnn.mlp([13, 8, 4], "relu", "identity", seed=1)),
    "conv": lambda: (fnn.Reshape((13, 1, 1)), fnn.conv2d(1, 1, 3, (3, 1)), fnn.ReLU(), fnn.Flatten(),
                     fnn.dense(2, 39, 4)),  # a tuple setting (the padding) beside the parameters
}


def _states(opt: str, net: str, cost: fnn.Cost, epochs: int = 2) -> tuple[fnn.TrainState, fnn.TrainState, list]:
    """The final states of one run, epoch by epoch without ``on_batch`` (private) and with it (public)."""
    x, y = _data(d=13)
    params = NETWORKS[net]()
    kw = dict(batch_size=16, cost=cost, seed=3, **OPTIMIZERS[opt])
    fast = toolz.nth(epochs - 1, fnn.training(params, (x, y), **kw))
    seen: list[float] = []
    slow = toolz.nth(epochs - 1, fnn.training(params, (x, y), on_batch=lambda s, v: seen.append(v), **kw))
    return fast, slow, seen


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("cost", [fnn.mse, fnn.cross_entropy])
def test_private_epoch_equals_folding_public_steps(opt: str, cost: fnn.Cost) -> None:
    x, y = _data()
    params = fnn.mlp([12, 8, 4], "sigmoid", "identity", seed=1)
    before = fnn.tree.map(np.copy, params)
    fast, h_fast = fnn.train(params, (x, y), epochs=2, batch_size=16, cost=cost, **OPTIMIZERS[opt])
    seen: list[float] = []
    slow, h_slow = fnn.train(params, (x, y), epochs=2, batch_size=16, cost=cost,
                             on_batch=lambda s, v: seen.append(v), **OPTIMIZERS[opt])
    assert fnn.tree.all_equal(fast, slow) and timeless(h_fast) == timeless(h_slow)
    assert len(seen) == 2 * 8 and not fnn.tree.all_equal(fast, params)
    assert not any(_writeable(fast)) and not any(_writeable(params))
    assert fnn.tree.all_equal(params, before)  # the caller's params are untouched


@pytest.mark.parametrize("net", sorted(NETWORKS))
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_private_optimizer_state_equals_folding_public_steps(opt: str, net: str) -> None:
    fast, slow, seen = _states(opt, net, fnn.cross_entropy)
    assert fnn.tree.all_equal(fast.params, slow.params)
    assert fnn.tree.all_equal(fast.opt_state, slow.opt_state)  # every moment, count and rate, bit for bit
    assert timeless(fast.history) == timeless(slow.history) and fast.step == slow.step == len(seen) == 16
    assert not any(_writeable(fast.params))


def test_the_callers_optimizer_state_is_untouched() -> None:
    x, y = _data()
    params = fnn.mlp([12, 8, 4], "relu", "identity", seed=1)
    opt = fnn.adam(1e-2)
    start = toolz.first(fnn.training(params, (x, y), batch_size=16, optimizer=opt, cost=fnn.cross_entropy))
    before = copy.deepcopy(start)
    after = fnn.epoch(start, (x, y), fnn.Settings(fnn.cross_entropy, opt, None, 16))
    assert fnn.tree.all_equal(start, before)
    assert not any(np.shares_memory(a, b) for a in fnn.tree.leaves(after.opt_state) if isinstance(a, np.ndarray)
                   for b in fnn.tree.leaves(start.opt_state) if isinstance(b, np.ndarray))


def test_a_transformation_of_ones_own_runs_through_its_update() -> None:
    calls: list[int] = []
    inner = fnn.sgd(0.05, momentum=0.9)

    def update(u, s, p=None):
        calls.append(1)
        return inner.update(u, s, p)

    own = fnn.GradientTransformation(inner.init, update)
    assert optim._in_place(own) is None and optim._in_place(fnn.chain(own, fnn.scale(1.0))) is None
    assert optim._in_place(inner) is not None
    x, y = _data()
    params = fnn.mlp([12, 8, 4], "relu", "identity", seed=1)
    mine, _ = fnn.train(params, (x, y), epochs=2, batch_size=16, optimizer=own, cost=fnn.cross_entropy)
    built_in, _ = fnn.train(params, (x, y), epochs=2, batch_size=16, optimizer=inner, cost=fnn.cross_entropy)
    assert fnn.tree.all_equal(mine, built_in) and len(calls) == 16


def test_a_momentum_epoch_makes_no_parameter_sized_trees_per_step() -> None:
    """Traced peak of an epoch: the first momentum state, the private params and momentum, one
    step's gradients (4 parameter-sized sets), not the 5+ of folding ``update`` and ``apply_updates``."""
    params = fnn.mlp([64, 1024, 1024, 10], "relu", "identity", seed=0)
    size = sum(a.nbytes for a in fnn.tree.leaves(params) if layers.is_param(a))
    x, y = _data(n=32, d=64, k=10)
    was = tracemalloc.is_tracing()
    if not was:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fnn.train(params, (x, y), epochs=1, batch_size=8, optimizer=fnn.sgd(0.01, momentum=0.9), cost=fnn.cross_entropy)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        if not was:
            tracemalloc.stop()
    assert peak < 4.3 * size, (peak / size)


@pytest.mark.parametrize("opt", ["momentum", "adam", "clipped_adam_cosine"])
def test_optimizer_divergence_reports_the_same_state_on_both_paths(opt: str) -> None:
    x, y = _data()
    params = fnn.mlp([12, 4], "identity", "identity", seed=0)
    huge = {"momentum": fnn.sgd(1e37, momentum=0.9), "adam": fnn.adam(1e38),
            "clipped_adam_cosine": fnn.chain(fnn.clip_by_global_norm(1.0), fnn.adam(fnn.cosine_decay(1e38, 10)))}
    errors = []
    for on_batch in (None, lambda s, v: None):
        with np.errstate(over="ignore", invalid="ignore"), pytest.raises(fnn.DivergenceError) as info:
            fnn.train(params, (x, y), epochs=2, batch_size=16, optimizer=huge[opt], cost=fnn.mse, on_batch=on_batch)
        errors.append(info.value)
    fast, slow = errors
    assert (fast.epoch, fast.step, str(fast)) == (slow.epoch, slow.step, str(slow))
    assert fnn.tree.all_equal(timeless(fast.state), timeless(slow.state))
    assert not any(_writeable(fast.state.params))


def test_private_epoch_equals_a_fold_of_step() -> None:
    x, y = _data()
    params = fnn.mlp([12, 6, 4], "relu", "identity", seed=2)
    settings = fnn.Settings(fnn.cross_entropy, None, 0.1, 32)
    state = fnn.init_state(params, seed=5)
    fast = fnn.epoch(state, (x, y), settings)
    order = fnn.random.fold_in(state.key, 0)
    s = state
    for batch in fnn.data.batches(order, (x, y), 32):
        s, _ = fnn.step(s, batch, settings)
    assert fnn.tree.all_equal(fast.params, s.params) and fast.step == s.step == 4


def test_exact_check_when_the_norm_bound_cannot_prove_finiteness() -> None:
    # |w| = 1e19: the float32 sum of squares overflows, so every step takes the exact test
    x = np.zeros((40, 3), np.float32)
    y = np.ones((40, 2), np.float32)
    params = (fnn.Dense(np.full((3, 2), 1e19, np.float32), np.zeros(2, np.float32)),)
    fast, _ = fnn.train(params, (x, y), epochs=2, batch_size=8, lr=0.1)
    slow, _ = fnn.train(params, (x, y), epochs=2, batch_size=8, lr=0.1, on_batch=lambda s, v: None)
    assert fnn.tree.all_equal(fast, slow)
    np.testing.assert_array_equal(fast[0].w, params[0].w)  # zero inputs: no gradient for w
    assert np.all(fast[0].b > 0.5)


@pytest.mark.parametrize("on_batch", [None, lambda s, v: None])
def test_divergence_in_params_keeps_the_last_good_state(on_batch: object) -> None:
    x, y = _data()
    params = fnn.mlp([12, 4], "identity", "identity", seed=0)
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(fnn.DivergenceError) as info:
        fnn.train(params, (x * 1e18, y), epochs=1, batch_size=16, lr=1e20, cost=fnn.mse,
                  on_batch=on_batch)  # type: ignore[arg-type]
    state = info.value.state
    assert state is not None and not any(_writeable(state.params))
    assert all(np.isfinite(a).all() for a in fnn.tree.leaves(state.params) if layers.is_param(a))


@pytest.mark.parametrize("scale, lr, step", [(1e18, 1e20, 1), (1.0, 1e37, 2)])
def test_both_paths_stop_at_the_same_step(scale: float, lr: float, step: int) -> None:
    x, y = _data()
    params = fnn.mlp([12, 4], "identity", "identity", seed=0)
    for on_batch in (None, lambda s, v: None):
        with np.errstate(over="ignore", invalid="ignore"), pytest.raises(fnn.DivergenceError) as info:
            fnn.train(params, (x * scale, y), epochs=1, batch_size=16, lr=lr, cost=fnn.mse, on_batch=on_batch)
        assert info.value.step == step and "parameters became NaN or inf" in str(info.value)
        assert info.value.state is not None and info.value.state.step == step - 1


@pytest.mark.parametrize("cost", [fnn.mse, fnn.cross_entropy, fnn.binary_cross_entropy])
@pytest.mark.parametrize("targets", ["labels", "one_hot"])
def test_fused_cost_equals_value_and_grad(cost: fnn.Cost, targets: str) -> None:
    g = np.random.default_rng(3)
    pred = g.standard_normal((7, 5)).astype(np.float32)
    y = g.integers(0, 5, 7)
    if targets == "one_hot":
        y = fnn.data.one_hot(y, 5)
    value, grad = costs.value_and_grad(cost, pred, y)
    assert value == cost.value(pred, y)
    np.testing.assert_array_equal(grad, cost.grad(pred, y))
    assert grad.dtype == np.float32


def test_first_layer_uses_param_vjp_and_matches_the_full_vjp() -> None:
    x, _ = _data(n=9)
    params = fnn.mlp([12, 5, 3], "tanh", seed=4)
    ctxs = contexts(params, False, None)
    xs = trace(params, x, ctxs)
    dy = np.ones_like(xs[-1])
    grads = backprop(params, xs, dy, ctxs)
    d = dy
    for i in range(len(params) - 1, -1, -1):
        full, d = layers.vjp(params[i], xs[i], xs[i + 1], d)
    assert layers.rule(params[0]).param_vjp is not None
    np.testing.assert_array_equal(grads[0].w, full.w)
    np.testing.assert_array_equal(grads[0].b, full.b)


def test_steps_keep_float32() -> None:
    x, y = _data()
    trained, _ = fnn.train(fnn.mlp([12, 8, 4], "sigmoid", seed=1), (x, y), epochs=1, batch_size=16, lr=3.0)
    assert {a.dtype for a in fnn.tree.leaves(trained) if isinstance(a, np.ndarray)} == {np.dtype(np.float32)}
