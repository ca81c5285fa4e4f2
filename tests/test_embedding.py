"""Embedding and PositionalEmbedding: values and gradients equal PyTorch's; integer inputs; errors."""

import numpy as np
import pytest

import fnn
from fnn import layers


def test_embedding_equals_torch_and_repeated_ids_add_up():
    torch = pytest.importorskip("torch")
    layer = fnn.embedding(0, 7, 3, dtype=np.float64)
    ids = np.array([[1, 4, 1], [6, 0, 1]])
    dy = np.random.default_rng(0).standard_normal((2, 3, 3))
    module = torch.nn.Embedding(7, 3).double()
    with torch.no_grad():
        module.weight.copy_(torch.tensor(layer.table))
    out = module(torch.tensor(ids))
    out.backward(torch.tensor(dy))
    y = layers.apply(layer, ids)
    grads, dx = layers.vjp(layer, ids, y, dy)
    np.testing.assert_array_equal(y, out.detach().numpy())
    np.testing.assert_allclose(grads.table, module.weight.grad.numpy(), rtol=1e-14)
    np.testing.assert_allclose(grads.table[1], dy[0, 0] + dy[0, 2] + dy[1, 2], rtol=1e-14)
    assert dx.shape == ids.shape and not dx.any()


def test_a_network_starting_with_an_embedding_takes_integer_ids():
    net = (fnn.embedding(0, 6, 4), fnn.positional_embedding(1, 6, 4), fnn.dense(2, 4, 6))
    ids = np.array([[0, 1, 2], [4, 3, 2]])
    out = fnn.forward(net, ids)
    assert out.shape == (2, 3, 6) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, 1], (net[0].table[1] + net[1].table[1]) @ net[2].w + net[2].b, rtol=1e-6)
    g = fnn.grad(net, (ids, ids), fnn.cross_entropy)
    assert g[0].table[:5].any(axis=1).all() and not g[0].table[5].any()  # id 5 is never read
    assert not g[1].table[3:].any() and g[1].table[:3].all()


def test_embedding_errors_name_the_fix():
    net = (fnn.embedding(0, 5, 4),)
    with pytest.raises(ValueError, match=r"Embedding takes integer ids.*float32.*astype\(np.int64\)"):
        fnn.forward(net, np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"takes ids in \[0, 5\), got ids from 0 to 5"):
        fnn.forward(net, np.array([[0, 5]]))
    with pytest.raises(ValueError, match=r"takes ids in \[0, 5\), got ids from -1"):
        fnn.forward(net, np.array([[-1, 2]]))
    long = (fnn.embedding(0, 5, 4), fnn.positional_embedding(1, 3, 4))
    with pytest.raises(ValueError, match="holds 3 positions but the sequence has 4 steps"):
        fnn.forward(long, np.zeros((1, 4), np.int64))


def test_sequence_costs_are_the_mean_over_positions_as_torch_on_flattened_arrays():
    torch = pytest.importorskip("torch")
    g = np.random.default_rng(0)
    logits, labels = g.standard_normal((2, 3, 4)), g.integers(0, 4, (2, 3))
    value, grad = fnn.costs.value_and_grad(fnn.cross_entropy, logits, labels)
    zt = torch.tensor(logits.reshape(-1, 4), requires_grad=True)
    want = torch.nn.functional.cross_entropy(zt, torch.tensor(labels.reshape(-1)))
    want.backward()
    assert value == pytest.approx(want.item(), rel=1e-13)
    np.testing.assert_allclose(grad.reshape(-1, 4), zt.grad.numpy(), rtol=1e-12)
    onehot = np.eye(4)[labels]
    assert fnn.cross_entropy.value(logits, onehot) == pytest.approx(value, rel=1e-13)
    assert fnn.mse.value(logits, labels) == pytest.approx(fnn.mse.value(logits, onehot), rel=1e-13)
    np.testing.assert_allclose(fnn.mse.grad(logits, labels), fnn.mse.grad(logits, onehot), rtol=1e-13)


def test_accuracy_and_predict_per_position():
    table = np.eye(3, dtype=np.float32)
    net = (fnn.Embedding(table),)  # the output's argmax is the id itself
    ids = np.array([[0, 1, 2], [2, 2, 1]])
    np.testing.assert_array_equal(fnn.predict(net, ids), ids)
    labels = ids.copy()
    labels[1, 0] = 0
    assert fnn.accuracy(net, (ids, labels)) == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        fnn.loss(net, (ids, labels + 3), fnn.cross_entropy)
