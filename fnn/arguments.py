"""Checks of scalar arguments, shared by the layer builders and :mod:`fnn.validate`.

This module imports nothing from fnn, so any module (a layer family included) can use it.

>>> positive_int(3, "heads")
3
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = ["describe", "positive_int"]


def describe(value: Any) -> str:
    """A value's type and a short repr, for error messages.

    >>> describe([1, 2])
    'list [1, 2]'
    """
    text = repr(value)
    return f"{type(value).__name__} {text[:80]}{'...' if len(text) > 80 else ''}"


def positive_int(value: Any, name: str) -> int:
    """A positive int (numpy ints too; not a bool, not a float).

    >>> positive_int(32, "batch_size")
    32
    >>> positive_int(2.0, "batch_size")
    Traceback (most recent call last):
    ...
    TypeError: batch_size must be a positive integer, got float 2.0; pass e.g. batch_size=10 (int(2.0)).
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be a positive integer, got {describe(value)}; pass e.g. {name}=10"
            + (f" (int({value!r}))." if isinstance(value, numbers.Real) and float(value).is_integer() else ".")
        )
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}; pass e.g. {name}=10.")
    return int(value)
