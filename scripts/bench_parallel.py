"""Benchmark fnn.parallel on a local Dask cluster: sweep throughput and data-parallel step time.

    python scripts/bench_parallel.py [--workers 2] [--quick]

Two measurements, both printed as ratios against one process:

- sweep: ``runs`` independent ``fnn.runs.run`` configs (seeds) done one by one in this
  process, against ``fnn.parallel.sweep`` on ``workers`` Dask worker processes (one thread
  each); ratio = throughput (runs per second) on the cluster / in one process.
- step: one training step's ``value_and_grad`` of a 784-256-256-10 float32 MLP at batch
  sizes 128, 1024 and 8192, single-process (``fnn.value_and_grad``) against data-parallel
  (the hook ``fnn.train(executor=, shards=workers)`` uses: params scattered once, shards
  sent as row indices into data already on the workers); ratio = parallel / single time
  (below 1 is a speed-up).

Needs ``pip install fnn[dask]``. Used by ``scripts/benchmark.py`` through :func:`run`.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from typing import Any

import numpy as np

import fnn
from fnn import parallel

BATCH_SIZES = (128, 1024, 8192)


def _median_ms(f: Any, repeat: int) -> float:
    f()  # warm up (first scatter, caches)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def _configs(runs: int, epochs: int) -> list[dict[str, Any]]:
    return [{"seed": s, "epochs": epochs} for s in range(runs)]


def serial_runs(runs: int, epochs: int) -> float:
    """Seconds for ``runs`` seed runs of ``fnn.runs.run`` one by one in this process."""
    from fnn import runs as fruns

    t = time.perf_counter()
    for c in _configs(runs, epochs):
        fruns.run(c)
    return time.perf_counter() - t


def swept_runs(executor: Any, runs: int, epochs: int) -> float:
    """Seconds for the same runs as one ``fnn.parallel.sweep`` on ``executor``."""
    parallel.sweep(_configs(1, 1), executor)  # warm up the workers (imports, digits data)
    t = time.perf_counter()
    records = parallel.sweep(_configs(runs, epochs), executor)
    seconds = time.perf_counter() - t
    failed = [r for r in records if r["status"] == "failed"]
    if failed:
        raise RuntimeError(f"sweep runs failed: {failed}")
    return seconds


def _problem(n: int) -> tuple[Any, np.ndarray, np.ndarray]:
    g = fnn.random.generator(0)
    x = g.random((n, 784), dtype=np.float32)  # (n, 784)
    y = g.integers(0, 10, n)  # (n,)
    return fnn.mlp([784, 256, 256, 10], "relu", "identity", seed=0), x, y


def single_steps(batch_sizes: tuple[int, ...], repeat: int) -> list[float]:
    """Median ms of one step's ``fnn.value_and_grad`` in this process, per batch size."""
    params, x, y = _problem(max(batch_sizes))
    return [_median_ms(lambda b=b: fnn.value_and_grad(params, (x[:b], y[:b]), fnn.cross_entropy), repeat)
            for b in batch_sizes]


def parallel_steps(executor: Any, shards: int, batch_sizes: tuple[int, ...], repeat: int) -> list[float]:
    """Median ms of one data-parallel step (the hook ``fnn.train(executor=, shards=)`` uses)."""
    params, x, y = _problem(max(batch_sizes))
    (rows, _), hook = parallel.data_parallel(params, (x, y), executor, shards)
    ctxs = fnn.network.contexts(params, True, None)
    return [_median_ms(lambda b=b: hook(params, (rows[:b], rows[:b]), fnn.cross_entropy, ctxs), repeat)
            for b in batch_sizes]


def _one_blas_thread(f: Any, *args: Any) -> list[Any]:
    """``f(*args)`` with BLAS limited to one thread, as in each worker; Nones without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return [None] * len(args[0])
    with threadpool_limits(1):
        return f(*args)


def run(workers: int = 2, quick: bool = False, batch_sizes: tuple[int, ...] = BATCH_SIZES) -> dict[str, Any]:
    """Single-process baselines first (no Dask threads running), then a LocalCluster of ``workers``."""
    from dask.distributed import Client, LocalCluster

    runs, epochs, repeat = (2 * workers, 1, 3) if quick else (4 * workers, 5, 15)
    serial = serial_runs(runs, epochs)
    single = single_steps(batch_sizes, repeat)
    single_1 = _one_blas_thread(single_steps, batch_sizes, repeat)
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                     silence_logs=logging.ERROR) as cluster,
        Client(cluster) as client,
    ):
        ex = client.get_executor()
        swept = swept_runs(ex, runs, epochs)
        dp = parallel_steps(ex, workers, batch_sizes, repeat)
    return {
        "workers": workers,
        "sweep": {"runs": runs, "epochs": epochs, "serial_s": serial, "sweep_s": swept,
                  "throughput_ratio": serial / swept},
        "steps": [{"batch_size": b, "single_ms": s, "single_1_ms": s1, "parallel_ms": p, "ratio": p / s,
                   "ratio_1": None if s1 is None else p / s1}
                  for b, s, s1, p in zip(batch_sizes, single, single_1, dp)],
    }


def report(result: dict[str, Any]) -> str:
    s = result["sweep"]
    lines = [
        f"## fnn.parallel on a local Dask cluster ({result['workers']} worker processes, 1 thread each)",
        "",
        f"sweep of {s['runs']} seed runs ({s['epochs']} epochs of digits each): "
        f"one process {s['serial_s']:.2f} s, sweep {s['sweep_s']:.2f} s, "
        f"throughput x{s['throughput_ratio']:.2f}",
        "",
        "| batch | one process (ms) | one process, 1 BLAS thread (ms) | data-parallel (ms) "
        "| parallel / one process | parallel / 1 BLAS thread |",
        "|---:|---:|---:|---:|---:|---:|",
    ]

    def num(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    lines += [f"| {r['batch_size']} | {num(r['single_ms'])} | {num(r['single_1_ms'])} | {num(r['parallel_ms'])} "
              f"| {num(r['ratio'])} | {num(r['ratio_1'])} |" for r in result["steps"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="fewer repeats and shorter runs")
    args = p.parse_args(argv)
    print(report(run(args.workers, args.quick)))


if __name__ == "__main__":
    main()
