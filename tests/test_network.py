"""forward, loss, grad, value_and_grad, sgd_step, predict, accuracy: values, purity, read-only results."""

from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnn
from fnn import layers, tree


def _example():
    rng = np.random.default_rng(0)
    x = rng.random((64, 784), dtype=np.float32)
    labels = rng.integers(0, 10, 64)
    params = fnn.mlp([784, 16, 16, 10], activation="sigmoid", output_activation="sigmoid", seed=0)
    return params, x, labels


def test_must_work_as_written():
    params, x, labels = _example()
    y = fnn.forward(params, x)
    assert y.shape == (64, 10) and y.dtype == np.float32
    g = fnn.grad(params, (x, labels), cost=fnn.mse)
    assert tree.structure(g) == tree.structure(params)
    new = fnn.sgd_step(params, g, lr=0.1)
    assert tree.structure(new) == tree.structure(params)
    trained, history = fnn.train(params, (x, labels), epochs=2, batch_size=10, lr=3.0, cost=fnn.mse, seed=0)
    leaves, treedef = fnn.tree.flatten(trained)
    assert len(leaves) == 6 and len(history) == 2


def test_forward_matches_hand_written_network():
    params, x, _ = _example()
    (d1, _, d2, _, d3, _) = params
    s = lambda z: 1 / (1 + np.exp(-z.astype(np.float64)))  # noqa: E731
    expected = s(s(s(x @ d1.w + d1.b) @ d2.w + d2.b) @ d3.w + d3.b)
    np.testing.assert_allclose(fnn.forward(params, x), expected, rtol=1e-5, atol=1e-6)


def test_value_and_grad_equals_loss_and_grad():
    params, x, labels = _example()
    value, g = fnn.value_and_grad(params, (x, labels), fnn.mse)
    assert value == fnn.loss(params, (x, labels), fnn.mse)
    assert tree.all_equal(g, fnn.grad(params, (x, labels), fnn.mse))


@pytest.mark.parametrize("cost", [fnn.mse, fnn.cross_entropy, fnn.binary_cross_entropy], ids=lambda c: c.name)
@pytest.mark.parametrize("activation", sorted(fnn.layers.ACTIVATIONS))
def test_whole_network_gradients_match_finite_differences(cost, activation):
    g = np.random.default_rng(4)
    params = fnn.mlp([6, 5, 4, 3], activation, "identity", seed=1, dtype=np.float64)
    x, y = g.standard_normal((7, 6)), g.integers(0, 3, 7)
    errors = fnn.check_grad(params, (x, y), cost, mode="coordinates")
    assert max(tree.leaves(errors)) < 1e-6, errors


def test_sgd_step_values():
    params = (fnn.Dense(np.array([[1.0, 2.0]], np.float32), np.array([0.5, 0.5], np.float32)), fnn.LeakyReLU(0.2))
    grads = (fnn.Dense(np.array([[1.0, -1.0]], np.float32), np.array([2.0, 0.0], np.float32)), fnn.LeakyReLU(0.0))
    new = fnn.sgd_step(params, grads, lr=0.5)
    np.testing.assert_array_equal(new[0].w, [[0.5, 2.5]])
    np.testing.assert_array_equal(new[0].b, [-0.5, 0.5])
    assert new[0].w.dtype == np.float32 and new[1] == fnn.LeakyReLU(0.2)


def test_predict_and_accuracy():
    params = (fnn.Dense(np.eye(3, dtype=np.float32), np.zeros(3, np.float32)),)
    x = np.array([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]], np.float32)
    np.testing.assert_array_equal(fnn.predict(params, x), [1, 0])
    assert fnn.accuracy(params, (x, np.array([1, 1]))) == 0.5
    assert fnn.accuracy(params, (x, np.eye(3)[[1, 0]])) == 1.0


def _snapshot(*trees):
    return [np.array(leaf, copy=True) for t in trees for leaf in tree.leaves(t)]


def test_public_calls_are_pure_and_results_read_only():
    params, x, labels = _example()
    before = _snapshot(params, x, labels)
    g = fnn.grad(params, (x, labels))
    fnn.value_and_grad(params[:-1], (x, labels), fnn.cross_entropy)  # on the logits
    fnn.loss(params, (x, labels))
    fnn.forward(params, x)
    fnn.accuracy(params, (x, labels))
    new = fnn.sgd_step(params, g, lr=1.0)
    trained, _ = fnn.train(params, (x, labels), epochs=1, batch_size=16, lr=1.0)
    after = _snapshot(params, x, labels)
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    for t in (params, g, new, trained):
        for leaf in tree.leaves(t):
            if isinstance(leaf, np.ndarray):
                assert not leaf.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        trained[0].w[0, 0] = 1.0


def test_float64_networks_compute_in_float64():
    params = fnn.mlp([4, 3, 2], seed=0, dtype=np.float64)
    x = np.ones((2, 4), np.float32)
    assert fnn.forward(params, x).dtype == np.float64
    assert fnn.grad(params, (x, np.array([0, 1])))[0].w.dtype == np.float64


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 9), min_size=2, max_size=4),
    n=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    activation=st.sampled_from(sorted(fnn.layers.ACTIVATIONS)),
)
def test_forward_on_a_batch_equals_row_by_row(sizes, n, seed, activation):
    params = fnn.mlp(sizes, activation, seed=seed, dtype=np.float64)
    x = np.random.default_rng(seed).standard_normal((n, sizes[0]))
    whole = fnn.forward(params, x)
    rows = np.concatenate([fnn.forward(params, x[i : i + 1]) for i in range(n)])
    np.testing.assert_allclose(whole, rows, rtol=1e-12, atol=1e-12)


class _NoBackward(NamedTuple):
    """A parameter-free layer whose backward rule must never run."""


layers.register(_NoBackward, lambda layer, x: x + 1, lambda layer, x, y, dy: pytest.fail("vjp ran"))


def test_backprop_stops_at_the_first_layer_with_parameters():
    x = np.random.default_rng(0).random((5, 4))
    y = np.array([0, 1, 2, 1, 0])
    params = (_NoBackward(), fnn.ReLU(), fnn.dense(0, 4, 3, dtype=np.float64))
    grads = fnn.grad(params, (x, y), cost=fnn.cross_entropy)
    expected = fnn.grad(params[2:], (x + 1, y), cost=fnn.cross_entropy)
    assert grads[:2] == (_NoBackward(), fnn.ReLU()) and tree.all_equal(grads[2], expected[0])


def test_evaluation_runs_in_slices_with_the_whole_batch_result():
    from fnn.network import EVAL_ROWS, contexts, trace

    g = np.random.default_rng(0)
    x = g.random((2 * EVAL_ROWS + 3, 8, 8, 1), dtype=np.float32)
    y = g.integers(0, 10, len(x))
    params = fnn.cnn(0, input_shape=(8, 8, 1), channels=(4,), hidden=16, batch_norm=True, flip=True)
    whole = trace(params, x, contexts(params, False, None))[-1]
    np.testing.assert_allclose(fnn.forward(params, x), whole, rtol=1e-6, atol=1e-6)
    assert fnn.accuracy(params, (x, y)) == float((whole.argmax(axis=-1) == y).mean())
    assert np.isclose(fnn.loss(params, (x, y), fnn.cross_entropy), fnn.cross_entropy.value(whole, y), rtol=1e-6)


# ---------------------------------------------------------------------------
# Issue 15, case 8: one-output networks threshold their output
# ---------------------------------------------------------------------------


def test_one_output_accuracy_thresholds_logits_at_0_and_sigmoid_at_half():
    x = np.array([[-2.0], [-0.1], [0.1], [2.0]], np.float32)
    y = np.array([0, 1, 1, 1])  # 0/1 labels of one output are the targets themselves
    logits = (fnn.Dense(np.ones((1, 1), np.float32), np.zeros(1, np.float32)),)
    assert fnn.accuracy(logits, (x, y)) == 0.75  # outputs -2, -0.1, 0.1, 2: classes 0, 0, 1, 1
    sigmoid = logits + (fnn.Sigmoid(),)
    assert fnn.accuracy(sigmoid, (x, y)) == 0.75  # sigmoid(-0.1) < 0.5 < sigmoid(0.1)
    assert fnn.accuracy(sigmoid, (x, y.astype(np.float32))) == 0.75
    assert fnn.predict(sigmoid, x).tolist() == [0, 0, 1, 1]
    assert fnn.accuracy(logits, (x, 1 - y)) == 0.25  # no longer always 1.0


def test_one_output_val_accuracy_in_the_history_is_thresholded():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    net = fnn.mlp([2, 1], "sigmoid", "identity", seed=0)
    _, history = fnn.train(net, (x, y), epochs=5, batch_size=20, lr=1.0, cost=fnn.binary_cross_entropy,
                           validation=(x, 1 - y))
    assert history[-1].val_accuracy < 0.5  # the labels were flipped: accuracy must say so


def test_backprop_from_a_plain_list_of_activations_equals_backprop_from_the_trace():
    """Layers that save values for their backward pass recompute them from a hand-built list."""
    from fnn.network import backprop, contexts

    rng = np.random.default_rng(0)
    params = (fnn.dense(0, 4, 8, dtype=np.float64), fnn.LayerNorm(rng.standard_normal(8), rng.standard_normal(8)),
              fnn.GELU(), fnn.dense(1, 8, 3, dtype=np.float64))
    x, dy = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    ctxs = contexts(params, False, fnn.random.key(0))
    xs = layers.trace(params, x, ctxs)
    assert isinstance(xs, layers.Trace)
    from_trace = backprop(params, xs, dy, ctxs)
    from_list = backprop(params, list(xs), dy, ctxs)
    assert tree.all_equal(from_list, from_trace)
    assert np.abs(from_trace[1].gamma).sum() > 0  # the LayerNorm's gradient is not trivially zero
