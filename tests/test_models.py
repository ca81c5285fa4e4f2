"""fnn.models: the MLP, the small CNN and the regularised MLP build, run, and learn real digits quickly."""

import numpy as np
import pytest

import fnn
from fnn.models import dropout_mlp


def test_cnn_structure_and_shapes():
    params = fnn.cnn(seed=0)
    assert [type(l).__name__ for l in params] == [
        "Conv2D", "ReLU", "MaxPool2D", "Conv2D", "ReLU", "MaxPool2D",
        "Flatten", "Dropout", "Dense", "ReLU", "Dropout", "Dense",
    ]
    assert params[0].w.shape == (3, 3, 1, 32) and params[3].w.shape == (3, 3, 32, 64)
    assert params[8].w.shape == (7 * 7 * 64, 128) and params[-1].w.shape == (128, 10)
    x = np.random.default_rng(0).random((3, 28, 28, 1)).astype(np.float32)
    assert fnn.forward(params, x).shape == (3, 10)
    assert fnn.tree.all_equal(fnn.cnn(seed=0), params)
    assert not np.array_equal(fnn.cnn(seed=1)[0].w, params[0].w)


def test_cnn_options():
    params = fnn.cnn(seed=0, input_shape=(12, 10, 3), n_classes=4, channels=(4, 6, 8), hidden=0, dropout=0.0,
                     batch_norm=True, dtype=np.float64)
    names = [type(l).__name__ for l in params]
    assert names.count("BatchNorm") == 3 and "Dropout" not in names and names[-2:] == ["Flatten", "Dense"]
    assert params[-1].w.shape == (1 * 1 * 8, 4) and params[-1].w.dtype == np.float64
    assert fnn.forward(params, np.zeros((2, 12, 10, 3))).shape == (2, 4)
    with pytest.raises(ValueError, match="too small"):
        fnn.cnn(input_shape=(4, 4, 1), channels=(2, 2, 2))
    with pytest.raises(ValueError, match=r"must be a finite number in \[0, 1\), got 1.0"):
        fnn.cnn(dropout=1.0)


@pytest.mark.parametrize("shape, exc, message", [
    ((28, 28), TypeError, r"input_shape must be \(height, width, channels\) of one image, got tuple \(28, 28\); "
                          r"pass e.g. input_shape=\(28, 28, 1\)"),
    (28, TypeError, r"input_shape must be \(height, width, channels\) of one image, got int 28"),
    ((28, 28, 1, 1), TypeError, r"got tuple \(28, 28, 1, 1\)"),
    ((28, 28, 0), ValueError, r"input_shape's channels must be a positive integer, got 0; pass e.g. input_shape="),
    ((28, 2.5, 1), TypeError, r"input_shape's width must be a positive integer, got float 2.5"),
])
def test_cnn_input_shape_is_height_width_channels(shape, exc, message):
    with pytest.raises(exc, match=message):
        fnn.cnn(input_shape=shape)
    assert fnn.cnn(input_shape=[8, 6, 2], channels=(2,), hidden=0)[0].w.shape == (3, 3, 2, 2)


def test_dropout_rates_are_checked_even_where_no_dropout_is_built():
    with pytest.raises(ValueError, match=r"hidden_dropout must be a finite number in \[0, 1\), got 2.0; "
                                         r"pass e.g. cnn\(hidden_dropout=0.5\)"):
        fnn.cnn(hidden=0, hidden_dropout=2.0)
    with pytest.raises(TypeError, match=r"dropout must be a finite number in \[0, 1\), got str '0.1'"):
        fnn.cnn(dropout="0.1")
    with pytest.raises(ValueError, match=r"rate must be a finite number in \[0, 1\), got 5.0; "
                                         r"pass e.g. dropout_mlp\(sizes, rate=0.2\)"):
        dropout_mlp([3, 2], rate=5.0)
    with pytest.raises(ValueError, match=r"input_rate must be a finite number in \[0, 1\), got -1"):
        dropout_mlp([3, 2], input_rate=-1)
    assert [type(l).__name__ for l in dropout_mlp([3, 4, 2], rate=np.float32(0.5))] == [
        "Dense", "ReLU", "Dropout", "Dense"]


def test_cnn_switches_and_hidden_size_are_what_they_say():
    """batch_norm="no" is true in Python and hidden=False equals 0: both are refused, not taken."""
    for kwargs, match in [({"batch_norm": "no"}, "batch_norm must be True or False, got str 'no'"),
                          ({"flip": 1}, "flip must be True or False, got int 1"),
                          ({"hidden": False}, "hidden must be an integer >= 0, got bool False"),
                          ({"hidden": 2.0}, "hidden must be an integer >= 0, got float 2.0")]:
        with pytest.raises(TypeError, match=match):
            fnn.cnn(**kwargs)
    with pytest.raises(ValueError, match="hidden must be an integer >= 0, got -1"):
        fnn.cnn(hidden=-1)
    names = [type(layer).__name__ for layer in fnn.cnn(channels=(4,), hidden=0, batch_norm=np.True_, flip=True)]
    assert names == ["RandomFlip", "Conv2D", "BatchNorm", "ReLU", "MaxPool2D", "Flatten", "Dropout", "Dense"]


def test_dropout_mlp_structure():
    params = dropout_mlp([784, 64, 32, 10], rate=0.3, input_rate=0.1, seed=0)
    assert [type(l).__name__ for l in params] == [
        "Dropout", "Dense", "ReLU", "Dropout", "Dense", "ReLU", "Dropout", "Dense"]
    assert params[0].rate == 0.1 and params[3].rate == 0.3
    with pytest.raises(ValueError, match="at least an input and an output"):
        dropout_mlp([784])


def _digits(n_train, n_test):
    (x, y), (xt, yt) = fnn.datasets.load_digits()
    x = fnn.data.normalize(x[:n_train]).reshape(-1, 28, 28, 1)
    xt = fnn.data.normalize(xt[:n_test]).reshape(-1, 28, 28, 1)
    return (x, y[:n_train]), (xt, yt[:n_test])


def test_a_small_cnn_learns_the_digits():
    train, test = _digits(2000, 500)
    # channels (4, 8): a fifth of the compute of (8, 16) at 3e-3, which reached 0.952 too
    params = fnn.cnn(seed=0, channels=(4, 8), hidden=32, dropout=0.1, hidden_dropout=0.1)
    trained, history = fnn.train(params, train, epochs=3, batch_size=32, optimizer=fnn.adam(5e-3),
                                 cost=fnn.cross_entropy, seed=0)
    assert history[-1].loss < history[0].loss
    assert fnn.accuracy(trained, test) >= 0.93


def test_a_dropout_mlp_with_weight_decay_learns_the_digits():
    (x, y), (xt, yt) = _digits(2000, 500)
    params = dropout_mlp([784, 64, 10], rate=0.2, seed=0)
    trained, _ = fnn.train(params, (x.reshape(-1, 784), y), epochs=5, batch_size=32,
                           optimizer=fnn.adamw(2e-3, weight_decay=1e-4), cost=fnn.cross_entropy, seed=0)
    assert fnn.accuracy(trained, (xt.reshape(-1, 784), yt)) >= 0.88


def test_runs_config_selects_the_model_and_regularisation():
    from fnn import runs

    cfg = runs.resolve_config({"model": "cnn", "dropout": 0.25, "batch_norm": True})
    params = runs.build(cfg)
    names = [type(l).__name__ for l in params]
    assert names[0] == "Reshape" and names.count("Conv2D") == 2 and names.count("BatchNorm") == 2
    assert [l.rate for l in params if isinstance(l, fnn.Dropout)] == [0.25, 0.5]
    assert fnn.forward(params, np.zeros((2, 784), np.float32)).shape == (2, 10)
    mlp = runs.build(runs.resolve_config({"layers": "784,32,32,10", "activation": "relu", "dropout": 0.2}))
    assert [type(l).__name__ for l in mlp] == ["Dense", "ReLU", "Dropout", "Dense", "ReLU", "Dropout", "Dense", "ReLU"]
    assert fnn.tree.all_equal(runs.build(runs.resolve_config({})), runs.build(runs.resolve_config({"model": "mlp"})))
    three = runs.build(runs.resolve_config({"model": "cnn", "channels": "16,32,32"}))
    assert [l.w.shape[-1] for l in three if isinstance(l, fnn.Conv2D)] == [16, 32, 32]
    assert fnn.forward(three, np.zeros((1, 784), np.float32)).shape == (1, 10)
    flipped = runs.build(runs.resolve_config({"model": "cnn", "flip": True}))
    assert isinstance(flipped[1], fnn.RandomFlip) and isinstance(flipped[2], fnn.Conv2D)
    assert isinstance(fnn.cnn(flip=True)[0], fnn.RandomFlip)
    with pytest.raises(runs.ConfigError, match="channels"):
        runs.resolve_config({"channels": "32,x"})
    with pytest.raises(runs.ConfigError, match="unknown model 'resnet'"):
        runs.resolve_config({"model": "resnet"})
    with pytest.raises(runs.ConfigError, match="dropout"):
        runs.resolve_config({"dropout": 1.0})
    with pytest.raises(runs.ConfigError, match="weight_decay"):
        runs.resolve_config({"weight_decay": -1.0})


def test_runs_weight_decay_reaches_the_optimizer():
    from fnn import runs

    p = (np.ones(1, np.float32),)
    g = (np.zeros(1, np.float32),)
    for name, expected in [("adamw", -0.1 * 0.5), ("sgd", -0.1 * 0.5), ("adam", -0.1)]:
        cfg = runs.resolve_config({"optimizer": name, "lr": 0.1, "weight_decay": 0.5})
        opt, lr = runs._optimizer(cfg, 10)
        assert lr is None
        u = opt.update(g, opt.init(p), p)[0][0]
        np.testing.assert_allclose(u, [expected], rtol=1e-5)  # adam: the L2 gradient alone normalises to 1
    assert runs._optimizer(runs.resolve_config({"optimizer": "sgd", "lr": 0.1}), 10) == (None, 0.1)
