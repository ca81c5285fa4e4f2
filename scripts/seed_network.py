"""Reproduce the original project: the 784-16-16-10 sigmoid network, squared error, plain SGD.

Usage::

    python scripts/seed_network.py                     # fnn train's defaults: lr 15, batch 32, 40 epochs
    python scripts/seed_network.py --classic           # the textbook settings: N(0, 1) init, eta = 3
    python scripts/seed_network.py --epochs 10 --seed 1 --out runs/seed

It trains on the 8,000 digits that ship with fnn and reports the accuracy on the 2,000 test
digits after every epoch and at the end.

A note on the learning rate. The textbook cost is ``C = 1/(2 n) sum_x ||a(x) - y(x)||^2`` over a
minibatch of ``n`` examples, with gradient ``(a - y) / n`` at the output. fnn's ``mse`` is the
mean over all ``n * 10`` output elements, with gradient ``2 (a - y) / (10 n)``: five times
smaller. So the textbook rate ``eta`` is fnn's ``lr = 5 * eta``; ``--classic`` uses ``eta = 3``
(``lr = 15``), batch 10, 30 epochs and weights and biases drawn from ``N(0, 1)``.
"""

from __future__ import annotations

import argparse
import sys

from fnn import runs

CLASSIC = {"init": "normal", "lr": 15.0, "batch_size": 10, "epochs": 30}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classic", action="store_true", help="textbook settings: N(0, 1) init, eta = 3 (lr 15)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--init", help="xavier (default), normal, he or torch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR", help="also write a run directory")
    args = p.parse_args(argv)
    config = {"layers": [784, 16, 16, 10], "activation": "sigmoid", "output_activation": "sigmoid",
              "cost": "mse", "optimizer": "sgd", "schedule": "constant", "dataset": "digits", "seed": args.seed}
    if args.classic:
        config.update(CLASSIC)
    config.update({k: v for k, v in vars(args).items() if k in ("epochs", "lr", "batch_size", "init") and v})
    cfg = runs.resolve_config(config)
    print(f"seed network 784-16-16-10 sigmoid, squared error, SGD lr {cfg['lr']:g} (textbook eta "
          f"{cfg['lr'] / 5:g}), batch {cfg['batch_size']}, {cfg['epochs']} epochs, init {cfg['init']}, "
          f"seed {cfg['seed']}")
    result = runs.run(cfg, args.out, log=print)
    final = result.record["final"]
    print(f"test accuracy {final['test_accuracy']:.4f} on {result.record['data']['n_test']} test digits "
          f"({result.record['wall_time_s']:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
