"""fnn.random: keys are pure, reproducible across processes, and never touch the global RNG."""

import subprocess
import sys

import numpy as np
import pytest

from fnn import random as fr


def test_same_seed_same_key_and_bits():
    assert np.array_equal(fr.key(3), fr.key(3))
    assert np.array_equal(fr.generator(3).random(5), fr.generator(3).random(5))


def test_different_seeds_and_derivations_differ():
    assert not np.array_equal(fr.key(3), fr.key(4))
    a, b = fr.split(3)
    assert not np.array_equal(a, b)
    assert not np.array_equal(fr.fold_in(3, 0), fr.fold_in(3, 1))


def test_split_rows_are_fold_ins():
    ks = fr.split(9, 3)
    for i in range(3):
        assert np.array_equal(ks[i], fr.fold_in(9, i))


def test_keys_are_read_only():
    with pytest.raises(ValueError):
        fr.key(0)[0] = 1


def test_global_rng_untouched():
    np.random.seed(123)  # noqa: NPY002  (the global state that fnn must not touch)
    expected = np.random.random()  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002  (the global state that fnn must not touch)
    fr.generator(fr.fold_in(fr.key(0), 5)).random(10)
    assert np.random.random() == expected  # noqa: NPY002


def test_same_bits_in_another_process():
    code = "from fnn import random as fr; print(fr.generator(fr.fold_in(7, 2)).integers(0, 10**9, 3).tolist())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(fr.generator(fr.fold_in(7, 2)).integers(0, 10**9, 3).tolist())


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True, np.zeros(3, np.uint32)])
def test_bad_seeds_are_refused(bad):
    with pytest.raises((TypeError, ValueError), match="seed|key"):
        fr.key(bad)
