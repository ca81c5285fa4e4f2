"""Metrics of a classifier, in memory: accuracy, class probabilities, a confusion matrix, per-class accuracy.

Each takes the network and the data as :func:`fnn.accuracy` does and runs the
network once, in evaluation mode, a slice of examples at a time; :func:`correct`
counts from outputs already computed (a training step's), by the same rule. Labels
are integer classes ``(n,)`` or one-hot rows ``(n, k)`` (their argmax); a sequence
network's ``(n, time)`` labels are counted per position.

>>> import fnn, numpy as np
>>> params = (fnn.Dense(np.eye(2), np.zeros(2)),)
>>> data = (np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]]), np.array([0, 0, 1]))
>>> confusion_matrix(params, data)
array([[1, 1],
       [1, 0]])
>>> per_class_accuracy(params, data)
array([0.5, 0. ])
"""

from __future__ import annotations

import numpy as np

from fnn import validate
from fnn.costs import Cost
from fnn.network import Batch, Params, eval_forward, label_classes, predicted_classes

__all__ = ["accuracy", "correct", "probabilities", "confusion_matrix", "per_class_accuracy"]


def accuracy(params: Params, batch: Batch) -> float:
    """The fraction of examples whose predicted class equals the label (labels or one-hot rows).

    Classes are :func:`fnn.network.predicted_classes` and :func:`fnn.network.label_classes`: a
    one-output network's output is thresholded (0.5 after a sigmoid, 0 for logits) against 0/1 targets.

    >>> import fnn, numpy as np
    >>> params = (fnn.Dense(np.eye(2), np.zeros(2)),)
    >>> fnn.accuracy(params, (np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 0])))
    0.5
    """
    validate.network(params)
    x, y = validate.batch(params, batch)
    return correct(params, eval_forward(params, x), y) / label_classes(y).size


def correct(params: Params, outputs: np.ndarray, y: np.ndarray) -> int:
    """How many predictions in ``outputs`` equal the labels ``y``: the one rule of :func:`accuracy`.

    Classes are :func:`fnn.network.predicted_classes` and :func:`fnn.network.label_classes`
    (argmax; a one-output network thresholded), per position for sequences.

    >>> import fnn
    >>> correct((fnn.Identity(),), np.array([[0.2, 0.8], [0.9, 0.1], [0.3, 0.7]]), np.array([1, 1, 1]))
    2
    """
    return int(np.count_nonzero(predicted_classes(params, outputs) == label_classes(y)))


def probabilities(params: Params, x: np.ndarray, cost: Cost) -> np.ndarray:
    """Class probabilities: the network's logits through the link of ``cost``.

    ``softmax(forward(params, x))`` for :data:`fnn.cross_entropy` (rows sum to 1),
    ``sigmoid(forward(params, x))`` for :data:`fnn.binary_cross_entropy` (each output
    a probability of its own): the probabilities the cost was computed on in training.

    Args:
      params: a network whose last layer gives logits (see the logits rule in :mod:`fnn.costs`).
      x: inputs ``(batch, n_in)``.
      cost: the cost the network was trained with; it must take logits.

    Returns:
      ``(batch, k)`` probabilities in the params' dtype.

    Raises:
      ValueError: a cost that does not take logits (:data:`fnn.mse`: the outputs are the
        predictions themselves, :func:`fnn.forward` gives them), or a last layer that squashes.

    >>> import fnn, numpy as np
    >>> params = (fnn.Dense(np.eye(2), np.zeros(2)),)
    >>> probabilities(params, np.array([[0.0, 0.0], [0.0, np.log(3.0)]]), fnn.cross_entropy)
    array([[0.5 , 0.5 ],
           [0.25, 0.75]])
    """
    cost = validate.network_and_cost(params, cost)
    if cost.probabilities is None:
        raise ValueError(
            f"probabilities needs a cost on logits (fnn.cross_entropy: softmax; fnn.binary_cross_entropy: "
            f"sigmoid), got {cost.name}, which compares the outputs themselves: fnn.forward(params, x) gives them."
        )
    out = eval_forward(params, validate.inputs(params, x))  # (batch, k)
    validate.softmax_outputs(cost, out.shape[-1])
    return cost.probabilities(out)


def _labels_and_predictions(params: Params, data: Batch) -> tuple[np.ndarray, np.ndarray, int]:
    """``(labels, predicted, k)`` for validated ``data``, one entry per position (example, or example and
    step for sequences); ``k`` classes (2 for a one-output network)."""
    validate.network(params)
    x, y = validate.batch(params, data, name="data")
    out = eval_forward(params, x)  # (n, outputs) or (n, time, outputs)
    return label_classes(y).reshape(-1), predicted_classes(params, out).reshape(-1), max(out.shape[-1], 2)


def confusion_matrix(params: Params, data: Batch) -> np.ndarray:
    """Counts of (true class, predicted class) pairs: ``(k, k)`` int64, rows true, columns predicted.

    ``k`` is the number of the network's outputs; the diagonal holds the correct
    predictions, so ``trace / sum`` is :func:`fnn.accuracy`. A sequence network's
    predictions are counted per position, as :func:`fnn.accuracy` counts them.

    Args:
      params: the network.
      data: ``(x, y)``, ``y`` integer labels ``(n,)`` or one-hot rows ``(n, k)``;
        ``(n, time)`` labels or ``(n, time, k)`` rows for a sequence network.

    >>> import fnn, numpy as np
    >>> params = (fnn.Dense(np.eye(3), np.zeros(3)),)
    >>> confusion_matrix(params, (np.eye(3), np.array([0, 2, 2])))
    array([[1, 0, 0],
           [0, 0, 0],
           [0, 1, 1]])
    """
    labels, predicted, k = _labels_and_predictions(params, data)
    counts = np.bincount(labels * k + predicted, minlength=k * k)  # (k * k,): one pass, no Python loop
    return counts.reshape(k, k).astype(np.int64, copy=False)  # (true, predicted)


def per_class_accuracy(params: Params, data: Batch) -> np.ndarray:
    """The fraction of each class's examples predicted as that class (its recall): ``(k,)`` float64.

    Row ``i`` of :func:`confusion_matrix`: ``diag / row sums``; ``nan`` for a class with
    no examples in ``data``. Sequences count per position.

    >>> import fnn, numpy as np
    >>> params = (fnn.Dense(np.eye(3), np.zeros(3)),)
    >>> per_class_accuracy(params, (np.eye(3)[[0, 1, 1, 0]], np.array([0, 1, 0, 0])))
    array([0.66666667, 1.        ,        nan])
    """
    confusion = confusion_matrix(params, data)
    totals = confusion.sum(axis=1)  # (k,) examples of each class
    return np.divide(np.diag(confusion), totals, out=np.full(len(totals), np.nan), where=totals > 0)
