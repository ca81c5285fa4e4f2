"""The training loop's fast paths give exactly the bits of the plain definitions.

An epoch without ``on_batch`` updates private copies of the params in place; with
``on_batch`` it folds the public :func:`fnn.step`. Costs with a fused ``value_and_grad``
and layers with a ``param_vjp`` rule must agree bit for bit with their plain functions.
"""

from __future__ import annotations

import numpy as np
import pytest

import fnn
from fnn import costs, layers
from fnn.network import backprop, contexts, trace

OPTIMIZERS = {
    "lr": {"lr": 0.5},
    "momentum": {"optimizer": fnn.sgd(0.05, momentum=0.9)},
    "adam": {"optimizer": fnn.adam(1e-2)},
}


def _data(n: int = 120, d: int = 12, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    g = np.random.default_rng(seed)
    return g.random((n, d), dtype=np.float32), g.integers(0, k, n)


def _writeable(tree: object) -> list[bool]:
    return [leaf.flags.writeable for leaf in fnn.tree.leaves(tree) if isinstance(leaf, np.ndarray)]


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("cost", [fnn.mse, fnn.cross_entropy])
def test_private_epoch_equals_folding_public_steps(opt: str, cost: fnn.Cost) -> None:
    x, y = _data()
    params = fnn.mlp([12, 8, 4], "sigmoid", seed=1)
    before = fnn.tree.map(np.copy, params)
    fast, h_fast = fnn.train(params, (x, y), epochs=2, batch_size=16, cost=cost, **OPTIMIZERS[opt])
    seen: list[float] = []
    slow, h_slow = fnn.train(params, (x, y), epochs=2, batch_size=16, cost=cost,
                             on_batch=lambda s, v: seen.append(v), **OPTIMIZERS[opt])
    assert fnn.tree.all_equal(fast, slow) and h_fast == h_slow
    assert len(seen) == 2 * 8 and not fnn.tree.all_equal(fast, params)
    assert not any(_writeable(fast)) and not any(_writeable(params))
    assert fnn.tree.all_equal(params, before)  # the caller's params are untouched


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
