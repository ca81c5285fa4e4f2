"""fnn.parallel on a real Dask LocalCluster (2 worker processes) and on plain concurrent.futures executors.

Tolerances are fnn.parallel.TOLERANCE: a data-parallel gradient differs from the
single-process one only by float rounding (the summation order of each shard's
matrix products and of the weighted combination).
"""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fnn
from fnn import parallel

# Dask can leave sockets and comms to be closed by the garbage collector when a cluster
# shuts down or a worker is killed (ResourceWarning, surfacing as an unraisable-exception
# warning); that is the engine's housekeeping, not fnn's, so it is not an error here.
# Every other warning still is.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("distributed")  # optional (the dask extra): only the Dask tests skip without it
    from distributed import Client, LocalCluster

    # dashboard_address=":0": any free port, so a second cluster on this machine (another test
    # run) does not make Dask warn that port 8787 is taken.
    # Dask sets OMP/OPENBLAS/MKL_NUM_THREADS=1 in this process's environment when it starts worker
    # processes; put it back, or later tests' subprocesses would run BLAS on one thread.
    environ = dict(os.environ)
    try:
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                silence_logs=logging.CRITICAL,
            ) as cluster,
            Client(cluster) as c,
        ):
            yield c
    finally:
        os.environ.clear()
        os.environ.update(environ)
    gc.collect()  # close what Dask left to the garbage collector here, under this module's filters


@pytest.fixture(scope="module")
def executor(client):
    return client.get_executor()


def _data(n=96, features=5, classes=3, seed=0):
    g = fnn.random.generator(seed)
    return g.standard_normal((n, features)), np.arange(n) % classes


def _close(a, b, dtype):
    rtol, atol = parallel.TOLERANCE[np.dtype(dtype)]
    la, lb = fnn.tree.leaves(a), fnn.tree.leaves(b)
    assert len(la) == len(lb)
    for u, v in zip(la, lb):
        np.testing.assert_allclose(u, v, rtol=rtol, atol=atol)


def test_import_fnn_does_not_import_dask():
    code = "import sys, fnn, fnn.parallel; print('distributed' in sys.modules, 'dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shards", [1, 2, 3])
def test_dask_grad_equals_single_process(executor, dtype, shards):
    x, y = _data()
    params = fnn.mlp([5, 8, 3], output_activation="identity", seed=1, dtype=dtype)
    value, g = parallel.value_and_grad(params, (x, y), fnn.cross_entropy, executor, shards=shards)
    ref_value, ref = fnn.value_and_grad(params, (x, y), cost=fnn.cross_entropy)
    _close(g, ref, dtype)
    assert value == pytest.approx(ref_value, rel=parallel.TOLERANCE[np.dtype(dtype)][0])
    assert fnn.tree.structure(g) == fnn.tree.structure(params)
    assert all(not leaf.flags.writeable for leaf in fnn.tree.leaves(g) if isinstance(leaf, np.ndarray))


def test_issue_example_grad_and_train(executor):
    x, y = _data(n=300)
    x = x.astype(np.float32)
    params = fnn.mlp([5, 8, 3], output_activation="identity", seed=0)
    g = fnn.parallel.grad(params, (x, y), fnn.cross_entropy, executor, shards=2)
    _close(g, fnn.grad(params, (x, y), cost=fnn.cross_entropy), np.float32)
    kw = dict(epochs=2, batch_size=64, lr=0.1, cost=fnn.cross_entropy, seed=0)
    trained, history = fnn.train(params, (x, y), executor=executor, shards=2, **kw)
    ref, ref_history = fnn.train(params, (x, y), **kw)
    # 2 epochs of 5 steps each: rounding differences of ~1e-7 per step stay well inside 1e-5.
    _close(trained, ref, np.float32)
    assert [h.loss for h in history] == pytest.approx([h.loss for h in ref_history], rel=1e-5)
    assert [h.epoch for h in history] == [1, 2]


def test_dask_training_data_live_on_every_worker(client, executor):
    x, y = _data(n=50)
    params = fnn.mlp([5, 4, 3], output_activation="identity", seed=0, dtype=np.float64)
    (rows, _), hook = parallel.data_parallel(params, (x, y), executor, 2)
    assert rows.tolist() == list(range(50))
    # Scattered once to both workers; a step sends only params (one future) and row indices.
    held = client.who_has([hook.x, hook.y])
    assert all(len(workers) == 2 for workers in held.values()), held
    value, g = hook(params, (rows[:20], rows[:20]), fnn.cross_entropy, fnn.network.contexts(params, True, None))
    ref_value, ref = fnn.value_and_grad(params, (x[:20], y[:20]), fnn.cross_entropy, train=True)
    _close(g, ref, np.float64)
    assert value == pytest.approx(ref_value, rel=1e-10)


def test_dask_train_float64_matches_closely(executor):
    x, y = _data(n=200)
    params = fnn.mlp([5, 8, 3], output_activation="identity", seed=2, dtype=np.float64)
    kw = dict(epochs=2, batch_size=50, optimizer=fnn.adam(1e-2), cost=fnn.cross_entropy, seed=3)
    trained, _ = fnn.train(params, (x, y), executor=executor, shards=3, **kw)
    ref, _ = fnn.train(params, (x, y), **kw)
    _close(trained, ref, np.float64)


@pytest.mark.parametrize("shards", [2, 5])
def test_thread_executor_train_and_grad(shards):
    x, y = _data(n=103)
    params = fnn.mlp([5, 8, 3], output_activation="identity", seed=0, dtype=np.float64)
    with ThreadPoolExecutor(2) as ex:
        g = parallel.grad(params, (x, y), fnn.cross_entropy, ex, shards=shards)
        trained, history = fnn.train(params, (x, y), epochs=2, batch_size=16, lr=0.1, cost=fnn.cross_entropy,
                                     seed=0, executor=ex, shards=shards)
    _close(g, fnn.grad(params, (x, y), cost=fnn.cross_entropy), np.float64)
    ref, ref_history = fnn.train(params, (x, y), epochs=2, batch_size=16, lr=0.1, cost=fnn.cross_entropy, seed=0)
    _close(trained, ref, np.float64)
    assert len(history) == 2
    # an executor's epochs see row indices, not the data: no training accuracy; the rest is recorded
    assert [h.accuracy for h in history] == [None, None] and all(h.accuracy is not None for h in ref_history)
    assert [h.lr for h in history] == [0.1, 0.1] and all(h.seconds > 0 for h in history)


def test_more_shards_than_rows_and_default_shards():
    x, y = _data(n=3)
    params = fnn.mlp([5, 3], output_activation="identity", seed=0, dtype=np.float64)
    with ThreadPoolExecutor(2) as ex:
        g = parallel.grad(params, (x, y), fnn.cross_entropy, ex, shards=8)
        g_default = parallel.grad(params, (x, y), fnn.cross_entropy, ex)
    ref = fnn.grad(params, (x, y), cost=fnn.cross_entropy)
    _close(g, ref, np.float64)
    _close(g_default, ref, np.float64)
    assert parallel.shard_bounds(7, 3) == [(0, 3), (3, 5), (5, 7)]
    assert [len(s) for s in np.array_split(np.arange(7), 3)] == [b - a for a, b in parallel.shard_bounds(7, 3)]


def test_dropout_keys_per_shard():
    x, y = _data(n=40)
    params = fnn.mlp([5, 8, 3], output_activation="identity", seed=0, dtype=np.float64)
    params = (params[0], params[1], fnn.Dropout(0.5), *params[2:])
    with ThreadPoolExecutor(2) as ex:
        one = parallel.grad(params, (x, y), fnn.cross_entropy, ex, shards=1, train=True, key=7)
        two = parallel.grad(params, (x, y), fnn.cross_entropy, ex, shards=2, train=True, key=7)
        again = parallel.grad(params, (x, y), fnn.cross_entropy, ex, shards=2, train=True, key=7)
    # One shard: the single-process keys; two shards: other masks, drawn reproducibly.
    assert fnn.tree.all_equal(one, fnn.grad(params, (x, y), fnn.cross_entropy, train=True, key=7))
    assert fnn.tree.all_equal(two, again)
    assert not np.allclose(one[0].w, two[0].w)


def test_stateful_layers_are_refused():
    x, y = _data(n=20)
    params = fnn.mlp([5, 4, 3], output_activation="identity", seed=0)
    params = (params[0], fnn.batch_norm(4), *params[1:])
    with ThreadPoolExecutor(1) as ex, pytest.raises(ValueError, match="running statistics"):
        fnn.train(params, (x.astype(np.float32), y), epochs=1, batch_size=10, lr=0.1, executor=ex, shards=2)


def test_boundary_errors():
    x, y = _data(n=10)
    params = fnn.mlp([5, 3], output_activation="identity", seed=0)
    kw = dict(epochs=1, batch_size=5, lr=0.1)
    with pytest.raises(TypeError, match="submit"):
        fnn.train(params, (x, y), executor=object(), shards=2, **kw)
    with pytest.raises(ValueError, match="needs an executor"):
        fnn.train(params, (x, y), shards=2, **kw)
    with ThreadPoolExecutor(1) as ex:
        with pytest.raises(ValueError, match="shards"):
            fnn.train(params, (x, y), executor=ex, shards=0, **kw)
        with pytest.raises(TypeError, match="submit"):
            parallel.grad(params, (x, y), fnn.mse, None, shards=2)
