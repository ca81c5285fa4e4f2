"""fnn.datasets.load_words: the next-character task, its split by seed, and the missing-file error."""

from pathlib import Path

import numpy as np
import pytest

import fnn


def _write(tmp_path, words):
    path = tmp_path / "words"
    path.write_text("\n".join(words) + "\n")
    return path


def test_windows_hold_every_next_character_of_the_stream(tmp_path):
    path = _write(tmp_path, ["cab", "ab", "Bob", "it's", "café", "bad", "dab"])
    w = fnn.datasets.load_words(path, context=3, fractions=(0.5, 0.25))
    assert [len(p) for p in w.words] == [2, 1, 1]  # cab, ab, bad, dab: the others are not a-z words
    assert sorted(sum(w.words, ())) == ["ab", "bad", "cab", "dab"]
    x, y = w.train
    text = "." + ".".join(w.words[0]) + "."
    assert "".join(w.alphabet[i] for i in x.ravel()) == text[: x.size]
    np.testing.assert_array_equal(x.ravel()[1:], y.ravel()[:-1])  # y is x shifted by one
    assert "".join(w.alphabet[i] for i in y.ravel()) == text[1 : x.size + 1]
    assert x.dtype == y.dtype == np.int64 and x.shape[1] == 3


def test_split_is_fixed_by_seed(tmp_path):
    path = _write(tmp_path, [f"{a}{b}" for a in "abcdef" for b in "ghijkl"])
    one, again, other = (fnn.datasets.load_words(path, seed=s, context=4) for s in (1, 1, 2))
    assert one.words == again.words and one.words != other.words
    for a, b in zip(one.train, again.train):
        np.testing.assert_array_equal(a, b)


def test_missing_list_names_the_package_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install wamerican"):
        fnn.datasets.load_words(tmp_path / "nope")
    with pytest.raises(ValueError, match="context must be a positive int"):
        fnn.datasets.load_words(_write(tmp_path, ["ab"]), context=0)


@pytest.mark.skipif(not Path("/usr/share/dict/american-english").is_file(), reason="wamerican is not installed")
def test_debian_list_gives_the_documented_sizes():
    w = fnn.datasets.load_words()
    assert [len(p) for p in w.words] == [51100, 6387, 6388]
    assert w.train[0].shape == (29624, 16) and w.train[0].max() == 26
