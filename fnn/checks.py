"""A public gradient checker: hand-derived gradients against finite differences.

:func:`check_grad` compares :func:`fnn.grad` with central differences

.. math:: \\frac{L(p + \\epsilon v) - L(p - \\epsilon v)}{2 \\epsilon} \\approx \\langle \\nabla L, v \\rangle

in float64, for any network made of registered layers: a layer you add is
checked with no extra code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fnn import layers, validate
from fnn import random as fr
from fnn import tree as ft
from fnn.arguments import number
from fnn.costs import Cost, mse
from fnn.network import Batch, Params, backprop, contexts, trace

__all__ = ["check_grad"]


def _to64(leaf: Any) -> Any:
    return leaf.astype(np.float64) if layers.is_param(leaf) else leaf


def check_grad(
    params: Params,
    batch: Batch,
    cost: Cost = mse,
    *,
    eps: float = 1e-6,
    mode: str = "directions",
    directions: int = 4,
    seed: fr.KeyLike = 0,
    train: bool = False,
    key: fr.KeyLike | None = None,
) -> Params:
    """The maximum relative error of the analytic gradient, per leaf of ``params``.

    Params and batch are copied to float64 first, so the check measures the
    derivation, not float32 rounding.

    Args:
      params, batch, cost: as for :func:`fnn.grad`.
      eps: the finite-difference step.
      mode: ``"directions"`` (cheap: ``directions`` random unit directions per leaf) or
        ``"coordinates"`` (exact: every scalar in turn; for small networks).
      seed: the key for the random directions.
      train, key: the mode and key of random or stateful layers, held fixed during the check.

    Returns:
      A tree shaped like ``params`` with a float at each leaf: for trainable parameter arrays
      (:func:`fnn.layers.trainable`) the largest error relative to the size of that leaf's
      gradient (directions: ``|<g, v> - numeric| / max(|g|, |numeric|)``; coordinates:
      ``max|g - numeric| / max|g|``); ``0.0`` for settings and for running statistics (BatchNorm's
      ``mean`` and ``var``), which no gradient trains: their gradient is zero by design, so they are
      not checked. Gradients smaller than ``1e-5 max(|loss|, 1)``, where finite
      differences are mostly rounding noise, are measured against that floor instead. A
      correct gradient gives errors below about 1e-5 (1e-4 at worst); a wrong backward rule
      gives errors of 1e-2 to 1.

    Raises:
      TypeError, ValueError: bad params, batch, cost, ``eps`` (a positive float), ``directions``
      (a positive int) or ``mode``, as for :func:`fnn.grad`.

    >>> import fnn, numpy as np
    >>> params = fnn.mlp([3, 4, 2], seed=0)
    >>> errors = check_grad(params, (np.ones((5, 3)), np.array([0, 1, 1, 0, 1])))
    >>> max(fnn.tree.leaves(errors)) < 1e-6
    True
    """
    if mode not in ("directions", "coordinates"):
        raise ValueError(
            f"mode must be 'directions' (cheap, random directions) or 'coordinates' (exact, small "
            f"networks), got {mode!r}."
        )
    eps = number(eps, "eps", "eps=1e-6", 0.0, open_low=True)
    directions = validate.positive_int(directions, "directions")
    cost = validate.network_and_cost(params, cost)
    p64 = ft.map(_to64, params)
    x, y = validate.batch(p64, batch, cost)
    ctxs = contexts(p64, train, key)

    def loss_at(p: Params) -> float:
        return cost.value(trace(p, x, ctxs)[-1], y)

    xs = trace(p64, x, ctxs)
    grads = backprop(p64, xs, cost.grad(xs[-1], y), ctxs)
    # Central differences carry a rounding error of about 1e-16 |L| / eps (1e-10 |L| at the
    # default eps): gradients below the floor cannot be told from that noise, so errors are
    # measured relative to at least it (an absolute tolerance on the scale of the loss).
    floor = 1e-5 * max(abs(cost.value(xs[-1], y)), 1.0)
    flat, treedef = ft.flatten(p64)
    checked = {id(a) for layer in p64 for a in layers.trainable(layer)}  # arrays of p64, alive throughout
    gflat = ft.leaves(grads)
    rng = fr.generator(seed)

    def perturbed(i: int, delta: np.ndarray) -> float:
        return loss_at(ft.unflatten(treedef, flat[:i] + [flat[i] + delta] + flat[i + 1 :]))

    def leaf_error(i: int) -> float:
        p, g = flat[i], np.asarray(gflat[i], dtype=np.float64)
        if id(p) not in checked or p.size == 0:  # a setting, a running statistic
            return 0.0
        if mode == "coordinates":
            numeric = np.empty(p.size)  # (size,)
            for j in range(p.size):
                e = np.zeros(p.size)
                e[j] = eps
                e = e.reshape(p.shape)
                numeric[j] = (perturbed(i, e) - perturbed(i, -e)) / (2 * eps)
            largest = max(float(np.abs(numeric).max()), float(np.abs(g).max()), floor)
            return float(np.abs(numeric - g.ravel()).max()) / largest
        worst = 0.0
        for _ in range(directions):
            v = rng.standard_normal(p.shape)
            v /= np.linalg.norm(v)
            slope = (perturbed(i, eps * v) - perturbed(i, -eps * v)) / (2 * eps)  # numeric <g, v>
            analytic = float(np.vdot(g, v))
            scale = max(float(np.linalg.norm(g)), abs(slope), floor)  # |<g, v>| <= |g| for unit v
            worst = max(worst, abs(analytic - slope) / scale)
        return worst

    return ft.unflatten(treedef, [leaf_error(i) for i in range(len(flat))])
