"""Benchmark fnn.parallel on a local Dask cluster: sweep throughput and data-parallel step time.

    python scripts/bench_parallel.py [--workers 2] [--quick]
    python scripts/bench_parallel.py --sweeps-only [--workers 2] [--rounds 3]   # the fnn sweep target only

Two measurements, both printed as ratios against one process:

- sweep: ``runs`` independent configs (seeds) as one ``fnn.runs.sweep`` (run directories
  and summary written, as ``fnn sweep`` does): one by one in this process, against
  ``workers`` local processes (``fnn sweep --workers N``, starting the processes included)
  and against ``workers`` Dask worker processes (warmed up; one thread each); ratio =
  throughput (runs per second) in parallel / one by one. Target: x1.8 for 8 runs of 5
  epochs on 2 workers.
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
import tempfile
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


def _timed_sweep(executor: Any, runs: int, epochs: int) -> float:
    """Seconds for one ``fnn.runs.sweep`` of ``runs`` seed runs into a fresh folder (run directories and all)."""
    from fnn import runs as fruns

    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        result = fruns.sweep(_configs(runs, epochs), executor, out=out)
        seconds = time.perf_counter() - t
    failed = [r for r in result.rows if r["status"] != "completed"]
    if failed:
        raise RuntimeError(f"sweep runs did not complete: {failed}")
    return seconds


def serial_runs(runs: int, epochs: int) -> float:
    """Seconds for ``runs`` seed runs one by one in this process: ``fnn sweep`` without ``--workers``."""
    return _timed_sweep(None, runs, epochs)


def pool_runs(workers: int, runs: int, epochs: int) -> float:
    """Seconds for the same runs on ``workers`` local processes: ``fnn sweep --workers N``, process start included."""
    return _timed_sweep(workers, runs, epochs)


def _children_cpu() -> float:
    """CPU seconds of this process's finished child processes (0 where the resource module is missing)."""
    try:
        import resource
    except ImportError:
        return 0.0
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def sweep_throughput(workers: int, runs: int, epochs: int, rounds: int = 3) -> dict[str, Any]:
    """One by one against ``workers`` local processes, interleaved ``rounds`` times; medians and their ratio.

    Also the CPU seconds each way (the pool's: this process plus its workers): equal CPU means the
    pool adds no work, so on an otherwise idle machine its wall time is that work over the workers.
    """
    serial, pool, serial_cpu, pool_cpu = [], [], [], []
    for _ in range(rounds):
        cpu = time.process_time()
        serial.append(serial_runs(runs, epochs))
        serial_cpu.append(time.process_time() - cpu)
        cpu, children = time.process_time(), _children_cpu()
        pool.append(pool_runs(workers, runs, epochs))
        pool_cpu.append(time.process_time() - cpu + _children_cpu() - children)
    s, p = statistics.median(serial), statistics.median(pool)
    return {"runs": runs, "epochs": epochs, "serial_s": s, "pool_s": p, "pool_ratio": s / p,
            "serial_cpu_s": statistics.median(serial_cpu), "pool_cpu_s": statistics.median(pool_cpu)}


def sweep_line(s: dict[str, Any], workers: int) -> str:
    return (f"fnn.runs.sweep of {s['runs']} seed runs ({s['epochs']} epochs of digits each, run directories "
            f"written): one by one {s['serial_s']:.2f} s; {workers} local processes (fnn sweep --workers "
            f"{workers}, process start included) {s['pool_s']:.2f} s, throughput x{s['pool_ratio']:.2f} "
            f"(target x1.8 for 8 runs of 5 epochs on 2 workers); CPU seconds {s['serial_cpu_s']:.2f} one by one, "
            f"{s['pool_cpu_s']:.2f} on the processes")


def swept_runs(executor: Any, runs: int, epochs: int) -> float:
    """Seconds for the same runs as one ``fnn.runs.sweep`` on a Dask ``executor`` (workers warmed up first)."""
    _timed_sweep(executor, 1, 1)  # warm up the workers (imports, digits data)
    return _timed_sweep(executor, runs, epochs)


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
    local = sweep_throughput(workers, runs, epochs, 1 if quick else 3)
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
        "sweep": {**local, "sweep_s": swept, "throughput_ratio": local["serial_s"] / swept},
        "steps": [{"batch_size": b, "single_ms": s, "single_1_ms": s1, "parallel_ms": p, "ratio": p / s,
                   "ratio_1": None if s1 is None else p / s1}
                  for b, s, s1, p in zip(batch_sizes, single, single_1, dp)],
    }


def report(result: dict[str, Any]) -> str:
    s = result["sweep"]
    lines = [
        f"## fnn.parallel on a local Dask cluster ({result['workers']} worker processes, 1 thread each)",
        "",
        sweep_line(s, result["workers"]) + f"; Dask LocalCluster (warmed up) {s['sweep_s']:.2f} s, "
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
    p.add_argument("--sweeps-only", action="store_true",
                   help="only the sweep throughput: 4 x workers runs of 5 epochs, one by one vs local processes")
    p.add_argument("--rounds", type=int, default=3, help="with --sweeps-only: interleaved rounds (medians)")
    args = p.parse_args(argv)
    if args.sweeps_only:
        print(sweep_line(sweep_throughput(args.workers, 4 * args.workers, 5, args.rounds), args.workers))
        return
    print(report(run(args.workers, args.quick)))


if __name__ == "__main__":
    main()
