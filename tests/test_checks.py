"""fnn.check_grad: it checks every trainable leaf and reports 0.0 for settings and running statistics."""

import numpy as np
import pytest

import fnn
from fnn import tree as ft


def _batch_norm_net():
    d1, act, d2, out = fnn.mlp([6, 8, 3], "tanh", "identity", seed=0, dtype=np.float64)
    bn = fnn.batch_norm(8, dtype=np.float64)
    g = np.random.default_rng(1)
    bn = bn._replace(gamma=1 + 0.1 * g.standard_normal(8), beta=0.1 * g.standard_normal(8),
                     mean=0.1 * g.standard_normal(8), var=1 + 0.1 * g.random(8))  # running statistics away from 0, 1
    return (d1, bn, act, d2, out), (g.standard_normal((9, 6)), g.integers(0, 3, 9))


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("mode", ["directions", "coordinates"])
def test_running_statistics_are_not_checked(train, mode):
    # in evaluation mode the loss depends on mean and var, whose gradient is zero by design:
    # they were reported with relative errors of 1.0 for a correct network
    params, batch = _batch_norm_net()
    errors = fnn.check_grad(params, batch, fnn.cross_entropy, mode=mode, train=train, key=0)
    assert ft.structure(errors) == ft.structure(params)
    assert errors[1].mean == 0.0 and errors[1].var == 0.0
    assert errors[1].momentum == 0.0 and errors[1].eps == 0.0  # settings, as before
    assert max(ft.leaves(errors)) < 1e-4, errors


def test_every_trainable_leaf_is_still_checked():
    params, batch = _batch_norm_net()
    errors = fnn.check_grad(params, batch, fnn.cross_entropy)
    checked = [e for e in ft.leaves(errors) if e > 0]
    assert len(checked) == sum(len(fnn.layers.trainable(layer)) for layer in params)  # all 6: w, b, gamma, beta, w, b


def test_a_wrong_gradient_of_a_normalisation_parameter_is_caught(monkeypatch):
    params, batch = _batch_norm_net()
    rule = fnn.layers.rule(params[1])
    def wrong_vjp(layer, *args):  # noqa: ANN001, ANN202
        dlayer, dx = rule.vjp(layer, *args)
        return dlayer._replace(gamma=2 * dlayer.gamma), dx
    monkeypatch.setitem(fnn.layers.core._RULES, type(params[1]), rule._replace(vjp=wrong_vjp, param_vjp=None))
    errors = fnn.check_grad(params, batch, fnn.cross_entropy)
    assert errors[1].gamma > 1e-2 and errors[1].beta < 1e-4
