"""LayerNorm and BatchNorm: finite differences, PyTorch equality, running statistics, save/load/resume."""

import re

import numpy as np
import pytest

import fnn
from fnn import layers, tree
from fnn.layers import Context
from tests.conftest import vjp_errors

TRAIN, EVAL = Context(True, None), Context(False, None)


def _randomised(layer, seed=0):
    """The layer with random gamma and beta (and running statistics), so no gradient term is trivially zero."""
    g = np.random.default_rng(seed)
    out = layer._replace(gamma=g.uniform(0.5, 2, layer.gamma.shape), beta=g.standard_normal(layer.beta.shape))
    if isinstance(layer, fnn.BatchNorm):
        out = out._replace(mean=g.standard_normal(layer.mean.shape), var=g.uniform(0.5, 2, layer.var.shape))
    return out


@pytest.mark.parametrize("shape, norm", [((4, 5), 5), ((3, 4, 5, 2), 2), ((3, 4, 5, 2), (5, 2)), ((2, 1), 1)])
def test_layer_norm_gradients(shape, norm):
    layer = _randomised(fnn.layer_norm(norm, dtype=np.float64))
    x = np.random.default_rng(1).standard_normal(shape) * 3 + 1
    with np.errstate(all="raise"):
        y, dlayer, dx, errors = vjp_errors(layer, x)
    assert max(errors.values()) < 1e-6, errors
    axes = tuple(range(x.ndim - layer.gamma.ndim, x.ndim))
    xhat = (y - layer.beta) / layer.gamma
    if layer.gamma.size >= 4:  # tiny groups can have variance near eps
        np.testing.assert_allclose(xhat.mean(axis=axes), 0, atol=1e-12)
        np.testing.assert_allclose(xhat.var(axis=axes), 1, atol=1e-3)


@pytest.mark.parametrize("ctx", [TRAIN, EVAL], ids=["train", "eval"])
@pytest.mark.parametrize("shape", [(6, 3), (2, 3, 5, 4), (3, 1)])
def test_batch_norm_gradients(ctx, shape):
    layer = _randomised(fnn.batch_norm(shape[-1], dtype=np.float64))
    x = np.random.default_rng(2).standard_normal(shape) * 2 - 1
    with np.errstate(all="raise"):
        y, dlayer, dx, errors = vjp_errors(layer, x, ctx)
    assert max(errors[k] for k in ("x", "gamma", "beta")) < 1e-6, errors  # the running statistics: zero gradients
    assert not dlayer.mean.any() and not dlayer.var.any(), "running statistics are not trained"
    assert tree.structure(dlayer) == tree.structure(layer)


def test_batch_norm_in_a_network_checks_in_both_modes():
    params = (fnn.conv2d(0, 2, 3, 3, dtype=np.float64), _randomised(fnn.batch_norm(3, dtype=np.float64)),
              fnn.Tanh(), fnn.Flatten(), _randomised(fnn.layer_norm(48, dtype=np.float64), 1),
              fnn.dense(1, 48, 3, dtype=np.float64))
    g = np.random.default_rng(3)
    batch = (g.standard_normal((4, 4, 4, 2)), np.array([0, 1, 2, 1]))
    for train in (True, False):
        errors = fnn.check_grad(params, batch, fnn.cross_entropy, mode="directions", directions=6, train=train)
        errors = errors[:1] + (errors[1]._replace(mean=0.0, var=0.0),) + errors[2:]  # not trained: zero grads
        if train:  # batch statistics cancel the conv bias: its true gradient is 0, relative error is noise
            assert np.abs(fnn.grad(params, batch, fnn.cross_entropy, train=True)[0].b).max() < 1e-12
            errors = (errors[0]._replace(b=0.0),) + errors[1:]
        assert max(tree.leaves(errors)) < 1e-6, (train, errors)


def test_layer_norm_equals_torch():
    torch = pytest.importorskip("torch")
    layer = _randomised(fnn.layer_norm((4, 3), dtype=np.float64))
    g = np.random.default_rng(4)
    x = g.standard_normal((5, 2, 4, 3))
    y = layers.apply(layer, x)
    dy = g.standard_normal(y.shape)
    dlayer, dx = layers.vjp(layer, x, y, dy)
    xt = torch.tensor(x, requires_grad=True)
    wt, bt = torch.tensor(layer.gamma, requires_grad=True), torch.tensor(layer.beta, requires_grad=True)
    yt = torch.nn.functional.layer_norm(xt, (4, 3), wt, bt, eps=layer.eps)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(dlayer.gamma, wt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(dlayer.beta, bt.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_equals_torch(train):
    torch = pytest.importorskip("torch")
    layer = _randomised(fnn.batch_norm(3, momentum=0.2, dtype=np.float64))
    g = np.random.default_rng(5)
    x = g.standard_normal((4, 5, 6, 3)) * 2 + 1  # NHWC
    ctx = Context(train, None)
    y = layers.apply(layer, x, ctx)
    dy = g.standard_normal(y.shape)
    dlayer, dx = layers.vjp(layer, x, y, dy, ctx)
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)  # NCHW
    wt, bt = torch.tensor(layer.gamma, requires_grad=True), torch.tensor(layer.beta, requires_grad=True)
    rm, rv = torch.tensor(layer.mean), torch.tensor(layer.var)
    yt = torch.nn.functional.batch_norm(xt, rm, rv, wt, bt, training=train, momentum=0.2, eps=layer.eps)
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), atol=1e-12)
    np.testing.assert_allclose(dlayer.gamma, wt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(dlayer.beta, bt.grad.numpy(), atol=1e-12)
    if train:  # torch moves its running statistics in place; ours come from update
        moved = layers.rule(layer).update(layer, x, ctx)
        np.testing.assert_allclose(moved.mean, rm.numpy(), atol=1e-12)
        np.testing.assert_allclose(moved.var, rv.numpy(), atol=1e-12)


def test_running_statistics_converge_to_the_data():
    g = np.random.default_rng(6)
    mean, std = np.array([3.0, -1.0, 0.5]), np.array([2.0, 0.5, 1.0])
    x = (g.standard_normal((4096, 3)) * std + mean).astype(np.float32)
    y = np.zeros(4096, np.int64)
    params = (fnn.batch_norm(3, momentum=0.05), fnn.dense(0, 3, 2))
    trained, _ = fnn.train(params, (x, y), epochs=10, batch_size=256, lr=0.01, cost=fnn.cross_entropy)
    bn = trained[0]
    np.testing.assert_allclose(bn.mean, x.mean(axis=0), atol=0.1)  # EMA noise: std about 0.02
    np.testing.assert_allclose(bn.var, x.var(axis=0), rtol=0.1)
    assert not bn.mean.flags.writeable
    assert np.array_equal(params[0].mean, np.zeros(3)), "the caller's record is unchanged"
    # evaluation uses them: outputs are standardised on the data
    out = fnn.forward((bn,), x)
    np.testing.assert_allclose(out.mean(axis=0), bn.beta, atol=0.1)


def test_batch_norm_save_load_resume_round_trip(tmp_path):
    g = np.random.default_rng(7)
    x = g.standard_normal((64, 6, 6, 1)).astype(np.float32) * 3 + 2
    y = g.integers(0, 3, 64)
    params = (fnn.conv2d(0, 1, 2, 3), fnn.batch_norm(2), fnn.ReLU(), fnn.MaxPool2D(2), fnn.Flatten(),
              fnn.Dropout(0.2), fnn.dense(1, 18, 3))
    opt = fnn.adam(1e-2)
    run = dict(batch_size=16, optimizer=opt, cost=fnn.cross_entropy, seed=5)
    whole, _ = fnn.train(params, (x, y), epochs=4, **run)
    path = tmp_path / "state.npz"
    fnn.train(params, (x, y), epochs=2, observers=[lambda s: fnn.save(path, s)], **run)
    state = fnn.load(path)
    assert isinstance(state.params[1], fnn.BatchNorm) and state.epoch == 2
    assert not np.array_equal(state.params[1].mean, np.zeros(2)), "running statistics were saved"
    resumed, _ = fnn.train(params, (x, y), epochs=4, initial_state=state, **run)
    assert tree.all_equal(resumed, whole)
    np.testing.assert_array_equal(resumed[1].var, whole[1].var)


def test_bad_shapes_and_settings_are_clear_errors():
    with pytest.raises(ValueError, match=r"BatchNorm with gamma of shape \(3,\) expects inputs \(batch, \.\.\., 3\)"):
        fnn.forward((fnn.batch_norm(3),), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="LayerNorm"):
        fnn.forward((fnn.layer_norm(3),), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="momentum"):
        fnn.batch_norm(3, momentum=1.5)
    with pytest.raises(ValueError, match="eps"):
        fnn.layer_norm(3, eps=0)


@pytest.mark.parametrize("shape", [4.0, None, "4", True, (), (2, 0), (2, 1.5), 0])
def test_a_bad_normalised_shape_is_a_clear_error(shape):
    with pytest.raises(ValueError, match=rf"the normalised shape must be a positive int or a tuple of them, "
                                         rf"got {re.escape(repr(shape))}; e.g. 128."):
        fnn.layer_norm(shape)
    assert fnn.layer_norm([2, 3]).gamma.shape == (2, 3) and fnn.layer_norm(np.int64(3)).gamma.shape == (3,)


@pytest.mark.parametrize("features, exc, shown", [
    (3.0, TypeError, "float 3.0"), ((3, 4), TypeError, r"tuple \(3, 4\)"), ((3,), TypeError, r"tuple \(3,\)"),
    (None, TypeError, "NoneType None"), (True, TypeError, "bool True"), (0, ValueError, "0"),
])
def test_batch_norm_features_is_one_positive_int(features, exc, shown):
    with pytest.raises(exc, match=rf"features \(the size of the last axis\) must be a positive integer, got {shown}; "
                                  r"pass e.g. batch_norm\(128\)"):
        fnn.batch_norm(features)
    assert fnn.batch_norm(np.int64(3)).gamma.shape == (3,)


def test_optimizer_updates_never_touch_running_statistics():
    """Weight decay moves gamma and beta but not the running mean and variance: those follow the batch only."""
    x = np.random.default_rng(0).standard_normal((16, 3)) * 2 + 1
    y = np.random.default_rng(1).integers(0, 3, 16)
    params = (fnn.batch_norm(3, dtype=np.float64), fnn.Identity())
    opt = fnn.chain(fnn.add_decayed_weights(0.5), fnn.sgd(0.1))
    settings = fnn.Settings(cost=fnn.cross_entropy, optimizer=opt, batch_size=16)
    state, _ = fnn.step(fnn.init_state(params, opt, seed=0), (x, y), settings)
    bn, m = params[0], params[0].momentum
    np.testing.assert_allclose(state.params[0].mean, (1 - m) * bn.mean + m * x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(state.params[0].var, (1 - m) * bn.var + m * x.var(axis=0, ddof=1), rtol=1e-12)
    assert not np.allclose(state.params[0].gamma, bn.gamma)  # the trainable fields did move
