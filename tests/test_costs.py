"""One contract over every cost: the derivative matches finite differences; labels equal one-hot targets."""

import numpy as np
import pytest

import fnn
from fnn.costs import COSTS

COST_LIST = [fnn.mse, fnn.cross_entropy, fnn.binary_cross_entropy]


def _user_cost():
    """A user-defined cost: mean absolute-ish (smooth L1 with beta 1)."""

    def value(pred, y):
        d = np.abs(pred - fnn.costs.targets_like(pred, y))
        return float(np.where(d < 1, 0.5 * d * d, d - 0.5).mean())

    def grad(pred, y):
        d = pred - fnn.costs.targets_like(pred, y)
        return np.clip(d, -1, 1) / d.size

    return fnn.Cost(value, grad, "smooth_l1")


ALL = COST_LIST + [_user_cost()]


@pytest.mark.parametrize("cost", ALL, ids=lambda c: c.name)
@pytest.mark.parametrize("targets", ["labels", "one_hot", "real"])
def test_cost_derivative_matches_finite_differences(cost, targets):
    g = np.random.default_rng(0)
    pred = g.standard_normal((6, 4))
    y = g.integers(0, 4, 6)
    if targets == "one_hot":
        y = np.eye(4)[y]
    if targets == "real":  # rows that do not sum to 1: multi-hot, soft, all zero
        y = g.random((6, 4)) * 2
        y[0], y[1] = [1.0, 1.0, 0.0, 0.0], 0.0
    d = cost.grad(pred, y)
    assert d.shape == pred.shape
    eps = 1e-6
    for _ in range(5):
        v = g.standard_normal(pred.shape)
        numeric = (cost.value(pred + eps * v, y) - cost.value(pred - eps * v, y)) / (2 * eps)
        assert abs(np.vdot(d, v) - numeric) <= 1e-7 * max(1.0, abs(numeric))


@pytest.mark.parametrize("cost", COST_LIST, ids=lambda c: c.name)
def test_labels_equal_one_hot(cost):
    g = np.random.default_rng(1)
    pred, labels = g.standard_normal((5, 3)), g.integers(0, 3, 5)
    assert cost.value(pred, labels) == pytest.approx(cost.value(pred, np.eye(3)[labels]), rel=1e-12)
    np.testing.assert_allclose(cost.grad(pred, labels), cost.grad(pred, np.eye(3)[labels]), rtol=1e-12)


def test_worked_values():
    pred = np.array([[0.5, 0.0], [0.0, 1.0]])
    # mse: mean over all 4 elements of ((0.5-1)^2, 0, 0, 0) with labels [0, 1]
    assert fnn.mse.value(pred, np.array([0, 1])) == pytest.approx(0.0625)
    # cross-entropy of logits [0, 0] with label 1 is log 2
    assert fnn.cross_entropy.value(np.zeros((1, 2)), np.array([1])) == pytest.approx(np.log(2))
    # binary cross-entropy of logit 0 is log 2 whatever the target
    assert fnn.binary_cross_entropy.value(np.zeros((1, 1)), np.array([[1.0]])) == pytest.approx(np.log(2))


@pytest.mark.parametrize("cost", COST_LIST, ids=lambda c: c.name)
def test_cost_keeps_float32(cost):
    pred = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    assert cost.grad(pred, np.array([0, 1, 2, 0])).dtype == np.float32


def test_cost_names():
    assert set(COSTS) == {"mse", "cross_entropy", "binary_cross_entropy"}


@pytest.mark.parametrize("cost", COST_LIST, ids=lambda c: c.name)
def test_costs_equal_pytorch(cost):
    torch = pytest.importorskip("torch")
    g = np.random.default_rng(3)
    pred = g.standard_normal((7, 5))
    labels = g.integers(0, 5, 7)
    p = torch.tensor(pred, requires_grad=True)
    if cost is fnn.mse:
        t = torch.nn.functional.mse_loss(p, torch.tensor(np.eye(5)[labels]))
    elif cost is fnn.cross_entropy:
        t = torch.nn.functional.cross_entropy(p, torch.tensor(labels))
    else:
        t = torch.nn.functional.binary_cross_entropy_with_logits(p, torch.tensor(np.eye(5)[labels]))
    t.backward()
    assert cost.value(pred, labels) == pytest.approx(t.item(), rel=1e-12)
    np.testing.assert_allclose(cost.grad(pred, labels), p.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_cross_entropy_on_rows_that_do_not_sum_to_one_equals_pytorch():
    torch = pytest.importorskip("torch")
    z = np.array([[0.3, -1.2, 2.0], [1.0, 0.5, -0.5], [0.0, 2.0, 1.0]])
    t = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.2, 0.3, 0.1]])  # multi-hot, all zero, soft
    zt = torch.tensor(z, requires_grad=True)
    value = torch.nn.functional.cross_entropy(zt, torch.tensor(t))
    value.backward()
    assert fnn.cross_entropy.value(z, t) == pytest.approx(value.item(), rel=1e-12)
    np.testing.assert_allclose(fnn.cross_entropy.grad(z, t), zt.grad.numpy(), rtol=1e-12, atol=1e-15)
    v, d = fnn.costs.value_and_grad(fnn.cross_entropy, z, t)
    assert v == fnn.cross_entropy.value(z, t) and np.array_equal(d, fnn.cross_entropy.grad(z, t))
    np.testing.assert_array_equal(fnn.cross_entropy.grad(z, t)[1], 0.0)  # no target mass, no gradient


# ---------------------------------------------------------------------------
# The logits rule: a cost on logits refuses a last layer that squashes
# ---------------------------------------------------------------------------

SQUASHING = [fnn.ReLU(), fnn.Sigmoid(), fnn.Tanh(), fnn.Softmax(), fnn.LeakyReLU(0.1)]


def _logit_net(last):
    return (fnn.Dense(np.ones((3, 2), np.float32), np.zeros(2, np.float32)),) + ((last,) if last is not None else ())


@pytest.mark.parametrize("cost", [fnn.cross_entropy, fnn.binary_cross_entropy], ids=lambda c: c.name)
@pytest.mark.parametrize("last", SQUASHING, ids=lambda layer: type(layer).__name__)
def test_costs_on_logits_refuse_a_squashing_last_layer_everywhere(cost, last):
    params = _logit_net(last)
    batch = (np.ones((4, 3), np.float32), np.array([0, 1, 1, 0]) if cost is fnn.cross_entropy
             else np.ones((4, 2), np.float32))
    calls = {
        "loss": lambda: fnn.loss(params, batch, cost),
        "grad": lambda: fnn.grad(params, batch, cost),
        "value_and_grad": lambda: fnn.value_and_grad(params, batch, cost),
        "check_grad": lambda: fnn.check_grad(params, batch, cost),
        "train": lambda: fnn.train(params, batch, epochs=1, batch_size=2, lr=0.1, cost=cost),
        "training": lambda: fnn.training(params, batch, batch_size=2, lr=0.1, cost=cost),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError) as info:
            call()
        message = str(info.value)
        assert f"{cost.name} takes logits" in message, name
        assert f"ends in {type(last).__name__} (layer 1)" in message and 'output_activation="identity"' in message


@pytest.mark.parametrize("last", [None, fnn.Identity(), fnn.Flatten(), fnn.Dropout(0.5)],
                         ids=["Dense", "Identity", "Flatten", "Dropout"])
def test_costs_on_logits_take_linear_and_other_last_layers(last):
    params = _logit_net(last)
    assert np.isfinite(fnn.loss(params, (np.ones((4, 3), np.float32), np.array([0, 1, 1, 0])), fnn.cross_entropy))


def test_mse_takes_any_network_and_declarations_are_visible():
    params = _logit_net(fnn.Sigmoid())
    assert np.isfinite(fnn.loss(params, (np.ones((4, 3), np.float32), np.array([0, 1, 1, 0])), fnn.mse))
    assert fnn.cross_entropy.takes_logits and fnn.binary_cross_entropy.takes_logits
    assert not fnn.mse.takes_logits and not _user_cost().takes_logits
    squash = {t.__name__ for t in fnn.layers.registered() if fnn.layers.rule(t.__new__(t, *[None] * len(t._fields)))
              .squashes}
    assert {"Sigmoid", "Tanh", "ReLU", "LeakyReLU", "Softmax"} <= squash
    assert not squash & {"Dense", "Conv2D", "Identity", "Flatten", "Dropout", "BatchNorm", "MaxPool2D"}


def test_a_conv_net_ending_in_conv_is_fine_and_cli_refuses(tmp_path):
    conv = (fnn.conv2d(0, 1, 2, 3), fnn.Flatten())
    x = np.zeros((2, 4, 4, 1), np.float32)
    y = np.zeros((2, 32), np.float32)
    assert np.isfinite(fnn.loss(conv, (x, y), fnn.binary_cross_entropy))
    from fnn import cli

    code = cli.main(["train", "--cost", "cross_entropy", "--output-activation", "relu", "--epochs", "1",
                     "--out", str(tmp_path / "r"), "--quiet"])
    assert code == 2
