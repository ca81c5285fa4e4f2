"""One contract, run over every registered layer type: shapes, dtype, batch independence, gradients.

``EXAMPLES`` gives every layer type of fnn one or more examples ``(layer, input shape, context)``,
float64 parameters; each example goes through the same checks:

- shapes: the batch axis is kept, ``dx`` has the shape of ``x``, ``dlayer`` is a record of the
  layer's type with the structure and leaf shapes and types of the layer;
- finite values, with every floating-point flag an error (``np.errstate(all="raise")``);
- gradients: ``dx`` and the gradient of every parameter field against central differences in
  float64 (fields a layer declares untrained, BatchNorm's running statistics, must have zero ones);
  ``param_vjp``, where registered, equals the parameter half of ``vjp``; ``update``, where
  registered, returns a record of the same structure;
- the dtype is kept: float32 layers and inputs give float32 outputs and gradients;
- outside training, a batch gives the rows that the examples give one by one (evaluation may
  run a large batch in slices).

``test_every_registered_type_has_an_example`` runs over ``fnn.layers.registered()``: a type that a
module of fnn registers and that has no example here fails it. Types registered elsewhere are not
fnn's and are left out by their module: a test module's types have ``__module__ == "tests..."``;
a doctest's have the ``__module__`` of the fnn module whose docstring defined them, but are no
attribute of that module (``getattr(sys.modules[t.__module__], t.__qualname__)`` is not ``t``).
Adding a layer type to fnn is therefore: its module, plus one entry in ``EXAMPLES``.
"""

import sys
from typing import NamedTuple

import numpy as np
import pytest

import fnn
from fnn import layers, tree
from fnn import random as fr
from fnn.layers import Context
from tests.conftest import vjp_errors
from tests.frozen import read_only

EVAL = Context()


def _dense(n_in, n_out, seed=0):
    g = np.random.default_rng(seed)
    return fnn.Dense(g.standard_normal((n_in, n_out)), g.standard_normal(n_out))


def _norm(layer, seed=0):
    """A normalisation layer with random gamma and beta, so no gradient term is trivially zero."""
    g = np.random.default_rng(seed)
    return layer._replace(gamma=g.uniform(0.5, 2, layer.gamma.shape), beta=g.standard_normal(layer.beta.shape))


# layer type: [(layer, input shape, context)]; float64 parameters
EXAMPLES = {
    fnn.Dense: [(_dense(5, 3), (4, 5), EVAL), (_dense(1, 7, 1), (2, 1), EVAL), (_dense(3, 2, 2), (2, 4, 3), EVAL)],
    fnn.Sigmoid: [(fnn.Sigmoid(), (4, 6), EVAL)],
    fnn.Tanh: [(fnn.Tanh(), (4, 6), EVAL)],
    fnn.ReLU: [(fnn.ReLU(), (4, 6), EVAL)],
    fnn.LeakyReLU: [(fnn.LeakyReLU(0.1), (4, 6), EVAL), (fnn.LeakyReLU(), (3, 2), EVAL)],
    fnn.Softmax: [(fnn.Softmax(), (4, 6), EVAL)],
    fnn.Identity: [(fnn.Identity(), (4, 6), EVAL)],
    fnn.GELU: [(fnn.GELU(), (4, 6), EVAL), (fnn.GELU(), (2, 3, 4), EVAL)],
    fnn.Conv2D: [(fnn.conv2d(0, 2, 3, 3, dtype=np.float64), (2, 5, 6, 2), EVAL),
                 (fnn.conv2d(1, 1, 2, (2, 3), 2, 1, dtype=np.float64), (3, 7, 6, 1), EVAL)],
    fnn.MaxPool2D: [(fnn.MaxPool2D(2), (2, 4, 5, 3), EVAL), (fnn.MaxPool2D(3, 2), (1, 7, 7, 2), EVAL)],
    fnn.AvgPool2D: [(fnn.AvgPool2D(2), (2, 4, 5, 3), EVAL), (fnn.AvgPool2D(3, 1), (1, 4, 4, 2), EVAL)],
    fnn.Flatten: [(fnn.Flatten(), (2, 3, 4, 2), EVAL)],
    fnn.Reshape: [(fnn.Reshape((2, -1)), (3, 8), EVAL)],
    fnn.Dropout: [(fnn.Dropout(0.5), (4, 6), EVAL), (fnn.Dropout(0.3), (4, 6), Context(True, fr.key(0)))],
    fnn.LayerNorm: [(_norm(fnn.layer_norm(6, dtype=np.float64)), (4, 6), EVAL),
                    (_norm(fnn.layer_norm((3, 2), dtype=np.float64)), (2, 4, 3, 2), EVAL)],
    fnn.BatchNorm: [(_norm(fnn.batch_norm(3, dtype=np.float64)), (5, 3), Context(True, None)),
                    (_norm(fnn.batch_norm(2, dtype=np.float64)), (2, 3, 3, 2), EVAL)],
    fnn.RandomFlip: [(fnn.RandomFlip(), (4, 3, 5, 2), EVAL),
                     (fnn.RandomFlip(0.7), (6, 2, 3, 1), Context(True, fr.key(1)))],
    # sequences (batch, time, features); an Embedding takes integer ids below its vocabulary
    fnn.Embedding: [(fnn.embedding(0, 7, 3, dtype=np.float64), (4, 5), EVAL)],
    fnn.PositionalEmbedding: [(fnn.positional_embedding(0, 6, 3, dtype=np.float64), (2, 4, 3), EVAL)],
    fnn.RNN: [(fnn.rnn(0, 3, 4, dtype=np.float64), (2, 5, 3), EVAL)],
    fnn.LSTM: [(fnn.lstm(0, 3, 4, dtype=np.float64), (2, 5, 3), EVAL)],
    fnn.GRU: [(fnn.gru(0, 3, 4, dtype=np.float64), (2, 5, 3), EVAL)],
    fnn.Last: [(fnn.Last(), (2, 5, 3), EVAL)],
    fnn.MultiHeadAttention: [(fnn.attention(0, 6, 2, dtype=np.float64), (2, 5, 6), EVAL),
                             (fnn.attention(1, 4, 1, causal=False, dtype=np.float64), (3, 2, 4), EVAL)],
    fnn.Residual: [(fnn.Residual((_norm(fnn.layer_norm(4, dtype=np.float64)),
                                  fnn.attention(0, 4, 2, dtype=np.float64))), (2, 3, 4), EVAL),
                   (fnn.Residual((fnn.dense(0, 4, 6, dtype=np.float64), fnn.GELU(), fnn.Dropout(0.5),
                                  fnn.dense(1, 6, 4, dtype=np.float64))), (2, 3, 4), Context(True, fr.key(0)))],
}
UNTRAINED = {fnn.BatchNorm: ("mean", "var")}  # float fields moved by ``update``, never by gradients
def _input(layer, shape, seed):
    """Random float64 inputs of ``shape``; integer ids below the vocabulary for a layer that takes ids."""
    g = np.random.default_rng(seed)
    return g.integers(0, len(layer.table), shape) if layers.rule(layer).indices else g.standard_normal(shape)


CASES = [pytest.param(layer, shape, ctx, id=f"{t.__name__}{i}")
         for t, cases in EXAMPLES.items() for i, (layer, shape, ctx) in enumerate(cases)]


def _fnn_types():
    """The registered types that a module of fnn defines (see the module docstring)."""
    def own(t):
        return t.__module__.startswith("fnn.") and getattr(sys.modules[t.__module__], t.__qualname__, None) is t

    return [t for t in layers.registered() if own(t)]


def test_every_registered_type_has_an_example():
    missing = sorted(t.__name__ for t in _fnn_types() if t not in EXAMPLES)
    assert not missing, f"add contract examples to tests/test_layers.py EXAMPLES for: {missing}"
    assert set(EXAMPLES) <= set(_fnn_types()), "every example is of a type fnn registers"


def test_types_from_tests_and_doctests_are_left_out():
    class Here(NamedTuple):
        pass

    fnn.register(Here, lambda layer, x: x, lambda layer, x, y, dy: (layer, dy))
    assert Here in layers.registered() and Here not in _fnn_types()
    namespace = {"__name__": "fnn.layers.core"}  # as a doctest of fnn.layers.core runs
    exec("from typing import NamedTuple\nclass Doc(NamedTuple):\n    pass", namespace)
    fnn.register(namespace["Doc"], lambda layer, x: x, lambda layer, x, y, dy: (layer, dy))
    assert namespace["Doc"].__module__ == "fnn.layers.core" and namespace["Doc"] not in _fnn_types()


@pytest.mark.parametrize("layer, shape, ctx", CASES)
def test_layer_contract(layer, shape, ctx):
    x = _input(layer, shape, 1)
    with np.errstate(all="raise"):
        y, dlayer, dx, errors = vjp_errors(layer, x, ctx)
    assert y.shape[0] == x.shape[0], "batch-first: the batch axis is kept"
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    assert dx.shape == x.shape and (dx.dtype == x.dtype or x.dtype.kind in "iu")
    assert type(dlayer) is type(layer)
    assert tree.structure(dlayer) == tree.structure(layer)
    for p, d in zip(tree.leaves(layer), tree.leaves(dlayer)):
        assert np.shape(p) == np.shape(d) and type(p) is type(d)
        assert not isinstance(d, np.ndarray) or np.isfinite(d).all()
    untrained = UNTRAINED.get(type(layer), ())
    assert all(not getattr(dlayer, f).any() for f in untrained), "untrained fields have zero gradients"
    trained = {k: e for k, e in errors.items() if k not in untrained}
    assert max(trained.values(), default=0.0) < 1e-6, errors
    r = layers.rule(layer)
    dy = np.random.default_rng(2).standard_normal(y.shape)
    if r.param_vjp is not None:
        assert not r.context
        saved = () if r.forward is None else (r.forward(layer, x)[1],)
        assert tree.all_equal(r.param_vjp(layer, x, y, dy, *saved), layers.vjp(layer, x, y, dy)[0])
    if r.forward is not None:  # the values saved in a trace give what the public vjp recomputes
        xs = layers.trace((layer,), x, (ctx,))
        assert isinstance(xs, layers.Trace) and len(xs.saved) == 1
        np.testing.assert_array_equal(xs[-1], y)
        read_only(xs)  # a vjp writes into no input and no saved value
        dy.setflags(write=False)
        grads, dx_saved = layers.backward((layer,), xs, dy, (ctx,))
        expected = layers.vjp(layer, x, y, dy, ctx)
        assert tree.all_equal(grads[0], expected[0]) and np.array_equal(dx_saved, expected[1])
    if r.update is not None:
        moved = r.update(layer, x, Context(True, fr.key(3)))
        assert type(moved) is type(layer) and tree.structure(moved) == tree.structure(layer)


@pytest.mark.parametrize("layer, shape, ctx", CASES)
def test_layer_keeps_float32(layer, shape, ctx):
    layer32 = tree.map(lambda a: a.astype(np.float32) if layers.is_param(a) else a, layer)
    x = _input(layer, shape, 2)
    x = x.astype(np.float32) if x.dtype.kind == "f" else x
    y = layers.apply(layer32, x, ctx)
    dlayer, dx = layers.vjp(layer32, x, y, np.ones_like(y), ctx)
    assert y.dtype == np.float32 and (dx.dtype == np.float32 or x.dtype.kind in "iu")
    assert all(d.dtype == np.float32 for d in tree.leaves(dlayer) if isinstance(d, np.ndarray))


@pytest.mark.parametrize("layer, shape, ctx", CASES)
def test_batch_equals_row_by_row_outside_training(layer, shape, ctx):
    del ctx  # outside training, whatever the example's mode
    x = _input(layer, shape, 3)
    whole = layers.apply(layer, x)
    rows = np.concatenate([layers.apply(layer, x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(whole, rows, rtol=1e-12, atol=1e-12)


# every builder that takes a dtype, with an input it takes: a network of one layer
BUILDERS = {
    "dense": (lambda dtype: fnn.dense(0, 3, 2, dtype=dtype), (2, 3)),
    "conv2d": (lambda dtype: fnn.conv2d(0, 1, 2, 3, dtype=dtype), (2, 5, 5, 1)),
    "layer_norm": (lambda dtype: fnn.layer_norm(3, dtype=dtype), (2, 3)),
    "batch_norm": (lambda dtype: fnn.batch_norm(3, dtype=dtype), (2, 3)),
    "embedding": (lambda dtype: fnn.embedding(0, 4, 3, dtype=dtype), None),
    "positional_embedding": (lambda dtype: fnn.positional_embedding(0, 4, 3, dtype=dtype), (2, 4, 3)),
    "rnn": (lambda dtype: fnn.rnn(0, 3, 2, dtype=dtype), (2, 4, 3)),
    "lstm": (lambda dtype: fnn.lstm(0, 3, 2, dtype=dtype), (2, 4, 3)),
    "gru": (lambda dtype: fnn.gru(0, 3, 2, dtype=dtype), (2, 4, 3)),
    "attention": (lambda dtype: fnn.attention(0, 4, 2, dtype=dtype), (2, 3, 4)),
}


@pytest.mark.parametrize("name", BUILDERS)
def test_builders_build_only_networks_fnn_takes(name):
    """float32 and float64 build networks that run; every other dtype is refused by the builder, not later."""
    build, shape = BUILDERS[name]
    for dtype in (np.float32, np.float64):
        x = np.zeros((2, 4), np.int64) if shape is None else np.zeros(shape, dtype)
        assert fnn.forward((build(dtype),), x).dtype == dtype
    for dtype, shown in [(np.float16, "float16"), (np.longdouble, str(np.dtype(np.longdouble))), (np.int32, "int32")]:
        with pytest.raises(TypeError, match=rf"dtype must be np.float32 or np.float64 .*, got {shown}; "
                                            r"pass e.g. dtype=np.float32."):
            build(dtype)


def test_unregistered_layer_is_a_clear_error():
    class Mystery(NamedTuple):
        w: np.ndarray

    with pytest.raises(TypeError, match="(?s)Mystery is not a registered layer type.*fnn.register"):
        fnn.forward((Mystery(np.ones(2)),), np.ones((1, 2)))


def test_register_wants_a_namedtuple():
    with pytest.raises(TypeError, match="NamedTuple"):
        fnn.register(dict, lambda layer, x: x, lambda layer, x, y, dy: (layer, dy))


def test_register_takes_one_forward_rule():
    class Twice(NamedTuple):
        pass

    with pytest.raises(TypeError, match="exactly one of apply= and forward="):
        fnn.register(Twice, apply=lambda layer, x: x, forward=lambda layer, x: (x, None),
                     vjp=lambda layer, x, y, dy, saved: (layer, dy))
    with pytest.raises(TypeError, match="exactly one of apply= and forward="):
        fnn.register(Twice, vjp=lambda layer, x, y, dy: (layer, dy))
    with pytest.raises(TypeError, match="vjp=None"):
        fnn.register(Twice, apply=lambda layer, x: x)
    assert Twice not in layers.registered()


def test_sigmoid_values_and_extremes():
    x = np.array([-1e4, -30.0, 0.0, 30.0, 1e4], dtype=np.float32)
    with np.errstate(all="raise"):
        y = layers.sigmoid(x)
    x64 = x.astype(np.float64)
    e = np.exp(-np.abs(x64))  # never overflows
    expected = np.where(x64 >= 0, 1 / (1 + e), e / (1 + e))
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-7)  # tanh form: absolute accuracy in the tails


# ---------------------------------------------------------------------------
# A user's layer, defined here as it would be in their own module
# ---------------------------------------------------------------------------


class Scale(NamedTuple):
    """y = x * s, with a learned scale per feature."""

    s: np.ndarray


def scale_apply(layer, x):
    return x * layer.s


def scale_vjp(layer, x, y, dy):
    return Scale((dy * x).sum(axis=0)), dy * layer.s


fnn.register(Scale, apply=scale_apply, vjp=scale_vjp)


def _user_layer_checks(layer_type, seed):
    """check_grad, vjp_errors and train on a network with a user layer; returns the network and its data."""
    g = fr.generator(seed)
    params = (fnn.dense(0, 4, 3, dtype=np.float64), layer_type(g.standard_normal(3)), fnn.Sigmoid())
    x, y = g.standard_normal((8, 4)), g.integers(0, 3, 8)
    errors = fnn.check_grad(params, (x, y), fnn.mse, mode="coordinates")
    assert max(tree.leaves(errors)) < 1e-6
    _, _, _, errs = vjp_errors(layer_type(g.standard_normal(3)), g.standard_normal((5, 3)))
    assert max(errs.values()) < 1e-6
    trained, history = fnn.train(params, (x, y), epochs=30, batch_size=4, lr=2.0, seed=0)
    assert history[-1].loss < history[0].loss
    assert isinstance(trained[1], layer_type) and not trained[1].s.flags.writeable
    return params, x


def test_user_layer_works_everywhere_with_no_extra_code():
    _user_layer_checks(Scale, 0)


class SavingScale(NamedTuple):
    """y = tanh(x) * s, saving tanh(x) for the backward pass; counts its forward passes."""

    s: np.ndarray


FORWARDS = []


def saving_scale_forward(layer, x):
    FORWARDS.append(1)
    t = np.tanh(x)
    return t * layer.s, t


def saving_scale_vjp(layer, x, y, dy, t):
    return SavingScale((dy * t).sum(axis=tuple(range(dy.ndim - 1)))), dy * layer.s * (1 - t * t)


fnn.register(SavingScale, vjp=saving_scale_vjp, forward=saving_scale_forward)


def test_user_saving_layer_works_everywhere_with_no_extra_code():
    params, x = _user_layer_checks(SavingScale, 1)
    np.testing.assert_allclose(layers.apply(params[1], x[:, :3]), np.tanh(x[:, :3]) * params[1].s)
    for net, inp in ((params, x), ((fnn.Residual((params[1],)),), x[:, :3])):
        ctxs = (EVAL,) * len(net)
        xs = layers.trace(net, inp, ctxs)
        FORWARDS.clear()
        grads = fnn.network.backprop(net, xs, np.ones_like(xs[-1]), ctxs)
        assert not FORWARDS, "backpropagation (and a Residual block) hands the layer its saved values"
        assert tree.all_equal(grads[-1], layers.vjp(net[-1], xs[-2], xs[-1], np.ones_like(xs[-1]))[0])
