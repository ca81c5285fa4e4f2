"""Initialisers (fnn.layers.initializers), fnn.dense and fnn.mlp: shapes, statistics, reproducibility, errors."""

import subprocess
import sys

import numpy as np
import pytest

import fnn
from fnn import tree


def test_seed_network_shape():
    params = fnn.mlp([784, 16, 16, 10])
    assert [type(l).__name__ for l in params] == ["Dense", "Sigmoid"] * 3
    assert [l.w.shape for l in params[::2]] == [(784, 16), (16, 16), (16, 10)]
    assert all(l.w.dtype == np.float32 for l in params[::2])


def test_output_activation_and_dtype():
    params = fnn.mlp([4, 8, 2], "relu", "identity", dtype=np.float64)
    assert isinstance(params[1], fnn.ReLU) and isinstance(params[3], fnn.Identity)
    assert params[0].w.dtype == np.float64


@pytest.mark.parametrize("init, std", [("xavier", np.sqrt(2 / (400 + 300))), ("he", np.sqrt(2 / 400)),
                                        ("normal", 1.0), ("torch", 1 / np.sqrt(3 * 400))])
def test_initialiser_scales(init, std):
    layer = fnn.dense(0, 400, 300, init=init, dtype=np.float64)
    assert layer.w.std() == pytest.approx(std, rel=0.02)
    assert abs(layer.w.mean()) < 0.01 * max(std, 0.1)


def test_same_seed_same_arrays_in_another_process():
    code = "import fnn, hashlib; print(hashlib.sha256(fnn.mlp([784, 16, 16, 10], seed=5)[0].w.tobytes()).hexdigest())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    import hashlib

    assert out == hashlib.sha256(fnn.mlp([784, 16, 16, 10], seed=5)[0].w.tobytes()).hexdigest()
    assert not tree.all_equal(fnn.mlp([3, 2], seed=5), fnn.mlp([3, 2], seed=6))


def test_layers_get_different_keys():
    params = fnn.mlp([5, 5, 5], seed=0)
    assert not np.array_equal(params[0].w, params[2].w)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sizes=[4, 2], activation="swish"), "unknown activation 'swish'.*'sigmoid'"),
        (dict(sizes=[4, 2], init="glorot"), "unknown init 'glorot'.*'xavier'"),
        (dict(sizes=[4]), "at least an input and an output"),
        (dict(sizes=[4, 0]), "n_out must be a positive integer"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        fnn.mlp(**kwargs)


def test_returned_arrays_are_read_only():
    with pytest.raises(ValueError):
        fnn.dense(0, 2, 2).w[0, 0] = 1.0
