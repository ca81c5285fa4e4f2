"""Bad input at every public entry point: one table per class of mistake.

Each row is a mistake, run through every entry point it applies to. Each check asserts the
exception type, that the message names the offending argument (and says what was expected),
and that every array passed in is bit-identical, and as writeable as before, afterwards.
"""

import copy
import re
from typing import NamedTuple

import numpy as np
import pytest

import fnn
from fnn import cli, layers, optim, runs, validate
from fnn import tree as ft

RNG = np.random.default_rng(0)
X = RNG.standard_normal((6, 4)).astype(np.float32)
LABELS = np.array([0, 1, 2, 0, 1, 2])
NET = fnn.mlp([4, 5, 3], "tanh", "identity", seed=0)


def _snapshot(obj):
    """Copies of every array reachable in obj (through tuples, lists, dicts and records), with their flags."""
    leaves = [a for a in ft.leaves(obj) if isinstance(a, np.ndarray)] if _is_tree(obj) else []
    return [(a, a.copy(), a.flags.writeable) for a in leaves]


def _is_tree(obj):
    try:
        ft.leaves(obj)
        return True
    except Exception:
        return False


def _unchanged(snap):
    for a, before, writeable in snap:
        assert a.dtype == before.dtype and a.shape == before.shape
        if a.dtype.kind == "O":
            assert all(p is q or p == q for p, q in zip(a.ravel(), before.ravel()))
        else:
            assert a.tobytes() == before.tobytes()
        assert a.flags.writeable == writeable


def check(exc, pattern, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` raises ``exc`` matching ``pattern``; the arguments are unchanged."""
    snap = _snapshot((args, kwargs))
    with pytest.raises(exc, match=pattern) as info:
        fn(*args, **kwargs)
    assert type(info.value) is exc or issubclass(type(info.value), exc)
    _unchanged(snap)
    return info.value


# ---------------------------------------------------------------------------
# The entry points that take a batch, and how each names its batch argument
# ---------------------------------------------------------------------------


def _train(params, data, cost=fnn.mse):
    return fnn.train(params, data, epochs=1, batch_size=2, lr=0.1, cost=cost)


BATCH_ENTRIES = {
    "loss": (lambda p, b, c: fnn.loss(p, b, c), "batch"),
    "grad": (lambda p, b, c: fnn.grad(p, b, c), "batch"),
    "value_and_grad": (lambda p, b, c: fnn.value_and_grad(p, b, c), "batch"),
    "accuracy": (lambda p, b, c: fnn.accuracy(p, b), "batch"),
    "check_grad": (lambda p, b, c: fnn.check_grad(p, b, c), "batch"),
    "train": (lambda p, b, c: _train(p, b, c), "data"),
    "train_validation": (
        lambda p, b, c: fnn.train(p, (X, LABELS), epochs=1, batch_size=2, lr=0.1, cost=c, validation=b),
        "validation",
    ),
}

# name, x, y, exception, pattern ({b} is the batch argument's name)
BAD_BATCHES = [
    ("x_wrong_width", X[:, :3], LABELS, ValueError,
     r"layer 0 \(Dense, w of shape \(4, 5\)\) expects \(batch, 4\) inputs, got {b}\[0\] \(x\) of shape \(6, 3\)"),
    ("x_1d", X[0], LABELS[:1], ValueError, r"{b}\[0\] \(x\) has shape \(4,\), one dimension.*reshape\(1, -1\)"),
    ("x_scalar", 3.0, LABELS[:1], ValueError, r"{b}\[0\] \(x\) is a scalar"),
    ("x_empty", X[:0], LABELS[:0], ValueError, r"{b}\[0\] \(x\) is empty \(shape \(0, 4\)\)"),
    ("x_y_lengths", X, LABELS[:5], ValueError, r"{b}: x has 6 examples but y has 5"),
    ("x_nan", np.where(np.eye(6, 4, dtype=bool), np.nan, X), LABELS, ValueError,
     r"{b}\[0\] \(x\) holds NaN or inf \(4 of 24 values, the first at index \(0, 0\)\)"),
    ("x_inf", np.where(np.eye(6, 4, k=1, dtype=bool), -np.inf, X), LABELS, ValueError,
     r"{b}\[0\] \(x\) holds NaN or inf .*index \(0, 1\)"),
    ("x_object", X.astype(object), LABELS, TypeError, r"{b}\[0\] \(x\) must be a real numeric array, got dtype object"),
    ("x_string", X.astype(str), LABELS, TypeError, r"{b}\[0\] \(x\) must be a real numeric array, got dtype <U"),
    ("x_complex", X + 1j, LABELS, TypeError, r"{b}\[0\] \(x\) .*complex.*x\.real"),
    ("x_ragged", [[1.0, 2.0, 3.0, 4.0], [1.0]], LABELS[:2], ValueError, r"{b}\[0\] \(x\) cannot be made into an array"),
    ("y_float_labels", X, LABELS.astype(np.float32), TypeError, r"{b}\[1\] \(y\) is a 1-D float array.*integers"),
    ("y_negative_label", X, LABELS - 1, ValueError, r"{b}\[1\] \(y\): labels must lie in \[0, 3\).*from -1 to 1"),
    ("y_label_too_big", X, LABELS + 1, ValueError, r"{b}\[1\] \(y\): labels must lie in \[0, 3\).*from 1 to 3"),
    ("y_onehot_width", X, np.eye(6, 4, dtype=np.float32), ValueError,
     r"{b}\[1\] \(y\) has shape \(6, 4\) but the network gives \(3,\) outputs"),
    ("y_3d", X, np.zeros((6, 3, 1)), ValueError, r"{b}\[1\] \(y\) has shape \(6, 3, 1\)"),
    ("y_nan", X, np.where(np.eye(6, 3, dtype=bool), np.nan, 0.0), ValueError, r"{b}\[1\] \(y\) holds NaN or inf"),
    ("y_too_large", X, np.full((6, 3), 1e300), ValueError,
     r"{b}\[1\] \(y\) holds finite values too large for the network's float32 \(largest magnitude 1e\+300"),
    ("y_string", X, LABELS.astype(str), TypeError, r"{b}\[1\] \(y\) must be a real numeric array"),
    ("y_object", X, LABELS.astype(object), TypeError, r"{b}\[1\] \(y\) must be a real numeric array, got dtype object"),
    ("y_complex", X, LABELS + 0j, TypeError, r"{b}\[1\] \(y\) .*complex"),
    ("y_scalar", X, 1, ValueError, r"{b}\[1\] \(y\) is a scalar"),
]


@pytest.mark.parametrize("entry", sorted(BATCH_ENTRIES))
@pytest.mark.parametrize("name, x, y, exc, pattern", BAD_BATCHES, ids=[r[0] for r in BAD_BATCHES])
def test_bad_batch(entry, name, x, y, exc, pattern):
    fn, arg = BATCH_ENTRIES[entry]
    if entry == "train_validation" and name == "x_empty":
        pattern = r"validation\[0\] \(x\) is empty"
    if entry == "check_grad" and name == "y_too_large":
        return  # check_grad runs in float64, where 1e300 fits
    check(exc, pattern.format(b=re.escape(arg)), fn, NET, (x, y), fnn.mse)


@pytest.mark.parametrize("entry", sorted(BATCH_ENTRIES))
@pytest.mark.parametrize("batch", [X, (X,), (X, LABELS, LABELS), {"x": X, "y": LABELS}, None],
                         ids=["array", "1-tuple", "3-tuple", "dict", "None"])
def test_batch_that_is_not_a_pair(entry, batch):
    fn, arg = BATCH_ENTRIES[entry]
    if entry == "train_validation" and batch is None:
        return  # validation=None means no validation set
    check(TypeError, rf"{arg} must be a pair \(x, y\)", fn, NET, batch, fnn.mse)


def test_one_output_network_takes_integer_0_1_labels_as_targets_never_one_hot():
    # issue 15 case 9: label 0 used to be one-hot encoded to target 1
    net = fnn.mlp([4, 1], "sigmoid", "identity", seed=0)
    ints = np.array([0, 1, 1, 0, 1, 0])
    y = ints.astype(np.float32)
    assert fnn.loss(net, (X, ints), fnn.binary_cross_entropy) == fnn.loss(
        net, (X, y.reshape(-1, 1)), fnn.binary_cross_entropy)
    zeros, ones = np.zeros(6, np.int64), np.ones(6, np.int64)
    assert fnn.loss(net, (X, zeros), fnn.binary_cross_entropy) != fnn.loss(net, (X, ones), fnn.binary_cross_entropy)
    check(ValueError, r"one-output network takes 0/1 targets, got integers from 0 to 2",
          fnn.loss, net, (X, np.array([0, 1, 2, 0, 1, 0])), fnn.binary_cross_entropy)


def test_one_output_sequence_network_takes_time_steps_of_0_1_labels_as_targets():
    net = (fnn.embedding(0, 5, 4, dtype=np.float64), fnn.dense(1, 4, 1, init="torch", dtype=np.float64))
    ids, y = np.array([[1, 2, 3], [4, 0, 1]]), np.array([[0, 1, 1], [1, 0, 0]])  # (batch, time) -> (2, 3, 1)
    expected = fnn.loss(net, (ids, y[..., None].astype(np.float64)), fnn.binary_cross_entropy)
    assert fnn.loss(net, (ids, y), fnn.binary_cross_entropy) == expected
    assert fnn.loss(net, (ids, y.astype(np.float64)), fnn.binary_cross_entropy) == expected
    assert fnn.loss(net, (ids, y.astype(bool)), fnn.binary_cross_entropy) == expected
    assert fnn.accuracy(net, (ids, y)) == np.mean(fnn.predict(net, ids) == y)
    check(ValueError, r"batch\[1\] \(y\): a one-output network takes 0/1 targets, got integers from 0 to 2",
          fnn.loss, net, (ids, y * 2), fnn.binary_cross_entropy)


def test_targets_take_the_params_dtype_not_the_inputs():
    """An Embedding's x holds integer ids: real targets must not be cast (truncated) to them."""
    net = (fnn.embedding(0, 5, 4, dtype=np.float64), layers.Last(), fnn.dense(1, 4, 2, init="torch", dtype=np.float64))
    ids, y = np.array([[1, 2, 3], [4, 0, 1]]), np.array([[0.7, -0.4], [1.9, 0.3]])
    out = fnn.forward(net, ids)
    assert fnn.loss(net, (ids, y), fnn.mse) == pytest.approx(np.mean((out - y) ** 2), rel=1e-12)
    assert validate.batch(net, (ids, y))[1].dtype == np.float64
    one = net[:2] + (fnn.dense(1, 4, 1, init="torch", dtype=np.float64),)
    p, z = np.array([0.8, 0.3]), fnn.forward(one, ids)[:, 0]
    bce = np.mean(np.logaddexp(0, z) - p * z)
    assert fnn.loss(one, (ids, p), fnn.binary_cross_entropy) == pytest.approx(bce, rel=1e-12)
    x, t = validate.batch(NET, (X.astype(np.float64), np.eye(3)[LABELS].astype(np.int64)))
    assert x.dtype == t.dtype == np.float32  # targets follow the params (float32), like the inputs


@pytest.mark.parametrize("entry", ["loss", "grad", "value_and_grad", "check_grad", "train", "training", "parallel"])
@pytest.mark.parametrize("sequence", [False, True], ids=["dense", "sequence"])
def test_cross_entropy_over_one_output_is_refused_before_any_work(entry, sequence):
    from concurrent.futures import ThreadPoolExecutor

    if sequence:
        net = (fnn.embedding(0, 5, 4), fnn.dense(1, 4, 1, init="torch"))
        batch = (np.array([[1, 2, 3], [4, 0, 1]]), np.array([[0, 1, 1], [1, 0, 0]]))
    else:
        net, batch = fnn.mlp([4, 1], "tanh", "identity", seed=0), (X, LABELS % 2)
    seen = []
    with ThreadPoolExecutor(1) as executor:
        calls = {
            "loss": lambda: fnn.loss(net, batch, fnn.cross_entropy),
            "grad": lambda: fnn.grad(net, batch, fnn.cross_entropy),
            "value_and_grad": lambda: fnn.value_and_grad(net, batch, fnn.cross_entropy),
            "check_grad": lambda: fnn.check_grad(net, batch, fnn.cross_entropy),
            "train": lambda: fnn.train(net, batch, epochs=2, batch_size=2, lr=1.0, cost=fnn.cross_entropy,
                                       observers=[seen.append]),
            "training": lambda: fnn.training(net, batch, batch_size=2, lr=1.0, cost=fnn.cross_entropy),
            "parallel": lambda: fnn.parallel.value_and_grad(net, batch, fnn.cross_entropy, executor, shards=1),
        }
        check(ValueError, r"cross_entropy takes the softmax over the outputs, but the network has one output: "
              r"the softmax of one logit is always 1, so the loss is always 0.*fnn\.binary_cross_entropy with "
              r"one output.*two outputs", calls[entry])
    assert seen == []
    assert np.isfinite(fnn.loss(net, batch, fnn.binary_cross_entropy)) and np.isfinite(fnn.loss(net, batch))


# ---------------------------------------------------------------------------
# forward and predict take x alone
# ---------------------------------------------------------------------------

BAD_X = [(r[0], r[1], r[3], r[4].replace(r"{b}\[0\] \(x\)", "x")) for r in BAD_BATCHES if r[0].startswith("x_")
         and r[0] != "x_y_lengths"]


@pytest.mark.parametrize("entry", [fnn.forward, fnn.predict], ids=["forward", "predict"])
@pytest.mark.parametrize("name, x, exc, pattern", BAD_X, ids=[r[0] for r in BAD_X])
def test_bad_x(entry, name, x, exc, pattern):
    check(exc, pattern.format(b="x"), entry, NET, x)


def test_one_dimensional_x_is_refused_with_the_fix():
    """Decision: a 1-D x is refused (fnn never guesses); the message gives both reshapes, and both work."""
    err = check(ValueError, "one dimension", fnn.forward, NET, X[0])
    assert "x.reshape(1, -1)" in str(err) and "x.reshape(-1, 1)" in str(err)
    assert fnn.forward(NET, X[0].reshape(1, -1)).shape == (1, 3)


def test_shape_mismatch_deep_in_the_network_names_the_layer():
    net = (fnn.dense(0, 4, 5), fnn.ReLU(), fnn.dense(1, 6, 3), fnn.Identity())
    check(ValueError, r"layer 2 \(Dense, w of shape \(6, 3\)\) expects \(batch, 6\) inputs, got an input of "
          r"shape \(1, 5\) from layer 1.*chain", fnn.forward, net, X)


def test_conv_and_pool_shape_mismatch_names_the_layer():
    net = (fnn.conv2d(0, 1, 2, 3), fnn.ReLU(), fnn.MaxPool2D(2), fnn.Flatten(), fnn.dense(1, 32, 3))
    assert fnn.forward(net, np.zeros((2, 8, 8, 1), np.float32)).shape == (2, 3)
    check(ValueError, r"layer 0 \(Conv2D\) cannot take x of shape \(2, 8, 8, 3\)", fnn.forward, net,
          np.zeros((2, 8, 8, 3), np.float32))  # three channels where the network takes one
    check(ValueError, r"layer 4 \(Dense, w of shape \(32, 3\)\) expects \(batch, 32\) inputs, got an input of "
          r"shape \(1, 72\) from layer 3 \(for x of shape \(2, 12, 12, 1\)\)", fnn.forward, net,
          np.zeros((2, 12, 12, 1), np.float32))
    check(ValueError, r"layer 0 \(Dense.*got x of shape \(2, 2, 2\).*Flatten", fnn.forward,
          (fnn.dense(0, 4, 3),), np.zeros((2, 2, 2), np.float32))


def test_bool_and_integer_inputs_are_accepted_and_cast():
    assert fnn.forward(NET, X > 0).dtype == np.float32
    assert fnn.forward(NET, (X * 10).astype(np.int16)).dtype == np.float32


# ---------------------------------------------------------------------------
# Networks that are not networks
# ---------------------------------------------------------------------------


class Mystery(NamedTuple):
    w: np.ndarray


D45 = fnn.dense(0, 4, 5)
BAD_NETWORKS = [
    ("list", list(NET), TypeError, r"params must be a tuple of layer records, got a list; pass tuple\(params\)"),
    ("single_layer", D45, TypeError, r"params must be a tuple.*got Dense.*1-tuple"),
    ("dict", {"w": 1}, TypeError, r"params must be a tuple.*got dict"),
    ("empty", (), ValueError, r"params is an empty tuple"),
    ("not_a_record", (D45, "relu"), TypeError, r"params\[1\] is str 'relu', not a layer record"),
    ("unregistered", (Mystery(np.ones((4, 3))),), TypeError,
     r"(?s)params\[0\]: Mystery is not a registered layer type.*Registered types: .*Dense.*fnn.register"),
    ("not_chaining", (D45, fnn.dense(1, 4, 3)), ValueError,
     r"layer 1 \(Dense, w of shape \(4, 3\)\) expects \(batch, 4\) inputs, "
     r"got an input of shape \(1, 5\) from layer 0"),
    ("bad_bias", (fnn.Dense(D45.w, np.zeros(4, np.float32)),), ValueError,
     r"layer 0 \(Dense\) has w of shape \(4, 5\) and b of shape \(4,\)"),
    ("nan_weight", (fnn.Dense(np.full((4, 3), np.nan, np.float32), np.zeros(3, np.float32)),), ValueError,
     r"params\[0\] \(Dense\)\.w holds NaN or inf"),
    ("nan_slope", (D45, fnn.LeakyReLU(float("nan"))), ValueError, r"params\[1\] \(LeakyReLU\)\.slope is nan"),
    ("inf_slope", (D45, fnn.LeakyReLU(np.inf)), ValueError, r"params\[1\] \(LeakyReLU\)\.slope is inf"),
    ("mixed_dtypes", (D45, fnn.dense(1, 5, 3, dtype=np.float64)), TypeError,
     r"params mixes parameter dtypes: float32 \(params\[0\] \(Dense\)\.w\), float64 \(params\[1\] \(Dense\)\.w\)"),
    ("complex_weight", (fnn.Dense(np.ones((4, 3), complex), np.zeros(3)),), TypeError,
     r"params\[0\] \(Dense\)\.w has dtype complex128"),
]


def _net_entries():
    return {
        "forward": lambda p: fnn.forward(p, X),
        "loss": lambda p: fnn.loss(p, (X, LABELS)),
        "grad": lambda p: fnn.grad(p, (X, LABELS)),
        "value_and_grad": lambda p: fnn.value_and_grad(p, (X, LABELS)),
        "accuracy": lambda p: fnn.accuracy(p, (X, LABELS)),
        "check_grad": lambda p: fnn.check_grad(p, (X, LABELS)),
        "train": lambda p: _train(p, (X, LABELS)),
    }


@pytest.mark.parametrize("entry", sorted(_net_entries()))
@pytest.mark.parametrize("name, params, exc, pattern", BAD_NETWORKS, ids=[r[0] for r in BAD_NETWORKS])
def test_bad_network(entry, name, params, exc, pattern):
    check(exc, pattern, _net_entries()[entry], params)


# ---------------------------------------------------------------------------
# Gradients and updates that do not match the params
# ---------------------------------------------------------------------------

GRADS = fnn.grad(NET, (X, LABELS))
BAD_GRADS = [
    ("fewer_layers", GRADS[:-1], fnn.tree.TreeMismatchError, r"(?s)grads does not have the structure of params.*"
     r"params: +\(Dense\(w=\*, b=\*\), Tanh\(\), Dense\(w=\*, b=\*\), Identity\(\)\).*"
     r"grads: +\(Dense\(w=\*, b=\*\), Tanh\(\), Dense\(w=\*, b=\*\)\)\n"),
    ("list", list(GRADS), fnn.tree.TreeMismatchError, r"grads does not have the structure of params"),
    ("swapped_records", (GRADS[0], fnn.Sigmoid()) + GRADS[2:], fnn.tree.TreeMismatchError, r"Sigmoid"),
    ("wrong_shape", (fnn.Dense(GRADS[0].w.T, GRADS[0].b),) + GRADS[1:], ValueError,
     r"grads\[0\]\.w has shape \(5, 4\) but params\[0\]\.w has shape \(4, 5\)"),
    ("broadcastable_shape", (fnn.Dense(GRADS[0].w, GRADS[0].b[:1]),) + GRADS[1:], ValueError,
     r"grads\[0\]\.b has shape \(1,\) but params\[0\]\.b has shape \(5,\)"),
]


@pytest.mark.parametrize("name, grads, exc, pattern", BAD_GRADS, ids=[r[0] for r in BAD_GRADS])
def test_bad_grads(name, grads, exc, pattern):
    check(exc, pattern, fnn.sgd_step, NET, grads, 0.1)
    check(exc, pattern.replace("grads", "updates"), fnn.apply_updates, NET, grads)


def test_tree_mismatch_is_a_value_error():
    assert issubclass(fnn.tree.TreeMismatchError, ValueError)


# ---------------------------------------------------------------------------
# Counts, rates, costs and names
# ---------------------------------------------------------------------------

BAD_COUNTS = [
    (0, ValueError, "got 0"), (-3, ValueError, "got -3"), (2.0, TypeError, r"got float 2\.0.*int\(2\.0\)"),
    (2.5, TypeError, "got float 2.5"), ("32", TypeError, "got str '32'"), (True, TypeError, "got bool True"),
    (None, TypeError, "got NoneType"), (np.float64(4), TypeError, "got float64"),
]


@pytest.mark.parametrize("arg", ["batch_size", "epochs", "patience"])
@pytest.mark.parametrize("value, exc, pattern", BAD_COUNTS, ids=[repr(r[0]) for r in BAD_COUNTS])
def test_bad_counts_in_train(arg, value, exc, pattern):
    if arg == "patience" and value is None:
        return  # patience=None means no early stopping
    kwargs = {"epochs": 1, "batch_size": 2, "lr": 0.1, "validation": (X, LABELS), arg: value}
    check(exc, rf"{arg} must be a positive integer, {pattern}", fnn.train, NET, (X, LABELS), **kwargs)


def test_numpy_integers_are_counts():
    params, history = fnn.train(NET, (X, LABELS), epochs=np.int64(1), batch_size=np.int32(2), lr=0.1)
    assert len(history) == 1


def test_batch_size_larger_than_the_data_is_one_batch():
    """Decision: allowed, one batch per epoch (documented in fnn.train and fnn.data.batches)."""
    steps = []
    fnn.train(NET, (X, LABELS), epochs=2, batch_size=1000, lr=0.1, observers=[lambda s: steps.append(s.step)])
    assert steps == [1, 2]
    assert "larger than the data gives one batch" in fnn.train.__doc__
    assert "of ``n`` or more gives one" in fnn.data.batches.__doc__


BAD_RATES = [(-0.1, ValueError), (float("nan"), ValueError), (float("inf"), ValueError), ("0.1", TypeError),
             (None, TypeError), (True, TypeError), (1j, TypeError)]


@pytest.mark.parametrize("value, exc", BAD_RATES, ids=[repr(r[0]) for r in BAD_RATES])
def test_bad_learning_rate(value, exc):
    if value is None:  # train without lr or optimizer: it asks for one
        check(ValueError, r"train needs a learning rate or an optimizer", fnn.train, NET, (X, LABELS),
              epochs=1, batch_size=2, lr=None)
    else:
        check(exc, rf"lr must be a finite number >= 0, got .*{value!r}; pass e.g. lr=0.1", fnn.train, NET, (X, LABELS),
              epochs=1, batch_size=2, lr=value)
    check(exc, rf"lr must be a finite number >= 0, got .*{value!r}; pass e.g. lr=0.1", fnn.sgd_step, NET, GRADS, value)


def test_zero_learning_rate_is_allowed():
    assert ft.all_equal(fnn.sgd_step(NET, GRADS, 0.0), NET)


@pytest.mark.parametrize("entry", ["loss", "grad", "value_and_grad", "check_grad", "train"])
@pytest.mark.parametrize("cost, pattern", [
    ("mse", r"cost must be an fnn.Cost, got the string 'mse'; pass fnn.mse. Ready costs: fnn.mse, "
            r"fnn.cross_entropy, fnn.binary_cross_entropy"),
    ("hinge", r"cost must be an fnn.Cost, got str 'hinge'. Ready costs: fnn.mse"),
    (np.mean, r"cost must be an fnn.Cost, got .*function mean.*Ready costs"),
], ids=["known_name", "unknown_name", "function"])
def test_bad_cost(entry, cost, pattern):
    check(TypeError, pattern, BATCH_ENTRIES[entry][0], NET, (X, LABELS), cost)


@pytest.mark.parametrize("fn, kwargs, pattern", [
    (fnn.mlp, {"sizes": [4, 3], "activation": "swish"},
     r"unknown activation 'swish'; choose one of: 'sigmoid', 'tanh', 'relu', 'leaky_relu', 'softmax', 'identity'"),
    (fnn.mlp, {"sizes": [4, 3], "output_activation": "softmaxx"}, r"unknown activation 'softmaxx'; choose one of"),
    (fnn.mlp, {"sizes": [4, 3], "init": "glorot"}, r"unknown init 'glorot'; choose one of: 'xavier', 'he'"),
    (fnn.dense, {"key": 0, "n_in": 4, "n_out": 3, "init": "kaiming"}, r"unknown init 'kaiming'; choose one of"),
], ids=["activation", "output_activation", "mlp_init", "dense_init"])
def test_unknown_names_list_the_valid_ones(fn, kwargs, pattern):
    check(ValueError, pattern, fn, **kwargs)


def test_unknown_optimizer_name_lists_the_valid_ones():
    err = check(ValueError, r"unknown optimizer 'adamax'; valid names: ", optim.optimizer_from_name, "adamax", 1e-3)
    assert all(name in str(err) for name in optim.OPTIMIZERS)


@pytest.mark.parametrize("opt, pattern", [
    ("adam", r"optimizer must have init and update functions, got the string 'adam'; pass fnn.adam\(1e-3\), "
             r"or fnn.optimizer_from_name\('adam', 1e-3\)"),
    (object(), r"optimizer must have init and update functions, got object"),
], ids=["name", "object"])
def test_optimizer_without_init_and_update(opt, pattern):
    check(TypeError, pattern, fnn.train, NET, (X, LABELS), epochs=1, batch_size=2, optimizer=opt)
    check(TypeError, pattern, fnn.training, NET, (X, LABELS), batch_size=2, optimizer=opt)


@pytest.mark.parametrize("kwargs, exc, pattern", [
    ({"eps": 0.0}, ValueError, r"eps must be a finite number > 0, got 0.0; pass e.g. eps=1e-6"),
    ({"eps": float("nan")}, ValueError, r"eps must be a finite number > 0, got nan"),
    ({"eps": "1e-6"}, TypeError, r"eps must be a finite number > 0, got str '1e-6'"),
    ({"directions": 0}, ValueError, r"directions must be a positive integer"),
    ({"mode": "exact"}, ValueError, r"mode must be 'directions' .* or 'coordinates' .*got 'exact'"),
])
def test_bad_check_grad_arguments(kwargs, exc, pattern):
    check(exc, pattern, fnn.check_grad, NET, (X, LABELS), **kwargs)


def test_on_divergence_must_be_known():
    check(ValueError, r"on_divergence must be 'raise' or 'continue', got 'ignore'", fnn.train, NET, (X, LABELS),
          epochs=1, batch_size=2, lr=0.1, on_divergence="ignore")


# ---------------------------------------------------------------------------
# Raised before any work starts
# ---------------------------------------------------------------------------


def test_train_checks_everything_before_the_first_step():
    """A bad validation set fails before any epoch: no observer ever runs."""
    seen = []
    bad_validation = (X, LABELS + 5)
    with pytest.raises(ValueError, match=r"validation\[1\] \(y\): labels must lie in \[0, 3\)"):
        fnn.train(NET, (X, LABELS), epochs=3, batch_size=2, lr=0.1, validation=bad_validation,
                  observers=[seen.append])
    assert seen == []


def test_shape_checks_of_a_dense_network_compute_nothing():
    """The shape walk steps over Dense and elementwise layers without running them."""
    calls = []

    class Spy(NamedTuple):
        pass

    layers.register(Spy, lambda layer, x: calls.append(x.shape) or x, lambda layer, x, y, dy: (layer, dy))
    net = (fnn.dense(0, 4, 5), Spy(), fnn.Tanh(), fnn.dense(1, 5, 3))
    with pytest.raises(ValueError, match=r"layer 2 \(Dense"):
        fnn.forward((fnn.dense(0, 4, 5), fnn.Tanh(), fnn.dense(1, 6, 3)), X)
    fnn.forward(net, X)
    assert calls == [(1, 5), (6, 5)]  # one example for the check (an unknown layer), then the batch


def test_validation_does_not_copy_float_inputs_of_the_right_dtype():
    x, y = validate.batch(NET, (X, LABELS))
    assert x is X
    assert validate.inputs(NET, X) is X


def test_all_finite():
    for dtype in (np.float16, np.float32, np.float64):
        a = np.ones((3, 4), dtype)
        assert validate.all_finite(a)
        for bad in (np.nan, np.inf, -np.inf):
            b = a.copy()
            b[2, 3] = bad
            assert not validate.all_finite(b)
            assert not validate.all_finite(b[:, 1::2].T)  # non-contiguous
    big = np.full(10, np.finfo(np.float32).max, np.float32)  # the sum of squares overflows; values are finite
    assert validate.all_finite(big)
    assert validate.all_finite(np.arange(5)) and validate.all_finite(np.zeros(0))


def test_checks_leave_arguments_untouched_on_success():
    batch = (X, LABELS)
    snap = _snapshot((NET, batch))
    fnn.value_and_grad(NET, batch, fnn.cross_entropy)
    fnn.train(NET, batch, epochs=1, batch_size=2, lr=0.1)
    _unchanged(snap)
    assert copy.deepcopy(X).tobytes() == X.tobytes()


# ---------------------------------------------------------------------------
# The data functions and the command line
# ---------------------------------------------------------------------------

PAIR = (X, LABELS)
BAD_DATA_CALLS = [
    ("batches_size_0", lambda: fnn.data.batches(0, PAIR, 0), ValueError,
     r"batch_size must be a positive integer, got 0"),
    ("batches_size_float", lambda: fnn.data.batches(0, PAIR, 2.0), TypeError,
     r"batch_size must be a positive integer, got float 2.0"),
    ("batches_lengths", lambda: fnn.data.batches(0, (X, LABELS[:5]), 2), ValueError,
     r"the arrays in data must have the same first dimension.*\[\(6, 4\), \(5,\)\]"),
    ("batches_empty", lambda: fnn.data.batches(0, (X[:0], LABELS[:0]), 2), ValueError, r"data has no examples"),
    ("batches_bare_array", lambda: fnn.data.batches(0, X, 2), TypeError, r"data must be a tuple of arrays"),
    ("shuffle_lengths", lambda: fnn.data.shuffle(0, (X, LABELS[:5])), ValueError, r"same first dimension"),
    ("split_fraction", lambda: fnn.data.split(0, PAIR, 1.5), ValueError,
     r"split: fraction must be a finite number in \(0, 1\), got 1.5"),
    ("split_nan", lambda: fnn.data.split(0, PAIR, float("nan")), ValueError, r"fraction .* got nan"),
    ("one_hot_range", lambda: fnn.data.one_hot(LABELS + 1, 3), ValueError, r"labels must lie in \[0, 3\)"),
    ("one_hot_float", lambda: fnn.data.one_hot(LABELS * 0.5, 3), TypeError, r"labels must be integers"),
    ("one_hot_k", lambda: fnn.data.one_hot(LABELS, 0), ValueError, r"k must be a positive integer, got 0"),
    ("normalize_strings", lambda: fnn.data.normalize(X.astype(str)), TypeError, r"images must be uint8"),
]


@pytest.mark.parametrize("name, call, exc, pattern", BAD_DATA_CALLS, ids=[r[0] for r in BAD_DATA_CALLS])
def test_bad_data_function_arguments(name, call, exc, pattern):
    check(exc, pattern, call)
    assert X.tobytes() == X.copy().tobytes()


@pytest.mark.parametrize("option, value, table", [  # each name table, as the CLI's errors and help read it
    ("--cost", "hinge", fnn.costs.COSTS),
    ("--optimizer", "adamax", optim.OPTIMIZERS),
    ("--activation", "swish", fnn.layers.ACTIVATIONS),
    ("--init", "glorot", fnn.layers.INITS),
    ("--schedule", "cyclic", runs.SCHEDULES),
    ("--dataset", "cifar", runs.DATASETS),
])
def test_cli_unknown_names_list_the_valid_ones(option, value, table, tmp_path, capsys):
    valid = ", ".join(table)
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    assert valid in " ".join(capsys.readouterr().out.split())  # the help lists the table's names
    code = cli.main(["train", option, value, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"unknown {option[2:]} {value!r}; valid names: {valid}" in err
    assert not (tmp_path / "run").exists()  # refused before any work


def test_cli_and_library_agree_on_the_optimizer_names():
    assert set(runs.OPTIMIZERS) == set(optim.OPTIMIZERS)
    assert set(runs.COSTS) == set(fnn.costs.COSTS)


# ---------------------------------------------------------------------------
# Issue 15, case 5: train(initial_state=...) is checked before any work
# ---------------------------------------------------------------------------


X6 = RNG.standard_normal((6, 6)).astype(np.float32)


def _train_from(state, params, seen, **kwargs):
    data = (np.ones((6, 6), np.float32), np.array([0, 1, 2, 0, 1, 2]))
    return fnn.train(params, data, epochs=2, batch_size=3, initial_state=state, observers=[seen.append], **kwargs)


@pytest.mark.parametrize("case", ["architecture", "other_opt_state", "momentum_for_adam", "adam_with_lr",
                                  "negative_epoch", "not_a_state", "nan_params", "inf_opt_state", "history_of_dicts",
                                  "history_of_strings_as_losses"])
def test_initial_state_is_checked_before_any_work(case):
    net5, net7 = fnn.mlp([6, 5, 3], seed=0), fnn.mlp([6, 7, 3], seed=0)
    adam = fnn.adam(1e-3)
    nan5 = ft.map(lambda a: np.where(np.arange(a.size).reshape(a.shape) == 2, np.nan, a).astype(a.dtype)
                  if layers.is_param(a) else a, net5)
    adam_state = adam.init(net5)
    inf_opt = ft.map(lambda a: np.full_like(a, np.inf) if a.dtype.kind == "f" and a.ndim == 1 else a, adam_state)
    one_epoch = fnn.init_state(net5)._replace(epoch=1, step=2)
    state, params, kwargs = {
        "architecture": (fnn.init_state(net7), net5, {"lr": 0.1}),
        "other_opt_state": (fnn.init_state(net7, adam)._replace(params=net5), net5, {"optimizer": adam}),
        "momentum_for_adam": (fnn.init_state(net5, fnn.momentum(0.1)), net5, {"optimizer": adam}),
        "adam_with_lr": (fnn.init_state(net5, adam), net5, {"lr": 0.1}),
        "negative_epoch": (fnn.init_state(net5)._replace(epoch=-3), net5, {"lr": 0.1}),
        "not_a_state": ((net5, ()), net5, {"lr": 0.1}),
        "nan_params": (fnn.init_state(nan5), net5, {"lr": 0.1}),
        "inf_opt_state": (fnn.init_state(net5)._replace(opt_state=inf_opt), net5, {"optimizer": adam}),
        "history_of_dicts": (one_epoch._replace(history=({"epoch": 1, "val_loss": 0.5},)), net5,
                             {"lr": 0.1, "patience": 2, "validation": (X6, LABELS)}),
        "history_of_strings_as_losses": (one_epoch._replace(history=(fnn.EpochStats(1, "0.5"),)), net5, {"lr": 0.1}),
    }[case]
    pattern = {"architecture": r"initial_state\.params does not have the layout of params",
               "other_opt_state": r"initial_state\.opt_state does not fit the optimizer",
               "momentum_for_adam": r"initial_state\.opt_state does not fit the optimizer: it holds \(TraceState",
               "adam_with_lr": r"initial_state\.opt_state .*plain SGD \(lr=\) starts from \(\)",
               "negative_epoch": r"initial_state\.epoch must be an integer >= 0, got -3",
               "not_a_state": r"initial_state must be an fnn\.TrainState",
               "nan_params": r"initial_state\.params\[0\]\.w holds NaN or inf \(1 of 30 values, the first at "
                             r"index \(0, 2\)\); the run that saved it had diverged\. Resume from an earlier",
               "inf_opt_state": r"initial_state\.opt_state\[0\]\.mu\[0\]\.b holds NaN or inf \(5 of 5 values",
               "history_of_dicts": r"initial_state\.history\[0\] is dict .*, not an fnn\.EpochStats as training "
                                   r"records; pass a state that fnn saved",
               "history_of_strings_as_losses": r"initial_state\.history\[0\] is an fnn\.EpochStats whose field loss "
                                               r"is str '0\.5', expected float; pass a state that fnn saved"}[case]
    seen: list = []
    with pytest.raises((ValueError, TypeError), match=pattern):
        _train_from(state, params, seen, **kwargs)
    assert seen == []
    assert validate._STATS_FIELDS == fnn.EpochStats._fields  # how a history entry is recognised


def test_callbacks_and_patience_fail_before_any_work():
    seen: list = []
    data = (X, LABELS)
    check(TypeError, r"observers\[0\] is int 1, not a function", fnn.train, NET, data, epochs=1, batch_size=2,
          lr=0.1, observers=[1])
    check(TypeError, r"on_batch\[0\] is int 1, not a function", fnn.train, NET, data, epochs=1, batch_size=2,
          lr=0.1, on_batch=1)
    check(ValueError, r"patience stops on val_loss: pass validation=", fnn.train, NET, data, epochs=3,
          batch_size=2, lr=0.1, patience=1, observers=[seen.append])
    assert seen == []


# ---------------------------------------------------------------------------
# Issue 15, case 12: arguments refused before any work
# ---------------------------------------------------------------------------


def test_bad_layers_and_params_are_refused():
    data = (X, LABELS)
    half = ft.map(lambda a: a.astype(np.float16) if layers.is_param(a) else a, NET)
    check(TypeError, r"params\[0\] \(Dense\)\.w has dtype float16; parameters must be float32 or float64",
          fnn.train, half, data, epochs=1, batch_size=2, optimizer=fnn.adam(1e-3))
    for w in (3, [[1.0, 2.0]]):
        check(TypeError, r"params\[0\] \(Dense\): field w is (int|list) .*expected ndarray", fnn.forward,
              (fnn.Dense(w, np.zeros(2, np.float32)),), X)
    check(TypeError, r"field w is a int64 array, expected a float32 or float64 array", fnn.forward,
          (fnn.Dense(np.ones((4, 3), np.int64), np.zeros(3)),), X)
    check(TypeError, r"params\[0\] \(LeakyReLU\): field slope is str 'a', expected float", fnn.forward,
          (fnn.LeakyReLU("a"),), X)
    check(ValueError, r"layer 0 \(Dense\) has w of shape \(4, 0\).*n_in, n_out >= 1", fnn.forward,
          (fnn.Dense(np.ones((4, 0), np.float32), np.zeros(0, np.float32)),), X)


def test_sgd_step_refuses_grads_of_another_dtype():
    net = fnn.mlp([4, 3], seed=0)
    ints = ft.map(lambda a: np.ones(a.shape, np.int64) if layers.is_param(a) else a, net)
    wide = ft.map(lambda a: a.astype(np.float64) if layers.is_param(a) else a, net)
    check(TypeError, r"grads\[0\]\.w has dtype int64 but params\[0\]\.w has dtype float32", fnn.sgd_step,
          net, ints, 0.1)
    check(TypeError, r"grads\[0\]\.w has dtype float64 but params\[0\]\.w has dtype float32", fnn.sgd_step,
          net, wide, 0.1)


def test_finite_inputs_that_overflow_the_params_dtype_are_named_as_such():
    big = np.full((2, 4), 1e300)
    check(ValueError, r"x holds finite values too large for the network's float32 \(largest magnitude 1e\+300",
          fnn.forward, NET, big)


def test_finite_targets_that_overflow_the_params_dtype_are_named_as_such_under_any_errstate():
    y = np.array([[1.0, 0.0, 0.0]] * 5 + [[0.0, 0.0, 1e300]])
    for state in ({}, {"all": "raise"}):
        with np.errstate(**state):
            check(ValueError, r"batch\[1\] \(y\) holds finite values too large for the network's float32 "
                  r"\(largest magnitude 1e\+300, float32 ends at 3.4e\+38\); scale the targets",
                  fnn.loss, NET, (X, y), fnn.mse)
            check(ValueError, r"batch\[1\] \(y\) holds NaN or inf \(1 of 18 values, the first at index \(5, 2\)\)",
                  fnn.loss, NET, (X, np.where(y > 1, np.inf, y)), fnn.mse)


def test_tiny_inputs_and_targets_round_to_zero_in_float32_without_an_error():
    tiny = np.full((6, 4), 1e-300)
    with np.errstate(all="raise"):
        x, y = validate.batch(NET, (tiny, tiny[:, :3]))
    assert x.dtype == y.dtype == np.float32 and not x.any() and not y.any()
