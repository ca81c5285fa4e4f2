"""Dropout: the rate is the drop probability, same key same mask, identity at evaluation, mean preserved."""

import numpy as np
import pytest

import fnn
from fnn import layers
from fnn.layers import Context


def _ctx(key):
    return Context(True, fnn.random.key(key))


def test_evaluation_is_identity_with_or_without_key():
    x = np.random.default_rng(0).standard_normal((5, 7))
    for ctx in (Context(), Context(False, fnn.random.key(1))):
        y = layers.apply(fnn.Dropout(0.5), x, ctx)
        assert y is x
        dlayer, dx = layers.vjp(fnn.Dropout(0.5), x, y, 2 * x, ctx)
        np.testing.assert_array_equal(dx, 2 * x)
        assert dlayer == fnn.Dropout(0.0)


def test_same_key_same_mask_and_backward_uses_it():
    x = np.ones((50, 40))
    a = layers.apply(fnn.Dropout(0.3), x, _ctx(7))
    b = layers.apply(fnn.Dropout(0.3), x, _ctx(7))
    c = layers.apply(fnn.Dropout(0.3), x, _ctx(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert set(np.unique(a).tolist()) == {0.0, 1 / 0.7}
    dx = layers.vjp(fnn.Dropout(0.3), x, a, np.full_like(x, 3.0), _ctx(7))[1]
    np.testing.assert_array_equal(dx, 3.0 * a)


def test_rate_is_the_drop_probability_and_the_mean_is_preserved():
    x = np.full((400, 500), 2.0)
    y = layers.apply(fnn.Dropout(0.25), x, _ctx(0))
    dropped = (y == 0).mean()
    assert abs(dropped - 0.25) < 0.005  # 200,000 draws: std 0.001
    assert abs(y.mean() - 2.0) < 0.02
    assert layers.apply(fnn.Dropout(0.0), x, _ctx(0)) is x


def test_missing_key_in_training_is_a_clear_error():
    params = (fnn.dense(0, 3, 4), fnn.Dropout(0.5), fnn.dense(1, 4, 2))
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="Dropout in training mode needs a key: pass key="):
        fnn.forward(params, x, train=True)
    fnn.forward(params, x, train=True, key=0)
    fnn.forward(params, x)


@pytest.mark.parametrize("rate", [1.0, -0.1, 2])
def test_bad_rates_are_clear_errors(rate):
    with pytest.raises(ValueError, match=rf"Dropout\'s rate .* must be a finite number in \[0, 1\), got {rate!r}"):
        fnn.forward((fnn.Dropout(rate),), np.ones((2, 2)), train=True, key=0)
    with pytest.raises(TypeError, match=r"field rate is str '0.5', expected float"):
        fnn.forward((fnn.Dropout("0.5"),), np.ones((2, 2)), train=True, key=0)


def test_network_keys_differ_per_layer_and_gradients_check():
    params = (fnn.dense(0, 4, 6, dtype=np.float64), fnn.Dropout(0.5), fnn.Tanh(), fnn.Dropout(0.5),
              fnn.dense(1, 6, 3, dtype=np.float64))
    x = np.random.default_rng(0).standard_normal((5, 4))
    ctxs = fnn.network.contexts(params, True, 11)
    assert not np.array_equal(ctxs[1].key, ctxs[3].key)
    errors = fnn.check_grad(params, (x, np.array([0, 1, 2, 0, 1])), fnn.cross_entropy, mode="coordinates",
                            train=True, key=11)
    assert max(fnn.tree.leaves(errors)) < 1e-7


def test_train_passes_a_fresh_key_each_step():
    params = (fnn.Dropout(0.5), fnn.dense(0, 8, 2))
    x, y = np.ones((16, 8), np.float32), np.zeros(16, np.int64)
    seen = []
    settings = fnn.Settings(cost=fnn.cross_entropy, lr=0.0, batch_size=8)
    fnn.epoch(fnn.init_state(params, seed=3), (x, y), settings, on_batch=lambda s, v: seen.append(v))
    assert len(seen) == 2 and seen[0] != seen[1]  # identical batches, unchanged params: only the masks differ
    a, _ = fnn.train(params, (x, y), epochs=2, batch_size=8, lr=0.1, cost=fnn.cross_entropy, seed=3)
    b, _ = fnn.train(params, (x, y), epochs=2, batch_size=8, lr=0.1, cost=fnn.cross_entropy, seed=3)
    c, _ = fnn.train(params, (x, y), epochs=2, batch_size=8, lr=0.1, cost=fnn.cross_entropy, seed=4)
    np.testing.assert_array_equal(a[1].w, b[1].w)
    assert not np.array_equal(a[1].w, c[1].w)


def test_mask_statistics_match_torch():
    torch = pytest.importorskip("torch")
    x = np.ones((300, 300), np.float32)
    ours = layers.apply(fnn.Dropout(0.4), x, _ctx(0))
    torch.manual_seed(0)
    theirs = torch.nn.functional.dropout(torch.from_numpy(x), p=0.4, training=True).numpy()
    assert set(np.unique(ours).tolist()) == set(np.unique(theirs).tolist())  # {0, 1 / 0.6}, same scaling
    assert abs((ours == 0).mean() - (theirs == 0).mean()) < 0.01
    assert abs(ours.mean() - theirs.mean()) < 0.02
    np.testing.assert_array_equal(torch.nn.functional.dropout(torch.from_numpy(x), p=0.4, training=False).numpy(),
                                  layers.apply(fnn.Dropout(0.4), x, Context()))


# RandomFlip (fnn.layers.augment): the other random layer, with the same key discipline as Dropout


def test_random_flip_flips_the_chosen_images_and_its_gradient_flips_back():
    x = np.random.default_rng(0).standard_normal((40, 3, 5, 2))
    ctx = _ctx(4)
    y = layers.apply(fnn.RandomFlip(), x, ctx)
    flipped = np.array([np.array_equal(y[i], x[i, :, ::-1]) for i in range(len(x))])
    kept = np.array([np.array_equal(y[i], x[i]) for i in range(len(x))])
    assert np.all(flipped ^ kept) and 8 < flipped.sum() < 32
    np.testing.assert_array_equal(y, layers.apply(fnn.RandomFlip(), x, _ctx(4)))  # same key, same flips
    dy = np.random.default_rng(1).standard_normal(x.shape)
    dlayer, dx = layers.vjp(fnn.RandomFlip(), x, y, dy, ctx)
    assert np.vdot(dy, y) == pytest.approx(np.vdot(dx, x))  # the flip is orthogonal: dx = F^T dy
    assert dlayer == fnn.RandomFlip(0.0)
    assert layers.apply(fnn.RandomFlip(), x, Context()) is x


def test_random_flip_errors_and_gradient_check():
    with pytest.raises(ValueError, match="RandomFlip in training mode needs a key"):
        fnn.forward((fnn.RandomFlip(),), np.zeros((2, 4, 4, 1)), train=True)
    with pytest.raises(ValueError, match="NHWC"):
        fnn.forward((fnn.RandomFlip(),), np.zeros((2, 4)))
    params = (fnn.RandomFlip(), fnn.conv2d(0, 1, 2, 3, dtype=np.float64), fnn.Flatten(),
              fnn.dense(1, 2 * 4 * 5, 3, dtype=np.float64))
    g = np.random.default_rng(2)
    errors = fnn.check_grad(params, (g.standard_normal((6, 4, 5, 1)), np.array([0, 1, 2, 0, 1, 2])),
                            fnn.cross_entropy, mode="coordinates", train=True, key=5)
    assert max(fnn.tree.leaves(errors)) < 1e-7
