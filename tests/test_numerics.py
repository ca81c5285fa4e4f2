"""Numerical safety at extreme values: finite results, finite gradients, and no floating-point flags.

Every check runs under ``np.errstate(all="raise")`` (so even an underflow inside numpy is an
error) and with warnings as errors (the pytest configuration), in float32 and float64.
"""

import numpy as np
import pytest

import fnn
from fnn import costs, layers

DTYPES = [np.float32, np.float64]
COSTS = list(costs.COSTS.values())


def _extreme(dtype, k=3):
    """Logits ``(6, k)`` mixing +-1e4, 0 and ordinary values, so every row has a dominant entry or a tie."""
    z = np.array(
        [[-1e4, 0.0, 1e4], [1e4, 1e4, -1e4], [-1e4, -1e4, -1e4],
         [1e4, 1e4, 1e4], [0.0, 0.0, 0.0], [3.0, -2.0, 1e4]]
    )
    return z[:, :k].astype(dtype)


def _targets(cost, z):
    """Integer labels for the softmax costs and mse; 0/1 targets for binary cross-entropy."""
    labels = np.array([0, 2, 1, 0, 1, 0]) % z.shape[1]
    if cost is costs.binary_cross_entropy:
        return fnn.data.one_hot(labels, z.shape[1], dtype=z.dtype)
    return labels


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("f", [layers.sigmoid, costs.softplus, costs.log_softmax, layers.softmax])
def test_elementary_functions_are_finite_at_1e4(f, dtype):
    z = _extreme(dtype)
    with np.errstate(all="raise"):
        out = f(z)
    assert out.dtype == dtype
    assert np.isfinite(out).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_elementary_function_values_at_1e4(dtype):
    z = np.array([[-1e4, 0.0, 1e4]], dtype)
    with np.errstate(all="raise"):
        np.testing.assert_array_equal(layers.sigmoid(z), np.array([[0.0, 0.5, 1.0]], dtype))
        np.testing.assert_allclose(costs.softplus(z), [[0.0, np.log(2), 1e4]], rtol=1e-6)
        np.testing.assert_allclose(costs.log_softmax(z), [[-2e4, -1e4, 0.0]], rtol=1e-6)
        np.testing.assert_array_equal(layers.softmax(z), np.array([[0.0, 0.0, 1.0]], dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cost", COSTS, ids=[c.name for c in COSTS])
def test_costs_are_finite_at_extreme_logits(cost, dtype):
    z = _extreme(dtype)
    y = _targets(cost, z)
    with np.errstate(all="raise"):
        value = cost.value(z, y)
        g = cost.grad(z, y)
    assert np.isfinite(value)
    assert g.shape == z.shape and g.dtype == dtype
    assert np.isfinite(g).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropies_have_the_right_values_at_extreme_logits(dtype):
    z = np.array([[1e4, -1e4]], dtype)
    with np.errstate(all="raise"):
        assert costs.cross_entropy.value(z, np.array([0])) == 0.0
        assert costs.cross_entropy.value(z, np.array([1])) == pytest.approx(2e4)
        np.testing.assert_allclose(costs.cross_entropy.grad(z, np.array([1])), [[1.0, -1.0]])
        t = np.array([[1.0, 1.0]], dtype)  # bce: softplus(1e4) - 1e4 = 0; softplus(-1e4) + 1e4 = 1e4
        assert costs.binary_cross_entropy.value(z, t) == pytest.approx(0.5e4)
        np.testing.assert_allclose(costs.binary_cross_entropy.grad(z, t), [[0.0, -0.5]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cost", COSTS, ids=[c.name for c in COSTS])
def test_network_gradients_are_finite_when_the_logits_are_1e4(cost, dtype):
    """The same extremes reached through a network: value_and_grad is finite, with no flags."""
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype)
    w = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype)
    params = (fnn.Dense(w, np.zeros(3, dtype)), fnn.Identity())
    y = np.array([1, 0, 2]) if cost is not costs.binary_cross_entropy else np.ones((3, 3), dtype)
    with np.errstate(all="raise"):
        value, g = fnn.value_and_grad(params, (x, y), cost)
    assert np.isfinite(value)
    assert all(np.isfinite(leaf).all() for leaf in fnn.tree.leaves(g) if isinstance(leaf, np.ndarray))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layer", [fnn.Sigmoid(), fnn.Tanh(), fnn.Softmax(), fnn.ReLU(), fnn.LeakyReLU(0.1)])
def test_activation_vjps_are_finite_at_1e4(layer, dtype):
    z = _extreme(dtype)
    with np.errstate(all="raise"):
        y = layers.apply(layer, z)
        _, dx = layers.vjp(layer, z, y, np.ones_like(y))
    assert np.isfinite(y).all() and np.isfinite(dx).all()


def test_mse_value_is_accumulated_in_float64():
    """Decision: float32 predictions of 1e20 (or up to the float32 maximum) give a finite mse value.

    The squares would overflow float32 (1e40 > 3.4e38); mse sums them in float64. Its gradient,
    ``2 (pred - y) / size``, stays in float32 and is finite.
    """
    for v in (1e20, 1e30, 3e38):
        z = np.full((2, 3), v, np.float32)
        with np.errstate(all="raise"):
            value = costs.mse.value(z, np.array([0, 1]))
            g = costs.mse.grad(z, np.array([0, 1]))
        assert np.isfinite(value) and value == pytest.approx(float(v) ** 2, rel=1e-6)
        assert g.dtype == np.float32 and np.isfinite(g).all()


def test_mse_in_float64_overflows_only_past_1e154():
    """Documented limit: a float64 difference beyond ~1.3e154 squares to inf (train reports divergence)."""
    with np.errstate(all="raise"):
        assert np.isfinite(costs.mse.value(np.full((1, 1), 1e150), np.zeros((1, 1))))
    with np.errstate(over="ignore"):
        assert costs.mse.value(np.full((1, 1), 1e160), np.zeros((1, 1))) == np.inf


def test_underflow_handling_does_not_leak_into_the_callers_error_state():
    with np.errstate(all="raise"):
        costs.softplus(np.array([-1e4]))
        with pytest.raises(FloatingPointError):
            np.exp(np.array([-1e4]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cost", COSTS, ids=[c.name for c in COSTS])
def test_fused_value_and_grad_is_finite_and_agrees_at_extreme_logits(cost, dtype):
    fused = getattr(costs, "value_and_grad", None)
    if fused is None:
        pytest.skip("no fused costs.value_and_grad")
    z = _extreme(dtype)
    y = _targets(cost, z)
    with np.errstate(all="raise"):
        value, g = fused(cost, z, y)
        assert np.isfinite(value) and np.isfinite(g).all()
        assert value == pytest.approx(cost.value(z, y), rel=1e-6)
        np.testing.assert_allclose(g, cost.grad(z, y), rtol=1e-6, atol=1e-12)
