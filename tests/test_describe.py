"""fnn.num_params and fnn.summary: trainable counts per layer, output shapes from one example."""

import numpy as np
import pytest

import fnn


def test_seed_network_has_13002_params():
    params = fnn.mlp([784, 16, 16, 10])
    assert fnn.num_params(params) == 13_002 == 784 * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10
    s = fnn.summary(params, 784)
    assert s.params == 13_002 and s.other == 0
    assert [r.output_shape for r in s.layers] == [(16,), (16,), (16,), (16,), (10,), (10,)]
    assert [r.params for r in s.layers] == [12_560, 0, 272, 0, 170, 0]
    assert "13,002" in str(s) and "Dense" in str(s)


def test_settings_and_statistics_are_not_trainable():
    """The issue's counts: LeakyReLU 1 leaf scalar but 0 params; BatchNorm(16) 66 but 32; Conv2D 85 but 80."""
    conv = fnn.conv2d(0, 1, 8, 3)
    bn = fnn.batch_norm(16)
    assert fnn.tree.size(fnn.LeakyReLU(0.1)) == 1 and fnn.num_params((fnn.LeakyReLU(0.1),)) == 0
    assert fnn.tree.size(bn) == 66 and fnn.num_params((bn,)) == 32
    assert fnn.num_params((conv,)) == 80 == conv.w.size + conv.b.size and fnn.tree.size(conv) == 85


def test_summary_of_a_conv_net_runs_one_example():
    params = fnn.cnn(0, channels=(4, 8), batch_norm=True)
    s = fnn.summary(params, (28, 28, 1))
    assert s.layers[0].output_shape == (28, 28, 4) and s.layers[-1].output_shape == (10,)
    assert s.params == fnn.num_params(params)
    assert s.other == 2 * (4 + 8)  # the BatchNorm running means and variances
    assert "statistics" in str(s)


def test_summary_errors_name_the_shape():
    with pytest.raises(ValueError, match="input_shape is the shape of one example"):
        fnn.summary(fnn.mlp([4, 2]), (0,))
    with pytest.raises(ValueError, match=r"layer 0 \(Dense"):
        fnn.summary(fnn.mlp([4, 2]), (5,))
    assert fnn.summary(fnn.mlp([4, 2], dtype=np.float64), np.int64(4)).input_shape == (4,)
