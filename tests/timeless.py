"""Comparing runs bit for bit: everything but the wall times (``EpochStats.seconds``) in their histories."""

from typing import Any

import fnn
import fnn.runs


def timeless(tree: Any) -> Any:
    """``tree`` (a state, a run checkpoint, a history, a stats record or tuples of them), ``seconds`` set to None."""
    if isinstance(tree, fnn.EpochStats):
        return tree._replace(seconds=None)
    if isinstance(tree, fnn.TrainState):
        return tree._replace(history=timeless(tree.history))
    if isinstance(tree, fnn.runs.Checkpoint):
        return tree._replace(state=timeless(tree.state))
    if isinstance(tree, (tuple, list)) and not hasattr(tree, "_fields"):
        return type(tree)(timeless(t) for t in tree)
    return tree
