"""Run one configuration with N seeds and print mean ± std of the test accuracy: a thin ``fnn.runs.sweep``.

Usage::

    python scripts/sweep_seeds.py                                 # fnn train's defaults, 5 seeds
    python scripts/sweep_seeds.py --seeds 10 --workers 2 --lr 5 --batch-size 20
    python scripts/sweep_seeds.py --config my.toml --epochs 10 --out sweeps/seeds1
    python scripts/sweep_seeds.py --seeds 8 --scheduler local --workers 2      # Dask LocalCluster
    python scripts/sweep_seeds.py --seeds 64 --scheduler tcp://scheduler:8786   # a running Dask cluster

Any ``fnn train`` option (``--layers``, ``--lr``, ``--epochs``, ...) or a ``--config`` file sets
the configuration; seeds ``first-seed .. first-seed + seeds - 1`` replace its ``seed``. It is
``fnn sweep`` of the grid ``{**config, "seed": [...]}``: run directories under ``--out``
(default ``sweeps/seeds-<config hash>``), the summary table with the mean ± sample std, and
the same resuming; see docs/sweeps.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fnn import cli, runs


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag, kind, text in cli._TRAIN_OPTIONS:
        if flag != "--seed":
            p.add_argument(flag, type=kind, default=None, help=text)
    p.add_argument("--config", metavar="FILE", help="a TOML or JSON file of config keys")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (default 5)")
    p.add_argument("--first-seed", type=int, default=0, help="the first seed (default 0)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default 1)")
    p.add_argument("--out", metavar="DIR", help="the sweep directory (default sweeps/seeds-<config hash>)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on Dask: 'local' (a LocalCluster of --workers processes) or an address "
                        "like tcp://host:8786 (pip install fnn[dask])")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config: dict[str, Any] = cli.read_config_file(args.config) if args.config else {}
    config.update({k: v for k, v in vars(args).items() if k in runs.DEFAULTS and k != "seed" and v is not None})
    grid = {**config, "seed": list(range(args.first_seed, args.first_seed + args.seeds))}
    configs = runs.sweep_configs(grid)  # every seed's config checked before any work
    out = Path(args.out or f"sweeps/seeds-{runs.config_hash({**configs[0], 'seed': None})}")
    with cli.sweep_executor(args.workers, args.scheduler) as executor:
        result = runs.sweep(configs, executor, out=out, log=print)
    print("\n" + result.table)
    return 0 if all(r["status"] == "completed" for r in result.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
