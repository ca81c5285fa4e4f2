"""Optimizers: worked examples, PyTorch equality, the contract over every optimizer, purity, training."""

from __future__ import annotations

import copy
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import toolz

import fnn
from fnn import optim
from fnn import tree as ft
from tests.timeless import timeless

# ---------------------------------------------------------------------------
# Fixtures: a small network with a setting leaf, and a fixed sequence of gradients
# ---------------------------------------------------------------------------


def _params(dtype=np.float64):
    g = fnn.random.generator(fnn.random.key(1))
    return (
        fnn.Dense(g.standard_normal((3, 2)).astype(dtype), g.standard_normal(2).astype(dtype)),
        fnn.LeakyReLU(0.1),  # a setting, not a parameter
        fnn.Dense(g.standard_normal((2, 1)).astype(dtype), np.zeros(1, dtype)),
    )


def _grads(n, dtype=np.float64, seed=2):
    """``n`` gradient trees for :func:`_params` (zeros for the setting, as fnn.grad gives)."""
    keys = fnn.random.split(fnn.random.key(seed), n)
    out = []
    for k in keys:
        g = fnn.random.generator(k)
        out.append((
            fnn.Dense(g.standard_normal((3, 2)).astype(dtype), g.standard_normal(2).astype(dtype)),
            fnn.LeakyReLU(0.0),
            fnn.Dense(g.standard_normal((2, 1)).astype(dtype), g.standard_normal(1).astype(dtype)),
        ))
    return out


def _run(opt, params, grads):
    state = opt.init(params)
    for g in grads:
        updates, state = opt.update(g, state, params)
        params = fnn.apply_updates(params, updates)
    return params, state


OPTIMIZERS = {
    "sgd": lambda: fnn.sgd(0.1),
    "momentum": lambda: fnn.sgd(0.1, momentum=0.9),
    "nesterov": lambda: fnn.sgd(0.1, momentum=0.9, nesterov=True),
    "adam": lambda: fnn.adam(1e-2),
    "adamw": lambda: fnn.adamw(1e-2, weight_decay=0.1),
    "rmsprop": lambda: fnn.rmsprop(1e-2),
    "rmsprop_momentum": lambda: fnn.rmsprop(1e-2, momentum=0.9),
    "clipped_adam_cosine": lambda: fnn.chain(fnn.clip_by_global_norm(1.0),
                                             fnn.adam(fnn.cosine_decay(1e-3, steps=1000))),
    "clip_value_l2_sgd": lambda: fnn.chain(fnn.clip_by_value(0.5), fnn.add_l2_penalty(1e-2), fnn.sgd(0.1)),
    "schedule": lambda: fnn.chain(fnn.scale_by_schedule(fnn.exponential_decay(1.0, 0.5, 2)), fnn.sgd(0.1)),
}


# ---------------------------------------------------------------------------
# Worked examples, computed by hand (always run)
# ---------------------------------------------------------------------------


def _steps(opt, p0, grads):
    """Params after each step, for a single array parameter."""
    p, state, out = np.array(p0, float), opt.init(np.array(p0, float)), []
    for g in grads:
        u, state = opt.update(np.array(g, float), state, p)
        p = fnn.apply_updates(p, u)
        out.append(p.tolist())
    return out


def test_sgd_by_hand():
    # p = 1 - 0.1 * 2 = 0.8; then 0.8 - 0.1 * (-1) = 0.9
    np.testing.assert_allclose(_steps(fnn.sgd(0.1), [1.0], [[2.0], [-1.0]]), [[0.8], [0.9]], rtol=1e-15)


def test_momentum_by_hand():
    # b1 = 2, p = 1 - 0.2 = 0.8;  b2 = 0.5 * 2 + 1 = 2, p = 0.8 - 0.2 = 0.6;  b3 = 1 + 0 = 1, p = 0.5
    got = _steps(fnn.sgd(0.1, momentum=0.5), [1.0], [[2.0], [1.0], [0.0]])
    np.testing.assert_allclose(got, [[0.8], [0.6], [0.5]], rtol=1e-15)


def test_nesterov_by_hand():
    # b1 = 2, u = 2 + 0.5 * 2 = 3, p = 0.7;  b2 = 1 + 1 = 2, u = 1 + 1 = 2, p = 0.5
    got = _steps(fnn.sgd(0.1, momentum=0.5, nesterov=True), [1.0], [[2.0], [1.0]])
    np.testing.assert_allclose(got, [[0.7], [0.5]], rtol=1e-15)


def test_adam_by_hand():
    # b1 = 0.5, b2 = 0.75, eps = 0, lr = 0.1, g = 2 then 1.
    # t=1: m = 1, v = 1; mhat = 1 / 0.5 = 2; sqrt(v) / sqrt(0.25) = 2; u = 1; p = 1 - 0.1 = 0.9
    # t=2: m = 0.5 + 0.5 = 1, v = 0.75 + 0.25 = 1; mhat = 1 / 0.75; sqrt(v) / sqrt(1 - 0.5625) = 1 / sqrt(0.4375)
    #      u = sqrt(0.4375) / 0.75; p = 0.9 - 0.1 * u
    got = _steps(fnn.adam(0.1, b1=0.5, b2=0.75, eps=0.0), [1.0], [[2.0], [1.0]])
    np.testing.assert_allclose(got, [[0.9], [0.9 - 0.1 * np.sqrt(0.4375) / 0.75]], rtol=1e-14)


def test_adamw_by_hand():
    # As Adam above, plus lr * wd * p each step, with p before the step: wd = 0.5
    # t=1: p = 1 - 0.1 * (1 + 0.5 * 1) = 0.85
    # t=2: p = 0.85 - 0.1 * (sqrt(0.4375) / 0.75 + 0.5 * 0.85)
    got = _steps(fnn.adamw(0.1, weight_decay=0.5, b1=0.5, b2=0.75, eps=0.0), [1.0], [[2.0], [1.0]])
    np.testing.assert_allclose(got, [[0.85], [0.85 - 0.1 * (np.sqrt(0.4375) / 0.75 + 0.425)]], rtol=1e-14)


def test_rmsprop_by_hand():
    # decay 0.75, eps 0, lr 0.1, g = 2 then 1: v1 = 0.25 * 4 = 1, u = 2, p = 0.8;
    # v2 = 0.75 + 0.25 = 1, u = 1, p = 0.7. With momentum 0.5: b1 = 2, p = 0.8; b2 = 1 + 1 = 2, p = 0.6
    np.testing.assert_allclose(_steps(fnn.rmsprop(0.1, decay=0.75, eps=0.0), [1.0], [[2.0], [1.0]]),
                               [[0.8], [0.7]], rtol=1e-15)
    np.testing.assert_allclose(_steps(fnn.rmsprop(0.1, decay=0.75, eps=0.0, momentum=0.5), [1.0], [[2.0], [1.0]]),
                               [[0.8], [0.6]], rtol=1e-15)


def test_clipping_by_hand():
    u, _ = fnn.clip_by_global_norm(5.0).update((np.array([6.0]), 7.0, np.array([[8.0]])), optim.EmptyState())
    np.testing.assert_allclose(u[0], [3.0])  # norm 10 over the two arrays, the setting 7.0 ignored
    np.testing.assert_allclose(u[2], [[4.0]])
    assert u[1] == 7.0
    small = (np.array([0.3]),)
    assert fnn.clip_by_global_norm(5.0).update(small, optim.EmptyState())[0] is small
    np.testing.assert_array_equal(fnn.clip_by_value(1.0).update(np.array([-2.0, 0.5, 3.0]), optim.EmptyState())[0],
                                  [-1.0, 0.5, 1.0])


# ---------------------------------------------------------------------------
# PyTorch (optional): step by step over fixed gradients, float64, to float rounding
# ---------------------------------------------------------------------------

TORCH_CASES = {
    "sgd": (lambda: fnn.sgd(0.1), "SGD", dict(lr=0.1)),
    "momentum": (lambda: fnn.sgd(0.1, momentum=0.9), "SGD", dict(lr=0.1, momentum=0.9)),
    "nesterov": (lambda: fnn.sgd(0.05, momentum=0.8, nesterov=True), "SGD",
                 dict(lr=0.05, momentum=0.8, nesterov=True)),
    "adam": (lambda: fnn.adam(1e-2), "Adam", dict(lr=1e-2)),
    "adam_betas": (lambda: fnn.adam(0.1, b1=0.5, b2=0.9, eps=1e-3), "Adam", dict(lr=0.1, betas=(0.5, 0.9), eps=1e-3)),
    "adamw": (lambda: fnn.adamw(1e-2, weight_decay=0.1), "AdamW", dict(lr=1e-2, weight_decay=0.1)),
    "rmsprop": (lambda: fnn.rmsprop(1e-2), "RMSprop", dict(lr=1e-2)),
    "rmsprop_momentum": (lambda: fnn.rmsprop(1e-2, decay=0.9, eps=1e-6, momentum=0.9), "RMSprop",
                         dict(lr=1e-2, alpha=0.9, eps=1e-6, momentum=0.9)),
}


def _torch_run(torch, name, kwargs, params, grads, lr_lambda=None):
    arrays = [p for p in ft.leaves(params) if fnn.layers.is_param(p)]
    tensors = [torch.tensor(np.array(a), dtype=torch.float64, requires_grad=True) for a in arrays]
    opt = getattr(torch.optim, name)(tensors, **kwargs)
    sched = None if lr_lambda is None else torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    for g in grads:
        for t, gl in zip(tensors, [x for x in ft.leaves(g) if fnn.layers.is_param(x)]):
            t.grad = torch.tensor(gl, dtype=torch.float64)
        opt.step()
        if sched is not None:
            sched.step()
    return [t.detach().numpy() for t in tensors]


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_equals_torch(case):
    torch = pytest.importorskip("torch")
    make, name, kwargs = TORCH_CASES[case]
    params, grads = _params(), _grads(12)
    ours, _ = _run(make(), params, grads)
    theirs = _torch_run(torch, name, kwargs, params, grads)
    got = [p for p in ft.leaves(ours) if fnn.layers.is_param(p)]
    assert len(got) == len(theirs) == 4
    for a, b in zip(got, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    assert ours[1] == fnn.LeakyReLU(0.1)


@pytest.mark.parametrize("case", ["momentum", "adamw"])
def test_schedule_equals_torch_lambda_lr(case):
    torch = pytest.importorskip("torch")
    _, name, kwargs = TORCH_CASES[case]
    factor = fnn.cosine_decay(1.0, steps=8, end=0.1)  # torch's LambdaLR multiplies the base lr
    lr = kwargs["lr"]
    ours_opt = (fnn.sgd(lambda t: lr * factor(t), momentum=0.9) if case == "momentum"
                else fnn.adamw(lambda t: lr * factor(t), weight_decay=0.1))
    params, grads = _params(), _grads(12, seed=3)
    ours, state = _run(ours_opt, params, grads)
    theirs = _torch_run(torch, name, kwargs, params, grads, lr_lambda=factor)
    for a, b in zip([p for p in ft.leaves(ours) if fnn.layers.is_param(p)], theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    assert fnn.learning_rate(state) == pytest.approx(lr * 0.1)


# ---------------------------------------------------------------------------
# The contract, over every optimizer
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_contract(name):
    opt = OPTIMIZERS[name]()
    params, grads = _params(), _grads(3)
    state = opt.init(params)
    s0 = ft.structure(state)
    for g in grads:
        updates, state = opt.update(g, state, params)
        assert ft.structure(updates) == ft.structure(params)
        assert ft.structure(state) == s0
        assert all(np.all(np.isfinite(u)) for u in ft.leaves(updates) if fnn.layers.is_param(u))
        new = fnn.apply_updates(params, updates)
        assert new[1] == fnn.LeakyReLU(0.1)
        assert not new[0].w.flags.writeable
        assert not np.array_equal(new[0].w, params[0].w)
        params = new
    counts = [int(leaf) for leaf in ft.leaves(state) if isinstance(leaf, np.ndarray) and leaf.dtype == np.int64]
    assert all(c == 3 for c in counts) and counts


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_update_is_pure(name):
    opt = OPTIMIZERS[name]()
    params, grads = _params(), _grads(3)
    _, state = _run(opt, params, grads[:2])
    before = copy.deepcopy((grads[2], state, params))
    opt.update(grads[2], state, params)
    assert ft.all_equal((grads[2], state, params), before)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_round_trips_through_flatten(name):
    opt = OPTIMIZERS[name]()
    params, grads = _params(), _grads(4)
    _, state = _run(opt, params, grads[:2])
    leaves, treedef = ft.flatten(state)
    rebuilt = ft.unflatten(treedef, [np.array(x) for x in leaves])
    assert ft.all_equal(rebuilt, state)
    a = opt.update(grads[2], state, params)
    b = opt.update(grads[2], rebuilt, params)
    assert ft.all_equal(a, b)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_float32_stays_float32(name):
    opt = OPTIMIZERS[name]()
    params, grads = _params(np.float32), _grads(2, np.float32)
    out, state = _run(opt, params, grads)
    assert {p.dtype for p in ft.leaves(out) if isinstance(p, np.ndarray)} == {np.dtype(np.float32)}
    floats = {x.dtype for x in ft.leaves(state) if fnn.layers.is_param(x) and x.ndim > 0}
    assert floats <= {np.dtype(np.float32)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_0d_param_is_trained_as_a_1_element_array_is(name, dtype):
    """A single learned number (a 0-d float array) is a parameter: NumPy's scalars from its math must not
    turn it into a setting on the way (passed through unscaled) or in the new params (frozen after)."""
    opt = OPTIMIZERS[name]()
    zero_d, one_d = (np.array(2.0, dtype), 0.1), (np.array([2.0], dtype), 0.1)  # 0.1: a setting beside it
    s0, s1 = opt.init(zero_d), opt.init(one_d)
    for g in [1.0, -0.5, 0.25]:
        u0, s0 = opt.update((np.array(g, dtype), 0.0), s0, zero_d)
        u1, s1 = opt.update((np.array([g], dtype), 0.0), s1, one_d)
        assert type(u0[0]) is np.ndarray and u0[0].shape == () and u0[0].dtype == dtype
        assert not u0[0].flags.writeable
        np.testing.assert_array_equal(u0[0], u1[0][0])
        zero_d, one_d = fnn.apply_updates(zero_d, u0), fnn.apply_updates(one_d, u1)
        assert type(zero_d[0]) is np.ndarray and zero_d[0].shape == () and zero_d[0].dtype == dtype
        assert not zero_d[0].flags.writeable and zero_d[1] == 0.1
        np.testing.assert_array_equal(zero_d[0], one_d[0][0])
    assert zero_d[0] != 2.0


def test_a_0d_param_takes_the_first_step_of_torch():
    # lr 0.1, grad 1: every optimizer here moves the param by -0.1 (RMSprop by -0.1 / sqrt(0.01))
    p, g = np.array(2.0), np.array(1.0)
    for opt, want in [(fnn.sgd(0.1), -0.1), (fnn.sgd(0.1, momentum=0.9), -0.1), (fnn.adam(0.1, eps=0.0), -0.1),
                      (fnn.rmsprop(0.1, eps=0.0), -1.0)]:
        u, _ = opt.update(g, opt.init(p), p)
        assert float(u) == pytest.approx(want, rel=1e-12)


def test_an_ordered_dict_of_params_is_trained_as_a_dict_is():
    params = OrderedDict([("w", np.ones(3)), ("b", np.zeros(2))])
    grads = [OrderedDict([("w", np.full(3, 0.5)), ("b", np.ones(2))])] * 2
    out, _ = _run(fnn.adam(0.1), params, grads)
    plain, _ = _run(fnn.adam(0.1), dict(params), [dict(g) for g in grads])
    assert type(out) is OrderedDict and list(out) == ["w", "b"]
    np.testing.assert_allclose(out["w"], 0.8)
    assert ft.all_equal(dict(out), plain)


def test_trace_returns_its_buffer_read_only_so_the_state_cannot_change_through_the_update():
    p, g = np.zeros(2), np.ones(2)
    for nesterov in [False, True]:
        opt = fnn.trace(0.9, nesterov=nesterov)
        u, s = opt.update(g, opt.init(p))
        assert not s.trace.flags.writeable
        assert (u is s.trace) is not nesterov  # the heavy-ball update is the buffer itself, not a copy
    opt = fnn.trace(0.9)
    u, s = opt.update(g, opt.init(p))
    with pytest.raises(ValueError, match="read-only"):
        u *= 0.0  # a user editing the update they got
    np.testing.assert_array_equal(s.trace, [1.0, 1.0])
    def scale_in_place(u, state, params=None):  # a user's transformation that writes into its updates
        return ft.map(lambda a: np.multiply(a, -0.1, out=a), u), state

    opt = fnn.chain(fnn.trace(0.9), fnn.GradientTransformation(lambda params: optim.EmptyState(), scale_in_place))
    with pytest.raises(ValueError, match="read-only"):
        opt.update(g, opt.init(p), p)


# The sum of the params after two steps of _run(opt, _params(), _grads(2)), from a run made before the
# optimizers' arrays were read-only: freezing them changes no number.
SUMS_AFTER_TWO_STEPS = {
    "sgd": -1.4141816203312683,
    "momentum": -1.6412937114424926,
    "nesterov": -2.053911539168351,
    "adam": -0.9090036329121313,
    "adamw": -0.9071535980684441,
    "rmsprop_momentum": -0.6758436382409058,
    "clipped_adam_cosine": -0.9285299671521573,
    "schedule": -1.3464201409477983,
}


@pytest.mark.parametrize("name", sorted(SUMS_AFTER_TWO_STEPS))
def test_every_array_an_optimizer_makes_is_read_only_and_the_callers_keep_their_flags(name):
    """An observer shown the state (Adam's moments, the step counts, the rate) cannot change the run by writing
    into it: every array of ``init`` and ``update`` is read-only; the caller's grads and params stay writeable."""
    def arrays(tree):
        return [a for a in ft.leaves(tree) if isinstance(a, np.ndarray)]

    opt = OPTIMIZERS[name]()
    params, grads = _params(), _grads(2)
    callers = arrays((params, grads))
    assert all(a.flags.writeable for a in callers)
    state = opt.init(params)
    made = arrays(state)
    for g in grads:
        updates, state = opt.update(g, state, params)
        made += arrays((updates, state))
        params = fnn.apply_updates(params, updates)
    assert made and not [a for a in made if a.flags.writeable]
    assert all(a.flags.writeable for a in callers)
    total = sum(np.sum(p) for p in ft.leaves(params) if fnn.layers.is_param(p))
    assert total == pytest.approx(SUMS_AFTER_TWO_STEPS[name], rel=1e-13)


def test_adam_init_gives_its_two_moments_arrays_of_their_own():
    state = fnn.scale_by_adam().init(np.zeros(2))
    assert state.mu is not state.nu and not np.shares_memory(state.mu, state.nu)


def test_learning_rate_is_documented_as_the_rate_of_the_update_just_made():
    schedule = fnn.step_decay(0.1, every=1, factor=0.5)
    opt = fnn.sgd(schedule)
    u, state = opt.update(np.ones(1), opt.init(np.zeros(1)))
    assert fnn.learning_rate(state) == -u[0] == schedule(0) == 0.1 != schedule(1)
    doc = (Path(__file__).parents[1] / "docs" / "optimizers.md").read_text()
    line = next(x for x in doc.splitlines() if "print(fnn.learning_rate(state))" in x)
    assert line.endswith("# the rate of the update just made")
    assert "next update" not in optim.__doc__


def test_settings_are_not_decayed_or_counted():
    params = (np.ones(2), 0.5, 3)
    grads = (np.zeros(2), 0.0, 0)
    opt = fnn.chain(fnn.clip_by_global_norm(1.0), fnn.add_l2_penalty(1.0), fnn.adamw(0.1, weight_decay=1.0))
    out, _ = _run(opt, params, [grads] * 3)
    assert out[1:] == (0.5, 3)
    assert np.all(out[0] < 1.0)


def test_state_saves_and_loads_exactly(tmp_path):
    opt = OPTIMIZERS["clipped_adam_cosine"]()
    params, grads = _params(), _grads(3)
    _, state = _run(opt, params, grads[:2])
    fnn.save(tmp_path / "state.npz", state)
    loaded = fnn.load(tmp_path / "state.npz")
    assert ft.all_equal(loaded, state)
    assert ft.all_equal(opt.update(grads[2], loaded, params), opt.update(grads[2], state, params))


# ---------------------------------------------------------------------------
# Learning rate in the state, names, errors
# ---------------------------------------------------------------------------


def test_learning_rate_follows_the_schedule():
    schedule = fnn.join([fnn.linear_warmup(1.0, steps=2), fnn.constant(0.25)], boundaries=[2])
    opt = fnn.chain(fnn.clip_by_global_norm(1.0), fnn.adam(schedule))
    params, grads = _params(), _grads(3)
    state = opt.init(params)
    rates = [fnn.learning_rate(state)]
    for g in grads:
        _, state = opt.update(g, state, params)
        rates.append(fnn.learning_rate(state))
    assert rates == [0.0, 0.0, 0.5, 0.25]  # before any update the first's rate, then the latest one's
    train_state = fnn.init_state(params, opt)._replace(opt_state=state)
    assert fnn.learning_rate(train_state) == 0.25


def test_learning_rate_errors():
    with pytest.raises(ValueError, match="no learning rate"):
        fnn.learning_rate(fnn.clip_by_global_norm(1.0).init(np.zeros(1)))
    two = fnn.chain(fnn.sgd(0.1), fnn.sgd(0.2))
    with pytest.raises(ValueError, match=r"2 learning rates \(\[0.1, 0.2\]\)"):
        fnn.learning_rate(two.init(np.zeros(1)))


def test_optimizer_from_name():
    for name in ["sgd", "momentum", "adam", "adamw", "rmsprop"]:
        opt = fnn.optimizer_from_name(name, 0.01)
        assert fnn.learning_rate(opt.init(np.zeros(1))) == 0.01
    # "momentum" is SGD with momentum 0.9
    u = _steps(fnn.optimizer_from_name("momentum", 0.1), [0.0], [[1.0], [1.0]])
    np.testing.assert_allclose(u, [[-0.1], [-0.29]], rtol=1e-15)
    np.testing.assert_allclose(_steps(fnn.optimizer_from_name("adamw", 0.1, weight_decay=0.5, b1=0.5, b2=0.75,
                                                              eps=0.0), [1.0], [[2.0]]), [[0.85]])
    valid = "valid names: adam, adamw, momentum, rmsprop, sgd"
    with pytest.raises(ValueError, match=f"unknown optimizer 'adagrad'; {valid}"):
        fnn.optimizer_from_name("adagrad", 0.1)
    with pytest.raises(TypeError, match="optimizer 'sgd'.*betas"):
        fnn.optimizer_from_name("sgd", 0.1, betas=(0.9, 0.99))


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: fnn.sgd(-0.1), r"lr must be a finite number >= 0, got -0.1; pass e.g. lr=1e-3, or a schedule"),
        (lambda: fnn.sgd(float("nan")), "lr must be"),
        (lambda: fnn.sgd(0.1, nesterov=True), "Nesterov momentum needs momentum > 0"),
        (lambda: fnn.adam(1e-3, b1=1.0), r"b1 must be a finite number in \[0, 1\), got 1.0; pass e.g. b1=0.9"),
        (lambda: fnn.adamw(1e-3, weight_decay=-1.0), "weight_decay must be"),
        (lambda: fnn.rmsprop(1e-3, decay=1.5), "decay must be"),
        (lambda: fnn.clip_by_global_norm(-1.0), "max_norm must be"),
        (lambda: fnn.chain(fnn.sgd(0.1), 0.1),
         r"chain's argument 1 \(a transformation such as .*\) must have init and update functions, got float 0.1"),
    ],
)
def test_bad_arguments(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_a_state_of_other_params_is_named_with_both_structures():
    small, big = fnn.mlp([3, 2], seed=0), fnn.mlp([3, 4, 2], seed=0)
    adam = fnn.adam(0.1)
    with pytest.raises(fnn.tree.TreeMismatchError) as e:
        adam.update(big, adam.init(small), big)
    assert "state 1 does not have the structure of the updates" in str(e.value)
    assert "updates: (Dense(w=*, b=*), Sigmoid(), Dense(w=*, b=*), Sigmoid())" in str(e.value)
    assert "state 1: (Dense(w=*, b=*), Sigmoid())" in str(e.value)


@pytest.mark.parametrize("name, make", [
    ("add_decayed_weights", lambda: fnn.adamw(0.1)),
    ("add_decayed_weights", lambda: fnn.add_decayed_weights(0.1)),
    ("add_l2_penalty", lambda: fnn.chain(fnn.add_l2_penalty(0.1), fnn.sgd(0.1))),
])
def test_params_of_other_structure_are_named_as_the_params(name, make):
    params, grads = (np.ones(2), np.ones(3)), (np.ones(2), np.ones(3))
    opt = make()
    with pytest.raises(fnn.tree.TreeMismatchError) as e:
        opt.update(grads, opt.init(params), params[:1])
    msg = str(e.value)
    assert msg.startswith(f"{name}: the params do not have the structure of the updates.")
    assert "updates: (*, *)" in msg and "params:  (*,)" in msg
    assert "Pass the params that the gradients were computed for: update(grads, state, params)." in msg
    assert "state" not in msg.split("\n")[0]


def test_chain_state_mismatch_and_missing_params():
    opt = fnn.chain(fnn.sgd(0.1), fnn.clip_by_value(1.0))
    with pytest.raises(ValueError, match="chain of 2 transformations needs a tuple of 2 states"):
        opt.update(np.zeros(1), (optim.EmptyState(),))
    wd = fnn.adamw(0.1)
    with pytest.raises(ValueError, match="add_decayed_weights needs the params"):
        wd.update(np.zeros(1), wd.init(np.zeros(1)))


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


def _toy_data():
    g = fnn.random.generator(fnn.random.key(5))
    x = g.standard_normal((64, 4)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def test_train_with_adamw_as_written():
    params = fnn.mlp([4, 8, 2], "relu", "identity", seed=0)
    data = _toy_data()
    trained, history = fnn.train(params, data, optimizer=fnn.adamw(1e-3, weight_decay=1e-4), epochs=5,
                                 batch_size=128, cost=fnn.cross_entropy, seed=0)
    assert len(history) == 5
    assert history[-1].loss < history[0].loss


def test_resumed_adam_run_is_bit_identical():
    params = fnn.mlp([4, 8, 2], "relu", "identity", seed=0)
    data = _toy_data()
    opt = fnn.chain(fnn.clip_by_global_norm(1.0), fnn.adam(fnn.cosine_decay(1e-2, steps=20)))
    kw = dict(optimizer=opt, batch_size=16, cost=fnn.cross_entropy, seed=3)
    straight, h_straight = fnn.train(params, data, epochs=4, **kw)
    after_two = toolz.nth(1, fnn.training(params, data, **kw))
    assert after_two.epoch == 2 and int(after_two.opt_state[1][1].step) == 8
    leaves, treedef = ft.flatten(after_two)  # as if saved and restored
    restored = ft.unflatten(treedef, [np.array(x) if isinstance(x, np.ndarray) else x for x in leaves])
    resumed, h_resumed = fnn.train(params, data, epochs=4, initial_state=restored, **kw)
    assert ft.all_equal(resumed, straight)
    assert timeless(h_resumed) == timeless(h_straight)


def test_adam_beats_sgd_on_digits_after_one_epoch():
    (x, y), (x_test, y_test) = fnn.datasets.load_digits()
    x, y = fnn.data.normalize(x[:3000]), y[:3000]
    test = (fnn.data.normalize(x_test[:1000]), y_test[:1000])
    params = fnn.mlp([784, 256, 10], "relu", "identity", seed=0)
    kw = dict(epochs=1, batch_size=64, cost=fnn.cross_entropy, seed=0)
    with_adam, h_adam = fnn.train(params, (x, y), optimizer=fnn.adam(1e-3), **kw)
    with_sgd, h_sgd = fnn.train(params, (x, y), lr=0.1, **kw)
    assert h_adam[0].loss < h_sgd[0].loss
    assert fnn.loss(with_adam, test, fnn.cross_entropy) < fnn.loss(with_sgd, test, fnn.cross_entropy)
