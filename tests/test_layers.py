"""One contract, run over every layer type: shapes, finiteness, gradient structure, finite differences.

Every registered layer type of fnn has an example here; a new type without one fails
``test_every_layer_type_has_an_example``.
"""

import sys
from typing import NamedTuple

import numpy as np
import pytest

import fnn
from fnn import layers, tree
from fnn import random as fr
from tests import layer_examples_extra


def _dense(n_in, n_out, seed=0):
    g = np.random.default_rng(seed)
    return fnn.Dense(g.standard_normal((n_in, n_out)), g.standard_normal(n_out))


# layer, input shape
EXAMPLES = {
    fnn.Dense: [(_dense(5, 3), (4, 5)), (_dense(1, 7, 1), (2, 1)), (_dense(3, 2, 2), (2, 4, 3))],
    fnn.Sigmoid: [(fnn.Sigmoid(), (4, 6))],
    fnn.Tanh: [(fnn.Tanh(), (4, 6))],
    fnn.ReLU: [(fnn.ReLU(), (4, 6))],
    fnn.LeakyReLU: [(fnn.LeakyReLU(0.1), (4, 6)), (fnn.LeakyReLU(), (3, 2))],
    fnn.Softmax: [(fnn.Softmax(), (4, 6))],
    fnn.Identity: [(fnn.Identity(), (4, 6))],
    fnn.GELU: [(fnn.GELU(), (4, 6)), (fnn.GELU(), (2, 3, 4))],
}
CASES = [(t.__name__ + str(i), layer, shape) for t, cases in EXAMPLES.items() for i, (layer, shape) in enumerate(cases)]


def vjp_errors(layer, x, ctx=None, eps=1e-6, seed=0):
    """Relative errors of dx and of each parameter leaf of dlayer, against central differences of <apply, r>."""
    ctx = layers.Context() if ctx is None else ctx
    g = np.random.default_rng(seed)
    y = layers.apply(layer, x, ctx)
    r = g.standard_normal(y.shape)
    dlayer, dx = layers.vjp(layer, x, y, r, ctx)

    def f(lay, inp):
        return float(np.vdot(layers.apply(lay, inp, ctx), r))

    def rel(analytic, numeric, scale):
        return abs(analytic - numeric) / max(scale, abs(numeric), 1e-12)

    errors = []
    v = g.standard_normal(x.shape)
    numeric = (f(layer, x + eps * v) - f(layer, x - eps * v)) / (2 * eps)
    errors.append(rel(float(np.vdot(dx, v)), numeric, np.linalg.norm(dx) * np.linalg.norm(v)))
    for i, (p, d) in enumerate(zip(layer, dlayer)):
        if not layers.is_param(p):
            continue
        v = g.standard_normal(p.shape)
        plus = layer._replace(**{layer._fields[i]: p + eps * v})
        minus = layer._replace(**{layer._fields[i]: p - eps * v})
        numeric = (f(plus, x) - f(minus, x)) / (2 * eps)
        errors.append(rel(float(np.vdot(d, v)), numeric, np.linalg.norm(d) * np.linalg.norm(v)))
    return y, dlayer, dx, errors


@pytest.mark.parametrize("name, layer, shape", CASES, ids=[c[0] for c in CASES])
def test_layer_contract(name, layer, shape):
    x = np.random.default_rng(1).standard_normal(shape)
    with np.errstate(all="raise"):
        y, dlayer, dx, errors = vjp_errors(layer, x)
    assert y.shape[0] == x.shape[0], "batch-first: the batch axis is kept"
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    assert dx.shape == x.shape
    assert type(dlayer) is type(layer)
    assert tree.structure(dlayer) == tree.structure(layer)
    for p, d in zip(layer, dlayer):
        assert np.shape(p) == np.shape(d)
    assert max(errors) < 1e-6, errors


@pytest.mark.parametrize("name, layer, shape", CASES, ids=[c[0] for c in CASES])
def test_layer_keeps_float32(name, layer, shape):
    layer32 = tree.map(lambda a: a.astype(np.float32) if layers.is_param(a) else a, layer)
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    y = layers.apply(layer32, x)
    dlayer, dx = layers.vjp(layer32, x, y, np.ones_like(y))
    assert y.dtype == np.float32 and dx.dtype == np.float32
    assert all(d.dtype == np.float32 for d in tree.leaves(dlayer) if isinstance(d, np.ndarray))


@pytest.mark.parametrize("name, layer, shape", CASES, ids=[c[0] for c in CASES])
def test_batch_equals_row_by_row(name, layer, shape):
    x = np.random.default_rng(3).standard_normal(shape)
    whole = layers.apply(layer, x)
    rows = np.concatenate([layers.apply(layer, x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(whole, rows, rtol=1e-12, atol=1e-12)


SEQUENCE = [(t.__name__ + str(i), *case) for t, cases in layer_examples_extra.EXAMPLES.items()
            for i, case in enumerate(cases)
            if t.__module__ in ("fnn.embedding", "fnn.recurrent", "fnn.attention", "fnn.residual")]


def _sequence_input(layer, shape, seed):
    g = np.random.default_rng(seed)
    return g.integers(0, len(layer.table), shape) if type(layer) is fnn.Embedding else g.standard_normal(shape)


@pytest.mark.parametrize("name, layer, shape, ctx", SEQUENCE, ids=[c[0] for c in SEQUENCE])
def test_sequence_layer_contract(name, layer, shape, ctx):
    """The contract over the sequence layers, with finite differences on every leaf (Residual's params nest)."""
    x = _sequence_input(layer, shape, 1)
    with np.errstate(all="raise"):
        y = layers.apply(layer, x, ctx)
        r = np.random.default_rng(2).standard_normal(y.shape)
        dlayer, dx = layers.vjp(layer, x, y, r, ctx)
    assert y.shape[0] == x.shape[0] and np.isfinite(y).all() and np.isfinite(dx).all() and dx.shape == x.shape
    assert type(dlayer) is type(layer) and tree.structure(dlayer) == tree.structure(layer)
    for p, d in zip(tree.leaves(layer), tree.leaves(dlayer)):
        assert np.shape(p) == np.shape(d) and type(p) is type(d)

    def f(lay, inp):
        return float(np.vdot(layers.apply(lay, inp, ctx), r))

    g, eps = np.random.default_rng(3), 1e-6
    leaves, treedef = tree.flatten(layer)
    for i, (p, d) in enumerate(zip(leaves, tree.leaves(dlayer))):
        if layers.is_param(p):
            v = g.standard_normal(p.shape)
            at = [tree.unflatten(treedef, leaves[:i] + [p + s * eps * v] + leaves[i + 1 :]) for s in (1, -1)]
            numeric = (f(at[0], x) - f(at[1], x)) / (2 * eps)
            assert abs(np.vdot(d, v) - numeric) <= 1e-6 * max(np.linalg.norm(d) * np.linalg.norm(v), 1e-9), (i, numeric)
    if x.dtype.kind == "f":
        v = g.standard_normal(x.shape)
        numeric = (f(layer, x + eps * v) - f(layer, x - eps * v)) / (2 * eps)
        assert abs(np.vdot(dx, v) - numeric) <= 1e-6 * np.linalg.norm(dx) * np.linalg.norm(v)
    layer32 = tree.map(lambda a: a.astype(np.float32) if layers.is_param(a) else a, layer)
    x32 = x.astype(np.float32) if x.dtype.kind == "f" else x
    y32 = layers.apply(layer32, x32, ctx)
    d32, dx32 = layers.vjp(layer32, x32, y32, np.ones_like(y32), ctx)
    assert y32.dtype == dx32.dtype == np.float32
    assert all(d.dtype == np.float32 for d in tree.leaves(d32) if isinstance(d, np.ndarray))
    if not ctx.train:  # outside training, examples are independent
        rows = np.concatenate([layers.apply(layer, x[i : i + 1], ctx) for i in range(len(x))])
        np.testing.assert_allclose(y, rows, rtol=1e-12, atol=1e-12)


def test_every_layer_type_has_an_example():
    from tests import layer_examples_extra  # noqa: F401  (examples for layers outside fnn.layers)

    def in_fnn(t: type) -> bool:  # a class of fnn's modules, not one a doctest registered on the way
        return t.__module__.startswith("fnn.") and getattr(sys.modules[t.__module__], t.__name__, None) is t

    core = set(filter(in_fnn, layers.registered()))
    covered = set(EXAMPLES) | set(layer_examples_extra.EXAMPLES)
    assert core <= covered, f"add examples for: {sorted(t.__name__ for t in core - covered)}"


def test_unregistered_layer_is_a_clear_error():
    class Mystery(NamedTuple):
        w: np.ndarray

    with pytest.raises(TypeError, match="(?s)Mystery is not a registered layer type.*fnn.register"):
        fnn.forward((Mystery(np.ones(2)),), np.ones((1, 2)))


def test_register_wants_a_namedtuple():
    with pytest.raises(TypeError, match="NamedTuple"):
        fnn.register(dict, lambda layer, x: x, lambda layer, x, y, dy: (layer, dy))


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


def test_user_layer_works_everywhere_with_no_extra_code():
    g = fr.generator(0)
    params = (fnn.dense(0, 4, 3, dtype=np.float64), Scale(g.standard_normal(3)), fnn.Sigmoid())
    x, y = g.standard_normal((8, 4)), g.integers(0, 3, 8)
    errors = fnn.check_grad(params, (x, y), fnn.mse, mode="coordinates")
    assert max(tree.leaves(errors)) < 1e-6
    _, _, _, errs = vjp_errors(Scale(g.standard_normal(3)), g.standard_normal((5, 3)))
    assert max(errs) < 1e-6
    trained, history = fnn.train(params, (x, y), epochs=30, batch_size=4, lr=2.0, seed=0)
    assert history[-1].loss < history[0].loss
    assert isinstance(trained[1], Scale) and not trained[1].s.flags.writeable
