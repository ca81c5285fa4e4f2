"""train as a fold: determinism, learning, history, resume, observers, and custom toolz loops."""

from itertools import takewhile

import numpy as np
import pytest
import toolz

import fnn
from fnn import tree


def blobs(n=300, k=3, d=8, seed=0):
    """A separable problem: k Gaussian blobs in d dimensions."""
    g = np.random.default_rng(seed)
    centres = g.standard_normal((k, d)) * 4
    labels = g.integers(0, k, n)
    return (centres[labels] + g.standard_normal((n, d))).astype(np.float32), labels


def test_same_seed_same_bits_different_seed_different_params():
    x, y = blobs()
    params = fnn.mlp([8, 16, 3], seed=0)
    a, _ = fnn.train(params, (x, y), epochs=2, batch_size=10, lr=1.0, seed=0)
    b, _ = fnn.train(params, (x, y), epochs=2, batch_size=10, lr=1.0, seed=0)
    c, _ = fnn.train(params, (x, y), epochs=2, batch_size=10, lr=1.0, seed=1)
    assert tree.all_equal(a, b)
    assert not tree.all_equal(a, c)


def test_seed_network_learns_a_separable_problem():
    x, y = blobs(n=600, d=784 // 8)
    x = np.tile(x, (1, 8))  # (600, 784)
    params = fnn.mlp([784, 16, 16, 3], seed=0)
    trained, history = fnn.train(params, (x, y), epochs=8, batch_size=10, lr=3.0, cost=fnn.mse, seed=0)
    losses = [h.loss for h in history]
    assert losses[-1] < 0.5 * losses[0]
    assert fnn.accuracy(trained, (x, y)) > 0.95


def test_history_records_validation():
    x, y = blobs()
    _, history = fnn.train(
        fnn.mlp([8, 8, 3], "relu", "identity", seed=0), (x[:200], y[:200]), epochs=3, batch_size=20, lr=0.1,
        cost=fnn.cross_entropy, validation=(x[200:], y[200:]),
    )
    assert [h.epoch for h in history] == [1, 2, 3]
    last = history[-1]
    assert 0.0 <= last.val_accuracy <= 1.0 and last.val_loss > 0
    params_only, h2 = fnn.train(fnn.mlp([8, 8, 3], seed=0), (x, y), epochs=1, batch_size=20, lr=0.1)
    assert h2[0].val_loss is None and h2[0].val_accuracy is None


def test_mean_training_loss_is_weighted_by_batch_size():
    x, y = blobs(n=25)
    params = fnn.mlp([8, 3], seed=0)
    settings = fnn.Settings(cost=fnn.mse, lr=0.0, batch_size=10)
    state = fnn.epoch(fnn.init_state(params, seed=0), (x, y), settings)
    # lr = 0: params never move, so the epoch's mean loss is the loss on the whole data set.
    assert state.history[-1].loss == pytest.approx(fnn.loss(params, (x, y)), rel=1e-5)
    assert state.step == 3 and state.epoch == 1


def test_a_custom_loop_is_a_toolz_pipeline_and_equals_train():
    x, y = blobs()
    params = fnn.mlp([8, 16, 3], seed=0)
    settings = fnn.Settings(cost=fnn.mse, lr=1.0, batch_size=10)
    run = toolz.iterate(lambda s: fnn.epoch(s, (x, y), settings), fnn.init_state(params, seed=0))
    final = toolz.nth(3, run)
    trained, history = fnn.train(params, (x, y), epochs=3, batch_size=10, lr=1.0, seed=0)
    assert tree.all_equal(final.params, trained)
    assert final.history == history


def test_early_stopping_with_takewhile():
    x, y = blobs()
    params = fnn.mlp([8, 16, 3], seed=0)
    _, history = fnn.train(params, (x, y), epochs=5, batch_size=10, lr=1.0)
    target = history[2].loss  # reached after the third epoch
    states = fnn.training(params, (x, y), batch_size=10, lr=1.0)
    kept = list(takewhile(lambda s: s.history[-1].loss > target, states))
    assert [s.epoch for s in kept] == [1, 2]


def test_resume_equals_uninterrupted_run():
    x, y = blobs()
    params = fnn.mlp([8, 16, 3], seed=0)
    whole, h_whole = fnn.train(params, (x, y), epochs=4, batch_size=16, lr=0.5, seed=3)
    first = toolz.nth(1, fnn.training(params, (x, y), batch_size=16, lr=0.5, seed=3))
    assert first.epoch == 2
    resumed, h_resumed = fnn.train(params, (x, y), epochs=4, batch_size=16, lr=0.5, seed=3, initial_state=first)
    assert tree.all_equal(whole, resumed)
    assert h_whole == h_resumed


def test_observers_see_every_epoch_and_change_nothing():
    x, y = blobs()
    params = fnn.mlp([8, 16, 3], seed=0)
    seen = []
    watched, _ = fnn.train(params, (x, y), epochs=3, batch_size=16, lr=0.5, observers=[lambda s: seen.append(s.epoch)])
    plain, _ = fnn.train(params, (x, y), epochs=3, batch_size=16, lr=0.5)
    assert seen == [1, 2, 3]
    assert tree.all_equal(watched, plain)


def test_patience_returns_the_best_params():
    x, y = blobs(n=120)
    params = fnn.mlp([8, 64, 3], "relu", "identity", seed=0)
    # A rate this large makes validation loss rise after the first epochs.
    trained, history = fnn.train(
        params, (x[:60], y[:60]), epochs=50, batch_size=4, lr=0.3, cost=fnn.cross_entropy,
        validation=(x[60:], y[60:]), patience=2, on_divergence="continue",
    )
    losses = [h.val_loss for h in history]
    best = int(np.nanargmin(losses))
    assert len(history) <= 50
    if len(history) < 50:
        assert len(history) == best + 3
        assert fnn.loss(trained, (x[60:], y[60:]), fnn.cross_entropy) == pytest.approx(losses[best], rel=1e-5)


def test_divergence_names_epoch_and_step():
    x, y = blobs()
    with pytest.raises(fnn.DivergenceError, match=r"epoch 1, step \d+.*smaller learning rate"):
        fnn.train(fnn.mlp([8, 16, 3], "relu", "identity", seed=0), (x * 1e3, y), epochs=2, batch_size=10,
                  lr=1e6, cost=fnn.cross_entropy)


def test_patience_resumed_from_a_state_stops_where_the_whole_run_stops():
    # issue 15 case 3: the best loss and the wait count come from the state's history, the best params are given
    x, y = blobs(n=120)
    params = fnn.mlp([8, 64, 3], "relu", "identity", seed=0)
    kw = dict(batch_size=4, lr=1.0, cost=fnn.cross_entropy, validation=(x[60:], y[60:]), seed=1)
    whole, history = fnn.train(params, (x[:60], y[:60]), epochs=60, patience=2, **kw)
    stop = len(history)
    best = int(np.argmin([h.val_loss for h in history]))
    assert stop < 60 and stop == best + 3
    states = list(toolz.take(stop - 1, fnn.training(params, (x[:60], y[:60]), **kw)))  # waited 1 epoch
    cut, best_params = states[-1], states[best].params
    with pytest.raises(ValueError, match="pass best_params="):
        fnn.train(params, (x[:60], y[:60]), epochs=60, patience=2, initial_state=cut, **kw)
    resumed, rest = fnn.train(params, (x[:60], y[:60]), epochs=60, patience=2, initial_state=cut,
                              best_params=best_params, **kw)
    assert len(rest) == stop and fnn.tree.all_equal(resumed, whole)
