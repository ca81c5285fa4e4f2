"""Helpers shared by several test modules (import them with ``from tests.conftest import ...``)."""

import numpy as np

from fnn import layers, tree


def vjp_errors(layer, x, ctx=None, eps=1e-6, seed=0):
    """A layer's ``vjp`` against central differences of ``<apply(layer, x), r>`` along random directions.

    Returns ``(y, dlayer, dx, errors)``: ``errors`` maps ``"x"`` and the name of each parameter
    field (float arrays, :func:`fnn.layers.is_param`) to the relative error of the analytic
    directional derivative. Use float64 inputs and parameters.
    """
    ctx = layers.Context() if ctx is None else ctx
    g = np.random.default_rng(seed)
    y = layers.apply(layer, x, ctx)
    r = g.standard_normal(y.shape)
    dlayer, dx = layers.vjp(layer, x, y, r, ctx)

    def f(lay, inp):
        return float(np.vdot(layers.apply(lay, inp, ctx), r))

    def rel(analytic, numeric, scale):
        return abs(analytic - numeric) / max(scale, abs(numeric), 1e-12)

    errors = {}
    if x.dtype.kind == "f":  # integer ids (an embedding's input) have no derivative
        v = g.standard_normal(x.shape)
        numeric = (f(layer, x + eps * v) - f(layer, x - eps * v)) / (2 * eps)
        errors["x"] = rel(float(np.vdot(dx, v)), numeric, np.linalg.norm(dx) * np.linalg.norm(v))
    for name, p, d in zip(layer._fields, layer, dlayer):
        leaves, treedef = tree.flatten(p)  # a field may nest records (a Residual's layers)
        for j, (q, dq) in enumerate(zip(leaves, tree.leaves(d))):
            if not layers.is_param(q):
                continue
            v = g.standard_normal(q.shape)
            at = [layer._replace(**{name: tree.unflatten(treedef, leaves[:j] + [q + s * eps * v] + leaves[j + 1:])})
                  for s in (1, -1)]
            numeric = (f(at[0], x) - f(at[1], x)) / (2 * eps)
            key = name if len(leaves) == 1 else f"{name}.{j}"
            errors[key] = rel(float(np.vdot(dq, v)), numeric, np.linalg.norm(dq) * np.linalg.norm(v))
    return y, dlayer, dx, errors
