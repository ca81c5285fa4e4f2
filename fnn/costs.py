r"""Costs: a value and its derivative with respect to the predictions.

A cost is a :class:`Cost` record of two pure functions of the network output
``pred: (batch, k)`` and the targets ``y``:

- ``value(pred, y) -> float``, the mean loss over the batch;
- ``grad(pred, y) -> dpred``, its derivative, of shape ``(batch, k)``;
- optionally ``value_and_grad(pred, y) -> (value, dpred)``, both from one pass, equal bit for
  bit to the two functions; a training step computes both, so it uses this when a cost has it.

Targets are either integer class labels ``(batch,)`` or arrays shaped like
``pred`` (one-hot rows or real values). For sequences, ``pred: (batch, time, k)``
takes labels ``(batch, time)``, one per position. Every cost here is a mean, as in
PyTorch: :func:`mse` over all elements (``MSELoss``), cross-entropy over the
positions (``CrossEntropyLoss`` on the flattened arrays), binary cross-entropy over
all elements (``BCEWithLogitsLoss``). A user-defined
cost is one more ``Cost(value, grad)``.

**The logits rule.** :data:`cross_entropy` and :data:`binary_cross_entropy` take *logits*,
the raw scores of a last ``Dense``, ``Conv2D`` or ``Identity`` layer, and apply the softmax
or sigmoid themselves (exactly, in log space). A cost declares this with its
``probabilities`` field, the function from logits to probabilities (``softmax``,
``sigmoid``); a layer type declares that its output is squashed or rectified with
``fnn.register(..., squashes=True)`` (``Sigmoid``, ``Tanh``, ``ReLU``, ``LeakyReLU``,
``Softmax``). Every public function that takes a cost (``loss``, ``grad``,
``value_and_grad``, ``train``, ``training``, ``check_grad``, ``probabilities``, the CLI)
refuses the two together with a ``ValueError`` before any work: a network ending in ReLU
trained on cross-entropy learns, silently and badly. The fix is a linear last layer,
``fnn.mlp(sizes, activation="relu", output_activation="identity")``. Any other last layer
(a layer of your own, ``Dropout``, ``Flatten``) is taken as it is. :data:`mse` compares the
outputs themselves and takes any network.

>>> import numpy as np
>>> pred = np.array([[0.0, 1.0]])
>>> float(mse.value(pred, np.array([1])))       # label 1 is one-hot [0, 1]
0.0
>>> float(cross_entropy.value(pred, np.array([1])))
0.31326168751822286
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from fnn.layers import sigmoid, softmax

__all__ = [
    "Cost",
    "value_and_grad",
    "mse",
    "cross_entropy",
    "binary_cross_entropy",
    "targets_like",
    "log_softmax",
    "softplus",
    "COSTS",
]


class Cost(NamedTuple):
    """A loss function of predictions and targets, and its gradient with respect to the predictions.

    ``probabilities``, for a cost on logits, maps the network's outputs ``(batch, k)`` to class
    probabilities (``softmax`` for :data:`cross_entropy`, ``sigmoid`` for
    :data:`binary_cross_entropy`); ``None`` for a cost on the outputs themselves (:data:`mse`).
    A cost with it refuses networks whose last layer squashes (see the module docstring).
    """

    value: Callable[[np.ndarray, np.ndarray], float]
    grad: Callable[[np.ndarray, np.ndarray], np.ndarray]
    name: str = "cost"
    value_and_grad: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]] | None = None
    probabilities: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def takes_logits(self) -> bool:
        """Whether the cost takes logits (it has a ``probabilities`` function).

        >>> cross_entropy.takes_logits, mse.takes_logits
        (True, False)
        """
        return self.probabilities is not None


def value_and_grad(cost: Cost, pred: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """``(cost.value(pred, y), cost.grad(pred, y))``, from the cost's fused function when it has one.

    >>> value_and_grad(mse, np.array([[0.0, 3.0]]), np.array([[0.0, 1.0]]))
    (2.0, array([[0., 2.]]))
    """
    if cost.value_and_grad is not None:
        return cost.value_and_grad(pred, y)
    return cost.value(pred, y), cost.grad(pred, y)


def targets_like(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``y`` as an array shaped like ``pred``: integer labels become one-hot rows.

    >>> targets_like(np.zeros((2, 3), np.float32), np.array([2, 0]))
    array([[0., 0., 1.],
           [1., 0., 0.]], dtype=float32)
    """
    if _are_labels(pred, y):
        out = np.zeros(pred.shape, dtype=pred.dtype)  # (..., k)
        out.reshape(-1)[np.arange(0, out.size, pred.shape[-1]) + y.reshape(-1)] = 1  # position i, column y[i]
        return out
    return y if y.dtype == pred.dtype else y.astype(pred.dtype)


def _are_labels(pred: np.ndarray, y: np.ndarray) -> bool:
    """Whether ``y`` holds integer class labels for ``pred``: ``(batch,)`` or ``(batch, time)`` for ``(..., k)``."""
    return y.dtype.kind in "iu" and y.ndim == pred.ndim - 1


def _residual(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``pred - targets_like(pred, y)`` as a new array; for labels, one subtraction per row."""
    if _are_labels(pred, y):
        diff = pred.copy()  # (..., k)
        diff.reshape(-1)[np.arange(0, diff.size, diff.shape[-1]) + y.reshape(-1)] -= 1  # position i, column y[i]
        return diff
    return pred - targets_like(pred, y)


def _mse_value(pred: np.ndarray, y: np.ndarray) -> float:
    diff = _residual(pred, y).astype(np.float64, copy=False)  # (batch, k), squared in float64
    return float(np.vdot(diff, diff)) / diff.size


def _mse_grad(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    diff = _residual(pred, y)
    diff *= np.asarray(2.0 / diff.size, dtype=pred.dtype)
    return diff


def _mse_value_and_grad(pred: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    diff = _residual(pred, y)  # (batch, k)
    d64 = diff.astype(np.float64, copy=False)
    value = float(np.vdot(d64, d64)) / diff.size
    diff *= np.asarray(2.0 / diff.size, dtype=pred.dtype)
    return value, diff


#: Mean squared error over all elements, ``mean((pred - y)**2)``; gradient ``2 (pred - y) / pred.size``.
#: The squares are summed in float64, so the value is finite for any finite float32 input
#: (float64 inputs overflow to inf only past ``|pred - y| > 1e154``, which ``train`` reports as divergence).
mse = Cost(_mse_value, _mse_grad, "mse", _mse_value_and_grad)

def log_softmax(z: np.ndarray) -> np.ndarray:
    """``z - logsumexp(z)`` over the last axis, shifted by the row maximum: finite for any finite ``z``.

    >>> log_softmax(np.array([[1e4, 0.0]]))
    array([[     0., -10000.]])
    """
    shifted = z - z.max(axis=-1, keepdims=True)  # (batch, k)
    with np.errstate(under="ignore"):  # exp of a very negative shift is exactly 0, as intended
        shifted -= np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return shifted


def _ce_value(logits: np.ndarray, y: np.ndarray) -> float:
    return _ce_value_logp(log_softmax(logits), y)


def _positions(logp: np.ndarray) -> int:
    """The number of predictions: examples, or examples times steps for ``(batch, time, k)``."""
    return logp.size // logp.shape[-1]


def _ce_value_logp(logp: np.ndarray, y: np.ndarray) -> float:
    if _are_labels(logp, y):
        picked = logp.reshape(-1)[np.arange(0, logp.size, logp.shape[-1]) + y.reshape(-1)]  # (positions,)
        return -float(picked.mean(dtype=np.float64))
    return -float(np.vdot(targets_like(logp, y), logp)) / _positions(logp)


def _ce_grad(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _ce_grad_logp(log_softmax(logits), y)


def _ce_grad_logp(logp: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(under="ignore"):
        p = np.exp(logp)  # (batch, k) softmax
    if _are_labels(logp, y):
        p.reshape(-1)[np.arange(0, p.size, p.shape[-1]) + y.reshape(-1)] -= 1  # position i, column y[i]
    else:
        t = targets_like(logp, y)  # (batch, k)
        p *= t.sum(axis=-1, keepdims=True)  # (batch, 1): a row's mass, 1 for one-hot or probability rows
        p -= t
    p *= np.asarray(1.0 / _positions(logp), dtype=logp.dtype)
    return p


def _ce_value_and_grad(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    logp = log_softmax(logits)  # (batch, k), shared by the value and the gradient
    return _ce_value_logp(logp, y), _ce_grad_logp(logp, y)


#: Softmax cross-entropy on logits, mean over the positions (examples, or examples times steps):
#: ``-mean(log_softmax(z)[label])``; gradient ``(softmax(z) - onehot(y)) / positions``. For real
#: targets ``t`` (rows of any sum, as PyTorch takes them) ``-sum(t * log_softmax(z)) / positions``,
#: gradient ``(softmax(z) * rowsum(t) - t) / positions``: the same when each row sums to 1.
cross_entropy = Cost(_ce_value, _ce_grad, "cross_entropy", _ce_value_and_grad, softmax)


def softplus(z: np.ndarray) -> np.ndarray:
    """``log(1 + exp(z))``, written as ``max(z, 0) + log1p(exp(-|z|))`` so it never overflows.

    >>> softplus(np.array([-1e4, 0.0, 1e4]))
    array([0.00000000e+00, 6.93147181e-01, 1.00000000e+04])
    """
    with np.errstate(under="ignore"):  # exp(-|z|) underflows to 0 for large |z|, as intended
        return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def _bce_value(logits: np.ndarray, y: np.ndarray) -> float:
    t = targets_like(logits, y)
    return float((softplus(logits) - t * logits).mean(dtype=np.float64))


def _bce_grad(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    g = sigmoid(logits) - targets_like(logits, y)
    g *= np.asarray(1.0 / g.size, dtype=logits.dtype)
    return g


#: Sigmoid cross-entropy on logits, mean over all elements: ``mean(softplus(z) - y z)``;
#: gradient ``(sigmoid(z) - y) / z.size``.
binary_cross_entropy = Cost(_bce_value, _bce_grad, "binary_cross_entropy", probabilities=sigmoid)

COSTS: dict[str, Cost] = {c.name: c for c in (mse, cross_entropy, binary_cross_entropy)}
