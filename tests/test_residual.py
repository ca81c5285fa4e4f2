"""Residual blocks: a pre-norm transformer passes check_grad; params nest through training,
optimizers, dropout keys and save/load/resume."""

import numpy as np
import pytest
import toolz

import fnn
from fnn import layers, tree
from tests.timeless import timeless

V, D, HEADS, T = 7, 8, 2, 5


def transformer(seed=0, dtype=np.float32, dropout=0.0):
    """Embedding, positions, one pre-norm block (attention, then an MLP), a final norm and a head."""
    k = fnn.random.split(seed, 6)
    mlp = (fnn.layer_norm(D, dtype=dtype), fnn.dense(k[3], D, 4 * D, init="torch", dtype=dtype), fnn.GELU(),
           fnn.dense(k[4], 4 * D, D, init="torch", dtype=dtype)) + ((fnn.Dropout(dropout),) if dropout else ())
    return (fnn.embedding(k[0], V, D, dtype=dtype), fnn.positional_embedding(k[1], T, D, dtype=dtype),
            fnn.Residual((fnn.layer_norm(D, dtype=dtype), fnn.attention(k[2], D, HEADS, dtype=dtype))),
            fnn.Residual(mlp), fnn.layer_norm(D, dtype=dtype), fnn.dense(k[5], D, V, init="torch", dtype=dtype))


def data(n=12, seed=0):
    ids = np.random.default_rng(seed).integers(0, V, (n, T + 1))
    return ids[:, :-1], ids[:, 1:]  # next-token prediction


def test_pre_norm_transformer_block_passes_check_grad():
    x, y = data(4)
    errors = fnn.check_grad(transformer(dtype=np.float64), (x, y), fnn.cross_entropy, mode="coordinates")
    assert max(tree.leaves(errors)) < 1e-6, errors


def test_residual_adds_its_input_and_its_gradient_reaches_inside():
    block = fnn.Residual((fnn.dense(0, 3, 3, dtype=np.float64), fnn.Tanh()))
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    y = layers.apply(block, x)
    np.testing.assert_allclose(y, x + np.tanh(x @ block.layers[0].w + block.layers[0].b), rtol=1e-14)
    grads, dx = layers.vjp(block, x, y, np.ones_like(y))
    assert type(grads) is fnn.Residual and type(grads.layers[0]) is fnn.Dense
    assert tree.structure(grads) == tree.structure(block)
    t = 1 - np.tanh(x @ block.layers[0].w + block.layers[0].b) ** 2
    np.testing.assert_allclose(dx, 1 + t @ block.layers[0].w.T, rtol=1e-13)


def test_residual_errors():
    with pytest.raises(ValueError, match=r"layer 0 \(Residual\).*must keep the shape.*\(1, 3\) in and \(1, 4\) out"):
        fnn.forward((fnn.Residual((fnn.dense(0, 3, 4),)),), np.zeros((2, 3)))
    with pytest.raises(TypeError, match=r"field layers is list \[Tanh\(\)\], expected tuple"):
        fnn.forward((fnn.Residual([fnn.Tanh()]),), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="non-empty tuple of layer records"):
        fnn.forward((fnn.Residual(()),), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="Residual cannot hold BatchNorm.*layer_norm"):
        fnn.forward((fnn.Residual((fnn.batch_norm(3),)),), np.zeros((2, 3)))


def test_dropout_inside_a_block_gets_its_own_key_and_checks():
    net = transformer(dtype=np.float64, dropout=0.5)
    x, y = data(4)
    a = fnn.forward(net, x, train=True, key=1)
    np.testing.assert_array_equal(a, fnn.forward(net, x, train=True, key=1))
    assert not np.array_equal(a, fnn.forward(net, x, train=True, key=2))
    assert not np.array_equal(a, fnn.forward(net, x))
    with pytest.raises(ValueError, match="Dropout in training mode needs a key"):
        fnn.forward(net, x, train=True)
    errors = fnn.check_grad(net, (x, y), fnn.cross_entropy, train=True, key=3)
    assert max(tree.leaves(errors)) < 1e-6, errors


def test_training_with_adam_learns_and_resume_through_a_file_is_exact(tmp_path):
    net = transformer(dropout=0.1)
    x, y = data(64, seed=1)
    x[:, 1:] = x[:, :1]  # a learnable task: repeat the first token
    y[:] = x[:, :1]
    opt = fnn.adam(1e-2)
    whole, history = fnn.train(net, (x, y), epochs=4, batch_size=16, optimizer=opt, cost=fnn.cross_entropy, seed=2)
    assert history[-1].loss < 0.6 * history[0].loss, history
    assert type(whole[2]) is fnn.Residual and not whole[2].layers[1].w_in.flags.writeable
    assert not tree.all_equal(whole[2].layers[1].w_in, net[2].layers[1].w_in)  # the optimizer reached inside
    first = toolz.nth(1, fnn.training(net, (x, y), batch_size=16, optimizer=opt, cost=fnn.cross_entropy, seed=2))
    fnn.save(tmp_path / "state.npz", first)
    loaded = fnn.load(tmp_path / "state.npz")
    assert tree.all_equal(loaded, first)
    resumed, h2 = fnn.train(net, (x, y), epochs=4, batch_size=16, optimizer=opt, cost=fnn.cross_entropy, seed=2,
                            initial_state=loaded)
    assert tree.all_equal(whole, resumed) and timeless(h2) == timeless(history)
    fnn.save(tmp_path / "params.npz", whole)
    again = fnn.load(tmp_path / "params.npz", like=whole)
    np.testing.assert_array_equal(fnn.forward(again, x), fnn.forward(whole, x))
