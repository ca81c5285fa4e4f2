r"""Scale out: data-parallel gradients on any ``concurrent.futures`` executor.

The gradient of a shard of a batch depends on nothing but its arguments, so
shards can be computed anywhere and combined afterwards. Everything here takes
an *executor*: any object with ``submit(fn, *args) -> Future`` (a
``concurrent.futures.ThreadPoolExecutor`` or ``ProcessPoolExecutor``,
``mpi4py.futures.MPIPoolExecutor``, or Dask's ``client.get_executor()``).

- :func:`value_and_grad` / :func:`grad` split a batch into ``shards`` slices of
  ``n_i`` rows (sizes differ by at most one, at most one shard per row), compute
  each slice's mean loss and mean gradient on the executor and combine them
  weighted by ``n_i / n``:

      loss = sum_i (n_i / n) * loss_i,    grads = sum_i (n_i / n) * grads_i

  which is the single-process result up to float rounding: within
  ``rtol=1e-5, atol=1e-6`` in float32 and ``rtol=1e-10, atol=1e-12`` in float64
  (:data:`TOLERANCE`; the summation order inside each matrix product differs).
- ``fnn.train(..., executor=ex, shards=k)`` takes every step this way.

Sweeps of independent runs (a grid of configs on a process pool or Dask) are
:func:`fnn.runs.sweep` (``fnn sweep``).

With Dask (``client.get_executor()``) the engine is used directly: training
data is scattered to every worker once (each worker holds a copy, since
shuffled minibatches need any row), each step scatters the params once and
sends each shard only its row indices. Other executors get the shard
arrays with each task. fnn imports nothing from Dask: install it with
``pip install fnn[dask]`` and hand over its executor.

Random and stateful layers: with more than one shard, shard ``i`` gives each
context layer the key ``fold_in(layer_key, i)`` (dropout masks differ from the
single-process run, but are as reproducible); with one shard the keys are
unchanged. Layers with running statistics (batch normalisation) would see
per-shard batch statistics in training mode and cannot update their state from
one step's shards, so training with them is refused; use one process for those.

>>> import fnn, numpy as np
>>> from concurrent.futures import ThreadPoolExecutor
>>> params = fnn.mlp([3, 4, 2], output_activation="identity", seed=0)
>>> x, y = np.ones((10, 3), np.float32), np.arange(10) % 2
>>> with ThreadPoolExecutor(2) as ex:
...     g = fnn.parallel.grad(params, (x, y), fnn.cross_entropy, ex, shards=3)
>>> fnn.tree.structure(g) == fnn.tree.structure(params)
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from fnn import costs, heap, layers, validate
from fnn import random as fr
from fnn import tree as ft
from fnn.costs import Cost, mse
from fnn.layers import Context
from fnn.network import Batch, Params, backprop, contexts, trace
from fnn.tree import freeze

__all__ = ["TOLERANCE", "value_and_grad", "grad", "shard_bounds", "data_parallel"]

TOLERANCE = {np.dtype(np.float32): (1e-5, 1e-6), np.dtype(np.float64): (1e-10, 1e-12)}
"""``(rtol, atol)`` by which a data-parallel gradient may differ from the single-process one."""


# ---------------------------------------------------------------------------
# Validation and engine detection
# ---------------------------------------------------------------------------


def _check_executor(executor: Any) -> Any:
    if not callable(getattr(executor, "submit", None)):
        raise TypeError(
            "executor must have a submit(fn, *args) method, like a concurrent.futures executor; "
            f"got {type(executor).__name__} {executor!r}. Pass e.g. client.get_executor() (Dask), "
            "ProcessPoolExecutor() or ThreadPoolExecutor()."
        )
    return executor


def _dask_client(executor: Any) -> Any:
    """The Dask client behind ``client.get_executor()``, or None for any other executor."""
    if type(executor).__module__.startswith("distributed") and hasattr(executor, "_client"):
        return executor._client
    return None


def _default_shards(executor: Any) -> int:
    client = _dask_client(executor)
    if client is not None:
        return max(len(client.nthreads()), 1)
    workers = getattr(executor, "_max_workers", None)
    if isinstance(workers, int) and workers > 0:
        return workers
    raise ValueError(
        f"cannot tell how many workers {type(executor).__name__} has; pass shards=, e.g. shards=2."
    )


def _check_shards(shards: Any, executor: Any) -> int:
    return _default_shards(executor) if shards is None else validate.positive_int(shards, "shards")


def _check_stateless(params: Params) -> None:
    stateful = [f"{i}: {type(layer).__name__}" for i, layer in enumerate(params) if layers.rule(layer).update]
    if stateful:
        raise ValueError(
            f"data-parallel training does not support layers with running statistics, got {stateful}; "
            "each shard would normalise with its own batch statistics. Train this network in one process "
            "(no executor=), or replace those layers."
        )


# ---------------------------------------------------------------------------
# Shards: where they are cut, what each computes, how they combine
# ---------------------------------------------------------------------------


def shard_bounds(n: int, shards: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each shard of ``n`` rows: ``min(shards, n)`` slices.

    Their sizes differ by at most one, the larger first: the same cut as ``np.array_split``.

    >>> shard_bounds(10, 3)
    [(0, 4), (4, 7), (7, 10)]
    >>> shard_bounds(2, 4)
    [(0, 1), (1, 2)]
    """
    k = max(min(shards, n), 1)
    edges = [i * (n // k) + min(i, n % k) for i in range(k + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _shard_contexts(ctxs: tuple[Context, ...], i: int, k: int) -> tuple[Context, ...]:
    if k == 1:
        return ctxs
    return tuple(c if c.key is None else Context(c.train, fr.fold_in(c.key, i)) for c in ctxs)


def _shard(params: Params, x: np.ndarray, y: np.ndarray, cost: Cost, ctxs: tuple[Context, ...]):
    """Runs on a worker: the mean loss and mean gradient over one shard's rows."""
    heap.keep_freed()  # the worker's steps reuse freed memory, as fnn.step's do
    xs = trace(params, x, ctxs)
    value, dy = costs.value_and_grad(cost, xs[-1], y)
    return value, backprop(params, xs, dy, ctxs)


def _train_shard(params: Params, x: np.ndarray, y: np.ndarray, cost: Cost, ctxs: Any):
    """A training step's shard; as in :func:`fnn.epoch`, overflow shows up as an inf loss, not a warning."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _shard(params, x, y, cost, ctxs)


def _shard_rows(params: Params, x: np.ndarray, y: np.ndarray, rows: np.ndarray, cost: Cost, ctxs: Any):
    """Runs on a worker that holds the whole data set: the shard is ``rows`` of it."""
    return _train_shard(params, x[rows], y[rows], cost, ctxs)  # (shard, features), (shard, ...)


def _combine(results: Sequence[tuple[float, Params]], sizes: Sequence[int]) -> tuple[float, Params]:
    """``sum_i (n_i / n) * r_i`` for the losses and, leaf by leaf, for the gradients."""
    n = sum(sizes)
    weights = [s / n for s in sizes]
    value = sum(w * float(v) for w, (v, _) in zip(weights, results))

    def mean(*leaves: Any) -> Any:
        total = leaves[0] * weights[0]
        for w, g in zip(weights[1:], leaves[1:]):
            total = total + g * w
        return total

    return value, freeze(ft.map(mean, *(g for _, g in results)))


def _gather(futures: Iterable[Any]) -> list[Any]:
    return [f.result() for f in futures]


def _scatter_one(client: Any, value: Any, broadcast: bool = True) -> Any:
    """One Dask future for the whole of ``value`` (scatter would split a list or tuple)."""
    return client.scatter([value], broadcast=broadcast, hash=False)[0]


# ---------------------------------------------------------------------------
# Public gradients
# ---------------------------------------------------------------------------


def value_and_grad(
    params: Params,
    batch: Batch,
    cost: Cost = mse,
    executor: Any = None,
    shards: int | None = None,
    *,
    train: bool = False,
    key: fr.KeyLike | None = None,
) -> tuple[float, Params]:
    """:func:`fnn.value_and_grad` computed in ``shards`` pieces on ``executor``.

    Equals ``fnn.value_and_grad(params, batch, cost, train=train, key=key)`` within
    :data:`TOLERANCE` (exactly, bar random layers, with one shard).

    Args:
      params: the network.
      batch: ``(x, y)``, ``x: (n, features)``.
      cost: e.g. :data:`fnn.cross_entropy`.
      executor: anything with ``submit``; Dask's ``client.get_executor()`` is used natively.
      shards: how many pieces (at most ``n``); default: the executor's number of workers.
      train, key: training mode and key for context layers, as in :func:`fnn.value_and_grad`.

    Returns:
      ``(loss, grads)``, the grads read-only and shaped like ``params``.

    >>> import fnn, numpy as np
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> params = fnn.mlp([3, 2], output_activation="identity", seed=0)
    >>> x, y = np.arange(12.0).reshape(4, 3), np.array([0, 1, 1, 0])
    >>> with ThreadPoolExecutor(2) as ex:
    ...     value, g = fnn.parallel.value_and_grad(params, (x, y), fnn.cross_entropy, ex, shards=2)
    >>> bool(abs(value - fnn.loss(params, (x, y), fnn.cross_entropy)) < 1e-6)
    True
    """
    cost = validate.network_and_cost(params, cost)
    x, y = validate.batch(params, batch, cost)
    executor = _check_executor(executor)
    shards = _check_shards(shards, executor)
    if train:
        _check_stateless(params)
    ctxs = contexts(params, train, key)
    bounds = shard_bounds(len(x), shards)
    args = [(x[a:b], y[a:b], cost, _shard_contexts(ctxs, i, len(bounds))) for i, (a, b) in enumerate(bounds)]
    client = _dask_client(executor)
    if client is None:
        futures = [executor.submit(_shard, params, *a) for a in args]
    else:
        p = _scatter_one(client, params)
        data = client.scatter([(xs, ys) for xs, ys, _, _ in args], hash=False)
        futures = [
            client.submit(_shard_pair, p, d, c, ctx, pure=False) for d, (_, _, c, ctx) in zip(data, args)
        ]
    return _combine(_gather(futures), [b - a for a, b in bounds])


def _shard_pair(params: Params, data: Batch, cost: Cost, ctxs: Any):
    return _shard(params, data[0], data[1], cost, ctxs)


def grad(
    params: Params,
    batch: Batch,
    cost: Cost = mse,
    executor: Any = None,
    shards: int | None = None,
    *,
    train: bool = False,
    key: fr.KeyLike | None = None,
) -> Params:
    """The gradient of the mean loss, computed in shards: ``value_and_grad(...)[1]``.

    >>> import fnn, numpy as np
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> params = fnn.mlp([3, 2], output_activation="identity", seed=0, dtype=np.float64)
    >>> x, y = np.arange(15.0).reshape(5, 3), np.array([0, 1, 1, 0, 1])
    >>> with ThreadPoolExecutor(2) as ex:
    ...     g = fnn.parallel.grad(params, (x, y), fnn.cross_entropy, ex, shards=2)
    >>> ref = fnn.grad(params, (x, y), fnn.cross_entropy)
    >>> bool(np.allclose(g[0].w, ref[0].w, rtol=1e-10, atol=1e-12))
    True
    """
    return value_and_grad(params, batch, cost, executor, shards, train=train, key=key)[1]


# ---------------------------------------------------------------------------
# The training hook
# ---------------------------------------------------------------------------


class _LocalStep:
    """The step hook for a generic executor: sends each shard's rows with its task."""

    def __init__(self, executor: Any, shards: int, data: Batch) -> None:
        self.executor, self.shards, (self.x, self.y) = executor, shards, data

    def __call__(self, params: Params, batch: Batch, cost: Cost, ctxs: Any) -> tuple[float, Params]:
        rows = batch[0]  # (batch,) row indices into the training data
        bounds = shard_bounds(len(rows), self.shards)
        futures = [
            self.executor.submit(
                _train_shard, params, self.x[rows[a:b]], self.y[rows[a:b]], cost,
                _shard_contexts(ctxs, i, len(bounds)),
            )
            for i, (a, b) in enumerate(bounds)
        ]
        return _combine(_gather(futures), [b - a for a, b in bounds])


class _DaskStep:
    """The step hook for Dask: data scattered to every worker once; per step, params once and row indices."""

    def __init__(self, client: Any, shards: int, data: Batch) -> None:
        self.client, self.shards = client, shards
        self.x, self.y = (_scatter_one(client, a) for a in data)
        self.workers = sorted(client.nthreads())  # every worker's address

    def __call__(self, params: Params, batch: Batch, cost: Cost, ctxs: Any) -> tuple[float, Params]:
        rows = batch[0]  # (batch,) row indices into the scattered training data
        bounds = shard_bounds(len(rows), self.shards)
        p = _scatter_one(self.client, params)
        futures = [
            self.client.submit(
                _shard_rows, p, self.x, self.y, rows[a:b], cost, _shard_contexts(ctxs, i, len(bounds)),
                pure=False,
                workers=[self.workers[i % len(self.workers)]] if self.workers else None,
                allow_other_workers=True,
            )
            for i, (a, b) in enumerate(bounds)
        ]
        return _combine(self.client.gather(futures), [b - a for a, b in bounds])


def data_parallel(
    params: Params, data: Batch, executor: Any, shards: int | None = None
) -> tuple[Batch, Callable[..., tuple[float, Params]]]:
    """What :func:`fnn.train` uses for ``executor=``: ``(rows, hook)``.

    ``rows`` is ``(arange(n), arange(n))``, a stand-in data set whose minibatches are
    the row indices of the real ones (same key, same order); ``hook(params, (idx, idx),
    cost, ctxs)`` is a :attr:`fnn.Settings.value_and_grad` that computes the step's
    gradient from those rows in shards on ``executor``. ``data`` must be validated.

    >>> import fnn, numpy as np
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> params = fnn.mlp([2, 2], seed=0)
    >>> with ThreadPoolExecutor(2) as ex:
    ...     rows, hook = data_parallel(params, (np.zeros((3, 2), np.float32), np.arange(3) % 2), ex, 2)
    >>> rows[0].tolist()
    [0, 1, 2]
    """
    executor = _check_executor(executor)
    shards = _check_shards(shards, executor)
    _check_stateless(params)
    index = np.arange(len(data[0]))  # (n,)
    index.flags.writeable = False
    client = _dask_client(executor)
    hook = _LocalStep(executor, shards, data) if client is None else _DaskStep(client, shards, data)
    return (index, index), hook
