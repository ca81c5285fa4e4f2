"""MultiHeadAttention and GELU: forward and every gradient equal PyTorch's in float64; errors."""

import numpy as np
import pytest

import fnn
from fnn import layers

B, T, D, HEADS = 2, 5, 8, 2


@pytest.mark.parametrize("causal", [True, False])
def test_attention_equals_torch_multihead_attention(causal):
    torch = pytest.importorskip("torch")
    g = np.random.default_rng(0)
    layer = fnn.attention(0, D, HEADS, causal=causal, dtype=np.float64)
    layer = layer._replace(b_in=g.standard_normal(3 * D), b_out=g.standard_normal(D))  # nonzero biases
    x, dy = g.standard_normal((B, T, D)), g.standard_normal((B, T, D))
    module = torch.nn.MultiheadAttention(D, HEADS, batch_first=True).double()
    with torch.no_grad():
        module.in_proj_weight.copy_(torch.tensor(layer.w_in.T))
        module.in_proj_bias.copy_(torch.tensor(layer.b_in))
        module.out_proj.weight.copy_(torch.tensor(layer.w_out.T))
        module.out_proj.bias.copy_(torch.tensor(layer.b_out))
    xt = torch.tensor(x, requires_grad=True)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=torch.float64) if causal else None
    out, _ = module(xt, xt, xt, attn_mask=mask, need_weights=False, is_causal=causal)
    out.backward(torch.tensor(dy))
    with np.errstate(all="raise"):
        y = layers.apply(layer, x)
        grads, dx = layers.vjp(layer, x, y, dy)
    np.testing.assert_allclose(y, out.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads.w_in, module.in_proj_weight.grad.numpy().T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads.b_in, module.in_proj_bias.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads.w_out, module.out_proj.weight.grad.numpy().T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads.b_out, module.out_proj.bias.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_causal_attention_never_looks_ahead():
    layer = fnn.attention(0, D, HEADS, dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((1, T, D))
    later = x.copy()
    later[:, 3:] += 1.0
    np.testing.assert_allclose(layers.apply(layer, x)[:, :3], layers.apply(layer, later)[:, :3], rtol=1e-13)


def test_attention_init_and_errors():
    layer = fnn.attention(0, 64, 4)
    assert layer.w_in.dtype == np.float32 and not layer.b_in.any() and not layer.b_out.any()
    assert np.abs(layer.w_in).max() <= np.sqrt(6 / (4 * 64)) and np.abs(layer.w_out).max() <= 1 / 8
    with pytest.raises(ValueError, match="dim 64 is not divisible by heads 5"):
        fnn.attention(0, 64, 5)
    with pytest.raises(ValueError, match=r"takes sequences \(batch, time, 64\)"):
        fnn.forward((layer,), np.zeros((2, 64)))
    with pytest.raises(ValueError, match="cannot split into 3 heads"):
        fnn.forward((layer._replace(heads=3),), np.zeros((2, 4, 64)))


def test_gelu_equals_torch_tanh_approximation():
    torch = pytest.importorskip("torch")
    x = np.linspace(-8, 8, 101).reshape(1, -1)
    dy = np.random.default_rng(0).standard_normal(x.shape)
    xt = torch.tensor(x, requires_grad=True)
    out = torch.nn.functional.gelu(xt, approximate="tanh")
    out.backward(torch.tensor(dy))
    y = layers.apply(fnn.GELU(), x)
    _, dx = layers.vjp(fnn.GELU(), x, y, dy)
    np.testing.assert_allclose(y, out.detach().numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)  # cancellation in the far tail


@pytest.mark.parametrize("causal", ["False", None, 0, 1.0])
def test_causal_must_be_a_bool(causal):
    with pytest.raises(TypeError, match=rf"attention: causal must be True or False, got {type(causal).__name__} "
                                        r".*; pass e.g. causal=False"):
        fnn.attention(0, 4, 2, causal=causal)
    assert fnn.attention(0, 4, 2, causal=np.bool_(False)).causal is False


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_is_finite_and_right_for_huge_finite_inputs(dtype):
    """Past |x| = 10, tanh u is exactly +-1: y = x or -0 and dy/dx = 1 or 0, with no overflow (x^3) or inf * 0."""
    big = np.finfo(dtype).max
    x = np.array([[3e13, -3e13, 1e20, -1e20, big, -big, 10.0, -10.0, 9.99]], dtype)
    with np.errstate(all="raise"):
        y = layers.apply(fnn.GELU(), x)
        _, dx = layers.vjp(fnn.GELU(), x, y, np.ones_like(x))
    assert y.dtype == dx.dtype == dtype
    np.testing.assert_array_equal(y[0, :8], np.maximum(x[0, :8], 0))
    np.testing.assert_array_equal(dx[0, :8], x[0, :8] > 0)
    np.testing.assert_allclose([y[0, 8], dx[0, 8]], [9.99, 1], rtol=1e-6)
    params = (fnn.Dense(np.array([[1e14]], dtype), np.zeros(1, dtype)), fnn.GELU())
    g = fnn.grad(params, (np.ones((1, 1), dtype), np.zeros((1, 1), dtype)), fnn.mse)
    assert np.isfinite(g[0].w).all() and g[0].w[0, 0] > 0
