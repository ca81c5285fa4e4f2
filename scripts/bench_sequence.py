"""Time sequence models: fnn against PyTorch CPU, same threads, as ratios.

Usage::

    python scripts/bench_sequence.py                  # both workloads, 3 repeats
    python scripts/bench_sequence.py --workloads lstm --threads 1 --repeats 5

Workloads:

- ``lstm``: one epoch of the digits row by row (8,000 images as 28 steps of 28 pixels),
  ``LSTM(28 -> 64) -> Last -> Dense(64 -> 10)``, softmax cross-entropy, Adam 1e-3, batch 128;
  PyTorch runs ``torch.nn.LSTM(batch_first=True)`` and ``nn.Linear`` (its fused native loop). 1 thread.
- ``transformer``: one training step of ``scripts/char_lm.py``'s transformer (2 pre-norm blocks,
  d = 64, 4 heads, context 16, vocabulary 27), Adam 3e-3, batch 64, the mean over ``--steps`` steps
  after 3 warm-up steps; PyTorch runs the same architecture eagerly (``char_lm.torch_model``).
  1 and 2 threads.

fnn runs ``fnn.step`` (what ``fnn.train`` folds over). Each measurement runs in a fresh
subprocess with ``OMP/OPENBLAS/MKL_NUM_THREADS`` and ``torch.set_num_threads`` set to the thread
count; fnn and PyTorch are interleaved within each repeat, so a noisy machine slows both alike.
``--keep-heap`` runs both with glibc keeping freed memory (``MALLOC_TOP_PAD_``,
``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_`` at 256 MB; fnn then leaves the policy to
the environment). The last column counts minor page faults per step (epoch) of each peer: pages
of memory freed by one step and faulted in again by the next. fnn's own step sets glibc's
thresholds so that it keeps freed memory (see :mod:`fnn.heap`); PyTorch runs with glibc's defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

LSTM_BATCH, LM_BATCH = 128, 64


def _digits_rows() -> tuple[np.ndarray, np.ndarray]:
    import fnn

    (x, y), _ = fnn.datasets.load_digits()
    return fnn.data.normalize(x).reshape(-1, 28, 28), y  # (8000, 28 steps, 28 pixels)


def _lm_batches(steps: int) -> list[tuple[np.ndarray, np.ndarray]]:
    g = np.random.default_rng(0)
    ids = g.integers(0, 27, (steps + 3, LM_BATCH, 17))
    return [(b[:, :-1], b[:, 1:]) for b in ids]


def _clock() -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and minor page faults so far (the latter two of this process)."""
    import resource

    return time.perf_counter(), time.process_time(), float(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)


def _per(workload: str, start: tuple[float, float, float], steps: int) -> dict[str, float]:
    """Wall and CPU seconds and page faults since ``start``, per epoch (lstm) or per step (transformer)."""
    n = 1 if workload == "lstm" else steps
    wall, cpu, faults = (now - then for now, then in zip(_clock(), start))
    return {"seconds": wall / n, "cpu": cpu / n, "faults": faults / n}


def _fnn(workload: str, steps: int) -> dict[str, float]:
    """Wall and CPU seconds and page faults per epoch (lstm) or per step (transformer) of ``fnn.step``."""
    import char_lm

    import fnn

    if workload == "lstm":
        x, y = _digits_rows()
        params: Any = (fnn.lstm(0, 28, 64), fnn.Last(), fnn.dense(1, 64, 10, init="torch"))
        opt = fnn.adam(1e-3)
        batches = [(x[i : i + LSTM_BATCH], y[i : i + LSTM_BATCH]) for i in range(0, len(x), LSTM_BATCH)]
        warm, timed = batches[:3], batches
    else:
        params, opt = char_lm.transformer_lm(0), fnn.adam(3e-3)
        batches = _lm_batches(steps)
        warm, timed = batches[:3], batches[3:]
    settings = fnn.Settings(cost=fnn.cross_entropy, optimizer=opt)
    state = fnn.init_state(params, opt, 0)
    for b in warm:
        state, _ = fnn.step(state, b, settings)
    start = _clock()
    for b in timed:
        state, _ = fnn.step(state, b, settings)
    return _per(workload, start, len(timed))


def _torch(workload: str, steps: int, threads: int) -> dict[str, float]:
    """The same in PyTorch eager mode."""
    import char_lm
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    nn = torch.nn
    if workload == "lstm":
        x, y = _digits_rows()

        class Model(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstm, self.out = nn.LSTM(28, 64, batch_first=True), nn.Linear(64, 10)

            def forward(self, x: Any) -> Any:
                return self.out(self.lstm(x)[0][:, -1])

        model: Any = Model()
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        batches = [(xt[i : i + LSTM_BATCH], yt[i : i + LSTM_BATCH]) for i in range(0, len(x), LSTM_BATCH)]
        warm, timed = batches[:3], batches
    else:
        import fnn

        model = char_lm.torch_model(char_lm.transformer_lm(0))
        opt = torch.optim.Adam(model.parameters(), 3e-3)
        batches = [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in _lm_batches(steps)]
        warm, timed = batches[:3], batches[3:]
        del fnn

    def step(xb: Any, yb: Any) -> None:
        opt.zero_grad()
        out = model(xb)
        nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), yb.reshape(-1)).backward()
        opt.step()

    for xb, yb in warm:
        step(xb, yb)
    start = _clock()
    for xb, yb in timed:
        step(xb, yb)
    return _per(workload, start, len(timed))


def _child(spec: str) -> None:
    job = json.loads(spec)
    from threadpoolctl import threadpool_limits

    threadpool_limits(job["threads"])
    if job["peer"] == "fnn":
        found = _fnn(job["workload"], job["steps"])
    else:
        found = _torch(job["workload"], job["steps"], job["threads"])
    print("RESULT " + json.dumps(found), flush=True)


#: With ``--keep-heap``: glibc keeps freed memory instead of handing it back to the system, so the
#: large temporaries of each step reuse pages instead of faulting fresh ones in (both peers alike).
KEEP_HEAP = {"MALLOC_TOP_PAD_": "268435456", "MALLOC_TRIM_THRESHOLD_": "268435456",
             "MALLOC_MMAP_THRESHOLD_": "268435456"}


def _measure(peer: str, workload: str, threads: int, steps: int, keep_heap: bool = False) -> dict[str, float] | None:
    env = {**os.environ, **(KEEP_HEAP if keep_heap else {})}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    job = json.dumps({"peer": peer, "workload": workload, "threads": threads, "steps": steps})
    out = subprocess.run([sys.executable, __file__, "--child", job], env=env, capture_output=True, text=True,
                         check=False)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[7:]))
    print(f"  {peer} {workload}, {threads} thread(s) failed: {(out.stderr.strip().splitlines() or ['no output'])[-1]}")
    return None


#: The workloads and the thread counts the issue's targets name.
THREADS = {"lstm": [1], "transformer": [1, 2]}


Results = dict[tuple[str, int], dict[str, list[dict[str, float]]]]


def run(workloads: list[str], repeats: int = 3, steps: int = 50, keep_heap: bool = False) -> Results:
    """``{(workload, threads): {"fnn": [{"seconds", "cpu", "faults"}, ...], "torch": [...]}}``.

    Without PyTorch installed there is no ``"torch"`` entry.
    """
    import importlib.util

    peers = ["fnn"] + (["torch"] if importlib.util.find_spec("torch") else [])
    results: Results = {}
    for w in workloads:
        for t in THREADS[w]:
            for r in range(repeats):
                for peer in peers[r % len(peers):] + peers[: r % len(peers)]:  # alternate who goes first
                    found = _measure(peer, w, t, steps, keep_heap)
                    if found is not None:
                        results.setdefault((w, t), {}).setdefault(peer, []).append(found)
    return results


TARGETS = {"lstm": 1.0, "transformer": 1.5}
UNITS = {"lstm": "s/epoch (8,000 digits, batch 128)", "transformer": "ms/step (batch 64 x 16)"}


def report(results: Results) -> str:
    """A Markdown table: median (min-max) wall time per workload and thread count, the fnn / PyTorch ratio
    of the medians and its target, the ratio of the median CPU times (less sensitive to a busy machine) and the
    median minor page faults per epoch or step of each peer (pages of freed memory glibc gave back, faulted in
    again: see ``--keep-heap``)."""
    lines = ["## Sequence models: fnn.step against PyTorch eager", "",
             "| workload | unit | threads | fnn | PyTorch | fnn / PyTorch | target | CPU-time ratio "
             "| page faults fnn / PyTorch |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]

    def cell(v: list[float] | None, scale: float) -> str:
        if not v:
            return "-"
        return f"{statistics.median(v) * scale:.3g} ({min(v) * scale:.3g}-{max(v) * scale:.3g})"

    for (w, t), by_peer in results.items():
        runs = {peer: [r["seconds"] for r in rs] for peer, rs in by_peer.items()}
        cpus = {peer: [r["cpu"] for r in rs] for peer, rs in by_peer.items()}
        f, p = runs.get("fnn"), runs.get("torch")
        scale = 1.0 if w == "lstm" else 1000.0
        ratio = f"{statistics.median(f) / statistics.median(p):.2f}" if f and p else "-"
        cpu = f"{statistics.median(cpus['fnn']) / statistics.median(cpus['torch']):.2f}" if f and p else "-"
        faults = " / ".join(f"{statistics.median([r.get('faults', 0.0) for r in by_peer[peer]]):.0f}"
                            for peer in ("fnn", "torch") if peer in by_peer)  # fnn / PyTorch
        lines.append(f"| {w} | {UNITS[w]} | {t} | {cell(f, scale)} | {cell(p, scale)} | {ratio} | "
                     f"<= {TARGETS[w]:.1f} | {cpu} | {faults} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="lstm,transformer")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=50, help="timed transformer steps per measurement")
    ap.add_argument("--keep-heap", action="store_true",
                    help="run both peers with glibc keeping freed memory (MALLOC_TOP_PAD_ and friends)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args.child)
        return 0
    print(report(run([w for w in args.workloads.split(",") if w], args.repeats, args.steps, args.keep_heap)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
