"""Time one training epoch of fnn side by side with PyTorch, scikit-learn and plain NumPy.

Usage::

    python scripts/benchmark.py                      # W1 and W2, 1 and 2 threads, 3 repeats
    python scripts/benchmark.py --workloads W2 --threads 1 --repeats 5
    python scripts/benchmark.py --quick              # a smoke run: small data, 1 thread, 1 repeat

Workloads (see ``scripts/_peers.py``):

- W1: 784-16-16-10 sigmoid, squared error, plain SGD lr 3.0, batch 10 (the classic from-scratch net);
- W2: 784-512-512-10 ReLU, softmax cross-entropy, SGD lr 0.01 momentum 0.9, batch 128.

Every measurement runs in a fresh subprocess with ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``
and ``MKL_NUM_THREADS`` set to the thread count (plus ``threadpoolctl.threadpool_limits`` and
``torch.set_num_threads``), and with ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` removed from
its environment (they pin old OpenBLAS builds to a slower kernel; the kernel used is reported).
Implementations are interleaved within each repeat, so a noisy machine slows them alike; the
table shows min / median / max seconds per epoch and each median's ratio to PyTorch's tight
loop (``index_select`` gathers). PyTorch fed by a shuffling ``DataLoader``, as its tutorials
write it, is timed too, and the Targets table gives W1's ratio to both, labelled.
Peak memory is the subprocess's peak RSS above its RSS just before training (data loaded).
``fnn train`` runs W1 for one epoch with and without its progress bar (``--progress``); the
seconds are the epoch's, from its ``record.json`` (``--no-cli`` skips it).

Data: Fashion-MNIST's 60,000 training images when installed, else the 8,000 digits that ship
with fnn (seconds are then per epoch of that smaller set). Peers whose package is missing
(PyTorch, scikit-learn) are skipped, and the output says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _peers  # noqa: E402

PEERS = ("fnn", "fnn_on_batch", "fnn_continue", "numpy_tuned", "numpy_plain", "torch", "torch_dataloader", "sklearn",
         "seed_loop")
LABELS = {
    "fnn": "fnn.train",
    "fnn_on_batch": "fnn.train, on_batch callback",
    "fnn_continue": "fnn.train, on_divergence='continue'",
    "numpy_tuned": "tuned NumPy (preallocated, in place)",
    "numpy_plain": "straightforward NumPy (fresh arrays)",
    "torch": "PyTorch eager (CPU), tight index_select loop",
    "torch_dataloader": "PyTorch eager (CPU), DataLoader(shuffle=True) loop",
    "sklearn": "scikit-learn MLPClassifier (log-loss)",
    "seed_loop": "seed-style per-example loop",
    "gemm": "GEMM bound (the matrix products alone)",
}
SEED_FRACTION = 10  # the seed-style loop runs 1/10 of an epoch, extrapolated


# ---------------------------------------------------------------------------
# Child side: one measurement per process
# ---------------------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    """Reset the kernel's peak-RSS mark (``VmHWM``) so it measures from here on (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass  # then the peak counts from the process start


def _peak_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(job: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement described by ``job`` and return its numbers."""
    from threadpoolctl import threadpool_info, threadpool_limits

    threads, workload, peer = job["threads"], job["workload"], job["peer"]
    if job.get("clock") == "cpu":  # --cpu-time: the process's CPU seconds, steadier on a shared machine
        _peers.time = types.SimpleNamespace(perf_counter=time.process_time)  # type: ignore[assignment]
    if peer.startswith("torch"):
        import torch

        torch.set_num_threads(threads)
    x = np.load(job["x"])
    y = np.load(job["y"])
    n = len(x)
    with threadpool_limits(threads):
        kernel = ",".join(
            f"{i['internal_api']} {i.get('version', '')} {i.get('architecture', '')}".strip()
            for i in threadpool_info()
            if i["user_api"] == "blas"
        )
        if peer == "gemm":
            return {"seconds": _peers.gemm_seconds(workload, n), "kernel": kernel, "extra_mb": 0.0}
        if peer == "memory":
            return _memory(workload, x, y, job["limit"])
        limit = job["limit"]
        if peer == "seed_loop":
            limit = min(limit or n, max(n // SEED_FRACTION, _peers.WORKLOADS[workload].batch_size))
        params = _peers.network(workload)
        order = np.random.default_rng(0).permutation(n)
        _reset_peak()
        before = _rss_mb()
        seconds = _peers.RUNNERS[peer](workload, params, x, y, order, limit)
        used = limit if limit is not None and limit < n else n
    return {
        "seconds": seconds * n / used,
        "extrapolated": used < n,
        "examples": used,
        "extra_mb": max(_peak_mb() - before, 0.0),
        "kernel": kernel,
    }


def _memory(workload: str, x: np.ndarray, y: np.ndarray, limit: int | None) -> dict[str, Any]:
    """fnn's peak traced allocation while training one epoch, against the budget of the target."""
    import tracemalloc

    import fnn

    w = _peers.WORKLOADS[workload]
    n = len(x) if limit is None else min(limit, len(x))
    x, y = x[:n], y[:n]
    params = _peers.network(workload)
    n_params = sum(p.size for p in fnn.tree.leaves(params) if fnn.layers.is_param(p))
    moments = 1 if w.momentum else 0
    activations = w.batch_size * sum(w.sizes) * 2 * 4  # inputs and outputs of every layer, float32
    budget = 3 * 4 * n_params * (1 + moments) + 4 * activations + 8 * n  # 3 x (params + state) + 4 minibatches
    tracemalloc.start()
    _peers.run_fnn(workload, params, x, y, None, None)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"peak_mb": peak / 2**20, "budget_mb": budget / 2**20, "data_mb": x.nbytes / 2**20}


def _child(spec: str) -> None:
    print("RESULT " + json.dumps(_measure(json.loads(spec))), flush=True)


# ---------------------------------------------------------------------------
# Parent side
# ---------------------------------------------------------------------------


def _env(threads: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    return env


def _run(job: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(job)],
        env=_env(job["threads"]), capture_output=True, text=True, check=False,
    )
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (out.stderr.strip().splitlines() or ["no output"])[-1]}


def _data(quick: bool, tmp: Path) -> tuple[str, str, str]:
    """Save the float32 training set once as .npy files the children load; returns their paths and a name."""
    import fnn.datasets
    from fnn.data import normalize

    try:
        if quick:
            raise FileNotFoundError
        (images, labels), _ = fnn.datasets.load_fashion_mnist()
        name = "Fashion-MNIST"
    except (FileNotFoundError, OSError, ValueError):
        (images, labels), _ = fnn.datasets.load_digits()
        name = "fnn's embedded MNIST digits"
    x, y = normalize(images), labels.astype(np.int64)
    np.save(tmp / "x.npy", x)
    np.save(tmp / "y.npy", y)
    return str(tmp / "x.npy"), str(tmp / "y.npy"), f"{name}, {len(x)} examples"


def _stats(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="W1,W2")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peers", default=",".join(PEERS), help="which implementations to time")
    ap.add_argument("--limit", type=int, default=None, help="examples per epoch (default: all)")
    ap.add_argument("--quick", action="store_true", help="smoke run: digits, 1 thread, 1 repeat, 1,280 examples")
    ap.add_argument("--no-parallel", action="store_true", help="skip the fnn.parallel section (Dask)")
    ap.add_argument("--no-conv", action="store_true", help="skip the conv-net section (scripts/bench_conv.py)")
    ap.add_argument("--no-cli", action="store_true", help="skip `fnn train` with and without its progress bar")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time by each process's CPU seconds instead of wall time (steadier on a busy machine; "
                         "at 2 threads it adds both threads' time)")
    ap.add_argument("--no-sequence", action="store_true",
                    help="skip the sequence-model section (scripts/bench_sequence.py)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args.child)
        return 0
    workloads = [w for w in args.workloads.split(",") if w]
    threads = [int(t) for t in args.threads.split(",") if t]
    repeats, limit = args.repeats, args.limit
    if args.quick:
        threads, repeats, limit = threads[:1] if args.threads != "1,2" else [1], 1, limit or 1280
    wanted = [p for p in args.peers.split(",") if p]
    peers = [p for p in wanted if _peers.available(p)]
    missing = [p for p in wanted if p not in peers]

    with tempfile.TemporaryDirectory() as tmp:
        xp, yp, data_name = _data(args.quick, Path(tmp))
        print(f"# fnn benchmark: one training epoch, {data_name}")
        print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, "
              f"{os.cpu_count()} CPUs; command: python scripts/benchmark.py {' '.join(argv or sys.argv[1:])}")
        for p in missing:
            print(f"skipped {p}: its package ({_peers.NEEDS[p]}) is not installed")
        results: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
        kernel = ""
        start = time.perf_counter()
        for t in threads:
            for r in range(repeats):
                for w in workloads:
                    order = [p for p in peers if not (p == "seed_loop" and w != "W1")] + ["gemm"]
                    order = order[r % len(order):] + order[: r % len(order)]  # rotate: no fixed position
                    for p in order:
                        job = {"threads": t, "workload": w, "peer": p, "x": xp, "y": yp, "limit": limit,
                               "clock": "cpu" if args.cpu_time else "wall"}
                        res = _run(job)
                        results.setdefault((t, w, p), []).append(res)
                        kernel = res.get("kernel", kernel)
        memory = None
        if "W2" in workloads and "fnn" in peers:
            memory = _run({"threads": 1, "workload": "W2", "peer": "memory", "x": xp, "y": yp, "limit": limit})
        cli = None if args.no_cli else _cli(repeats, args.quick, Path(tmp))
        elapsed = time.perf_counter() - start

    print(f"BLAS: {kernel}; OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset in the measuring processes; "
          f"{repeats} repeat(s), implementations interleaved; {elapsed:.0f} s in all.\n")
    medians = {key: statistics.median(r["seconds"] for r in runs if "seconds" in r)
               for key, runs in results.items() if any("seconds" in r for r in runs)}
    gemm = {(t, w): m for (t, w, p), m in medians.items() if p == "gemm"}

    def ratio(t: int, w: str, seconds: float) -> str:
        base = medians.get((t, w, "torch"))
        return f"{seconds / base:.2f}" if base else "-"

    for t in threads:
        print(f"## {t} thread{'s' if t > 1 else ''}\n")
        print("| workload | implementation | min s | median s | max s | / PyTorch (tight loop) | peak MB over data "
              "| note |")
        print("|---|---|---:|---:|---:|---:|---:|---|")
        for w in workloads:
            for p in [*peers, "gemm"]:
                runs = results.get((t, w, p))
                if not runs:
                    continue
                ok = [r for r in runs if "seconds" in r]
                if not ok:
                    print(f"| {w} | {LABELS[p]} | - | - | - | - | - | failed: {runs[0].get('error', '')[:80]} |")
                    continue
                lo, med, hi = _stats([r["seconds"] for r in ok])
                note = []
                if ok[0].get("extrapolated"):
                    note.append(f"extrapolated from {ok[0]['examples']} examples")
                if p == "sklearn":
                    note.append("log-loss, its own init")
                if p == "torch_dataloader":
                    note.append("its own shuffle (seeded torch.Generator), num_workers=0")
                if p == "gemm":
                    note.append("3 x forward FLOPs at the sgemm rate measured at these shapes")
                mem = f"{max(r['extra_mb'] for r in ok):.0f}" if p != "gemm" else ""
                print(f"| {w} | {LABELS[p]} | {lo:.3f} | {med:.3f} | {hi:.3f} | {ratio(t, w, med)} | "
                      f"{mem} | {'; '.join(note)} |")
        print()
    if cli is not None:
        print(_cli_report(cli))
    _targets(medians, gemm, memory, threads, cli)
    if not args.no_parallel:
        _parallel(args.quick)
    if not args.no_conv:
        _conv(threads, args.quick)
    if not args.no_sequence:
        _sequence(args.quick)
    return 0


def _parallel(quick: bool) -> None:
    """fnn.parallel on a 2-worker Dask LocalCluster: sweep throughput and data-parallel step ratios."""
    import importlib.util

    if importlib.util.find_spec("distributed") is None:
        print("\nskipped fnn.parallel: Dask is not installed (pip install fnn[dask])")
        return
    import bench_parallel

    print("\n" + bench_parallel.report(bench_parallel.run(workers=2, quick=quick)))


# ---------------------------------------------------------------------------
# Conv net (issue 8): fnn against PyTorch, same threads; the code is in scripts/bench_conv.py
# ---------------------------------------------------------------------------


def _conv(threads: list[int], quick: bool) -> None:
    """A conv-net epoch (conv-pool-conv-pool-dropout-dense, Adam, batch 128): fnn / PyTorch per thread count."""
    import bench_conv

    steps = 5 if quick else 100
    print("\n" + bench_conv.report(bench_conv.run(threads, 1 if quick else 3, steps), steps))


# ---------------------------------------------------------------------------
# Sequence models (issue 17): LSTM rows of digits and a transformer LM step; the code is in
# scripts/bench_sequence.py
# ---------------------------------------------------------------------------


def _sequence(quick: bool) -> None:
    """An LSTM epoch (1 thread) and a transformer LM step (1 and 2 threads): fnn / PyTorch."""
    import bench_sequence

    print("\n" + bench_sequence.report(bench_sequence.run(["lstm", "transformer"], 1 if quick else 3,
                                                           5 if quick else 50)))


def _cli(repeats: int, quick: bool, tmp: Path) -> dict[str, list[float]]:
    """Seconds of one W1 epoch of ``fnn train`` (from its record.json), with and without its progress bar."""
    dataset = "digits" if quick else "fashion-mnist"
    times: dict[str, list[float]] = {"--progress": [], "--no-progress": []}
    for r in range(max(repeats, 3)):
        for flag in (list(times) if r % 2 == 0 else list(times)[::-1]):  # alternate which goes first
            out = tmp / f"cli-{r}{flag}"
            cmd = [sys.executable, "-m", "fnn", "train", "--dataset", dataset, "--no-download", "--layers",
                   "784,16,16,10", "--activation", "sigmoid", "--cost", "mse", "--lr", "3", "--batch-size", "10",
                   "--epochs", "1", "--quiet", "--out", str(out), flag]
            done = subprocess.run(cmd, env=_env(1), capture_output=True, text=True, check=False)
            try:
                times[flag].append(json.loads((out / "record.json").read_text())["history"][0]["seconds"])
            except (OSError, KeyError, IndexError, ValueError):
                print(f"fnn train {flag} failed: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    return times


def _cli_report(times: dict[str, list[float]]) -> str:
    lines = ["## `fnn train` (W1, 1 thread, one epoch as its record.json reports it)\n",
             "| run | min s | median s | max s |", "|---|---:|---:|---:|"]
    for flag, values in times.items():
        if values:
            lo, med, hi = _stats(values)
            lines.append(f"| fnn train {flag} | {lo:.3f} | {med:.3f} | {hi:.3f} |")
    return "\n".join(lines) + "\n"


def _targets(medians: dict, gemm: dict, memory: dict | None, threads: list[int],
             cli: dict[str, list[float]] | None = None) -> None:
    """Print the issue's targets, pass or fail, from the medians of this run."""
    checks: list[tuple[str, float | None, str, float]] = []

    def ratio(a: tuple, b: tuple) -> float | None:
        return medians[a] / medians[b] if a in medians and b in medians else None

    checks.append(("W1 fnn / PyTorch tight index_select loop, 1 thread",
                   ratio((1, "W1", "fnn"), (1, "W1", "torch")), "<=", 0.15))
    checks.append(("W1 fnn / PyTorch DataLoader(shuffle=True) loop, 1 thread",
                   ratio((1, "W1", "fnn"), (1, "W1", "torch_dataloader")), "<=", 0.15))
    for t, w in ((1, "W1"), (1, "W2"), (2, "W2")):
        checks.append((f"{w} fnn / straightforward NumPy (fresh arrays), {t} thread{'s' if t > 1 else ''}",
                       ratio((t, w, "fnn"), (t, w, "numpy_plain")), "<=", 1.10))
    checks.append(("W1 fnn with an on_batch callback / without, 1 thread",
                   ratio((1, "W1", "fnn_on_batch"), (1, "W1", "fnn")), "<=", 1.05))
    if cli and cli.get("--progress") and cli.get("--no-progress"):
        checks.append(("fnn train --progress / --no-progress (W1, 1 thread)",
                       statistics.median(cli["--progress"]) / statistics.median(cli["--no-progress"]), "<=", 1.05))
    checks.append(("W2 fnn / PyTorch, 1 thread", ratio((1, "W2", "fnn"), (1, "W2", "torch")), "<=", 0.85))
    checks.append(("W2 fnn / PyTorch, 2 threads", ratio((2, "W2", "fnn"), (2, "W2", "torch")), "<=", 1.0))
    g, f = gemm.get((1, "W2")), medians.get((1, "W2", "fnn"))
    checks.append(("W2 fnn / GEMM bound, 1 thread", f / g if f and g else None, "<=", 1.2))
    checks.append(("W1 seed-style loop / fnn, 1 thread", ratio((1, "W1", "seed_loop"), (1, "W1", "fnn")), ">=", 8.0))
    if memory is not None and "peak_mb" in memory:
        checks.append((f"W2 fnn peak traced memory / budget ({memory['peak_mb']:.1f} MB / {memory['budget_mb']:.1f} "
                       "MB: 3 x (params + momentum), 4 minibatches of activations, one permutation; the "
                       f"{memory['data_mb']:.0f} MB of data not counted, never copied)",
                       memory["peak_mb"] / memory["budget_mb"], "<=", 1.0))
    # What the per-step divergence check costs, and what the hand-tuned, in-place NumPy peer reaches:
    checks.append(("(reference) W1 fnn on_divergence='continue' / straightforward NumPy, 1 thread",
                   ratio((1, "W1", "fnn_continue"), (1, "W1", "numpy_plain")), "<=", 1.10))
    checks.append(("(reference) W1 fnn / tuned NumPy (preallocated, in place), 1 thread",
                   ratio((1, "W1", "fnn"), (1, "W1", "numpy_tuned")), "<=", 1.3))
    checks.append(("(reference) W1 tuned NumPy / PyTorch, 1 thread",
                   ratio((1, "W1", "numpy_tuned"), (1, "W1", "torch")), "<=", 0.15))
    checks.append(("(reference) W1 seed-style loop / tuned NumPy, 1 thread",
                   ratio((1, "W1", "seed_loop"), (1, "W1", "numpy_tuned")), ">=", 8.0))
    if 2 in threads:
        g, f = gemm.get((2, "W2")), medians.get((2, "W2", "fnn"))
        checks.append(("(reference) W2 fnn / GEMM bound, 2 threads", f / g if f and g else None, "<=", 1.2))
    print("## Targets\n")
    print("| target | measured | goal | result |")
    print("|---|---:|---:|---|")
    for name, value, op, goal in checks:
        if value is None:
            print(f"| {name} | - | {op} {goal} | not measured |")
            continue
        ok = value <= goal if op == "<=" else value >= goal
        verdict = ("met" if ok else "not met") if name.startswith("(reference)") else ("pass" if ok else "FAIL")
        print(f"| {name} | {value:.2f} | {op} {goal} | {verdict} |")


if __name__ == "__main__":
    sys.exit(main())
