"""Checks of scalar arguments, shared by the layer builders, the optimizers, the schedules and :mod:`fnn.validate`.

This module imports nothing from fnn, so any module (a layer family included) can use it.
Each check raises a ``TypeError`` for the wrong kind of thing (a string, a bool, ``None``)
and a ``ValueError`` for the right kind with a wrong value; the message names the argument,
says what was expected and what was given, and ends with an example that fixes it.

>>> positive_int(3, "heads"), number(0.9, "b1", "b1=0.9", 0.0, 1.0, open_high=True), float_dtype("float64")
(3, 0.9, dtype('float64'))
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = ["describe", "integer", "positive_int", "number", "flag", "float_dtype", "FLOAT_DTYPES", "nonfinite"]

#: The parameter dtypes every fnn function takes.
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def describe(value: Any) -> str:
    """A value's type and a short repr, for error messages.

    >>> describe([1, 2])
    'list [1, 2]'
    """
    text = repr(value)
    return f"{type(value).__name__} {text[:80]}{'...' if len(text) > 80 else ''}"


def integer(value: Any, name: str, example: str | None = None, low: int = 1) -> int:
    """An int (numpy ints too; not a bool, not a float) of at least ``low``, as an ``int``.

    ``example`` is the fix the error suggests ("pass e.g. ..."), ``name=10`` when not given.

    >>> integer(0, "n", low=0)
    0
    >>> integer(-1, "n", "num_batches(60000, 32)", low=0)
    Traceback (most recent call last):
    ...
    ValueError: n must be an integer >= 0, got -1; pass e.g. num_batches(60000, 32).
    """
    example = f"{name}=10" if example is None else example
    what = "a positive integer" if low == 1 else f"an integer >= {low}"
    truth = isinstance(value, (bool, np.bool_))
    if truth or not isinstance(value, numbers.Integral):
        whole = not truth and isinstance(value, numbers.Real) and float(value).is_integer()  # 2.0: say int(2.0)
        raise TypeError(f"{name} must be {what}, got {describe(value)}; pass e.g. {example}"
                        + (f" (int({value!r}))." if whole else "."))
    if value < low:
        raise ValueError(f"{name} must be {what}, got {value!r}; pass e.g. {example}.")
    return int(value)


def positive_int(value: Any, name: str, example: str | None = None) -> int:
    """A positive int: :func:`integer` with ``low=1`` (a size, a count of steps or epochs).

    >>> positive_int(32, "batch_size")
    32
    >>> positive_int(2.0, "batch_size")
    Traceback (most recent call last):
    ...
    TypeError: batch_size must be a positive integer, got float 2.0; pass e.g. batch_size=10 (int(2.0)).
    """
    return integer(value, name, example, 1)


def number(value: Any, name: str, example: str, low: float = -math.inf, high: float = math.inf, *,
           open_low: bool = False, open_high: bool = False) -> float:
    """A finite real number (numpy's too; not a bool) in the interval from ``low`` to ``high``, as a float.

    Both ends belong to the interval unless ``open_low`` / ``open_high`` leave them out:
    ``low=0.0, open_low=True`` is ``x > 0``; ``0.0, 1.0, open_high=True`` is ``[0, 1)``.
    ``example`` is the fix the error suggests ("pass e.g. ...").

    >>> number(1e-3, "lr", "lr=1e-3", 0.0)
    0.001
    >>> number(1.0, "b1", "b1=0.9", 0.0, 1.0, open_high=True)
    Traceback (most recent call last):
    ...
    ValueError: b1 must be a finite number in [0, 1), got 1.0; pass e.g. b1=0.9.
    >>> number("0.1", "eps", "eps=1e-8", 0.0, open_low=True)
    Traceback (most recent call last):
    ...
    TypeError: eps must be a finite number > 0, got str '0.1'; pass e.g. eps=1e-8.
    """
    wrong_kind = isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)
    x = math.nan if wrong_kind else float(value)
    if wrong_kind or not (math.isfinite(x) and (low < x if open_low else low <= x)
                          and (x < high if open_high else x <= high)):
        if high == math.inf:
            where = "" if low == -math.inf else f" {'>' if open_low else '>='} {low:g}"
        elif low == -math.inf:
            where = f" {'<' if open_high else '<='} {high:g}"
        else:
            where = f" in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        given = describe(value) if wrong_kind else repr(value)
        error = TypeError if wrong_kind else ValueError
        raise error(f"{name} must be a finite number{where}, got {given}; pass e.g. {example}.")
    return x


def flag(value: Any, name: str, example: str) -> bool:
    """A switch: ``True`` or ``False`` (numpy's bools too), as a ``bool``; anything else is refused.

    ``"False"``, ``None`` or ``0`` are not switches: Python would take ``"False"`` as true.

    >>> flag(np.True_, "causal", "causal=False")
    True
    >>> flag("False", "causal", "causal=False")
    Traceback (most recent call last):
    ...
    TypeError: causal must be True or False, got str 'False'; pass e.g. causal=False.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {describe(value)}; pass e.g. {example}.")
    return bool(value)


def float_dtype(dtype: Any, name: str = "dtype") -> np.dtype:
    """A parameter dtype, one of :data:`FLOAT_DTYPES` (float32, float64), as an ``np.dtype``.

    The layer builders check ``dtype`` with it, so a network they build is one fnn can train.

    >>> float_dtype(np.float32), float_dtype("float64")
    (dtype('float32'), dtype('float64'))
    >>> float_dtype(np.float16)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: dtype must be np.float32 or np.float64 (...), got float16; pass e.g. dtype=np.float32.
    """
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        dt = None  # not a dtype at all: a string like "abc", an object
    if dt is None or dt not in FLOAT_DTYPES:
        given = describe(dtype) if dt is None else str(dt)
        raise TypeError(f"{name} must be np.float32 or np.float64 (the parameter dtypes fnn computes in), "
                        f"got {given}; pass e.g. {name}=np.float32.")
    return dt


def nonfinite(a: np.ndarray, name: str, fix: str) -> ValueError:
    """The error for an array ``a`` that holds NaN or inf: how many, where the first is, and ``fix``.

    >>> nonfinite(np.array([1.0, np.nan]), "x", "clean it first.")
    ValueError('x holds NaN or inf (1 of 2 values, the first at index (1,)); clean it first.')
    """
    bad = np.argwhere(~np.isfinite(a))
    first = tuple(int(i) for i in bad[0])
    return ValueError(f"{name} holds NaN or inf ({len(bad)} of {a.size} values, the first at index {first}); {fix}")
