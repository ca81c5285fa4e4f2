"""Run one configuration with N seeds and print mean ± std of the test accuracy.

Usage::

    python scripts/sweep_seeds.py                                 # fnn train's defaults, 5 seeds
    python scripts/sweep_seeds.py --seeds 10 --workers 2 --lr 5 --batch-size 20
    python scripts/sweep_seeds.py --config my.toml --epochs 10 --out runs/sweep1
    python scripts/sweep_seeds.py --seeds 8 --scheduler local --workers 2      # Dask LocalCluster
    python scripts/sweep_seeds.py --seeds 64 --scheduler tcp://scheduler:8786   # a running Dask cluster

Any ``fnn train`` option (``--layers``, ``--lr``, ``--epochs``, ...) or a ``--config`` file sets
the configuration; seeds ``first-seed .. first-seed + seeds - 1`` replace its ``seed``. With
``--workers > 1`` the runs go to a process pool through :func:`fnn.parallel.sweep`. With ``--out``
each run writes its run directory ``OUT/run-<i>``. The std is the sample standard deviation.
``--scheduler ADDRESS`` sends the runs to a Dask cluster instead (``pip install fnn[dask]``):
``local`` starts a LocalCluster of ``--workers`` processes; an address connects to a running one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
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
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument("--out", metavar="DIR", help="write each run's directory under DIR")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on Dask: 'local' (a LocalCluster of --workers processes) or an address "
                        "like tcp://host:8786 (pip install fnn[dask])")
    return p


def _dask_sweep(configs: list[dict], scheduler: str, workers: int, out: str | None) -> list[dict]:
    import logging

    from dask.distributed import Client, LocalCluster

    from fnn import parallel

    if scheduler == "local":
        with (
            LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=":0",
                         silence_logs=logging.ERROR) as cluster,
            Client(cluster) as client,
        ):
            return parallel.sweep(configs, client.get_executor(), out=out)
    with Client(scheduler) as client:
        return parallel.sweep(configs, client.get_executor(), out=out)


def sweep_seeds(
    config: dict[str, Any], seeds: list[int], workers: int = 1, out: str | None = None,
    scheduler: str | None = None,
) -> list[dict]:
    """The records of ``config`` run once per seed, in seed order."""
    configs = [runs.resolve_config({**config, "seed": s}) for s in seeds]  # fail before any work
    if scheduler is not None:
        return _dask_sweep(configs, scheduler, workers, out)
    if workers > 1:
        from fnn import parallel

        with ProcessPoolExecutor(workers) as ex:
            return parallel.sweep(configs, ex, out=out)
    return [
        runs.run(c, None if out is None else f"{out}/run-{i:0{len(str(len(seeds) - 1))}d}").record
        for i, c in enumerate(configs)
    ]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config: dict[str, Any] = cli.read_config_file(args.config) if args.config else {}
    config.update({k: v for k, v in vars(args).items()
                   if k in runs.DEFAULTS and k != "seed" and v is not None})
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    cfg = runs.resolve_config(config)
    print("config: " + ", ".join(f"{k}={v}" for k, v in cfg.items() if k != "seed"))
    t0 = time.perf_counter()
    records = sweep_seeds(config, seeds, args.workers, args.out, args.scheduler)
    print(f"\n{'seed':>6} {'test acc':>9} {'test loss':>10} {'epochs':>7} {'seconds':>8}")
    accs = []
    for seed, rec in zip(seeds, records):
        if rec.get("status") == "failed":
            print(f"{seed:>6}  failed: {rec['error']}")
            continue
        f = rec["final"]
        accs.append(f["test_accuracy"])
        print(f"{seed:>6} {f['test_accuracy']:>9.4f} {f['test_loss']:>10.4f} {rec['epochs_done']:>7} "
              f"{rec['wall_time_s']:>8.1f}")
    if not accs:
        return 1
    std = statistics.stdev(accs) if len(accs) > 1 else 0.0
    print(f"{'mean':>6} {statistics.fmean(accs):>9.4f} ± {std:.4f} (std over {len(accs)} seeds; "
          f"min {min(accs):.4f}, max {max(accs):.4f}; {time.perf_counter() - t0:.1f}s in all)")
    return 0 if len(accs) == len(records) else 1


if __name__ == "__main__":
    sys.exit(main())
