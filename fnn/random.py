"""Explicit random keys: a seed goes in, derived keys come out.

fnn never touches numpy's global random state. Every function that needs
randomness takes a *key*: either a non-negative ``int`` seed or a key array
made by :func:`key`. A key is a read-only ``uint32`` array of shape ``(4,)``;
it is an ordinary pytree leaf, so it is saved in checkpoints like any array.

Keys are derived, never advanced: :func:`split` and :func:`fold_in` are pure
functions built on numpy's ``SeedSequence``, so the same key gives the same
derived keys and the same bits in any process, on any machine.

>>> k = key(0)
>>> a, b = split(k)
>>> bool((fold_in(k, 1) == fold_in(k, 1)).all())
True
>>> generator(a).integers(0, 100, 3).tolist() == generator(a).integers(0, 100, 3).tolist()
True
"""

from __future__ import annotations

from typing import Union

import numpy as np

from fnn.arguments import integer, positive_int

__all__ = ["Key", "KeyLike", "key", "split", "fold_in", "generator"]

Key = np.ndarray
KeyLike = Union[int, np.integer, np.ndarray]

_WORDS = 4


def _frozen(words: np.ndarray) -> Key:
    words = np.asarray(words, dtype=np.uint32)
    words.flags.writeable = False
    return words


def key(seed: KeyLike) -> Key:
    """Turn a seed into a key; a key passes through unchanged.

    Args:
      seed: a non-negative int, or a key made by this module (``uint32``, ``(4,)``).

    Returns:
      A read-only ``uint32`` array of shape ``(4,)``.

    Seeds below ``2**128`` give keys distinct from every key :func:`fold_in` and :func:`split`
    derive; a larger seed can, in principle, equal one (``SeedSequence`` reads both as words of entropy).

    >>> key(42).shape, key(42).dtype
    ((4,), dtype('uint32'))
    >>> bool((key(key(42)) == key(42)).all())
    True
    """
    if isinstance(seed, np.ndarray):
        if seed.shape != (_WORDS,) or seed.dtype != np.uint32:
            raise ValueError(
                f"a key must be a uint32 array of shape ({_WORDS},), got {seed.dtype} "
                f"of shape {seed.shape}; make one with fnn.random.key(seed) or pass an int seed."
            )
        return seed if not seed.flags.writeable else _frozen(seed.copy())
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(
            f"a seed must be a non-negative int or a key from fnn.random.key, got "
            f"{type(seed).__name__} {seed!r}; pass e.g. seed=0."
        )
    if seed < 0:
        raise ValueError(f"a seed must be non-negative, got {seed}; pass e.g. seed=0.")
    return _frozen(np.random.SeedSequence(int(seed)).generate_state(_WORDS))


def fold_in(k: KeyLike, data: int) -> Key:
    """A new key derived from ``k`` and the integer ``data`` (a step, an index).

    ``data`` is a non-negative int (numpy's too); a bool, a float or a string is refused rather
    than truncated, so different ``data`` never silently give the same key.

    >>> bool((fold_in(0, 1) != fold_in(0, 2)).any())
    True
    >>> fold_in(0, 1.5)
    Traceback (most recent call last):
    ...
    TypeError: fold_in: data must be an integer >= 0, got float 1.5; pass e.g. fold_in(key, 3).
    """
    data = integer(data, "fold_in: data", "fold_in(key, 3)", low=0)
    entropy = [int(w) for w in key(k)]
    seq = np.random.SeedSequence(entropy, spawn_key=(data,))
    return _frozen(seq.generate_state(_WORDS))


def split(k: KeyLike, num: int = 2) -> Key:
    """``num`` independent keys derived from ``k``, as a ``(num, 4)`` array.

    Unpack it (``a, b = split(k)``) or index it; each row is a key.

    >>> split(7, 3).shape
    (3, 4)
    >>> split(7, 0)
    Traceback (most recent call last):
    ...
    ValueError: split: num must be a positive integer, got 0; pass e.g. split(key, 2).
    """
    num = positive_int(num, "split: num", "split(key, 2)")
    return _frozen(np.stack([fold_in(k, i) for i in range(num)]))


def generator(k: KeyLike) -> np.random.Generator:
    """A fresh numpy ``Generator`` seeded from ``k``: same key, same stream.

    The generator is private to the caller; drawing from it changes no key.

    >>> generator(3).random() == generator(3).random()
    True
    """
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(w) for w in key(k)])))
