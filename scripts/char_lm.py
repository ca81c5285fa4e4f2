"""A character-level language model of English words: fnn against a bigram count model and PyTorch.

Usage::

    python scripts/char_lm.py                       # LSTM and transformer, 3 epochs each
    python scripts/char_lm.py --models transformer --epochs 10 --samples 20 --key 7
    python scripts/char_lm.py --quick               # a smoke run: 2,000 windows, 1 epoch

The task is :func:`fnn.datasets.load_words` (Debian's ``wamerican`` list, every character of
every word and its end, context 16). Two small models, both ending in a ``Dense`` to the 27
tokens:

- LSTM: ``Embedding(27, 64) -> LSTM(64 -> 128) -> Dense(128 -> 27)``;
- transformer: ``Embedding(27, 64) + PositionalEmbedding(16, 64)``, 2 pre-norm blocks
  ``Residual((LayerNorm, MultiHeadAttention(64, 4 heads, causal)))``,
  ``Residual((LayerNorm, Dense(64 -> 256), GELU, Dense(256 -> 64)))``, then ``LayerNorm, Dense(64 -> 27)``.

Each is trained with Adam (lr 3e-3, batch 64) by ``fnn.step`` and, side by side, by the same
architecture in PyTorch built from the same initial weights and fed the same batches in the
same order. The table gives the dev loss in nats per character of both, and of a bigram count
model (add-one smoothing) fitted on the training split; then words sampled from the fnn models
from an explicit ``--key``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

import fnn

V, D, HEADS, CONTEXT, HIDDEN = 27, 64, 4, 16, 128


# ---------------------------------------------------------------------------
# The models, in fnn
# ---------------------------------------------------------------------------


def lstm_lm(seed: int = 0) -> tuple[Any, ...]:
    """``Embedding(27, 64) -> LSTM(64 -> 128) -> Dense(128 -> 27)``, PyTorch's initialisation."""
    k = fnn.random.split(seed, 3)
    return (fnn.embedding(k[0], V, D), fnn.lstm(k[1], D, HIDDEN), fnn.dense(k[2], HIDDEN, V, init="torch"))


def transformer_lm(seed: int = 0, blocks: int = 2) -> tuple[Any, ...]:
    """A GPT-style pre-norm transformer of ``blocks`` blocks, d = 64, 4 heads, context 16."""
    k = fnn.random.split(seed, 3 + 3 * blocks)
    net: tuple[Any, ...] = (fnn.embedding(k[0], V, D), fnn.positional_embedding(k[1], CONTEXT, D))
    for b in range(blocks):
        kb = k[3 + 3 * b : 6 + 3 * b]
        net += (fnn.Residual((fnn.layer_norm(D), fnn.attention(kb[0], D, HEADS))),
                fnn.Residual((fnn.layer_norm(D), fnn.dense(kb[1], D, 4 * D, init="torch"), fnn.GELU(),
                              fnn.dense(kb[2], 4 * D, D, init="torch"))))
    return net + (fnn.layer_norm(D), fnn.dense(k[2], D, V, init="torch"))


# ---------------------------------------------------------------------------
# The same models in PyTorch, from fnn's weights
# ---------------------------------------------------------------------------


def _t(a: np.ndarray) -> Any:
    import torch

    return torch.nn.Parameter(torch.tensor(np.array(a)))


def torch_model(params: tuple[Any, ...]) -> Any:
    """A ``torch.nn.Module`` computing what ``params`` computes, with a copy of its weights."""
    import torch

    nn = torch.nn

    def linear(d: fnn.Dense) -> Any:
        m = nn.Linear(*d.w.shape)
        m.weight, m.bias = _t(d.w.T), _t(d.b)
        return m

    def norm(n: fnn.LayerNorm) -> Any:
        m = nn.LayerNorm(n.gamma.shape[0], eps=n.eps)
        m.weight, m.bias = _t(n.gamma), _t(n.beta)
        return m

    class Attention(nn.Module):
        def __init__(self, a: fnn.MultiHeadAttention) -> None:
            super().__init__()
            self.m = nn.MultiheadAttention(a.w_out.shape[0], a.heads, batch_first=True)
            self.m.in_proj_weight, self.m.in_proj_bias = _t(a.w_in.T), _t(a.b_in)
            self.m.out_proj.weight, self.m.out_proj.bias = _t(a.w_out.T), _t(a.b_out)

        def forward(self, x: Any) -> Any:
            mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1], dtype=x.dtype)
            return self.m(x, x, x, attn_mask=mask, need_weights=False, is_causal=True)[0]

    class Residual(nn.Module):
        def __init__(self, r: fnn.Residual) -> None:
            super().__init__()
            self.f = nn.Sequential(*[convert(layer) for layer in r.layers])

        def forward(self, x: Any) -> Any:
            return x + self.f(x)

    class Positions(nn.Module):
        def __init__(self, p: fnn.PositionalEmbedding) -> None:
            super().__init__()
            self.table = _t(p.table)

        def forward(self, x: Any) -> Any:
            return x + self.table[: x.shape[1]]

    class LSTM(nn.Module):
        def __init__(self, lstm: fnn.LSTM) -> None:
            super().__init__()
            self.m = nn.LSTM(lstm.w_x.shape[0], lstm.w_h.shape[0], batch_first=True)
            self.m.weight_ih_l0, self.m.weight_hh_l0 = _t(lstm.w_x.T), _t(lstm.w_h.T)
            self.m.bias_ih_l0, self.m.bias_hh_l0 = _t(lstm.b), _t(np.zeros_like(lstm.b))
            self.m.flatten_parameters()

        def forward(self, x: Any) -> Any:
            return self.m(x)[0]

    def convert(layer: Any) -> Any:
        kind = type(layer)
        if kind is fnn.Embedding:
            m = nn.Embedding(*layer.table.shape)
            m.weight = _t(layer.table)
            return m
        if kind is fnn.GELU:
            return nn.GELU(approximate="tanh")
        if kind is fnn.Dense:
            return linear(layer)
        if kind is fnn.LayerNorm:
            return norm(layer)
        make = {fnn.MultiHeadAttention: Attention, fnn.Residual: Residual, fnn.PositionalEmbedding: Positions,
                fnn.LSTM: LSTM}[kind]
        return make(layer)

    return nn.Sequential(*[convert(layer) for layer in params])


# ---------------------------------------------------------------------------
# Training side by side, the bigram baseline, sampling
# ---------------------------------------------------------------------------


def batches(n: int, batch: int, epochs: int, seed: int) -> list[np.ndarray]:
    """The minibatch indices of every epoch, shuffled from ``seed``: the same for both libraries."""
    g = fnn.random.generator(seed)
    return [p[i : i + batch] for _ in range(epochs) for p in [g.permutation(n)] for i in range(0, n, batch)]


def train_fnn(params: tuple[Any, ...], data: tuple[np.ndarray, np.ndarray], order: list[np.ndarray],
              lr: float) -> tuple[tuple[Any, ...], float]:
    """``fnn.step`` over the batches in ``order``; returns the params and the seconds taken."""
    opt = fnn.adam(lr)
    settings = fnn.Settings(cost=fnn.cross_entropy, optimizer=opt)
    state = fnn.init_state(params, opt, 0)
    x, y = data
    t = time.perf_counter()
    for idx in order:
        state, _ = fnn.step(state, (x[idx], y[idx]), settings)
    return state.params, time.perf_counter() - t


def train_torch(model: Any, data: tuple[np.ndarray, np.ndarray], order: list[np.ndarray], lr: float) -> float:
    """The PyTorch twin over the same batches (Adam, the same lr); returns the seconds taken."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr)
    x, y = torch.from_numpy(data[0]), torch.from_numpy(data[1])
    t = time.perf_counter()
    for idx in order:
        i = torch.from_numpy(idx)
        opt.zero_grad()
        logits = model(x[i])
        torch.nn.functional.cross_entropy(logits.reshape(-1, V), y[i].reshape(-1)).backward()
        opt.step()
    return time.perf_counter() - t


def torch_loss(model: Any, data: tuple[np.ndarray, np.ndarray]) -> float:
    import torch

    with torch.no_grad():
        logits = model(torch.from_numpy(data[0]))
        return float(torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.from_numpy(data[1]).reshape(-1)))


def bigram_loss(train: tuple[np.ndarray, np.ndarray], dev: tuple[np.ndarray, np.ndarray]) -> float:
    """Nats per character of the add-one-smoothed bigram counts of ``train``, on ``dev``."""
    counts = np.ones((V, V))
    np.add.at(counts, (train[0].ravel(), train[1].ravel()), 1)
    logp = np.log(counts / counts.sum(axis=1, keepdims=True))  # (previous, next)
    return float(-logp[dev[0].ravel(), dev[1].ravel()].mean())


def sample(params: tuple[Any, ...], key: fnn.random.KeyLike, n: int, alphabet: str, max_len: int = 24) -> list[str]:
    """``n`` words drawn one character at a time from the model, from ``key``."""
    g = fnn.random.generator(key)
    words = []
    for _ in range(n):
        ids = [0]  # the start token
        while len(ids) <= max_len:
            logits = fnn.forward(params, np.array([ids[-CONTEXT:]]))[0, -1].astype(np.float64)  # (27,)
            p = np.exp(logits - logits.max())
            ids.append(int(g.choice(V, p=p / p.sum())))
            if ids[-1] == 0:
                break
        words.append("".join(alphabet[i] for i in ids[1:]).rstrip("."))
    return words


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="lstm,transformer")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0, help="initial weights, split and batch order")
    ap.add_argument("--key", type=int, default=0, help="the key of the sampled words")
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch twin")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2,000 training windows, 1 epoch")
    args = ap.parse_args(argv)
    words = fnn.datasets.load_words(context=CONTEXT, seed=args.seed)
    train, dev = words.train, words.dev
    if args.quick:
        train, dev, args.epochs = (train[0][:2000], train[1][:2000]), (dev[0][:500], dev[1][:500]), 1
    have_torch = not args.no_torch
    if have_torch:
        try:
            import torch

            torch.manual_seed(args.seed)
        except ImportError:
            have_torch = False
    order = batches(len(train[0]), args.batch_size, args.epochs, args.seed)
    print(f"fnn char LM: {len(words.words[0])} training words, {train[0].size} training characters, "
          f"context {CONTEXT}, {args.epochs} epochs of batch {args.batch_size}, Adam {args.lr:g}, seed {args.seed}")
    rows = [("bigram counts (add-one)", bigram_loss(train, dev), None, None, None)]
    trained = {}
    for name in args.models.split(","):
        params = {"lstm": lstm_lm, "transformer": transformer_lm}[name](args.seed)
        twin = torch_model(params) if have_torch else None
        params, seconds = train_fnn(params, train, order, args.lr)
        trained[name] = params
        loss = fnn.loss(params, dev, fnn.cross_entropy)
        if twin is not None:
            t_seconds = train_torch(twin, train, order, args.lr)
            rows.append((name, loss, torch_loss(twin, dev), seconds, t_seconds))
        else:
            rows.append((name, loss, None, seconds, None))
    print("\n| model | fnn dev nats/char | PyTorch dev nats/char | fnn train s | PyTorch train s |")
    print("|---|---:|---:|---:|---:|")
    for name, a, b, s, ts in rows:
        def cell(v: float | None, f: str) -> str:
            return "-" if v is None else format(v, f)

        print(f"| {name} | {a:.4f} | {cell(b, '.4f')} | {cell(s, '.1f')} | {cell(ts, '.1f')} |")
    for name, params in trained.items():
        print(f"\n{name}, {args.samples} words sampled with key {args.key}: "
              + " ".join(sample(params, args.key, args.samples, words.alphabet)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
