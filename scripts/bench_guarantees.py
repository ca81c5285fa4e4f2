"""What each of ``fnn.train``'s guarantees costs on W1, measured by switching it off for a run.

Usage::

    python scripts/bench_guarantees.py                 # one Fashion-MNIST epoch, 9 repeats
    python scripts/bench_guarantees.py --repeats 3 --limit 6000

W1 is 784-16-16-10 sigmoid, squared error, SGD lr 3.0, batch 10: small enough that the Python
around the arrays shows. Besides the arithmetic of a step, ``fnn.train`` keeps four promises that
a bare NumPy loop does not:

- **divergence**: after every step, the loss and every new parameter array are checked for NaN
  and inf, so a ``DivergenceError`` names the epoch and step and carries the last finite state;
- **accuracy**: ``EpochStats.accuracy`` counts every step's correct predictions;
- **read-only**: every new parameter array is flagged read-only;
- **input**: the data is checked to be finite once, before the first epoch.

The script times one epoch with all of them, with each one off, and with none, in one process,
interleaved, by CPU time (steadier than wall time on a shared host), next to the straightforward
NumPy loop of ``scripts/_peers.py``. Divergence goes off with the public ``on_divergence="continue"``;
the other three have no switch, so for the run the function that keeps each one is replaced
(``fnn.metrics.correct`` counts nothing, ``fnn.network._leaf`` leaves new arrays writeable,
``fnn.validate.all_finite`` says yes). Both fnn and the loop run with the glibc thresholds that
``fnn.step`` sets (:mod:`fnn.heap`), so the loop is a little faster here than in
``scripts/benchmark.py``, where it runs in a process of its own.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy loads its BLAS: one thread, as the W1 target

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from contextlib import ExitStack  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402
from unittest import mock  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _peers  # noqa: E402

import fnn  # noqa: E402
from fnn import heap, metrics, network, validate  # noqa: E402

GUARANTEES = ("divergence", "accuracy", "read-only", "input")
_UNCHECKED: list[np.ndarray] = []  # what the stub of validate.all_finite let through


def _writeable_leaf(p: np.ndarray, u: np.ndarray, c: Any) -> np.ndarray:
    return p + u if c is None else p + u * np.asarray(c, u.dtype)


def _let_through(a: np.ndarray) -> bool:
    """``validate.all_finite`` switched off: every array passes, and is noted as unchecked."""
    _UNCHECKED.append(a)
    return True


def _off(stack: ExitStack, guarantee: str) -> dict[str, Any]:
    """Switch ``guarantee`` off until ``stack`` closes; the keyword arguments for ``train`` that it needs.

    A replaced function that training no longer calls would measure nothing: :func:`main` checks
    the run shows each one off.
    """
    if guarantee == "divergence":
        return {"on_divergence": "continue"}
    target, name, stub = {
        "accuracy": (metrics, "correct", lambda params, out, y: 0),
        "read-only": (network, "_leaf", _writeable_leaf),
        "input": (validate, "all_finite", _let_through),
    }[guarantee]
    stack.enter_context(mock.patch.object(target, name, stub))
    return {}


def _check_off(name: str, off: tuple[str, ...], trained: Any, history: Any) -> None:
    """Fail if a guarantee meant to be off in run ``name`` stayed on (``_off`` replaced what train no longer calls)."""
    kept = {
        "accuracy": history[-1].accuracy != 0.0,
        "read-only": not trained[0].w.flags.writeable,
        "input": not _UNCHECKED,
    }
    if any(kept.get(g, False) for g in off):
        raise RuntimeError(f"{name}: a guarantee stayed on; update _off to what fnn.train calls now")


def _data(limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        (x, y), _ = fnn.datasets.load_fashion_mnist(download=False)
    except Exception:  # not installed: the digits that ship with fnn
        (x, y), _ = fnn.datasets.load_digits()
    x = fnn.data.normalize(x)  # (n, 784) float32 in [0, 1]
    return (x, y) if limit is None else (x[:limit], y[:limit])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--limit", type=int, default=None, help="examples per epoch (default: all)")
    args = ap.parse_args()
    x, y = _data(args.limit)
    params = _peers.network("W1")
    order = np.random.default_rng(0).permutation(len(x))
    heap.keep_freed()  # the malloc policy fnn.step sets, for every run below
    fnn.train(params, (x, y), epochs=1, batch_size=10, lr=3.0, cost=fnn.mse, seed=0)  # warm-up
    variants: dict[str, tuple[str, ...]] = {"all guarantees": ()}
    variants.update({f"without {g}": (g,) for g in GUARANTEES})
    variants["none"] = GUARANTEES
    times: dict[str, list[float]] = {name: [] for name in [*variants, "NumPy loop"]}
    for _ in range(args.repeats):
        for name, off in variants.items():
            with ExitStack() as stack:
                kwargs: dict[str, Any] = {}
                for g in off:
                    kwargs.update(_off(stack, g))
                _UNCHECKED.clear()
                t = time.process_time()
                trained, history = fnn.train(params, (x, y), epochs=1, batch_size=10, lr=3.0, cost=fnn.mse,
                                             seed=0, **kwargs)
                times[name].append(time.process_time() - t)
            _check_off(name, off, trained, history)
        t = time.process_time()
        _peers.run_numpy_plain("W1", params, x, y, order, None)
        times["NumPy loop"].append(time.process_time() - t)
    base, loop = statistics.median(times["all guarantees"]), statistics.median(times["NumPy loop"])
    print(f"# W1, {len(x)} examples, 1 thread, CPU seconds of one epoch, {args.repeats} repeats\n")
    print("| run | min s | median s | / all guarantees | / NumPy loop |")
    print("|---|---:|---:|---:|---:|")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"| {name} | {min(values):.3f} | {med:.3f} | {med / base:.3f} | {med / loop:.2f} |")


if __name__ == "__main__":
    main()
