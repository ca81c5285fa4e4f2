"""Schedules: a schedule is a pure function from the step count to a number.

``schedule(count) -> float``, where ``count`` is the number of updates done so
far (0 for the first update). Any such function works where fnn takes a
learning rate (``fnn.adam(fnn.cosine_decay(1e-3, steps=1000))``); the ones here
are built from a few numbers, validated when built, and combine with
:func:`join`. The optimizer keeps ``count`` in its state, so a resumed run
continues the schedule where it stopped.

Lengths are in steps (updates). A run of ``epochs`` epochs over ``n`` examples takes
``epochs * fnn.data.steps_per_epoch(n, batch_size)`` steps. A floor or a starting value
is absolute (``end=1e-5``, ``start=0.0``), in every schedule.

>>> s = join([linear_warmup(0.1, steps=2), cosine_decay(0.1, steps=4)], boundaries=[2])
>>> [round(s(t), 4) for t in range(7)]
[0.0, 0.05, 0.1, 0.0854, 0.05, 0.0146, 0.0]
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from typing import Any

from fnn.arguments import number, positive_int

__all__ = [
    "Schedule",
    "constant",
    "step_decay",
    "exponential_decay",
    "cosine_decay",
    "linear_warmup",
    "warmup_cosine_decay",
    "join",
]

Schedule = Callable[[int], float]


def _step(count: Any) -> int:
    """The step as a non-negative Python int (an int64 scalar array from an optimizer state works)."""
    return max(int(count), 0)


# ---------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------


def constant(value: float) -> Schedule:
    """The same value at every step.

    >>> constant(0.1)(0), constant(0.1)(10_000)
    (0.1, 0.1)
    """
    value = number(value, "value", "constant(0.1)")

    def schedule(count: int) -> float:
        del count
        return value

    return schedule


def step_decay(init: float, every: int, factor: float) -> Schedule:
    """Multiply by ``factor`` every ``every`` steps: ``init * factor ** (count // every)``.

    >>> s = step_decay(1.0, every=2, factor=0.5)
    >>> [s(t) for t in range(5)]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """
    init = number(init, "init", "step_decay(0.1, every=1000, factor=0.5)")
    every = positive_int(every, "every", "step_decay(0.1, every=1000, factor=0.5)")
    factor = number(factor, "factor", "step_decay(0.1, every=1000, factor=0.5)", 0.0, open_low=True)

    def schedule(count: int) -> float:
        return init * factor ** (_step(count) // every)

    return schedule


def exponential_decay(init: float, rate: float, steps: int) -> Schedule:
    """Smooth exponential decay by ``rate`` per ``steps`` steps: ``init * rate ** (count / steps)``.

    >>> s = exponential_decay(1.0, rate=0.5, steps=2)
    >>> [round(s(t), 4) for t in range(5)]
    [1.0, 0.7071, 0.5, 0.3536, 0.25]
    """
    init = number(init, "init", "exponential_decay(0.1, rate=0.5, steps=1000)")
    rate = number(rate, "rate", "exponential_decay(0.1, rate=0.5, steps=1000)", 0.0, open_low=True)
    steps = positive_int(steps, "steps", "exponential_decay(0.1, rate=0.5, steps=1000)")

    def schedule(count: int) -> float:
        return init * rate ** (_step(count) / steps)

    return schedule


def cosine_decay(init: float, steps: int, end: float = 0.0) -> Schedule:
    r"""Half a cosine from ``init`` down to ``end`` over ``steps`` steps, then flat at ``end``.

    .. math:: \eta_t = \eta_{end} + (\eta_0 - \eta_{end})\,\tfrac12\,(1 + \cos(\pi \min(t, T) / T))

    ``end`` is the absolute floor, as in every schedule here (PyTorch's ``eta_min`` of
    ``CosineAnnealingLR``); optax's relative ``alpha`` is ``end = alpha * init``. For a decay
    over whole epochs, ``steps = epochs * fnn.data.steps_per_epoch(n, batch_size)``.
    Loshchilov & Hutter, *SGDR: Stochastic Gradient Descent with Warm Restarts* (2017).

    >>> s = cosine_decay(1.0, steps=4, end=0.1)
    >>> [round(s(t), 4) for t in range(6)]
    [1.0, 0.8682, 0.55, 0.2318, 0.1, 0.1]
    """
    init = number(init, "init", "cosine_decay(1e-3, steps=1000)")
    steps = positive_int(steps, "steps", "cosine_decay(1e-3, steps=1000)")
    end = number(end, "end", "end=0.0 (decay to zero) or end=1e-5 (an absolute floor)")

    def schedule(count: int) -> float:
        cos = 0.5 * (1.0 + math.cos(math.pi * min(_step(count), steps) / steps))
        return end + (init - end) * cos

    return schedule


def linear_warmup(peak: float, steps: int, start: float = 0.0) -> Schedule:
    """A straight line from ``start`` at step 0 up to ``peak`` at step ``steps``, then flat at ``peak``.

    >>> s = linear_warmup(1.0, steps=4)
    >>> [s(t) for t in range(6)]
    [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """
    peak = number(peak, "peak", "linear_warmup(1e-3, steps=100)")
    steps = positive_int(steps, "steps", "linear_warmup(1e-3, steps=100)")
    start = number(start, "start", "start=0.0")

    def schedule(count: int) -> float:
        return start + (peak - start) * min(_step(count), steps) / steps

    return schedule


def join(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """One schedule made of several: ``schedules[i + 1]`` runs from step ``boundaries[i]`` on.

    Each schedule after the first sees the count restarted from 0 at its boundary:
    for ``boundaries[i - 1] <= t < boundaries[i]`` the value is
    ``schedules[i](t - boundaries[i - 1])``. ``len(boundaries) == len(schedules) - 1``,
    strictly increasing and positive.

    >>> s = join([constant(1.0), step_decay(0.5, every=1, factor=0.5)], boundaries=[2])
    >>> [s(t) for t in range(5)]
    [1.0, 1.0, 0.5, 0.25, 0.125]
    """
    schedules, boundaries = tuple(schedules), tuple(boundaries)
    example = "join([linear_warmup(1e-3, steps=100), cosine_decay(1e-3, steps=900)], boundaries=[100])"
    if not schedules or not all(callable(s) for s in schedules):
        raise TypeError(f"join needs a non-empty sequence of schedules (functions of the step), got {schedules!r}; "
                        f"e.g. {example}.")
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(
            f"join needs one boundary between each pair of schedules: {len(schedules)} schedules need "
            f"{len(schedules) - 1} boundaries, got {len(boundaries)} ({list(boundaries)}); e.g. {example}."
        )
    bounds = [positive_int(b, "each boundary", example) for b in boundaries]
    if any(a >= b for a, b in zip(bounds, bounds[1:])):
        raise ValueError(f"join: boundaries must be strictly increasing, got {bounds}; e.g. {example}.")
    starts = [0, *bounds]

    def schedule(count: int) -> float:
        t = _step(count)
        i = bisect.bisect_right(bounds, t)
        return float(schedules[i](t - starts[i]))

    return schedule


def warmup_cosine_decay(peak: float, warmup_steps: int, decay_steps: int, start: float = 0.0,
                        end: float = 0.0) -> Schedule:
    """Linear warm-up from ``start`` to ``peak`` over ``warmup_steps``, then a cosine down to ``end``.

    ``join([linear_warmup(peak, warmup_steps, start), cosine_decay(peak, decay_steps, end)],
    [warmup_steps])``; ``decay_steps`` counts the steps after the warm-up.

    >>> s = warmup_cosine_decay(1.0, warmup_steps=2, decay_steps=2)
    >>> [s(t) for t in range(6)]
    [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
    """
    peak = number(peak, "peak", "warmup_cosine_decay(1e-3, warmup_steps=100, decay_steps=900)", 0.0, open_low=True)
    end = number(end, "end", "end=0.0")
    return join([linear_warmup(peak, warmup_steps, start), cosine_decay(peak, decay_steps, end)],
                [positive_int(warmup_steps, "warmup_steps", "warmup_steps=100")])
