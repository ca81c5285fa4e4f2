"""fnn.metrics: probabilities by the cost's link, confusion matrix and per-class accuracy, against plain NumPy."""

import numpy as np
import pytest

import fnn


def _net_and_data(n=300, seed=0):
    g = np.random.default_rng(seed)
    params = fnn.mlp([5, 7, 4], "tanh", "identity", seed=seed)
    x = g.standard_normal((n, 5)).astype(np.float32)
    return params, x, g.integers(0, 4, n)


def test_confusion_matrix_counts_true_predicted_pairs():
    params, x, y = _net_and_data()
    pred = fnn.predict(params, x)
    expected = np.zeros((4, 4), np.int64)
    np.add.at(expected, (y, pred), 1)
    got = fnn.confusion_matrix(params, (x, y))
    assert got.dtype == np.int64 and np.array_equal(got, expected)
    assert np.trace(got) / got.sum() == fnn.accuracy(params, (x, y))
    assert np.array_equal(fnn.confusion_matrix(params, (x, np.eye(4)[y])), got)  # one-hot rows


def test_per_class_accuracy_is_each_class_recall():
    params, x, y = _net_and_data()
    pred = fnn.predict(params, x)
    expected = [np.mean(pred[y == k] == k) for k in range(4)]
    np.testing.assert_allclose(fnn.per_class_accuracy(params, (x, y)), expected, rtol=1e-15)
    absent = fnn.per_class_accuracy(params, (x[y != 2], y[y != 2]))
    assert np.isnan(absent[2]) and not np.isnan(absent[[0, 1, 3]]).any()


def test_probabilities_follow_the_cost():
    params, x, _ = _net_and_data(20)
    logits = fnn.forward(params, x).astype(np.float64)
    soft = fnn.probabilities(params, x, fnn.cross_entropy)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(soft, expected, rtol=1e-5)
    np.testing.assert_allclose(soft.sum(axis=1), 1, rtol=1e-6)
    sig = fnn.probabilities(params, x, fnn.binary_cross_entropy)
    np.testing.assert_allclose(sig, 1 / (1 + np.exp(-logits)), rtol=1e-5)


def test_probabilities_refuse_mse_and_squashed_outputs():
    params, x, _ = _net_and_data(5)
    with pytest.raises(ValueError, match="cost on logits.*fnn.forward"):
        fnn.probabilities(params, x, fnn.mse)
    with pytest.raises(ValueError, match="takes logits.*ends in Softmax"):
        fnn.probabilities(params + (fnn.Softmax(),), x, fnn.cross_entropy)


def test_probabilities_refuse_a_softmax_over_one_output():
    """A softmax of one logit is always 1: refused as train refuses it, not returned as all ones."""
    params, x = fnn.mlp([5, 1], "identity", "identity", seed=0), _net_and_data(5)[1]
    with pytest.raises(ValueError, match="softmax over the outputs, but the network has one output"):
        fnn.probabilities(params, x, fnn.cross_entropy)
    sig = fnn.probabilities(params, x, fnn.binary_cross_entropy)
    np.testing.assert_allclose(sig, 1 / (1 + np.exp(-fnn.forward(params, x).astype(np.float64))), rtol=1e-5)


def test_metrics_validate_their_data():
    params, x, y = _net_and_data(5)
    with pytest.raises(ValueError, match="labels must lie in"):
        fnn.confusion_matrix(params, (x, y + 4))


def test_confusion_matrix_and_per_class_accuracy_count_sequence_positions():
    g = np.random.default_rng(0)
    params = (fnn.embedding(0, 5, 4), fnn.dense(1, 4, 3, init="torch"))  # ids (n, t) -> (n, t, 3)
    ids, y = g.integers(0, 5, (4, 6)), g.integers(0, 3, (4, 6))
    pred = fnn.predict(params, ids)  # (4, 6)
    expected = np.zeros((3, 3), np.int64)
    np.add.at(expected, (y.ravel(), pred.ravel()), 1)
    got = fnn.confusion_matrix(params, (ids, y))
    assert np.array_equal(got, expected) and got.sum() == 24
    assert np.trace(got) / got.sum() == fnn.accuracy(params, (ids, y))
    assert np.array_equal(fnn.confusion_matrix(params, (ids, np.eye(3)[y])), got)  # (n, t, k) one-hot rows
    recall = [np.mean(pred[y == k] == k) for k in range(3)]
    np.testing.assert_allclose(fnn.per_class_accuracy(params, (ids, y)), recall, rtol=1e-15)
