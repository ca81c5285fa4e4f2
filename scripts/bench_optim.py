"""Time one optimizer update: fnn's pure ``update`` against ``torch.optim``'s in-place ``step``.

Usage::

    python scripts/bench_optim.py                 # W1 and W2 shapes, momentum and Adam, 7 repeats
    python scripts/bench_optim.py --repeats 3 --calls 200

For the params of W1 (784-16-16-10 sigmoid, the Python around small arrays shows) and W2
(784-512-512-10 ReLU, the arithmetic shows), one update of SGD with momentum 0.9 and of Adam,
as a training step makes it: fnn's ``opt.update(grads, state, params)`` and the new params
from ``fnn.network.updated`` (fresh read-only arrays, the state a new pytree; what ``fnn.step``
runs, without the argument checks of the public ``fnn.apply_updates``; with the glibc
thresholds that ``fnn.step`` sets, :mod:`fnn.heap`), against
``torch.optim.SGD``/``Adam.step()`` on float32 tensors of the same shapes with their ``.grad``
set (in place). Microseconds per update, the minimum
over ``--repeats`` rounds of ``--calls`` calls, one BLAS thread, the two interleaved; the ratio
is fnn / PyTorch. Without PyTorch, fnn's column alone.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy loads its BLAS

import argparse  # noqa: E402
import timeit  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

import fnn  # noqa: E402

NETS = {"W1": ([784, 16, 16, 10], "sigmoid"), "W2": ([784, 512, 512, 10], "relu")}
OPTIMIZERS = {"momentum": (lambda: fnn.sgd(0.01, momentum=0.9)), "adam": (lambda: fnn.adam(1e-3))}


def _fnn(params: Any, grads: Any, name: str) -> Callable[[], Any]:
    opt = OPTIMIZERS[name]()
    state = opt.init(params)
    plan = fnn.network.plan(params)

    def one() -> Any:
        updates, _ = opt.update(grads, state, params)
        return fnn.network.updated(params, updates, plan)

    return one


def _torch(params: Any, grads: Any, name: str) -> Callable[[], Any] | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    tensors = []
    for p, g in zip(fnn.tree.leaves(params), fnn.tree.leaves(grads)):
        if fnn.layers.is_param(p):
            t = torch.tensor(np.array(p), requires_grad=True)
            t.grad = torch.tensor(np.array(g))
            tensors.append(t)
    opt = torch.optim.SGD(tensors, lr=0.01, momentum=0.9) if name == "momentum" else torch.optim.Adam(tensors, lr=1e-3)
    opt.step()  # momentum buffers and moments exist from here on, as in fnn's state
    return opt.step


def run(repeats: int, calls: int) -> list[tuple[str, str, float, float | None]]:
    """``(net, optimizer, fnn us, torch us or None)`` per row."""
    fnn.heap.keep_freed()  # as the first fnn.step in a process does
    rows = []
    rng = np.random.default_rng(0)
    for net, (sizes, activation) in NETS.items():
        params = fnn.mlp(sizes, activation, "sigmoid" if activation == "sigmoid" else "identity", seed=0)
        grads = fnn.tree.map(lambda a: rng.standard_normal(a.shape).astype(a.dtype), params)
        n = calls if net == "W1" else max(1, calls // 20)
        for name in OPTIMIZERS:
            peers = {"fnn": _fnn(params, grads, name), "torch": _torch(params, grads, name)}
            best: dict[str, float] = {}
            for _ in range(repeats):
                for peer, call in peers.items():
                    if call is not None:
                        t = min(timeit.repeat(call, number=n, repeat=1)) / n * 1e6
                        best[peer] = min(best.get(peer, t), t)
            rows.append((net, name, best["fnn"], best.get("torch")))
    return rows


def report(rows: list[tuple[str, str, float, float | None]]) -> str:
    lines = ["| params | optimizer | fnn us | PyTorch us | fnn / PyTorch |", "|---|---|---:|---:|---:|"]
    for net, name, ours, theirs in rows:
        torch_cells = f"{theirs:.1f} | {ours / theirs:.2f}" if theirs else "- | -"
        lines.append(f"| {net} | {name} | {ours:.1f} | {torch_cells} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7, help="interleaved rounds; the minimum is kept")
    ap.add_argument("--calls", type=int, default=2000, help="calls per round for W1 (W2 takes 1/20 of them)")
    args = ap.parse_args()
    print("# one optimizer update, 1 thread, min of", args.repeats, "rounds (microseconds)\n")
    print(report(run(args.repeats, args.calls)))


if __name__ == "__main__":
    main()
