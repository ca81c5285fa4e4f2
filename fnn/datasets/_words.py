"""Debian's English word list as a next-character task, with a fixed train/dev/test split by seed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fnn import random as fr

__all__ = ["Words", "load_words", "WORDS_FILE", "ALPHABET"]

#: Where Debian's ``wamerican`` package puts its list of about 100,000 words.
WORDS_FILE = Path("/usr/share/dict/american-english")
#: The tokens: ``"."`` marks each word's start and end (token 0), then ``a`` to ``z`` (tokens 1 to 26).
ALPHABET = ".abcdefghijklmnopqrstuvwxyz"


class Words(NamedTuple):
    """What :func:`load_words` returns: three ``(x, y)`` splits of ids ``(n, context)`` and their words."""

    train: tuple[np.ndarray, np.ndarray]
    dev: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    words: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
    alphabet: str = ALPHABET


def _windows(words: tuple[str, ...], context: int) -> tuple[np.ndarray, np.ndarray]:
    """The words joined as ``.word.word.``, cut into non-overlapping windows: ``x`` and ``y = x`` shifted by one."""
    stream = np.frombuffer(("." + ".".join(words) + ".").encode("ascii"), np.uint8)
    ids = np.where(stream == ord("."), 0, stream.astype(np.int64) - ord("a") + 1)  # (chars,)
    n = (len(ids) - 1) // context
    x = ids[: n * context].reshape(n, context)  # (windows, context)
    y = ids[1 : n * context + 1].reshape(n, context)  # the next character of every position
    return x, y


def load_words(
    path: str | os.PathLike[str] | None = None,
    *,
    context: int = 16,
    seed: fr.KeyLike = 0,
    fractions: tuple[float, float] = (0.8, 0.1),
) -> Words:
    """Debian's word list as a next-character task: predict every character of every word, and its end.

    The words made only of ``a`` to ``z`` (63,875 of the 104,334 in ``wamerican``; proper nouns,
    possessives and accented words are left out) are shuffled by ``seed`` and split into train,
    dev and test by ``fractions`` (the rest is test). Each split's words are joined into one
    stream with ``"."`` before and after each word (makemore's convention: ``.`` is the start
    token and the end token), and the stream is cut into windows of ``context`` characters:
    ``x[i, t]`` is a character and ``y[i, t]`` the one after it. Every character of the stream
    after the first is a target exactly once, so the mean cross-entropy over ``y`` is the loss in
    nats per character (a word's end counts as one character).

    Args:
      path: a file of one word per line; default ``/usr/share/dict/american-english``.
      context: the window length (the sequence length of a model).
      seed: the key of the shuffle, so the split is fixed for a seed.
      fractions: the train and dev fractions.

    Returns:
      :class:`Words`: ``train``, ``dev``, ``test`` pairs of int64 ids ``(windows, context)``, the words
      of each split, and the alphabet (``alphabet[id]`` is the character).

    Raises:
      FileNotFoundError: the list is missing; install it with ``apt-get install wamerican``.

    >>> words = load_words()  # doctest: +SKIP
    >>> words.train[0].shape, words.alphabet[:4]  # doctest: +SKIP
    ((29624, 16), '.abc')
    """
    file = WORDS_FILE if path is None else Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"the word list {file} is not there; install Debian's list with `apt-get install wamerican` "
            "(it puts about 100,000 words in /usr/share/dict/american-english), or pass path= to a file "
            "of one word per line."
        )
    if isinstance(context, bool) or not isinstance(context, int) or context < 1:
        raise ValueError(f"context must be a positive int (the window length), got {context!r}; e.g. 16.")
    train_f, dev_f = fractions
    if not (0 < train_f and 0 <= dev_f and train_f + dev_f < 1):
        raise ValueError(
            f"fractions are (train, dev) with train > 0 and a sum below 1, got {fractions!r}; e.g. (0.8, 0.1)."
        )
    lines = file.read_text(encoding="utf-8", errors="replace").split()
    words = sorted({w for w in lines if w.isascii() and w.isalpha() and w.islower()})
    if not words:
        raise ValueError(f"{file} holds no words of the letters a to z; pass a list of lowercase words.")
    order = fr.generator(seed).permutation(len(words))
    shuffled = tuple(words[i] for i in order)
    a, b = int(len(words) * train_f), int(len(words) * (train_f + dev_f))
    parts = (shuffled[:a], shuffled[a:b], shuffled[b:])
    train, dev, test = (_windows(p, context) for p in parts)
    return Words(train, dev, test, parts)
