"""Conv2D: finite-difference gradients over strides, paddings and odd sizes; equality with PyTorch."""

import numpy as np
import pytest

import fnn
from fnn import layers, tree
from fnn.layers.conv import resolve_padding
from tests.conftest import vjp_errors

GEOMETRIES = [  # kernel, stride, padding, (h, w)
    (3, 1, "same", (5, 6)),
    (3, 1, "valid", (5, 7)),
    (3, 2, 1, (7, 6)),
    (2, 1, "same", (4, 5)),
    ((2, 3), 2, (0, 2), (5, 5)),
    (1, 1, "valid", (3, 3)),
    (5, 3, 2, (9, 8)),
]


def _net(kernel, stride, padding, size, c_in=2, c_out=3):
    conv = fnn.conv2d(0, c_in, c_out, kernel, stride, padding, dtype=np.float64, size=size)
    conv = conv._replace(b=np.random.default_rng(5).standard_normal(c_out))  # nonzero bias
    n_out = fnn.forward((conv, fnn.Flatten()), np.zeros((1, *size, c_in))).shape[1]
    return (conv, fnn.Tanh(), fnn.Flatten(), fnn.dense(1, n_out, 2, dtype=np.float64))


def _pass(kernel, stride, padding, size, seed):
    """A float64 conv layer of this geometry, a random input ``x``, its output ``y`` and a random ``dy``."""
    layer = _net(kernel, stride, padding, size)[0]
    g = np.random.default_rng(seed)
    x = g.standard_normal((2, *size, 2))
    y = layers.apply(layer, x)
    return layer, x, y, g.standard_normal(y.shape)


@pytest.mark.parametrize("kernel, stride, padding, size", GEOMETRIES)
def test_conv_gradients_match_finite_differences(kernel, stride, padding, size):
    params = _net(kernel, stride, padding, size)
    g = np.random.default_rng(0)
    batch = (g.standard_normal((3, *size, 2)), g.standard_normal((3, 2)))
    with np.errstate(all="raise"):
        errors = fnn.check_grad(params, batch, mode="coordinates")
    assert max(tree.leaves(errors)) < 1e-7, errors
    _, _, _, input_errors = vjp_errors(params[0], batch[0])  # dx, dw, db against differences
    assert max(input_errors.values()) < 1e-7, input_errors


def test_conv_by_hand():
    # one 2x2 image, a 2x2 kernel of ones, valid: the sum of the 4 pixels plus the bias
    layer = fnn.Conv2D(np.ones((2, 2, 1, 1)), np.array([0.5]))
    x = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 2, 1)
    assert layers.apply(layer, x).ravel().tolist() == [10.5]
    dlayer, dx = layers.vjp(layer, x, None, np.array([[[[2.0]]]]))
    assert dx.ravel().tolist() == [2.0, 2.0, 2.0, 2.0]
    assert dlayer.w.ravel().tolist() == [2.0, 4.0, 6.0, 8.0] and dlayer.b.tolist() == [2.0]
    assert dlayer.stride == 0 and dlayer.padding == ((0, 0), (0, 0))


def test_conv2d_initialiser():
    layer = fnn.conv2d(3, 4, 16, 5)
    assert layer.w.shape == (5, 5, 4, 16) and layer.w.dtype == np.float32 and not layer.w.flags.writeable
    assert layer.padding == ((2, 2), (2, 2)) and layer.stride == 1
    assert np.all(layer.b == 0)
    assert abs(layer.w.std() - np.sqrt(2 / (5 * 5 * 4))) < 0.01
    assert np.array_equal(fnn.conv2d(3, 4, 16, 5).w, layer.w)
    assert not np.array_equal(fnn.conv2d(4, 4, 16, 5).w, layer.w)


def test_padding_resolution():
    assert resolve_padding("same", (4, 4)) == ((1, 2), (1, 2))
    assert resolve_padding("same", (3, 3), 2, (28, 28)) == ((0, 1), (0, 1))
    assert resolve_padding((1, 2), (3, 3)) == ((1, 1), (2, 2))
    layer = fnn.conv2d(0, 1, 1, 3, stride=2, padding="same", size=(7, 7))
    assert fnn.forward((layer,), np.zeros((1, 7, 7, 1))).shape == (1, 4, 4, 1)
    with pytest.raises(ValueError, match="pass size"):
        fnn.conv2d(0, 1, 1, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="'same', 'valid'"):
        fnn.conv2d(0, 1, 1, 3, padding="full")


@pytest.mark.parametrize("size, exc, message", [
    (5, TypeError, r"size must be the input \(h, w\), a pair of positive ints, got int 5; pass e.g. size=\(28, 28\)"),
    ((5,), TypeError, r"size must be the input \(h, w\), a pair of positive ints, got tuple \(5,\)"),
    ((5, 5, 1), TypeError, r"a pair of positive ints, got tuple \(5, 5, 1\)"),
    ((5.5, 5), TypeError, r"size's h must be a positive integer, got float 5.5; pass e.g. size=\(28, 28\)"),
    ((0, 5), ValueError, r"size's h must be a positive integer, got 0; pass e.g. size=\(28, 28\)"),
    ((5, -3), ValueError, r"size's w must be a positive integer, got -3"),
    ((True, 5), TypeError, r"size's h must be a positive integer, got bool True"),
])
def test_same_padding_size_must_be_a_pair_of_positive_ints(size, exc, message):
    with pytest.raises(exc, match=message):
        fnn.conv2d(0, 1, 1, 3, stride=2, padding="same", size=size)
    with pytest.raises(exc, match=message):  # checked wherever it is given
        fnn.conv2d(0, 1, 1, 3, size=size)
    assert fnn.conv2d(0, 1, 1, 3, stride=2, padding="same", size=[np.int64(7), 7]).padding == ((1, 1), (1, 1))


def test_conv_wrong_input_is_a_clear_error():
    params = (fnn.conv2d(0, 3, 4, 3),)
    with pytest.raises(ValueError, match=r"expects NHWC images \(batch, h, w, 3\).*reshape"):
        fnn.forward(params, np.zeros((2, 28, 28, 1)))
    with pytest.raises(ValueError, match="does not fit"):
        fnn.forward((fnn.conv2d(0, 1, 1, 5, padding="valid"),), np.zeros((1, 3, 3, 1)))


def test_conv_float32_stays_float32():
    layer = fnn.conv2d(0, 2, 3, 3)
    x = np.ones((2, 5, 5, 2), np.float32)
    y = layers.apply(layer, x)
    dlayer, dx = layers.vjp(layer, x, y, np.ones_like(y))
    assert y.dtype == dx.dtype == dlayer.w.dtype == dlayer.b.dtype == np.float32


@pytest.mark.parametrize("kernel, stride, padding, size", GEOMETRIES)
def test_conv_equals_torch(kernel, stride, padding, size):
    torch = pytest.importorskip("torch")
    layer, x, y, dy = _pass(kernel, stride, padding, size, seed=1)
    dlayer, dx = layers.vjp(layer, x, y, dy)
    (top, bottom), (left, right) = layer.padding
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)  # NHWC -> NCHW
    wt = torch.tensor(layer.w.transpose(3, 2, 0, 1), requires_grad=True)  # HWIO -> OIHW
    bt = torch.tensor(layer.b, requires_grad=True)
    yt = torch.nn.functional.conv2d(torch.nn.functional.pad(xt, (left, right, top, bottom)), wt, bt, stride=stride)
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), atol=1e-12)
    np.testing.assert_allclose(dlayer.w, wt.grad.numpy().transpose(2, 3, 1, 0), atol=1e-12)
    np.testing.assert_allclose(dlayer.b, bt.grad.numpy(), atol=1e-12)


def test_issue_example_runs_as_written():
    x = np.random.default_rng(0).random((4, 784)).astype(np.float32)
    key = 0
    params = (fnn.conv2d(key, 1, 32, 3), fnn.ReLU(), fnn.MaxPool2D(2), fnn.conv2d(key + 1, 32, 64, 3), fnn.ReLU(),
              fnn.MaxPool2D(2), fnn.Flatten(), fnn.Dropout(0.25), fnn.dense(key + 2, 7 * 7 * 64, 10))
    y = fnn.forward(params, x.reshape(-1, 28, 28, 1))  # dropout is identity here
    assert y.shape == (4, 10) and y.dtype == np.float32
    y_again = fnn.forward(params[:7] + params[8:], x.reshape(-1, 28, 28, 1))
    np.testing.assert_array_equal(y, y_again)
    y_train = fnn.forward(params, x.reshape(-1, 28, 28, 1), train=True, key=3)
    assert y_train.shape == (4, 10) and not np.array_equal(y_train, y)
    np.testing.assert_array_equal(y_train, fnn.forward(params, x.reshape(-1, 28, 28, 1), train=True, key=3))


@pytest.mark.parametrize("kernel, stride, padding, size", GEOMETRIES)
def test_param_vjp_equals_the_parameter_half_of_the_full_vjp(kernel, stride, padding, size):
    conv, x, y, dy = _pass(kernel, stride, padding, size, seed=3)
    full, _ = layers.vjp(conv, x, y, dy)
    part = layers.rule(conv).param_vjp(conv, x, y, dy)
    assert tree.all_equal(part, full)


def test_work_arrays_never_leak_into_results(monkeypatch):
    """Padded inputs and patch matrices are reused between calls; no result may share their memory."""
    from fnn.layers import conv as fconv

    layer = fnn.conv2d(0, 3, 4, 3)
    g = np.random.default_rng(0)
    x1, x2 = g.random((2, 2, 6, 6, 3), dtype=np.float32)
    y1 = layers.apply(layer, x1)
    g1, dx1 = layers.vjp(layer, x1, y1, np.ones_like(y1))
    kept = [y1.copy(), g1.w.copy(), dx1.copy()]
    y2 = layers.apply(layer, x2)  # the same shapes: the same work arrays
    g2, dx2 = layers.vjp(layer, x2, y2, y2)
    for before, after in zip(kept, [y1, g1.w, dx1]):
        np.testing.assert_array_equal(before, after)
    assert not any(np.shares_memory(a, b) for a in (y1, dx1, g1.w) for b in (y2, dx2, g2.w))
    monkeypatch.setattr(fconv, "_WORK_MAX_BYTES", 0)  # nothing kept: fresh arrays, the same numbers
    assert tree.all_equal(layers.vjp(layer, x2, y2, y2), (g2, dx2))
    np.testing.assert_array_equal(layers.apply(layer, x2), y2)


def test_threads_have_their_own_work_arrays():
    from concurrent.futures import ThreadPoolExecutor

    layer = fnn.conv2d(0, 8, 8, 3)
    xs = list(np.random.default_rng(1).random((8, 16, 12, 12, 8), dtype=np.float32))
    expected = [layers.apply(layer, x) for x in xs]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            got = list(pool.map(lambda x: layers.apply(layer, x), xs))
            assert all(np.array_equal(a, b) for a, b in zip(got, expected))
