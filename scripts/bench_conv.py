"""Time a conv-net training epoch: fnn against PyTorch CPU, same threads, as a ratio.

Usage::

    python scripts/bench_conv.py                 # 1 and 2 threads, 3 repeats, 100 timed steps each
    python scripts/bench_conv.py --threads 2 --repeats 1 --steps 469   # a whole epoch

The network is the issue's example: ``conv 3x3 32 same -> ReLU -> maxpool 2 -> conv 3x3 64 same -> ReLU
-> maxpool 2 -> flatten -> dropout 0.25 -> dense 3136x10``, softmax cross-entropy, Adam 1e-3,
batch 128, on 28x28x1 images (Fashion-MNIST when installed, else fnn's digits). fnn runs
``fnn.step`` (what ``fnn.train`` folds over) in NHWC/HWIO; PyTorch runs eager ``nn.Sequential``
in NCHW. Each measurement runs in a fresh subprocess with ``OMP/OPENBLAS/MKL_NUM_THREADS`` and
``torch.set_num_threads`` set to the thread count; the two are interleaved within each repeat.
Seconds per 60,000-example epoch are extrapolated from ``--steps`` timed steps after 3 warm-up steps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

BATCH, EPOCH = 128, 60000


def _images(n: int) -> tuple[np.ndarray, np.ndarray]:
    import fnn

    try:
        (x, y), _ = fnn.datasets.load_fashion_mnist(download=False)
    except Exception:  # not installed: the digits that ship with fnn
        (x, y), _ = fnn.datasets.load_digits()
    reps = -(-n // len(x))
    x = np.concatenate([x] * reps)[:n]
    y = np.concatenate([y] * reps)[:n]
    return fnn.data.normalize(x).reshape(-1, 28, 28, 1), y


def _fnn(steps: int) -> float:
    import fnn

    x, y = _images((steps + 3) * BATCH)
    params = (fnn.conv2d(0, 1, 32, 3), fnn.ReLU(), fnn.MaxPool2D(2), fnn.conv2d(1, 32, 64, 3), fnn.ReLU(),
              fnn.MaxPool2D(2), fnn.Flatten(), fnn.Dropout(0.25), fnn.dense(2, 7 * 7 * 64, 10))
    opt = fnn.adam(1e-3)
    settings = fnn.Settings(cost=fnn.cross_entropy, optimizer=opt, batch_size=BATCH,
                            plan=fnn.network.plan(params))  # worked out once, as fnn.epoch does
    state = fnn.init_state(params, opt, 0)
    batches = [(x[i : i + BATCH], y[i : i + BATCH]) for i in range(0, len(x), BATCH)]
    for b in batches[:3]:
        state, _ = fnn.step(state, b, settings)
    t = time.perf_counter()
    for b in batches[3:]:
        state, _ = fnn.step(state, b, settings)
    return (time.perf_counter() - t) / steps


def _torch(steps: int, threads: int) -> float:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x, y = _images((steps + 3) * BATCH)
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.25), nn.Linear(7 * 7 * 64, 10))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # NHWC -> NCHW
    yt = torch.from_numpy(y)
    batches = [(xt[i : i + BATCH], yt[i : i + BATCH]) for i in range(0, len(xt), BATCH)]

    def step(xb: Any, yb: Any) -> None:
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()

    for xb, yb in batches[:3]:
        step(xb, yb)
    t = time.perf_counter()
    for xb, yb in batches[3:]:
        step(xb, yb)
    return (time.perf_counter() - t) / steps


def _child(spec: str) -> None:
    job = json.loads(spec)
    if job["threads"]:
        from threadpoolctl import threadpool_limits

        threadpool_limits(job["threads"])
    per_step = _fnn(job["steps"]) if job["peer"] == "fnn" else _torch(job["steps"], job["threads"])
    print("RESULT " + json.dumps({"epoch_s": per_step * -(-EPOCH // BATCH)}), flush=True)


def _measure(peer: str, threads: int, steps: int) -> float | None:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    job = json.dumps({"peer": peer, "threads": threads, "steps": steps})
    out = subprocess.run([sys.executable, __file__, "--child", job], env=env, capture_output=True, text=True,
                         check=False)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return float(json.loads(line[7:])["epoch_s"])
    print(f"  {peer}, {threads} thread(s) failed: {(out.stderr.strip().splitlines() or ['no output'])[-1]}")
    return None


def run(threads: list[int], repeats: int = 3, steps: int = 100) -> dict[int, dict[str, list[float]]]:
    """Seconds per epoch, ``{threads: {"fnn": [...], "torch": [...]}}``; PyTorch is skipped when missing."""
    import importlib.util

    peers = ["fnn"] + (["torch"] if importlib.util.find_spec("torch") else [])
    results: dict[int, dict[str, list[float]]] = {}
    for t in threads:
        for r in range(repeats):
            for peer in peers[r % len(peers):] + peers[: r % len(peers)]:  # alternate who goes first
                seconds = _measure(peer, t, steps)
                if seconds is not None:
                    results.setdefault(t, {}).setdefault(peer, []).append(seconds)
    return results


def report(results: dict[int, dict[str, list[float]]], steps: int) -> str:
    """A Markdown table: median (min-max) seconds per epoch and the fnn / PyTorch ratio per thread count."""
    lines = [f"## Conv net epoch (60,000 28x28x1 images, batch 128, extrapolated from {steps} steps)", "",
             "| threads | fnn s/epoch | PyTorch s/epoch | fnn / PyTorch |", "|---:|---:|---:|---:|"]
    def cell(v: list[float] | None) -> str:
        return f"{statistics.median(v):.1f} ({min(v):.1f}-{max(v):.1f})" if v else "-"

    for t, by_peer in sorted(results.items()):
        f, p = by_peer.get("fnn"), by_peer.get("torch")
        ratio = f"{statistics.median(f) / statistics.median(p):.2f}" if f and p else "-"
        lines.append(f"| {t} | {cell(f)} | {cell(p)} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=100, help="timed steps per measurement (469 = one epoch)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args.child)
        return 0
    threads = [int(t) for t in args.threads.split(",") if t]
    print(report(run(threads, args.repeats, args.steps), args.steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
