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


def _median_times(fs: list[Any], repeat: int) -> list[float]:
    """Median wall time of each function, calls interleaved so a noisy machine slows them alike."""
    for f in fs:
        f()  # warm up (first scatter, caches)
    times: list[list[float]] = [[] for _ in fs]
    for _ in range(repeat):
        for f, ts in zip(fs, times):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
    return [statistics.median(ts) for ts in times]


def sweep_throughput(executor: Any, runs: int = 4, epochs: int = 2) -> dict[str, float]:
    """Seconds for ``runs`` seed runs one by one here and as a sweep on ``executor``; their ratio."""
    from fnn import runs as fruns

    configs = [{"seed": s, "epochs": epochs} for s in range(runs)]
    parallel.sweep(configs[:1], executor)  # warm up the workers (imports, digits data)
    t = time.perf_counter()
    for c in configs:
        fruns.run(c)
    serial = time.perf_counter() - t
    t = time.perf_counter()
    records = parallel.sweep(configs, executor)
    swept = time.perf_counter() - t
    failed = [r for r in records if r["status"] == "failed"]
    if failed:
        raise RuntimeError(f"sweep runs failed: {failed}")
    return {"runs": runs, "serial_s": serial, "sweep_s": swept, "throughput_ratio": serial / swept}


def step_ratios(executor: Any, shards: int, batch_sizes: tuple[int, ...] = BATCH_SIZES,
                repeat: int = 7) -> list[dict[str, float]]:
    """Median step times, single-process and data-parallel, at each batch size; their ratio."""
    g = fnn.random.generator(0)
    n = max(batch_sizes)
    x = g.random((n, 784), dtype=np.float32)  # (n, 784)
    y = g.integers(0, 10, n)  # (n,)
    params = fnn.mlp([784, 256, 256, 10], "relu", "identity", seed=0)
    (rows, _), hook = parallel.data_parallel(params, (x, y), executor, shards)
    ctxs = fnn.network.contexts(params, True, None)
    out = []
    for b in batch_sizes:
        idx = rows[:b]
        single, dp = _median_times([
            lambda b=b: fnn.value_and_grad(params, (x[:b], y[:b]), fnn.cross_entropy),
            lambda idx=idx: hook(params, (idx, idx), fnn.cross_entropy, ctxs),
        ], repeat)
        out.append({"batch_size": b, "single_ms": 1e3 * single, "parallel_ms": 1e3 * dp, "ratio": dp / single})
    return out


def run(workers: int = 2, quick: bool = False) -> dict[str, Any]:
    """Start a LocalCluster of ``workers`` processes and take both measurements."""
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                     silence_logs=logging.ERROR) as cluster,
        Client(cluster) as client,
    ):
        ex = client.get_executor()
        sweep = sweep_throughput(ex, runs=2 * workers, epochs=1 if quick else 2)
        steps = step_ratios(ex, workers, repeat=3 if quick else 15)
    return {"workers": workers, "sweep": sweep, "steps": steps}


def report(result: dict[str, Any]) -> str:
    s = result["sweep"]
    lines = [
        f"## fnn.parallel on a local Dask cluster ({result['workers']} worker processes, 1 thread each)",
        "",
        f"sweep of {s['runs']} seed runs: one process {s['serial_s']:.2f} s, sweep {s['sweep_s']:.2f} s, "
        f"throughput x{s['throughput_ratio']:.2f}",
        "",
        "| batch | single-process step (ms) | data-parallel step (ms) | parallel / single |",
        "|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['batch_size']} | {r['single_ms']:.2f} | {r['parallel_ms']:.2f} | {r['ratio']:.2f} |"
              for r in result["steps"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="fewer repeats and shorter runs")
    args = p.parse_args(argv)
    print(report(run(args.workers, args.quick)))


if __name__ == "__main__":
    main()
