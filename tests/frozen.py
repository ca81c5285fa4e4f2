"""Freezing test inputs, so that a function that writes into one fails loudly."""

from typing import Any

import numpy as np

from fnn import layers


def read_only(value: Any) -> Any:
    """Make every array in ``value`` (arrays, tuples, records, lists, a Trace and its saved values) read-only."""
    if isinstance(value, np.ndarray):
        value.setflags(write=False)
    elif isinstance(value, (tuple, list)):
        for v in value:
            read_only(v)
        if isinstance(value, layers.Trace):
            read_only(value.saved)
    return value
