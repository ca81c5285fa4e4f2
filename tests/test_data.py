"""fnn.data: batching, shuffling, splitting, encoding; all pure and keyed."""

import numpy as np
import pytest
from toolz import curried, pipe

import fnn.data
import fnn.random


def _data(n=23, k=3):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)  # (n, 2): row i is [2i, 2i + 1]
    y = np.arange(n) % k  # (n,)
    return x, y


def _copies(data):
    return tuple(a.copy() for a in data)


def _epoch(key, data, batch_size, **kw):
    return list(fnn.data.batches(key, data, batch_size, **kw))


# batches ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, batch_size", [(23, 5), (20, 5), (7, 1), (7, 7), (7, 100)])
def test_batches_cover_every_example_once_per_epoch(n, batch_size):
    x, y = _data(n)
    out = _epoch(0, (x, y), batch_size)
    assert len(out) == fnn.data.num_batches(n, batch_size) == -(-n // batch_size)
    assert [len(xb) for xb, _ in out[:-1]] == [batch_size] * (len(out) - 1)
    assert len(out[-1][0]) == n - batch_size * (len(out) - 1)
    rows = np.concatenate([xb[:, 0] for xb, _ in out]) / 2  # the example index of each row
    assert sorted(rows.astype(int).tolist()) == list(range(n))
    for xb, yb in out:  # pairs stay together
        np.testing.assert_array_equal(yb, (xb[:, 0] / 2).astype(int) % 3)


def test_batches_drop_last_and_big_batch():
    x, y = _data(23)
    out = _epoch(0, (x, y), 5, drop_last=True)
    assert [len(yb) for _, yb in out] == [5, 5, 5, 5]
    assert fnn.data.num_batches(23, 5, drop_last=True) == 4
    kept = np.concatenate([yb for _, yb in out])
    assert len(np.unique(np.concatenate([xb[:, 0] for xb, _ in out]))) == 20 == len(kept)
    (only,) = _epoch(0, (x, y), 1000)
    assert only[0].shape == (23, 2)
    assert _epoch(0, (x, y), 1000, drop_last=True) == []


def test_batches_order_is_the_keys_permutation():
    x, y = _data(23)
    want = fnn.random.generator(7).permutation(23)
    got = np.concatenate([yb for _, yb in _epoch(7, (np.arange(23), y), 4)])
    np.testing.assert_array_equal(got, want % 3)
    got_x = np.concatenate([xb for xb, _ in _epoch(fnn.random.key(7), (np.arange(23), y), 4)])
    np.testing.assert_array_equal(got_x, want)


def test_batches_deterministic_per_key_and_different_across_keys():
    data = (np.arange(100), np.zeros(100))
    order = {k: np.concatenate([xb for xb, _ in _epoch(k, data, 16)]).tolist() for k in range(5)}
    assert order[3] == np.concatenate([xb for xb, _ in _epoch(3, data, 16)]).tolist()
    assert len({tuple(v) for v in order.values()}) == 5
    epochs = [
        np.concatenate([xb for xb, _ in _epoch(fnn.random.fold_in(0, e), data, 16)]).tolist()
        for e in range(3)
    ]
    assert epochs[0] != epochs[1] != epochs[2]
    assert all(sorted(e) == list(range(100)) for e in epochs)


def test_batches_any_number_of_arrays_and_is_lazy():
    a, b, c = np.arange(10), np.arange(10) * 2, np.arange(20).reshape(10, 2)
    it = fnn.data.batches(0, (a, b, c), 4)
    first = next(it)
    assert len(first) == 3 and first[2].shape == (4, 2)
    np.testing.assert_array_equal(first[1], first[0] * 2)
    (single,) = next(iter(fnn.data.batches(0, [a], 3)))
    assert single.shape == (3,)


def test_batches_are_copies_and_inputs_untouched():
    x, y = _data(23)
    before = _copies((x, y))
    for xb, yb in fnn.data.batches(0, (x, y), 6):
        xb[:] = -1
        yb[:] = -1
    fnn.data.shuffle(0, (x, y))
    fnn.data.split(0, (x, y), 0.5)
    fnn.data.normalize(x / x.max())
    fnn.data.one_hot(y, 3)
    for a, b in zip((x, y), before):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.mark.parametrize(
    "data, batch_size, error, words",
    [
        ((np.zeros(3), np.zeros(4)), 2, ValueError, ["same first dimension", "(3,)", "(4,)"]),
        ((np.zeros((0, 2)), np.zeros(0)), 2, ValueError, ["no examples"]),
        ((), 2, ValueError, ["empty tuple"]),
        (np.zeros((4, 2)), 2, TypeError, ["tuple of arrays", "(x,)"]),
        ((np.zeros(3), np.float32(1)), 2, ValueError, ["examples axis"]),
        ((np.zeros(3),), 0, ValueError, ["batch_size", "a positive integer", "got 0"]),
        ((np.zeros(3),), -2, ValueError, ["batch_size"]),
        ((np.zeros(3),), 2.0, TypeError, ["batch_size", "int"]),
        ((np.zeros(3),), True, TypeError, ["batch_size", "int"]),
    ],
)
def test_batches_rejects_bad_input_at_call_time(data, batch_size, error, words):
    with pytest.raises(error) as info:
        fnn.data.batches(0, data, batch_size)  # no next(): checked before iteration
    assert all(w in str(info.value) for w in words), str(info.value)


def test_bad_keys_are_rejected():
    with pytest.raises(ValueError, match="non-negative"):
        fnn.data.batches(-1, (np.zeros(3),), 2)
    with pytest.raises(TypeError, match="seed"):
        fnn.data.shuffle("0", (np.zeros(3),))


def test_num_batches_validates():
    assert fnn.data.num_batches(0, 4) == 0
    with pytest.raises(ValueError, match="batch_size"):
        fnn.data.num_batches(10, 0)
    with pytest.raises(ValueError, match=r"n must be an integer >= 0, got -1; pass e.g. num_batches\(60000, "):
        fnn.data.num_batches(-1, 3)


# shuffle, split ------------------------------------------------------------------------------------


def test_shuffle_is_a_keyed_permutation():
    x, y = _data(23)
    xs, ys = fnn.data.shuffle(5, (x, y))
    order = fnn.random.generator(5).permutation(23)
    np.testing.assert_array_equal(xs, x[order])
    np.testing.assert_array_equal(ys, y[order])
    assert not np.array_equal(fnn.data.shuffle(6, (x, y))[0], xs)


def test_split_stratified_keeps_class_proportions():
    y = np.repeat([0, 1, 2], [50, 30, 20])
    x = np.arange(100)
    (xa, ya), (xb, yb) = fnn.data.split(3, (x, y), 0.8)
    assert np.bincount(ya).tolist() == [40, 24, 16]
    assert np.bincount(yb).tolist() == [10, 6, 4]
    assert sorted(np.concatenate([xa, xb]).tolist()) == list(range(100))
    np.testing.assert_array_equal(y[xa], ya)
    (xa2, _), _ = fnn.data.split(3, (x, y), 0.8)
    np.testing.assert_array_equal(xa, xa2)
    (xa3, _), _ = fnn.data.split(4, (x, y), 0.8)
    assert not np.array_equal(np.sort(xa), np.sort(xa3))


def test_split_rounds_to_the_requested_total():
    y = np.repeat([0, 1, 2], [7, 7, 7])
    (_, ya), (_, yb) = fnn.data.split(0, (np.arange(21), y), 0.5)
    assert len(ya) == 11 and len(yb) == 10  # round(10.5); the two extra examples go to tied classes
    assert sorted(np.bincount(ya).tolist()) == [3, 4, 4]


def test_split_breaks_ties_between_classes_by_the_key():
    y = np.arange(10)  # ten classes of one example: every quota ties
    firsts = [sorted(fnn.data.split(k, (np.zeros((10, 1)), y), 0.3)[0][1].tolist()) for k in range(20)]
    assert all(len(f) == 3 for f in firsts)
    assert len({tuple(f) for f in firsts}) > 10  # not always the same classes held out
    assert set().union(*firsts) == set(range(10))  # every class lands in the first set for some key
    assert firsts == [sorted(fnn.data.split(k, (np.zeros((10, 1)), y), 0.3)[0][1].tolist()) for k in range(20)]
    extra = {tuple(np.bincount(fnn.data.split(k, (np.arange(21), np.repeat([0, 1, 2], 7)), 0.5)[0][1]))
             for k in range(20)}
    assert extra == {(3, 4, 4), (4, 3, 4), (4, 4, 3)}


@pytest.mark.parametrize("last", ["real", "inputs", "sequences"])
def test_split_of_anything_but_class_labels_is_plain_random(last):
    g = np.random.default_rng(0)
    x = g.standard_normal((100, 3))
    data = {"real": (x, g.standard_normal(100)), "inputs": (x,),
            "sequences": (x, g.integers(0, 3, (100, 5)))}[last]
    for key in range(3):
        first, second = fnn.data.split(key, data, 0.2)
        order = fnn.random.generator(key).permutation(100)
        np.testing.assert_array_equal(first[0], x[order[:20]])  # as stratify=False: the key's first 20
        np.testing.assert_array_equal(second[0], x[order[20:]])
    if last == "real":
        (_, ya), _ = fnn.data.split(0, data, 0.2)
        assert not np.array_equal(np.sort(ya), np.sort(data[1])[:20])  # not the smallest targets


def test_split_stratifies_bool_labels_and_integer_one_hot_rows():
    y = np.repeat([False, True], [16, 4])
    (_, ya), (_, yb) = fnn.data.split(1, (np.arange(20), y), 0.5)
    assert np.bincount(ya).tolist() == [8, 2] and np.bincount(yb).tolist() == [8, 2]
    rows = np.eye(3, dtype=np.int64)[np.repeat([0, 1, 2], [10, 6, 4])]
    (_, ra), (_, rb) = fnn.data.split(2, (np.arange(20), rows), 0.5)
    assert ra.sum(0).tolist() == [5, 3, 2] and rb.sum(0).tolist() == [5, 3, 2]


def test_split_one_hot_labels_and_unstratified():
    y = np.eye(2)[np.repeat([0, 1], [8, 2])]  # (10, 2) one-hot
    (_, ya), (_, yb) = fnn.data.split(0, (np.arange(10), y), 0.5)
    assert ya.sum(0).tolist() == [4, 1] and yb.sum(0).tolist() == [4, 1]
    (xa, _), (xb, _) = fnn.data.split(0, (np.arange(10), y), 0.3, stratify=False)
    assert len(xa) == 3 and len(xb) == 7
    np.testing.assert_array_equal(np.concatenate([xa, xb]), fnn.random.generator(0).permutation(10))


def test_proportional_is_largest_remainder_and_adds_up():
    assert fnn.data.proportional(np.array([5, 3, 2]), 5).tolist() == [3, 1, 1]  # remainders 0.5, 0.5, 0: earlier wins
    assert fnn.data.proportional(np.array([1, 1, 1]), 2).tolist() == [1, 1, 0]
    assert fnn.data.proportional(np.array([0, 4]), 3).tolist() == [0, 3]
    counts = np.random.default_rng(0).integers(0, 50, size=(200, 7))
    for c, total in zip(counts, range(0, 2000, 10)):
        if c.sum():
            parts = fnn.data.proportional(c, total)
            assert parts.sum() == total and np.all(np.abs(parts - total * c / c.sum()) < 1)


@pytest.mark.parametrize("counts", [[0, 0], [[1, 2]], [1.5, 2.0], [-1, 3], []])
def test_proportional_refuses_what_has_no_proportions(counts):
    with pytest.raises(ValueError, match="non-negative integer counts with a positive sum, got list"):
        fnn.data.proportional(counts, 3)
    with pytest.raises(ValueError, match="total must be an integer >= 0, got -1"):
        fnn.data.proportional([1, 2], -1)


@pytest.mark.parametrize(
    "fraction, error", [(0.0, ValueError), (1.0, ValueError), (1.5, ValueError), ("a", TypeError)]
)
def test_split_rejects_bad_fraction(fraction, error):
    with pytest.raises(error, match="fraction"):
        fnn.data.split(0, (np.zeros(4), np.zeros(4)), fraction)


# one_hot, normalize ---------------------------------------------------------------------------------


def test_one_hot():
    out = fnn.data.one_hot(np.array([[1, 0], [2, 2]]), 3, dtype=np.float64)
    assert out.shape == (2, 2, 3) and out.dtype == np.float64
    np.testing.assert_array_equal(out.argmax(-1), [[1, 0], [2, 2]])
    assert out.sum() == 4
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        fnn.data.one_hot([0, 3], 3)
    with pytest.raises(TypeError, match="integers"):
        fnn.data.one_hot([0.0, 1.0], 3)


def test_normalize():
    images = np.array([[[0, 255], [51, 1]], [[255, 255], [0, 0]]], dtype=np.uint8)  # (2, 2, 2)
    out = fnn.data.normalize(images)
    assert out.shape == (2, 4) and out.dtype == np.float32
    np.testing.assert_array_equal(out[0], np.float32([0, 1, 0.2, 1 / 255]))
    np.testing.assert_array_equal(fnn.data.normalize(out), out)
    assert fnn.data.normalize(out) is not out
    assert fnn.data.normalize(np.zeros((0, 28, 28), np.uint8)).shape == (0, 784)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fnn.data.normalize(np.array([[0.5, 2.0]]))
    with pytest.raises(TypeError, match="uint8"):
        fnn.data.normalize(np.array([[0, 300]]))


@pytest.mark.parametrize("images, count, first", [
    (np.array([[np.nan, 0.5]]), "1 of 2", "(0, 0)"),
    (np.array([[0.5, 0.2], [0.1, np.inf]]), "1 of 4", "(1, 1)"),
    (np.array([[np.nan]]), "1 of 1", "(0, 0)"),
    (np.full((2, 2, 2), -np.inf), "8 of 8", "(0, 0, 0)"),
])
def test_normalize_names_nan_and_inf(images, count, first):
    with pytest.raises(ValueError) as info:
        fnn.data.normalize(images)
    assert str(info.value) == (f"normalize: the image array holds NaN or inf ({count} values, the first at index "
                               f"{first}); clean or drop those images first, e.g. with np.nan_to_num or a mask.")


# pipelines -------------------------------------------------------------------------------------------


def noisy(key, scale):
    """A per-batch step: add Gaussian noise drawn from ``fold_in(key, i)`` to batch ``i``."""

    def step(indexed):
        i, (xb, yb) = indexed
        noise = fnn.random.generator(fnn.random.fold_in(key, i)).normal(0, scale, xb.shape)
        return xb + noise.astype(xb.dtype), yb

    return step


def test_pipeline_is_a_toolz_pipe_over_batches():
    x, y = _data(50)
    x = fnn.data.normalize(x / x.max())  # (50, 2) float32 in [0, 1]
    before = _copies((x, y))
    batch_key, noise_key = fnn.random.split(0)

    def run():
        return pipe(
            fnn.data.batches(batch_key, (x, y), 16),
            enumerate,
            curried.map(noisy(noise_key, 0.1)),
            curried.map(lambda b: (b[0], fnn.data.one_hot(b[1], 3))),
            list,
        )

    out, again = run(), run()
    assert [xb.shape for xb, _ in out] == [(16, 2), (16, 2), (16, 2), (2, 2)]
    assert all(yb.shape == (len(xb), 3) for xb, yb in out)
    for (xb, yb), (xb2, yb2) in zip(out, again):  # same keys, same noise
        np.testing.assert_array_equal(xb, xb2)
        np.testing.assert_array_equal(yb, yb2)
    clean = list(fnn.data.batches(batch_key, (x, y), 16))
    for i, ((xb, yb), (cx, cy)) in enumerate(zip(out, clean)):
        noise = fnn.random.generator(fnn.random.fold_in(noise_key, i)).normal(0, 0.1, cx.shape)
        np.testing.assert_array_equal(xb, cx + noise.astype(np.float32))
        np.testing.assert_array_equal(yb.argmax(1), cy)
        assert 0 < np.abs(xb - cx).mean() < 0.2
    noise0, noise1 = (out[i][0][:2] - clean[i][0][:2] for i in (0, 1))
    assert not np.allclose(noise0, noise1)  # each batch has its own key
    for a, b in zip((x, y), before):
        assert a.tobytes() == b.tobytes()
