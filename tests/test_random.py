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


@pytest.mark.parametrize("bad, exc", [(1.7, TypeError), (1.0, TypeError), ("3", TypeError), (True, TypeError),
                                      (np.float64(2), TypeError), (None, TypeError), (-1, ValueError)])
def test_fold_in_refuses_what_is_not_a_non_negative_int(bad, exc):
    # int() used to truncate these: fold_in(k, 1.7) was fold_in(k, 1), fold_in(k, True) too
    with pytest.raises(exc, match=r"fold_in: data must be an integer >= 0, got .*; pass e\.g\. fold_in\(key, 3\)"):
        fr.fold_in(fr.key(0), bad)


def test_fold_in_takes_python_and_numpy_ints_alike():
    k = fr.key(0)
    for i in (0, 5, 2**40):
        assert np.array_equal(fr.fold_in(k, np.int64(i)), fr.fold_in(k, i))
        assert np.array_equal(fr.fold_in(k, np.uint64(i)), fr.fold_in(k, i))


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-2, ValueError), (2.0, TypeError), (False, TypeError)])
def test_split_refuses_a_num_that_is_not_a_positive_int(bad, exc):
    with pytest.raises(exc, match=r"split: num must be a positive integer, got .*; pass e\.g\. split\(key, 2\)"):
        fr.split(0, bad)
    assert fr.split(0, np.int64(3)).shape == (3, 4)
