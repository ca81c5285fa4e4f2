"""Recurrent layers: forward and every gradient equal PyTorch's in float64; errors; Last."""

import numpy as np
import pytest

import fnn
from fnn import layers
from tests.frozen import read_only

B, T, N_IN, H = 3, 5, 4, 6


def _torch_pass(module, x, dy):
    """PyTorch's output and the gradients of <output, dy> w.r.t. every parameter and the input."""
    torch = pytest.importorskip("torch")
    xt = torch.tensor(x, requires_grad=True)
    out, _ = module(xt)
    out.backward(torch.tensor(dy))
    grads = {name: p.grad.numpy() for name, p in module.named_parameters()}
    return out.detach().numpy(), grads, xt.grad.numpy()


def _copy(module, **weights):
    torch = pytest.importorskip("torch")
    with torch.no_grad():
        for name, value in weights.items():
            getattr(module, name).copy_(torch.tensor(value))


def _setup(make, steps=T, batch=B):
    g = np.random.default_rng(0)
    layer = make(1, N_IN, H, dtype=np.float64)
    x = g.standard_normal((batch, steps, N_IN))
    return layer, x, g.standard_normal((batch, steps, H))


@pytest.mark.parametrize("steps, batch", [(T, B), (1, B), (2, 1)])
@pytest.mark.parametrize("make, kind", [(fnn.rnn, "RNN"), (fnn.lstm, "LSTM"), (fnn.gru, "GRU")])
def test_forward_and_every_gradient_equal_torch(make, kind, steps, batch):
    torch = pytest.importorskip("torch")
    layer, x, dy = _setup(make, steps, batch)
    module = getattr(torch.nn, kind)(N_IN, H, batch_first=True).double()
    if kind == "GRU":
        _copy(module, weight_ih_l0=layer.w_x.T, weight_hh_l0=layer.w_h.T, bias_ih_l0=layer.b_x, bias_hh_l0=layer.b_h)
    else:  # one bias: all of it in b_ih, b_hh = 0
        _copy(module, weight_ih_l0=layer.w_x.T, weight_hh_l0=layer.w_h.T, bias_ih_l0=layer.b,
              bias_hh_l0=np.zeros_like(layer.b))
    want, tgrads, tdx = _torch_pass(module, x, dy)
    with np.errstate(all="raise"):
        y = layers.apply(layer, x)
        grads, dx = layers.vjp(layer, x, y, dy)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, tdx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads.w_x, tgrads["weight_ih_l0"].T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads.w_h, tgrads["weight_hh_l0"].T, rtol=1e-10, atol=1e-12)
    if kind == "GRU":
        np.testing.assert_allclose(grads.b_x, tgrads["bias_ih_l0"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(grads.b_h, tgrads["bias_hh_l0"], rtol=1e-10, atol=1e-12)
    else:
        np.testing.assert_allclose(grads.b, tgrads["bias_ih_l0"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(grads.b, tgrads["bias_hh_l0"], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make", [fnn.rnn, fnn.lstm, fnn.gru])
def test_float32_by_default_and_pytorch_init_bounds(make):
    layer = make(0, 28, 64)
    assert all(a.dtype == np.float32 and not a.flags.writeable for a in layer)
    k = 1 / np.sqrt(64)
    assert np.abs(layer.w_x).max() <= k and np.abs(layer.w_h).max() <= k
    assert np.abs(layer.w_h).max() > 0.9 * k  # uniform over the whole range, not a narrower one
    y = fnn.forward((layer,), np.ones((2, 3, 28)))
    assert y.shape == (2, 3, 64) and y.dtype == np.float32


@pytest.mark.parametrize("make", [fnn.rnn, fnn.lstm, fnn.gru])
def test_passes_write_into_no_input_and_no_saved_value(make):
    """Forward, vjp and param_vjp are pure: with x, y, dy and the saved values read-only, both passes still work."""
    layer, x, dy = _setup(make)
    r = layers.rule(layer)
    want_y, want = layers.apply(layer, x), layers.vjp(layer, x, layers.apply(layer, x), dy)
    x, dy = read_only(x.copy()), read_only(dy.copy())
    y, saved = r.forward(layer, x)
    read_only((y, saved))
    grads, dx = r.vjp(layer, x, y, dy, saved)
    assert fnn.tree.all_equal(r.param_vjp(layer, x, y, dy, saved), grads)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(dx, want[1])
    assert fnn.tree.all_equal(grads, want[0])


@pytest.mark.parametrize("make", [fnn.rnn, fnn.lstm, fnn.gru])
def test_float32_stays_float32_through_both_passes(make):
    layer = make(0, 3, 5)
    x = np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32)
    y = layers.apply(layer, x)
    grads, dx = layers.vjp(layer, x, y, np.ones_like(y))
    assert y.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads)
    _, dlast = layers.vjp(fnn.Last(), y, y[:, -1], np.ones((2, 5), np.float32))
    assert dlast.dtype == np.float32 and dlast.shape == y.shape


@pytest.mark.parametrize("make", [fnn.rnn, fnn.lstm, fnn.gru])
def test_missing_time_axis_says_how_to_add_it(make):
    net = (make(0, 28, 8), fnn.Last(), fnn.dense(1, 8, 10))
    with pytest.raises(ValueError, match=r"sequences \(batch, time, 28\).*missing time axis.*Reshape\(\(28, 28\)\)"):
        fnn.forward(net, np.zeros((2, 784), np.float32))
    assert fnn.forward((fnn.Reshape((28, 28)),) + net, np.zeros((2, 784), np.float32)).shape == (2, 10)


def test_last_takes_the_final_step_and_sends_its_gradient_back_there():
    x = np.arange(24.0).reshape(2, 3, 4)
    y = layers.apply(fnn.Last(), x)
    np.testing.assert_array_equal(y, x[:, -1])
    _, dx = layers.vjp(fnn.Last(), x, y, np.ones((2, 4)))
    assert dx[:, -1].sum() == 8 and dx[:, :-1].sum() == 0
    with pytest.raises(ValueError, match="Last takes sequences"):
        layers.apply(fnn.Last(), np.zeros((2, 3)))


def test_row_by_row_network_trains_and_checks():
    g = np.random.default_rng(0)
    x, y = g.standard_normal((6, 4 * 3)), g.integers(0, 3, 6)
    for make in (fnn.rnn, fnn.lstm, fnn.gru):
        net = (fnn.Reshape((4, 3)), make(0, 3, 5, dtype=np.float64), fnn.Last(), fnn.dense(1, 5, 3, dtype=np.float64))
        errors = fnn.check_grad(net, (x, y), fnn.cross_entropy)
        assert max(fnn.tree.leaves(errors)) < 1e-6, errors
