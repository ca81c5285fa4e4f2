"""Schedules: values at chosen steps, properties over all steps, argument errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fnn
from fnn import schedules

steps = st.integers(min_value=0, max_value=10_000)


def test_values():
    assert [fnn.constant(0.3)(t) for t in (0, 5, 10**9)] == [0.3, 0.3, 0.3]
    assert [fnn.step_decay(0.8, every=3, factor=0.5)(t) for t in (0, 2, 3, 5, 6, 9)] == [0.8, 0.8, 0.4, 0.4, 0.2, 0.1]
    assert fnn.exponential_decay(2.0, rate=0.1, steps=10)(10) == pytest.approx(0.2, rel=1e-15)
    assert fnn.exponential_decay(2.0, rate=0.1, steps=10)(5) == pytest.approx(2.0 * math.sqrt(0.1), rel=1e-15)
    cos = fnn.cosine_decay(1.0, steps=10, end=0.2)
    assert [cos(0), cos(5), cos(10), cos(100)] == pytest.approx([1.0, 0.6, 0.2, 0.2], rel=1e-15)
    warm = fnn.linear_warmup(1.0, steps=4, start=0.2)
    assert [warm(t) for t in (0, 1, 4, 7)] == pytest.approx([0.2, 0.4, 1.0, 1.0], rel=1e-15)


def test_join_restarts_the_count_at_each_boundary():
    s = fnn.join([fnn.constant(1.0), fnn.linear_warmup(1.0, steps=10), fnn.step_decay(0.5, every=1, factor=0.5)],
                 boundaries=[3, 8])
    assert [s(t) for t in range(11)] == pytest.approx(
        [1.0, 1.0, 1.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.25, 0.125], rel=1e-15
    )


def test_warmup_cosine_decay_is_a_join():
    a = fnn.warmup_cosine_decay(0.5, warmup_steps=5, decay_steps=20, start=0.1, end=0.05)
    b = fnn.join([fnn.linear_warmup(0.5, 5, 0.1), fnn.cosine_decay(0.5, 20, 0.05)], [5])
    assert [a(t) for t in range(30)] == [b(t) for t in range(30)]
    assert a(0) == pytest.approx(0.1) and a(5) == 0.5 and a(25) == pytest.approx(0.05)


def test_count_from_an_optimizer_state():
    """The count in a state is an int64 scalar array; schedules take it as it is."""
    s = fnn.cosine_decay(1.0, steps=10)
    assert s(np.asarray(5, np.int64)) == s(5)
    assert isinstance(s(np.asarray(5, np.int64)), float)


@given(steps, steps)
def test_cosine_decay_is_monotone_and_bounded(a, b):
    s = fnn.cosine_decay(2.0, steps=5000, end=0.2)
    lo, hi = min(a, b), max(a, b)
    assert 0.2 - 1e-12 <= s(hi) <= s(lo) <= 2.0


@given(steps, steps)
def test_warmup_is_monotone_and_bounded(a, b):
    s = fnn.linear_warmup(1.0, steps=3000, start=0.1)
    lo, hi = min(a, b), max(a, b)
    assert 0.1 <= s(lo) <= s(hi) <= 1.0


@given(steps)
def test_step_decay_matches_its_formula(t):
    assert fnn.step_decay(1.5, every=7, factor=0.9)(t) == 1.5 * 0.9 ** (t // 7)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: fnn.constant(float("inf")), "value must be a finite number"),
        (lambda: fnn.constant("0.1"), "value must be a finite number, got str '0.1'; pass e.g. constant\\(0.1\\)"),
        (lambda: fnn.step_decay(0.1, every=0, factor=0.5), "every must be a positive integer, got 0"),
        (lambda: fnn.step_decay(0.1, every=10, factor=-0.5), "factor must be a finite number > 0, got -0.5"),
        (lambda: fnn.exponential_decay(0.1, rate=0.5, steps=2.5), "steps must be a positive integer, got float 2.5"),
        (lambda: fnn.cosine_decay(0.1, steps=True), "steps must be a positive integer, got bool True"),
        (lambda: fnn.linear_warmup(0.1, steps=-1), "steps must be a positive integer, got -1"),
        (lambda: fnn.join([fnn.constant(1.0), fnn.constant(2.0)], boundaries=[]), "2 schedules need 1 boundaries"),
        (lambda: fnn.join([fnn.constant(1.0)] * 3, boundaries=[5, 5]), "strictly increasing"),
        (lambda: fnn.join([], boundaries=[]), "non-empty sequence of schedules"),
        (lambda: fnn.join([0.1, 0.2], boundaries=[3]), "non-empty sequence of schedules"),
        (lambda: fnn.warmup_cosine_decay(0.0, 10, 10), "peak must be a finite number > 0, got 0.0"),
    ],
)
def test_bad_arguments(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_every_schedule_has_a_doctest():
    for name in schedules.__all__[1:]:
        assert ">>>" in (getattr(schedules, name).__doc__ or ""), name


def test_cosine_decay_end_is_torch_eta_min():
    """``end`` is an absolute floor, PyTorch's ``eta_min``: the same rates as CosineAnnealingLR."""
    torch = pytest.importorskip("torch")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.05)
    theirs = []
    for _ in range(10):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ours = fnn.cosine_decay(0.5, steps=10, end=0.05)
    assert [ours(t) for t in range(10)] == pytest.approx(theirs, rel=1e-12)
