"""train as a fold: determinism, learning, history, resume, observers, and custom toolz loops."""

import copy
from itertools import takewhile

import numpy as np
import pytest
import toolz

import fnn
from fnn import tree
from tests.timeless import timeless


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
    assert timeless(final.history) == timeless(history)


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
    assert timeless(h_whole) == timeless(h_resumed)


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


# ---------------------------------------------------------------------------
# A fuller history: training accuracy, the last step's learning rate, seconds; patience's monitor
# ---------------------------------------------------------------------------


def test_history_holds_training_accuracy_last_rate_and_seconds():
    x, y = blobs()
    steps = fnn.data.steps_per_epoch(len(y), 32)
    assert steps == 10 == fnn.data.num_batches(len(y), 32)
    schedule = fnn.cosine_decay(0.05, steps=3 * steps)
    trained, history = fnn.train(fnn.mlp([8, 16, 3], "relu", "identity", seed=0), (x, y), epochs=3, batch_size=32,
                                 optimizer=fnn.adam(schedule), cost=fnn.cross_entropy, validation=(x, y))
    for h in history:
        assert 0 <= h.accuracy <= 1
        assert h.seconds is not None and h.seconds > 0
    # the rate of each epoch's last step, not the next one (which is 0 after the last epoch)
    assert [h.lr for h in history] == [schedule(steps - 1), schedule(2 * steps - 1), schedule(3 * steps - 1)]
    assert history[-1].lr > 0 == schedule(3 * steps)
    _, sgd_history = fnn.train(fnn.mlp([8, 3], seed=0), (x, y), epochs=1, batch_size=32, lr=0.5)
    assert sgd_history[0].lr == 0.5 and sgd_history[0].val_accuracy is None


@pytest.mark.parametrize("onehot", [False, True])
def test_training_accuracy_is_the_running_accuracy_of_the_steps(onehot):
    """Each batch is classified by the params that train on it, before its step (as Keras reports it): no extra pass."""
    x, y = blobs()
    y = np.eye(3, dtype=np.float32)[y] if onehot else y
    params = fnn.mlp([8, 16, 3], "relu", "identity", seed=0)
    settings = fnn.Settings(cost=fnn.mse if onehot else fnn.cross_entropy, lr=0.02, batch_size=32)
    _, history = fnn.train(params, (x, y), epochs=2, batch_size=32, lr=0.02, cost=settings.cost, seed=3)
    state, by_hand = fnn.init_state(params, seed=3), []
    for e in range(2):
        hits = 0
        for xb, yb in fnn.data.batches(fnn.random.fold_in(state.key, e), (x, y), 32):
            labels = yb.argmax(-1) if onehot else yb
            hits += int((fnn.forward(state.params, xb).argmax(-1) == labels).sum())  # no dropout: eval = train mode
            state, _ = fnn.step(state, (xb, yb), settings)
        by_hand.append(hits / len(x))
        state = state._replace(epoch=e + 1)
    assert [h.accuracy for h in history] == by_hand
    assert 0.3 < by_hand[0] < by_hand[1] < 1  # it moved during training, the params changing from step to step


def test_patience_monitors_validation_accuracy():
    """Validation accuracy reaches 1.0 in epoch 1 and cannot improve on it, while the loss keeps falling."""
    x, y = blobs()
    kw = dict(epochs=8, batch_size=30, lr=2.0, validation=(x[:60], y[:60]), patience=2)
    first = toolz.first(fnn.training(fnn.mlp([8, 16, 3], seed=0), (x, y), batch_size=30, lr=2.0,
                                     validation=(x[:60], y[:60])))
    params, by_accuracy = fnn.train(fnn.mlp([8, 16, 3], seed=0), (x, y), monitor="val_accuracy", **kw)
    assert [h.val_accuracy for h in by_accuracy] == [1.0, 1.0, 1.0]  # stopped after 2 epochs without a better one
    assert tree.all_equal(params, first.params)  # the best epoch's params: the first
    _, by_loss = fnn.train(fnn.mlp([8, 16, 3], seed=0), (x, y), **kw)
    assert len(by_loss) > 3  # the validation loss went on improving
    with pytest.raises(ValueError, match="monitor must be one of 'val_loss', 'val_accuracy'"):
        fnn.train(fnn.mlp([8, 3]), (x, y), epochs=1, batch_size=30, lr=1.0, patience=1, monitor="accuracy")
    with pytest.raises(ValueError, match="monitor='val_accuracy' is what patience watches: pass patience="):
        fnn.train(fnn.mlp([8, 3]), (x, y), epochs=1, batch_size=30, lr=1.0, monitor="val_accuracy")


def test_step_returns_a_pair_and_refuses_one_as_a_state():
    x, y = blobs(20)
    state = fnn.init_state(fnn.mlp([8, 3], seed=0))
    settings = fnn.Settings(lr=0.5)
    out = fnn.step(state, (x, y), settings)
    assert isinstance(out, tuple) and isinstance(out[0], fnn.TrainState) and isinstance(out[1], float)
    with pytest.raises(TypeError, match=r"step returns a pair \(state, loss\): unpack it"):
        fnn.step(out, (x, y), settings)
    with pytest.raises(TypeError, match="step takes a fnn.TrainState, got dict"):
        fnn.step({}, (x, y), settings)


@pytest.mark.parametrize("opt", [{"lr": 0.5}, {"optimizer": fnn.sgd(0.1, momentum=0.9)}, {"optimizer": fnn.adam(1e-2)}])
def test_train_is_a_fold_of_step(opt):
    """``train`` is ``toolz.reduce(step, batches)`` per epoch, nothing more: same params, state and losses."""
    x, y = blobs()
    params = fnn.mlp([8, 16, 3], output_activation="identity", seed=0)
    settings = fnn.Settings(cost=fnn.cross_entropy, batch_size=16, **opt)
    state = fnn.init_state(params, settings.optimizer, seed=4)
    for e in range(2):
        batches = fnn.data.batches(fnn.random.fold_in(state.key, e), (x, y), 16)
        state = toolz.reduce(lambda s, b: fnn.step(s, b, settings)[0], batches, state)._replace(epoch=e + 1)
    trained, history = fnn.train(params, (x, y), epochs=2, batch_size=16, cost=fnn.cross_entropy, seed=4, **opt)
    assert tree.all_equal(state.params, trained)
    assert state.step == 2 * -(-len(x) // 16)


def test_on_batch_sees_immutable_snapshots():
    """An array that on_batch sees is never changed afterwards, and watching changes nothing."""
    x, y = blobs()
    params = fnn.mlp([8, 16, 3], seed=0)
    seen = []

    def watch(state, loss):
        seen.append((state, copy.deepcopy(state.params), copy.deepcopy(state.opt_state), loss))

    kw = dict(epochs=2, batch_size=16, optimizer=fnn.sgd(0.1, momentum=0.9), seed=1)
    watched, _ = fnn.train(params, (x, y), on_batch=watch, **kw)
    plain, _ = fnn.train(params, (x, y), **kw)
    assert tree.all_equal(watched, plain)
    assert [s.step for s, *_ in seen] == list(range(1, len(seen) + 1))
    for state, p, o, loss in seen:
        assert tree.all_equal(state.params, p) and tree.all_equal(state.opt_state, o)
        assert all(not a.flags.writeable for a in tree.leaves(state.params) if isinstance(a, np.ndarray))
        assert np.isfinite(loss)


def test_train_checks_the_network_once(monkeypatch):
    calls = []
    real = fnn.validate.network
    monkeypatch.setattr(fnn.validate, "network", lambda *a, **k: calls.append(1) or real(*a, **k))
    x, y = blobs()
    fnn.train(fnn.mlp([8, 3], seed=0), (x, y), epochs=2, batch_size=16, lr=0.1)
    assert len(calls) == 1


def test_a_step_without_a_plan_equals_one_with_it():
    x, y = blobs()
    params = fnn.mlp([8, 16, 3], seed=0)
    settings = fnn.Settings(cost=fnn.mse, lr=0.5, batch_size=16)
    planned = settings._replace(plan=fnn.network.plan(params))
    state = fnn.init_state(params)
    a, va = fnn.step(state, (x[:16], y[:16]), settings)
    b, vb = fnn.step(state, (x[:16], y[:16]), planned)
    assert va == vb and tree.all_equal(a, b)


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


def test_train_initialises_the_optimizer_once():
    x, y = blobs(n=40)
    made = []
    adam = fnn.adam(1e-2)
    counted = fnn.GradientTransformation(lambda p: made.append(1) or adam.init(p), adam.update)
    trained, history = fnn.train(fnn.mlp([8, 3], seed=0), (x, y), epochs=2, batch_size=8, optimizer=counted)
    assert len(made) == 1 and len(history) == 2
    again, _ = fnn.train(fnn.mlp([8, 3], seed=0), (x, y), epochs=2, batch_size=8, optimizer=adam)
    assert tree.all_equal(trained, again)


def _writeable(params):
    return tree.map(lambda a: np.array(a) if isinstance(a, np.ndarray) else a, params)


def test_resume_with_no_epoch_left_returns_read_only_copies_and_leaves_the_state_alone():
    x, y = blobs(n=40)
    params = fnn.mlp([8, 4, 3], seed=0)
    state = toolz.nth(1, fnn.training(params, (x, y), batch_size=8, lr=0.5))
    state = state._replace(params=_writeable(state.params))  # a state the caller built or edited
    before = copy.deepcopy(state.params)
    for epochs in (1, 2):  # no epoch left to run
        out, history = fnn.train(params, (x, y), epochs=epochs, batch_size=8, lr=0.5, initial_state=state)
        assert history == state.history and tree.all_equal(out, state.params)
        assert all(not a.flags.writeable for a in tree.leaves(out) if isinstance(a, np.ndarray))
        assert all(a.flags.writeable for a in tree.leaves(state.params) if isinstance(a, np.ndarray))
    assert tree.all_equal(state.params, before)


def _patience_run():
    x, y = blobs(n=120)
    params = fnn.mlp([8, 64, 3], "relu", "identity", seed=0)
    kw = dict(batch_size=4, lr=1.0, cost=fnn.cross_entropy, validation=(x[60:], y[60:]), seed=1)
    whole, history = fnn.train(params, (x[:60], y[:60]), epochs=60, patience=2, **kw)
    best = int(np.argmin([h.val_loss for h in history]))
    states = list(toolz.take(len(history) - 1, fnn.training(params, (x[:60], y[:60]), **kw)))  # waited 1 epoch
    return params, (x[:60], y[:60]), kw, whole, states, best


def test_writeable_best_params_come_back_as_read_only_copies():
    params, data, kw, whole, states, best = _patience_run()
    best_params = _writeable(states[best].params)
    resumed, _ = fnn.train(params, data, epochs=60, patience=2, initial_state=states[-1], best_params=best_params,
                           **kw)
    assert tree.all_equal(resumed, whole)
    assert all(not a.flags.writeable for a in tree.leaves(resumed) if isinstance(a, np.ndarray))
    assert all(a.flags.writeable for a in tree.leaves(best_params) if isinstance(a, np.ndarray))


def test_best_params_of_another_network_or_not_finite_are_refused_before_any_work():
    params, data, kw, _, states, best = _patience_run()
    seen: list = []
    wrong = fnn.mlp([8, 5, 3], "relu", "identity", seed=0)
    with pytest.raises(ValueError, match=r"(?s)best_params does not have the layout of params.*"
                                         r"best_params: \(Dense\(w='float32\[8, 5\]'.*"
                                         r"params: +\(Dense\(w='float32\[8, 64\]'.*Pass the params of"):
        fnn.train(params, data, epochs=60, patience=2, initial_state=states[-1], best_params=wrong,
                  observers=[seen.append], **kw)
    nan = tree.map(lambda a: np.full_like(a, np.nan) if fnn.layers.is_param(a) else a, states[best].params)
    with pytest.raises(ValueError, match=r"best_params\[0\]\.w holds NaN or inf \(512 of 512 values"):
        fnn.train(params, data, epochs=60, patience=2, initial_state=states[-1], best_params=nan,
                  observers=[seen.append], **kw)
    assert seen == []
