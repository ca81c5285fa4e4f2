"""fnn.arguments: the one implementation of the scalar checks (numbers in an interval, integers)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fnn.arguments import flag, float_dtype, integer, number, positive_int


@pytest.mark.parametrize("value, bounds, expected", [
    (0.0, {"low": 0.0}, 0.0),
    (np.float32(0.5), {"low": 0.0, "high": 1.0, "open_high": True}, 0.5),
    (1, {"low": 0.0, "high": 1.0}, 1.0),
    (-3, {}, -3.0),
    (np.int64(7), {"low": 0.0, "open_low": True}, 7.0),
])
def test_number_accepts_and_returns_a_float(value, bounds, expected):
    got = number(value, "x", "x=1", **bounds)
    assert type(got) is float and got == expected


@pytest.mark.parametrize("value, bounds, exc, message", [
    (0.0, {"low": 0.0, "open_low": True}, ValueError, "x must be a finite number > 0, got 0.0; pass e.g. x=1."),
    (-1e-9, {"low": 0.0}, ValueError, "x must be a finite number >= 0, got -1e-09; pass e.g. x=1."),
    (1.0, {"low": 0.0, "high": 1.0, "open_high": True}, ValueError,
     "x must be a finite number in [0, 1), got 1.0; pass e.g. x=1."),
    (2.0, {"low": 0.5, "high": 1.0, "open_low": True}, ValueError,
     "x must be a finite number in (0.5, 1], got 2.0; pass e.g. x=1."),
    (5.0, {"high": 1.0, "open_high": True}, ValueError, "x must be a finite number < 1, got 5.0; pass e.g. x=1."),
    (math.nan, {}, ValueError, "x must be a finite number, got nan; pass e.g. x=1."),
    (math.inf, {"low": 0.0}, ValueError, "x must be a finite number >= 0, got inf; pass e.g. x=1."),
    ("0.1", {"low": 0.0}, TypeError, "x must be a finite number >= 0, got str '0.1'; pass e.g. x=1."),
    (True, {}, TypeError, "x must be a finite number, got bool True; pass e.g. x=1."),
    (np.bool_(False), {}, TypeError, "x must be a finite number, got bool np.False_; pass e.g. x=1."),
    (None, {}, TypeError, "x must be a finite number, got NoneType None; pass e.g. x=1."),
    (1j, {}, TypeError, "x must be a finite number, got complex 1j; pass e.g. x=1."),
])
def test_number_refuses_with_the_interval_the_value_and_a_fix(value, bounds, exc, message):
    with pytest.raises(exc) as info:
        number(value, "x", "x=1", **bounds)
    assert str(info.value) == message


def test_positive_int_takes_an_example():
    assert positive_int(np.int32(3), "steps") == 3
    with pytest.raises(ValueError) as info:
        positive_int(0, "steps", "cosine_decay(1e-3, steps=1000)")
    assert str(info.value) == "steps must be a positive integer, got 0; pass e.g. cosine_decay(1e-3, steps=1000)."
    with pytest.raises(TypeError) as info:
        positive_int(2.0, "steps")
    assert str(info.value) == "steps must be a positive integer, got float 2.0; pass e.g. steps=10 (int(2.0))."


@pytest.mark.parametrize("value, low, exc, message", [
    (-1, 0, ValueError, "n must be an integer >= 0, got -1; pass e.g. n=10."),
    (0, 1, ValueError, "n must be a positive integer, got 0; pass e.g. n=10."),
    (1, 2, ValueError, "n must be an integer >= 2, got 1; pass e.g. n=10."),
    (3.0, 0, TypeError, "n must be an integer >= 0, got float 3.0; pass e.g. n=10 (int(3.0))."),
    (3.5, 0, TypeError, "n must be an integer >= 0, got float 3.5; pass e.g. n=10."),
    (False, 0, TypeError, "n must be an integer >= 0, got bool False; pass e.g. n=10."),
])
def test_integer_refuses_with_the_bound_the_value_and_a_fix(value, low, exc, message):
    with pytest.raises(exc) as info:
        integer(value, "n", low=low)
    assert str(info.value) == message
    assert integer(np.uint8(low), "n", low=low) == low and type(integer(low, "n", low=low)) is int


def test_float_dtype_takes_float32_and_float64_only():
    assert float_dtype(np.float32) == np.float32 and float_dtype("float64") == np.float64
    assert type(float_dtype(np.float64)) is type(np.dtype(np.float64))
    message = "dtype must be np.float32 or np.float64 (the parameter dtypes fnn computes in), got {}; " \
              "pass e.g. dtype=np.float32."
    for given, shown in [(np.float16, "float16"), (np.longdouble, str(np.dtype(np.longdouble))), (int, "int64"),
                         (">f4", ">f4"), ("abc", "str 'abc'")]:
        with pytest.raises(TypeError) as info:
            float_dtype(given)
        assert str(info.value) == message.format(shown)


@pytest.mark.parametrize("value", [True, False, np.True_, np.False_])
def test_flag_takes_bools(value):
    got = flag(value, "causal", "causal=False")
    assert got is bool(value)


@pytest.mark.parametrize("value", ["False", None, 0, 1, 1.0, np.array([True])])
def test_flag_refuses_what_python_would_take_as_a_truth_value(value):
    with pytest.raises(TypeError, match=r"causal must be True or False, got .*; pass e.g. causal=False\."):
        flag(value, "causal", "causal=False")
