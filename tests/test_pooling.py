"""MaxPool2D, AvgPool2D, Flatten, Reshape: values by hand, finite differences, equality with PyTorch."""

import numpy as np
import pytest

import fnn
from fnn import layers
from tests.conftest import vjp_errors

POOLS = [  # window, stride, (h, w)
    (2, None, (4, 6)),
    (2, None, (5, 7)),  # odd sizes: the last row and column are dropped
    (3, 2, (7, 6)),  # overlapping windows
    (3, None, (6, 9)),
    (2, 1, (3, 4)),
    (1, None, (2, 3)),
]


@pytest.mark.parametrize("pool", [fnn.MaxPool2D, fnn.AvgPool2D])
@pytest.mark.parametrize("window, stride, size", POOLS)
def test_pool_gradients_match_finite_differences(pool, window, stride, size):
    x = np.random.default_rng(0).standard_normal((2, *size, 3))  # distinct values: max is differentiable
    with np.errstate(all="raise"):
        y, dlayer, dx, errors = vjp_errors(pool(window, stride), x)
    assert max(errors.values()) < 1e-7, errors
    s = window if stride is None else stride
    assert y.shape == (2, (size[0] - window) // s + 1, (size[1] - window) // s + 1, 3)
    assert dlayer == pool(0, None if stride is None else 0)


def test_pool_values_by_hand():
    x = np.array([[1.0, 5, 2, 0], [3, 4, 8, 1], [0, 0, -1, -2], [0, 6, -3, -4]]).reshape(1, 4, 4, 1)
    assert layers.apply(fnn.MaxPool2D(2), x)[0, :, :, 0].tolist() == [[5, 8], [6, -1]]
    assert layers.apply(fnn.AvgPool2D(2), x)[0, :, :, 0].tolist() == [[3.25, 2.75], [1.5, -2.5]]
    dx = layers.vjp(fnn.MaxPool2D(2), x, layers.apply(fnn.MaxPool2D(2), x), np.ones((1, 2, 2, 1)))[1]
    assert dx[0, :, :, 0].tolist() == [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0], [0, 1, 0, 0]]


def test_max_pool_ties_send_the_gradient_to_the_first_maximum_once():
    x = np.zeros((1, 2, 2, 1))
    dx = layers.vjp(fnn.MaxPool2D(2), x, np.zeros((1, 1, 1, 1)), np.full((1, 1, 1, 1), 3.0))[1]
    assert dx.ravel().tolist() == [3.0, 0.0, 0.0, 0.0]


def _naive_max_pool_dx(x, dy, k, s):
    """The first-maximum rule written as loops over windows: the reference for the vectorised passes."""
    dx = np.zeros_like(x)
    for n, i, j, c in np.ndindex(dy.shape):
        window = x[n, s * i : s * i + k, s * j : s * j + k, c]
        p, q = np.unravel_index(np.argmax(window), window.shape)  # argmax: the first maximum
        dx[n, s * i + p, s * j + q, c] += dy[n, i, j, c]
    return dx


@pytest.mark.parametrize("window, stride, size", POOLS)
def test_max_pool_with_many_ties_matches_window_by_window_loops(window, stride, size):
    g = np.random.default_rng(2)
    x = np.maximum(g.integers(-2, 2, (3, *size, 4)), 0).astype(np.float32)  # mostly tied zeros and ones
    layer = fnn.MaxPool2D(window, stride)
    y = layers.apply(layer, x)
    dy = g.standard_normal(y.shape).astype(np.float32)
    dx = layers.vjp(layer, x, y, dy)[1]
    assert dx.shape == x.shape and dx.dtype == np.float32
    expected = _naive_max_pool_dx(x, dy, window, window if stride is None else stride)
    np.testing.assert_allclose(dx, expected, rtol=1e-6, atol=1e-6)  # overlapping windows add in another order


def test_pool_errors_are_clear():
    with pytest.raises(ValueError, match=r"MaxPool2D\(3\) expects NHWC images .* at least 3x3"):
        fnn.forward((fnn.MaxPool2D(3),), np.zeros((1, 2, 2, 1)))
    with pytest.raises(ValueError, match="positive int window"):
        fnn.forward((fnn.AvgPool2D(0),), np.zeros((1, 2, 2, 1)))


@pytest.mark.parametrize("window, stride, size", POOLS)
def test_pools_equal_torch(window, stride, size):
    torch = pytest.importorskip("torch")
    g = np.random.default_rng(1)
    x = g.standard_normal((2, *size, 3))
    for pool, fn in [(fnn.MaxPool2D, torch.nn.functional.max_pool2d), (fnn.AvgPool2D, torch.nn.functional.avg_pool2d)]:
        layer = pool(window, stride)
        y = layers.apply(layer, x)
        dy = g.standard_normal(y.shape)
        dx = layers.vjp(layer, x, y, dy)[1]
        xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
        yt = fn(xt, window, stride)
        yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))
        np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), atol=1e-12)
        np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), atol=1e-12)


def test_flatten_and_reshape():
    x = np.arange(24.0).reshape(2, 3, 4)
    for layer, shape in [(fnn.Flatten(), (2, 12)), (fnn.Reshape((4, 3)), (2, 4, 3)), (fnn.Reshape((-1, 2)), (2, 6, 2))]:
        y = layers.apply(layer, x)
        assert y.shape == shape
        np.testing.assert_array_equal(y.ravel(), x.ravel())
        dlayer, dx = layers.vjp(layer, x, y, y * 2)
        np.testing.assert_array_equal(dx, x * 2)
        assert type(dlayer) is type(layer)
    assert layers.vjp(fnn.Reshape((4, 3)), x, None, np.zeros((2, 4, 3)))[0] == fnn.Reshape((0, 0))
    with pytest.raises(ValueError, match=r"Reshape\(5, 5\) cannot take examples of shape \(3, 4\)"):
        fnn.forward((fnn.Reshape((5, 5)),), x)


def test_mlp_input_reshaped_for_a_cnn():
    params = (fnn.Reshape((4, 4, 1)), fnn.conv2d(0, 1, 2, 3, dtype=np.float64), fnn.AvgPool2D(2), fnn.Flatten(),
              fnn.dense(1, 8, 3, dtype=np.float64))
    g = np.random.default_rng(2)
    errors = fnn.check_grad(params, (g.standard_normal((3, 16)), np.array([0, 2, 1])), fnn.cross_entropy,
                            mode="coordinates")
    assert max(fnn.tree.leaves(errors)) < 1e-7
