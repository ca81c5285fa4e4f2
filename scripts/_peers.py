"""The implementations that ``scripts/benchmark.py`` times side by side with fnn.

Every runner has the same signature, ``run(workload, params, x, y, order, limit) -> seconds``:
it trains one epoch of ``workload`` (see :data:`WORKLOADS`) starting from the weights of
``params`` (an fnn network, copied so every peer starts from the same point), visiting the
examples in ``order``, and returns the wall time of the training loop alone (data and model
set-up are outside the timer). ``limit`` caps the number of examples (a fraction of an epoch,
used by the seed-style loop and by ``--quick``); the caller extrapolates.

Peers:

- ``fnn``: ``fnn.train`` itself, one epoch.
- ``fnn_on_batch``: the same with an ``on_batch`` callback that only counts the steps.
- ``fnn_continue``: the same with ``on_divergence="continue"``: no finiteness check of the loss
  and the new parameters after each step (what the default ``"raise"`` costs).
- ``numpy_plain``: straightforward pure NumPy, fresh arrays each step (what one writes first).
- ``numpy_tuned``: hand-tuned NumPy, preallocated buffers and in-place updates: the ceiling
  for a NumPy implementation of the same maths.
- ``torch``: PyTorch eager on CPU, ``nn.Sequential`` of ``nn.Linear``, float32, the same loss;
  a tight loop that gathers each minibatch with ``index_select`` (the fastest eager loop we know).
- ``torch_dataloader``: the same model and optimizer fed the idiomatic way, by
  ``DataLoader(TensorDataset(x, y), batch_size, shuffle=True, generator=seeded, num_workers=0)``;
  its per-batch collation (a stack of single examples) costs far more than the maths at W1's size.
- ``sklearn``: ``MLPClassifier(solver="sgd")``, one epoch; always log-loss on a softmax (or
  logistic) output, its own initialisation, so only roughly comparable.
- ``seed_loop``: a per-example loop over ``(n, 1)`` column vectors, as in the classic
  from-scratch code fnn grew out of (W1 only).

PyTorch and scikit-learn are optional: :func:`available` says which peers can run here.
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

import fnn

#: The final weights and summed loss of the last run of each NumPy/PyTorch peer (for cross-checks).
LAST: dict[str, Any] = {}


class Workload(NamedTuple):
    sizes: tuple[int, ...]
    activation: str  # hidden (and, for W1, output) activation
    output: str
    cost: str  # "mse" or "cross_entropy"
    batch_size: int
    lr: float
    momentum: float  # 0: plain SGD
    init: str


WORKLOADS: dict[str, Workload] = {
    "W1": Workload((784, 16, 16, 10), "sigmoid", "sigmoid", "mse", 10, 3.0, 0.0, "xavier"),
    "W2": Workload((784, 512, 512, 10), "relu", "identity", "cross_entropy", 128, 0.01, 0.9, "torch"),
}


def network(workload: str, seed: int = 0) -> tuple:
    w = WORKLOADS[workload]
    return fnn.mlp(list(w.sizes), w.activation, w.output, init=w.init, seed=seed)


def _weights(params: tuple) -> list[tuple[np.ndarray, np.ndarray]]:
    """Writeable copies of every Dense layer's ``(w, b)``."""
    return [(layer.w.copy(), layer.b.copy()) for layer in params if isinstance(layer, fnn.Dense)]


def _n(x: np.ndarray, limit: int | None) -> int:
    return len(x) if limit is None else min(limit, len(x))


# ---------------------------------------------------------------------------
# fnn
# ---------------------------------------------------------------------------


def run_fnn(workload: str, params: tuple, x: np.ndarray, y: np.ndarray, order: Any, limit: int | None,
            **options: Any) -> float:
    del order  # fnn draws its own order from the seed
    w = WORKLOADS[workload]
    n = _n(x, limit)
    cost = fnn.mse if w.cost == "mse" else fnn.cross_entropy
    if w.momentum:
        from fnn.optim import sgd

        kwargs: dict[str, Any] = {"optimizer": sgd(w.lr, momentum=w.momentum)}
    else:
        kwargs = {"lr": w.lr}
    t = time.perf_counter()
    fnn.train(params, (x[:n], y[:n]), epochs=1, batch_size=w.batch_size, cost=cost, seed=0, **kwargs, **options)
    return time.perf_counter() - t


def run_fnn_on_batch(workload: str, params: tuple, x: np.ndarray, y: np.ndarray, order: Any,
                     limit: int | None) -> float:
    """``fnn.train`` with an ``on_batch`` callback that only counts: what watching costs."""
    seen = [0]

    def count(state: Any, loss: float) -> None:
        seen[0] += 1

    return run_fnn(workload, params, x, y, order, limit, on_batch=count)


def run_fnn_continue(workload: str, params: tuple, x: np.ndarray, y: np.ndarray, order: Any,
                     limit: int | None) -> float:
    """``fnn.train`` with ``on_divergence="continue"``: what the per-step finiteness check costs."""
    return run_fnn(workload, params, x, y, order, limit, on_divergence="continue")


# ---------------------------------------------------------------------------
# NumPy references
# ---------------------------------------------------------------------------


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * z))


def run_numpy_plain(workload: str, params: tuple, x: np.ndarray, y: np.ndarray, order: np.ndarray,
                    limit: int | None) -> float:
    """Straightforward NumPy: the textbook batched loop, new arrays every step."""
    w = WORKLOADS[workload]
    ws = _weights(params)
    vs = [(np.zeros_like(a), np.zeros_like(b)) for a, b in ws]
    k, bs, lr = w.sizes[-1], w.batch_size, np.float32(w.lr)
    mom = np.float32(w.momentum)
    eye = np.eye(k, dtype=np.float32)
    n = _n(x, limit)
    t = time.perf_counter()
    total = 0.0
    for start in range(0, n, bs):
        idx = order[start : start + bs]
        hs = [x[idx]]
        for i, (a, b) in enumerate(ws):
            z = hs[-1] @ a + b
            last = i == len(ws) - 1
            if w.activation == "sigmoid":
                hs.append(_sigmoid(z))
            else:
                hs.append(z if last else np.maximum(z, 0))
        out, t_ = hs[-1], eye[y[idx]]
        if w.cost == "mse":
            diff = out - t_
            total += float((diff * diff).mean())
            d = 2 * diff / diff.size * out * (1 - out)
        else:
            e = np.exp(out - out.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
            total += float(-np.log(p[np.arange(len(idx)), y[idx]]).mean())
            d = (p - t_) / len(idx)
        grads = []
        for i in range(len(ws) - 1, -1, -1):
            a, _ = ws[i]
            grads.append((hs[i].T @ d, d.sum(axis=0)))
            if i:
                d = d @ a.T
                d = d * hs[i] * (1 - hs[i]) if w.activation == "sigmoid" else d * (hs[i] > 0)
        grads.reverse()
        for i, ((a, b), (ga, gb)) in enumerate(zip(ws, grads)):
            if w.momentum:
                va, vb = vs[i]
                va, vb = mom * va + ga, mom * vb + gb
                vs[i] = (va, vb)
                ga, gb = va, vb
            ws[i] = (a - lr * ga, b - lr * gb)
    elapsed = time.perf_counter() - t
    LAST["numpy_plain"] = (ws, total)
    return elapsed


def run_numpy_tuned(workload: str, params: tuple, x: np.ndarray, y: np.ndarray, order: np.ndarray,
                    limit: int | None) -> float:
    """Tuned NumPy: every buffer preallocated per batch size, updates and activations in place."""
    w = WORKLOADS[workload]
    ws = _weights(params)
    vs = [(np.zeros_like(a), np.zeros_like(b)) for a, b in ws]
    gs = [(np.empty_like(a), np.empty_like(b)) for a, b in ws]
    bs = w.batch_size
    lr, mom, half = np.float32(w.lr), np.float32(w.momentum), np.float32(0.5)
    sizes = w.sizes
    n = _n(x, limit)
    bufs: dict[int, tuple] = {}

    def buffers(m: int) -> tuple:
        if m not in bufs:
            xb = np.empty((m, sizes[0]), np.float32)
            hs = [xb] + [np.empty((m, s), np.float32) for s in sizes[1:]]
            ds = [None] + [np.empty((m, s), np.float32) for s in sizes[1:]]
            tmp = [None] + [np.empty((m, s), np.float32) for s in sizes[1:]]
            bufs[m] = (hs, ds, tmp, np.arange(m), np.empty(m, np.intp))
        return bufs[m]

    sigmoid = w.activation == "sigmoid"
    t = time.perf_counter()
    total = 0.0
    for start in range(0, n, bs):
        idx = order[start : start + bs]
        m = len(idx)
        hs, ds, tmp, rows, lab = buffers(m)
        np.take(x, idx, axis=0, out=hs[0])
        np.take(y, idx, out=lab)
        last = len(ws) - 1
        for i, (a, b) in enumerate(ws):
            h = hs[i + 1]
            np.matmul(hs[i], a, out=h)
            h += b
            if sigmoid:
                h *= half
                np.tanh(h, out=h)
                h += 1
                h *= half
            elif i < last:
                np.maximum(h, 0, out=h)
        out, d = hs[-1], ds[-1]
        if w.cost == "mse":
            np.copyto(d, out)
            d[rows, lab] -= 1  # out - onehot
            total += float(np.vdot(d, d)) / d.size
            d *= np.float32(2 / d.size)
            np.multiply(d, out, out=d)
            np.subtract(1, out, out=tmp[-1])
            d *= tmp[-1]
        else:
            np.subtract(out, out.max(axis=1, keepdims=True), out=d)
            np.exp(d, out=d)
            s = d.sum(axis=1, keepdims=True)
            d /= s
            total -= float(np.log(d[rows, lab]).mean())
            d[rows, lab] -= 1
            d *= np.float32(1 / m)
        for i in range(last, -1, -1):
            ga, gb = gs[i]
            np.matmul(hs[i].T, ds[i + 1], out=ga)
            np.sum(ds[i + 1], axis=0, out=gb)
            if i:
                dx = ds[i]
                np.matmul(ds[i + 1], ws[i][0].T, out=dx)
                h = hs[i]
                if sigmoid:
                    dx *= h
                    np.subtract(1, h, out=tmp[i])
                    dx *= tmp[i]
                else:
                    np.greater(h, 0, out=tmp[i])  # 0/1 as float32
                    dx *= tmp[i]
        for (a, b), (ga, gb), (va, vb) in zip(ws, gs, vs):
            if w.momentum:
                va *= mom
                va += ga
                vb *= mom
                vb += gb
                np.multiply(va, lr, out=ga)
                np.multiply(vb, lr, out=gb)
            else:
                ga *= lr
                gb *= lr
            a -= ga
            b -= gb
    elapsed = time.perf_counter() - t
    LAST["numpy_tuned"] = (ws, total)
    return elapsed


def run_seed_loop(workload: str, params: tuple, x: np.ndarray, y: np.ndarray, order: np.ndarray,
                  limit: int | None) -> float:
    """The classic per-example loop on ``(n, 1)`` column vectors, float64, quadratic cost."""
    w = WORKLOADS[workload]
    if workload != "W1":
        raise ValueError("the seed-style loop is W1 only")
    weights = [a.T.astype(np.float64) for a, _ in _weights(params)]  # (n_out, n_in)
    biases = [b.reshape(-1, 1).astype(np.float64) for _, b in _weights(params)]  # (n_out, 1)
    eta, bs = w.lr, w.batch_size
    n = _n(x, limit)

    def sig(z: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-z))

    def backprop(xc: np.ndarray, yc: np.ndarray) -> tuple[list, list]:
        nb = [np.zeros(b.shape) for b in biases]
        nw = [np.zeros(a.shape) for a in weights]
        act, acts, zs = xc, [xc], []
        for b, a in zip(biases, weights):
            z = np.dot(a, act) + b
            zs.append(z)
            act = sig(z)
            acts.append(act)
        delta = (acts[-1] - yc) * sig(zs[-1]) * (1 - sig(zs[-1]))
        nb[-1], nw[-1] = delta, np.dot(delta, acts[-2].transpose())
        for layer in range(2, len(weights) + 1):
            sp = sig(zs[-layer]) * (1 - sig(zs[-layer]))
            delta = np.dot(weights[-layer + 1].transpose(), delta) * sp
            nb[-layer], nw[-layer] = delta, np.dot(delta, acts[-layer - 1].transpose())
        return nb, nw

    t = time.perf_counter()
    for start in range(0, n, bs):
        nb = [np.zeros(b.shape) for b in biases]
        nw = [np.zeros(a.shape) for a in weights]
        for j in order[start : start + bs]:
            xc = x[j].reshape(-1, 1)
            yc = np.zeros((10, 1))
            yc[y[j]] = 1.0
            dnb, dnw = backprop(xc, yc)
            nb = [a + d for a, d in zip(nb, dnb)]
            nw = [a + d for a, d in zip(nw, dnw)]
        m = len(order[start : start + bs])
        weights = [a - (eta / m) * g for a, g in zip(weights, nw)]
        biases = [b - (eta / m) * g for b, g in zip(biases, nb)]
    return time.perf_counter() - t


# ---------------------------------------------------------------------------
# PyTorch and scikit-learn
# ---------------------------------------------------------------------------


def _torch_model(workload: str, params: tuple) -> tuple[Any, Any, Any, list]:
    """``(model, optimizer, loss, linears)``: fnn's network as ``nn.Sequential``, with its weights."""
    import torch
    from torch import nn

    w = WORKLOADS[workload]
    mods: list[nn.Module] = []
    denses = _weights(params)
    for i, (a, b) in enumerate(denses):
        lin = nn.Linear(a.shape[0], a.shape[1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(a.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        act = w.activation if i < len(denses) - 1 else w.output
        if act == "sigmoid":
            mods.append(nn.Sigmoid())
        elif act == "relu":
            mods.append(nn.ReLU())
    model = nn.Sequential(*mods)
    opt = torch.optim.SGD(model.parameters(), lr=w.lr, momentum=w.momentum)
    crit = nn.MSELoss() if w.cost == "mse" else nn.CrossEntropyLoss()
    return model, opt, crit, [m for m in mods if isinstance(m, nn.Linear)]


def _torch_step(workload: str, model: Any, opt: Any, crit: Any, xb: Any, yb: Any) -> float:
    from torch import nn

    w = WORKLOADS[workload]
    target = nn.functional.one_hot(yb, w.sizes[-1]).float() if w.cost == "mse" else yb
    opt.zero_grad(set_to_none=True)
    loss = crit(model(xb), target)
    loss.backward()
    opt.step()
    return loss.item()


def _torch_result(linears: list) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(m.weight.detach().numpy().T, m.bias.detach().numpy()) for m in linears]


def run_torch(workload: str, params: tuple, x: np.ndarray, y: np.ndarray, order: np.ndarray,
              limit: int | None) -> float:
    """PyTorch's tight loop: each minibatch gathered by ``index_select`` in ``order``."""
    import torch

    model, opt, crit, linears = _torch_model(workload, params)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    ot = torch.from_numpy(order.astype(np.int64))
    n, bs = _n(x, limit), WORKLOADS[workload].batch_size
    t = time.perf_counter()
    total = 0.0
    for start in range(0, n, bs):
        idx = ot[start : start + bs]
        total += _torch_step(workload, model, opt, crit, xt.index_select(0, idx), yt.index_select(0, idx))
    elapsed = time.perf_counter() - t
    LAST["torch"] = (_torch_result(linears), total)
    return elapsed


def run_torch_dataloader(workload: str, params: tuple, x: np.ndarray, y: np.ndarray, order: np.ndarray,
                         limit: int | None) -> float:
    """PyTorch as its tutorials write it: a shuffling ``DataLoader`` over a ``TensorDataset``.

    The order comes from a ``torch.Generator`` seeded with 0 (not ``order``): the loader draws
    its own permutation each epoch; one process (``num_workers=0``), as for every peer here.
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    del order
    model, opt, crit, linears = _torch_model(workload, params)
    n = _n(x, limit)
    data = TensorDataset(torch.from_numpy(x[:n]), torch.from_numpy(y[:n].astype(np.int64)))
    loader = DataLoader(data, batch_size=WORKLOADS[workload].batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(0), num_workers=0)
    t = time.perf_counter()
    total = 0.0
    for xb, yb in loader:
        total += _torch_step(workload, model, opt, crit, xb, yb)
    elapsed = time.perf_counter() - t
    LAST["torch_dataloader"] = (_torch_result(linears), total)
    return elapsed


def run_sklearn(workload: str, params: tuple, x: np.ndarray, y: np.ndarray, order: np.ndarray,
                limit: int | None) -> float:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    w = WORKLOADS[workload]
    del params, order  # its own initialisation and shuffling
    n = _n(x, limit)
    clf = MLPClassifier(
        hidden_layer_sizes=w.sizes[1:-1],
        activation="logistic" if w.activation == "sigmoid" else "relu",
        solver="sgd", alpha=0.0, batch_size=w.batch_size,
        learning_rate_init=0.5 if w.cost == "mse" else w.lr,
        momentum=w.momentum, nesterovs_momentum=False, max_iter=1, shuffle=True, random_state=0,
        early_stopping=False, tol=0.0, n_iter_no_change=10**9,
    )
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x[:n], y[:n])
    return time.perf_counter() - t


# ---------------------------------------------------------------------------
# The GEMM bound
# ---------------------------------------------------------------------------


def gemm_seconds(workload: str, n: int, repeats: int = 5) -> float:
    """The time of the matrix products alone for one epoch of ``n`` examples.

    Times ``x @ w`` (forward), ``x.T @ dy`` (weight gradient) and ``dy @ w.T`` (input gradient)
    at each layer's exact float32 shapes for a full batch (best of ``repeats`` timings of a loop),
    and scales by the number of examples: ``n / batch`` steps of ``3 x`` forward FLOPs.
    """
    w = WORKLOADS[workload]
    bs, sizes = w.batch_size, w.sizes
    g = np.random.default_rng(0)
    per_step = 0.0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        a = g.standard_normal((bs, n_in), dtype=np.float32)
        wt = g.standard_normal((n_in, n_out), dtype=np.float32)
        dy = g.standard_normal((bs, n_out), dtype=np.float32)
        products = (  # (left, right, out): forward, weight gradient, input gradient
            (a, wt, np.empty((bs, n_out), np.float32)),
            (a.T, dy, np.empty((n_in, n_out), np.float32)),
            (dy, wt.T, np.empty((bs, n_in), np.float32)),
        )
        for left, right, out in products:
            np.matmul(left, right, out=out)
            loops = 20
            best = np.inf
            for _ in range(repeats):
                t = time.perf_counter()
                for _ in range(loops):
                    np.matmul(left, right, out=out)
                best = min(best, (time.perf_counter() - t) / loops)
            per_step += best
    return per_step * n / bs


RUNNERS: dict[str, Callable[..., float]] = {
    "fnn": run_fnn,
    "fnn_on_batch": run_fnn_on_batch,
    "fnn_continue": run_fnn_continue,
    "numpy_tuned": run_numpy_tuned,
    "numpy_plain": run_numpy_plain,
    "torch": run_torch,
    "torch_dataloader": run_torch_dataloader,
    "sklearn": run_sklearn,
    "seed_loop": run_seed_loop,
}

NEEDS = {"torch": "torch", "torch_dataloader": "torch", "sklearn": "sklearn"}


def available(peer: str) -> bool:
    """Whether ``peer``'s optional dependency is installed."""
    mod = NEEDS.get(peer)
    return mod is None or importlib.util.find_spec(mod) is not None
