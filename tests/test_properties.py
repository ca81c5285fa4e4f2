"""Property tests over random networks: the guarantees hold for any architecture, not just the examples.

Random architectures (depth 1-4, widths 1-64, every activation, every cost, float32 and float64)
and random batches: the gradient agrees with finite differences (``fnn.check_grad``), the forward
pass is finite, ``value_and_grad`` equals ``(loss, grad)``, and nothing given is changed.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import fnn
from fnn import costs
from fnn import tree as ft

ACTIVATIONS = sorted(fnn.layers.ACTIVATIONS)
COSTS = list(costs.COSTS.values())
PROPS = settings(max_examples=80, deadline=None)


@st.composite
def problems(draw, max_width=64):
    """``(params, (x, y), cost)``: a random MLP, a random batch and targets that suit the cost."""
    depth = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(1, max_width), min_size=depth + 1, max_size=depth + 1))
    activation = draw(st.sampled_from(ACTIVATIONS))
    output = draw(st.sampled_from(ACTIVATIONS))
    cost = draw(st.sampled_from(COSTS))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    # "normal" and "torch" draw non-zero biases, so no ReLU input sits exactly on its kink
    init = draw(st.sampled_from(["torch", "normal"]))
    seed = draw(st.integers(0, 2**32 - 1))
    if cost.takes_logits and fnn.layers.rule(fnn.layers.ACTIVATIONS[output]).squashes:
        output = "identity"  # costs on logits refuse a squashing last layer (the logits rule, tested in test_costs)
    if cost is costs.cross_entropy:
        sizes[-1] = max(sizes[-1], 2)  # a softmax over one output is refused (its loss is always 0)
    params = fnn.mlp(sizes, activation, output, seed=seed, init=init, dtype=dtype)
    g = np.random.default_rng(seed)
    n = draw(st.integers(1, 9))
    scale = draw(st.sampled_from([1e-2, 1.0, 10.0]))
    x = (g.standard_normal((n, sizes[0])) * scale).astype(dtype)
    k = sizes[-1]
    kind = draw(st.sampled_from(["labels", "targets"]))
    if kind == "labels" and cost is not costs.binary_cross_entropy:
        y = g.integers(0, k, n)
    elif cost is costs.binary_cross_entropy:
        y = g.integers(0, 2, (n, k)).astype(dtype)
    elif cost is costs.cross_entropy:
        y = fnn.data.one_hot(g.integers(0, k, n), k, dtype=dtype)
    else:
        y = g.standard_normal((n, k)).astype(dtype)
    return params, (x, y), cost


def _max_error(errors):
    return max(ft.leaves(errors))


@PROPS
@given(problem=problems())
def test_gradients_match_finite_differences(problem):
    params, batch, cost = problem
    with np.errstate(all="raise", under="ignore"):
        errors = fnn.check_grad(params, batch, cost, seed=1)
    assert ft.structure(errors) == ft.structure(params)
    assert _max_error(errors) < 1e-4, errors


@settings(max_examples=15, deadline=None)
@given(problem=problems(max_width=6))
def test_gradients_match_finite_differences_coordinate_by_coordinate(problem):
    params, batch, cost = problem
    with np.errstate(all="raise", under="ignore"):
        errors = fnn.check_grad(params, batch, cost, mode="coordinates")
    assert _max_error(errors) < 1e-4, errors


@PROPS
@given(problem=problems())
def test_forward_is_finite_and_keeps_dtype_and_batch(problem):
    params, (x, _), _ = problem
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = fnn.forward(params, x)
    assert out.shape == (len(x), params[-2].w.shape[1])
    assert out.dtype == x.dtype
    assert np.isfinite(out).all()


@PROPS
@given(problem=problems())
def test_value_and_grad_equals_loss_and_grad(problem):
    params, batch, cost = problem
    snapshot = [a.copy() for a in ft.leaves((params, batch)) if isinstance(a, np.ndarray)]
    value, g = fnn.value_and_grad(params, batch, cost)
    assert np.isfinite(value)
    rtol = 1e-6 if batch[0].dtype == np.float32 else 1e-12  # a fused value_and_grad may round differently
    np.testing.assert_allclose(value, fnn.loss(params, batch, cost), rtol=rtol)
    assert ft.all_equal(g, fnn.grad(params, batch, cost))
    assert ft.structure(g) == ft.structure(params)
    for p, d in zip(ft.leaves(params), ft.leaves(g)):
        assert np.shape(p) == np.shape(d)
        if isinstance(p, np.ndarray):
            assert d.dtype == p.dtype and np.isfinite(d).all() and not d.flags.writeable
    after = [a for a in ft.leaves((params, batch)) if isinstance(a, np.ndarray)]
    assert all(a.tobytes() == b.tobytes() for a, b in zip(after, snapshot))


@settings(max_examples=20, deadline=None)
@given(problem=problems(max_width=16), batch_size=st.integers(1, 12))
def test_training_is_deterministic_and_pure(problem, batch_size):
    params, batch, cost = problem
    runs = [fnn.train(params, batch, epochs=2, batch_size=batch_size, lr=0.01, cost=cost, seed=3,
                      on_divergence="continue") for _ in range(2)]
    assert ft.all_equal(runs[0][0], runs[1][0])
    losses = [np.array([h.loss for h in history]) for _, history in runs]
    assert np.array_equal(losses[0], losses[1], equal_nan=True)  # divergence ("continue") is deterministic too
    assert all(not a.flags.writeable for a in ft.leaves(runs[0][0]) if isinstance(a, np.ndarray))


def test_check_grad_catches_a_wrong_backward_rule():
    """A layer whose vjp is off by a factor of 2 is flagged, and only in the leaves it affects."""
    from typing import NamedTuple

    class Scale(NamedTuple):
        s: np.ndarray

    fnn.register(Scale, apply=lambda layer, x: x * layer.s,
                 vjp=lambda layer, x, y, dy: (Scale(2 * (dy * x).sum(axis=0)), dy * layer.s))
    params = (fnn.dense(0, 3, 4, dtype=np.float64), Scale(np.linspace(0.5, 2.0, 4)), fnn.Identity())
    x = np.random.default_rng(0).standard_normal((5, 3))
    errors = fnn.check_grad(params, (x, np.array([0, 1, 2, 3, 0])), fnn.cross_entropy)
    assert errors[1].s > 0.1
    assert errors[0].w < 1e-6 and errors[0].b < 1e-6
