"""fnn: neural networks from scratch in NumPy, written as pure functions."""

from fnn import random, tree

__all__ = ["random", "tree"]
