"""The ``fnn`` command: ``fnn train``, ``fnn evaluate RUN_DIR``, ``fnn info RUN_DIR``, ``fnn sweep GRID``.

``fnn train`` with no options trains the seed network (784-16-16-10, sigmoid,
squared error, plain SGD) on the digits that ship with fnn, prints one line
per epoch and the test accuracy, and writes a run directory (see
:mod:`fnn.runs`). Options override a ``--config`` file (TOML or JSON), which
overrides the defaults. Exit codes: 0 done, 1 training diverged, 2 bad
usage or configuration, 130 interrupted (Ctrl-C; the last complete epoch's
checkpoint is saved and ``fnn train --resume RUN_DIR`` continues from it).

>>> build_parser().parse_args(["train", "--layers", "784,32,10", "--lr", "0.5"]).layers
'784,32,10'
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fnn import runs
from fnn.costs import COSTS
from fnn.describe import num_params
from fnn.layers import ACTIVATIONS, INITS

__all__ = ["main", "build_parser", "read_config_file", "sweep_executor"]

# (option, type, help); the config key is the option name with underscores
_TRAIN_OPTIONS: tuple[tuple[str, Any, str], ...] = (
    ("--dataset", str, f"one of {', '.join(runs.DATASETS)} (default digits, shipped with fnn)"),
    ("--data-dir", str, "folder holding the MNIST/Fashion-MNIST IDX files (default: search the usual places)"),
    ("--layers", str, "layer sizes, comma-separated (default 784,16,16,10)"),
    ("--activation", str, f"hidden activation: {', '.join(ACTIVATIONS)} (default {runs.DEFAULTS['activation']})"),
    ("--output-activation", str, "output activation (default: identity for cross-entropy, else --activation)"),
    ("--cost", str, f"one of {', '.join(COSTS)} (default {runs.DEFAULTS['cost']})"),
    ("--init", str, f"one of {', '.join(INITS)} (default {runs.DEFAULTS['init']})"),
    ("--optimizer", str, f"one of {', '.join(runs.OPTIMIZERS)} (default sgd)"),
    ("--lr", float, f"learning rate (default {runs.DEFAULTS['lr']:g})"),
    ("--schedule", str, f"learning-rate schedule: {', '.join(runs.SCHEDULES)} (default constant)"),
    ("--epochs", int, f"total number of epochs, with --resume the new total (default {runs.DEFAULTS['epochs']})"),
    ("--batch-size", int, f"minibatch size (default {runs.DEFAULTS['batch_size']})"),
    ("--seed", int, "seed of the initial params, the batch order and the validation split (default 0)"),
    ("--dtype", str, "float32 or float64 (default float32)"),
    ("--validation", float, "fraction of the training data held out for validation (default 0: use test)"),
    ("--patience", int, "stop after this many epochs without a better validation loss (needs --validation)"),
    ("--model", str, f"architecture: {' or '.join(runs.MODELS)} (default mlp; cnn is fnn.cnn, ignores --layers)"),
    ("--dropout", float, "drop probability after each hidden layer (default 0)"),
    ("--weight-decay", float, "decoupled for adamw, else an L2 penalty (default: the optimizer's own)"),
    ("--channels", str, "with --model cnn: output channels of each conv block, comma-separated (default 32,64)"),
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``fnn`` command."""
    parser = argparse.ArgumentParser(prog="fnn", description="Neural networks from scratch in NumPy.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    train = sub.add_parser("train", help="train a network and write a run directory",
                           description="Train a network; options override --config, which overrides defaults.")
    for flag, kind, text in _TRAIN_OPTIONS:
        train.add_argument(flag, type=kind, default=None, help=text)
    train.add_argument("--no-download", dest="download", action="store_const", const=False, default=None,
                       help="never download MNIST/Fashion-MNIST; fail if the files are not on disk")
    train.add_argument("--batch-norm", dest="batch_norm", action="store_const", const=True, default=None,
                       help="with --model cnn: a BatchNorm after each convolution")
    train.add_argument("--flip", dest="flip", action="store_const", const=True, default=None,
                       help="with --model cnn: random horizontal flips of the training images (augmentation)")
    train.add_argument("--out", metavar="DIR", help="run directory (default runs/<UTC time>-<config hash>)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint")
    train.add_argument("--config", metavar="FILE", help="a TOML or JSON file of config keys")
    train.add_argument("--quiet", action="store_true", help="print only the final result")
    train.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="progress bar over each epoch's minibatches (default: when stdout is a terminal)")
    evaluate = sub.add_parser("evaluate", help="test accuracy and confusion matrix of a run")
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON")
    info = sub.add_parser("info", help="print the record of a run")
    info.add_argument("run_dir", metavar="RUN_DIR")
    info.add_argument("--json", action="store_true", help="print record.json as it is")
    _add_sweep(sub)
    return parser


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Config keys from a ``.toml`` or ``.json`` file (``batch-size`` and ``batch_size`` both work).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.toml"
    >>> _ = p.write_text('lr = 0.5\\nbatch-size = 20\\n')
    >>> read_config_file(p)
    {'lr': 0.5, 'batch_size': 20}
    """
    path = Path(path)
    text = path.read_text()
    if path.suffix == ".json":
        loaded = json.loads(text)
    elif path.suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            try:
                import tomli as tomllib
            except ImportError:
                raise runs.ConfigError(f"{path}: reading TOML on Python 3.10 needs tomli; use JSON.") from None
        loaded = tomllib.loads(text)
    else:
        raise runs.ConfigError(f"{path}: a config file must end in .toml or .json, got {path.suffix!r}.")
    if not isinstance(loaded, dict):
        raise runs.ConfigError(f"{path}: expected a table of config keys, got {type(loaded).__name__}.")
    return {k.replace("-", "_"): v for k, v in loaded.items()}


def _given(args: argparse.Namespace) -> dict[str, Any]:
    keys = [flag[2:].replace("-", "_") for flag, _, _ in _TRAIN_OPTIONS] + ["download", "batch_norm", "flip"]
    return {k: getattr(args, k) for k in keys if getattr(args, k) is not None}


def _train(args: argparse.Namespace) -> int:
    say = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    config: dict[str, Any] = {}
    if args.resume:
        config.update(runs._read_config(Path(args.resume)))
    if args.config:
        config.update(read_config_file(args.config))
    config.update(_given(args))
    cfg = runs.resolve_config(config)  # every name checked before any work
    if args.resume:
        out = Path(args.resume)
        if args.out and Path(args.out).resolve() != out.resolve():
            raise runs.ConfigError("--resume continues in its own run directory; drop --out.")
    else:
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        out = Path(args.out) if args.out else Path("runs") / f"{stamp}-{runs.config_hash(cfg)}"
    progress = sys.stdout.isatty() if args.progress is None else args.progress
    if progress:
        try:
            import tqdm  # noqa: F401
        except ImportError:
            progress = False
    layers = "-".join(map(str, cfg["layers"])) + f" {cfg['activation']}/{cfg['output_activation']}"
    if cfg.get("model") == "cnn":
        layers = "cnn " + "-".join(map(str, cfg["channels"])) + (" batch-norm" if cfg.get("batch_norm") else "") + (
            " flip" if cfg.get("flip") else "")
    if cfg.get("dropout"):
        layers += f" dropout {cfg['dropout']:g}"
    layers += f" ({num_params(runs.build(cfg)):,} params)"
    say(f"fnn train: {layers}, {cfg['cost']}, "
        f"{cfg['optimizer']} lr {cfg['lr']:g}, batch {cfg['batch_size']}, {cfg['epochs']} epochs, "
        f"{cfg['dataset']}, seed {cfg['seed']} -> {out}")
    try:
        if args.resume:
            result = runs.resume(out, cfg, progress=progress, log=say)
        else:
            result = runs.run(cfg, out, progress=progress, log=say)
    except KeyboardInterrupt:
        if (out / runs.CHECKPOINT_FILE).exists():
            print(f"\ninterrupted: the checkpoint of the last complete epoch is in {out}; "
                  f"continue with: fnn train --resume {out}", file=sys.stderr)
        else:
            print("\ninterrupted before the first epoch finished; no checkpoint to resume from.", file=sys.stderr)
        return 130
    except runs.DivergenceError as e:
        print(f"fnn train: {e}\nThe last finite checkpoint is in {out}.", file=sys.stderr)
        return 1
    final = result.record["final"]
    print(f"test accuracy {final['test_accuracy']:.4f}  ({result.record['wall_time_s']:.1f}s)  run: {out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    res = runs.evaluate(args.run_dir)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"{res['dataset']} test accuracy {res['accuracy']:.4f} ({res['correct']}/{res['n']}), "
          f"loss {res['loss']:.4f}")
    print("confusion matrix (rows: true class, columns: predicted):")
    k = len(res["confusion"])
    print("      " + "".join(f"{j:>6}" for j in range(k)))
    for i, row in enumerate(res["confusion"]):
        print(f"{i:>6}" + "".join(f"{v:>6}" for v in row))
    print("per-class accuracy: " + "  ".join(
        f"{i} {'-' if a is None else format(a, '.3f')}" for i, a in enumerate(res["per_class_accuracy"])))
    return 0


def _info(args: argparse.Namespace) -> int:
    path = Path(args.run_dir) / runs.RECORD_FILE
    if not path.exists():
        raise FileNotFoundError(f"{args.run_dir} has no {runs.RECORD_FILE}; is it a run directory?")
    rec = json.loads(path.read_text())
    if args.json:
        print(json.dumps(rec, indent=2))
        return 0
    cfg = rec["config"]
    print(f"run {args.run_dir}: {rec['status']}, {rec['epochs_done']} epochs, seed {rec['seed']}, "
          f"config {rec['config_hash']}")
    print("config: " + ", ".join(f"{k}={v}" for k, v in cfg.items()))
    count = rec.get("num_params")  # records written before it was recorded: count the config's network
    count = num_params(runs.build(runs.resolve_config(cfg))) if count is None else count
    print(f"trainable params: {count:,}")
    print(f"{'epoch':>6} {'loss':>9} {'train acc':>9} {'val loss':>9} {rec['validation_on'] + ' acc':>9} "
          f"{'lr':>9} {'seconds':>8}")

    def cell(h: dict[str, Any], key: str, spec: str) -> str:  # records of older runs lack some keys
        return "" if h.get(key) is None else format(h[key], spec)

    for h in rec["history"]:
        print(f"{h['epoch']:>6} {h['loss']:>9.4f} {cell(h, 'accuracy', '.4f'):>9} {cell(h, 'val_loss', '.4f'):>9} "
              f"{cell(h, 'val_accuracy', '.4f'):>9} {cell(h, 'lr', '.3g'):>9} {cell(h, 'seconds', '.1f'):>8}")
    if "final" in rec:
        print("final: " + ", ".join(f"{k} {v:.4f}" for k, v in rec["final"].items() if v is not None))
    print(f"wall time {rec['wall_time_s']:.1f}s (total {rec['wall_time_total_s']:.1f}s); plot: {rec.get('plot')}")
    d, env = rec["data"], rec["environment"]
    print(f"data: {d['dataset']}, train sha256 {d['train_sha256'][:16]}..., "
          f"{d['n_train']} train / {d['n_validation']} validation / {d['n_test']} test")
    print("environment: " + ", ".join(f"{k} {v}" for k, v in env.items()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fnn`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = {"train": _train, "evaluate": _evaluate, "info": _info, "sweep": _sweep}[args.command]
    try:
        return command(args)
    except (runs.ConfigError, FileNotFoundError, runs.fio.CheckpointError) as e:
        print(f"fnn {args.command}: error: {e}", file=sys.stderr)
        return 2


# ---------------------------------------------------------------------------
# fnn sweep GRID.toml: a grid of runs (see fnn.runs.sweep and docs/sweeps.md)
# ---------------------------------------------------------------------------


def _add_sweep(sub: Any) -> None:
    sweep = sub.add_parser(
        "sweep", help="run a grid of configurations, resumably, and summarise them",
        description="Run every configuration of a grid file (TOML or JSON: fnn train config keys, a list value "
                    "is an axis) and write DIR/runs/<config hash>/, DIR/summary.csv, DIR/summary.md and "
                    "DIR/sweep.png. Run the same command again to continue. Exit 0 when every run completed, "
                    "1 otherwise, 2 for a bad grid (nothing is trained), 130 on Ctrl-C.")
    sweep.add_argument("grid", metavar="GRID", help="a .toml or .json grid file")
    sweep.add_argument("--workers", type=int, default=None,
                       help="runs at a time in local processes, one BLAS thread each (default 1: one by one); "
                            "with --scheduler local, the number of Dask workers")
    sweep.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on Dask: 'local' starts a LocalCluster, an address like tcp://host:8786 connects "
                            "to a running one (pip install fnn[dask])")
    sweep.add_argument("--out", metavar="DIR", help="the sweep directory (default sweeps/<grid file name>)")
    sweep.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="a progress bar over the runs (default: when stdout is a terminal)")


def sweep_executor(workers: int | None = None, scheduler: str | None = None) -> Any:
    """A context manager giving the ``executor`` of :func:`fnn.runs.sweep` for ``--workers``/``--scheduler``.

    ``None`` (one by one) or ``workers`` local processes; with ``scheduler="local"`` a new
    Dask LocalCluster of ``workers`` processes (default: one per core), with an address like
    ``tcp://host:8786`` a client of that running cluster. Raises :class:`fnn.runs.ConfigError`
    for a bad combination, or when Dask is not installed.

    >>> with sweep_executor(2) as executor:
    ...     executor
    2
    """
    import contextlib
    import logging
    import signal

    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise runs.ConfigError(f"--workers must be a number >= 1, got {workers!r}.")
    if scheduler is None:
        return contextlib.nullcontext(None if (workers or 1) == 1 else workers)
    if scheduler != "local" and workers is not None:
        raise runs.ConfigError(f"--workers sizes a local pool or --scheduler local; the cluster at {scheduler} "
                               "has its own workers: drop --workers.")
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise runs.ConfigError("--scheduler needs Dask: pip install fnn[dask] (or pip install distributed).") from None

    @contextlib.contextmanager
    def executor() -> Any:
        with contextlib.ExitStack() as stack:
            if scheduler == "local":
                # the worker processes inherit an ignored Ctrl-C: this process stops the sweep and the cluster
                previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
                try:
                    cluster = stack.enter_context(LocalCluster(
                        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                        silence_logs=logging.ERROR))
                finally:
                    signal.signal(signal.SIGINT, previous)
                client = stack.enter_context(Client(cluster))
            else:
                client = stack.enter_context(Client(scheduler))
            yield client.get_executor(pure=False)  # pure=False: a rerun is a new task, not a cached result

    return executor()


def _sweep(args: argparse.Namespace) -> int:
    grid_path = Path(args.grid)
    try:
        grid = read_config_file(grid_path)
    except runs.ConfigError:
        raise
    except ValueError as e:  # a TOML or JSON syntax error
        raise runs.ConfigError(f"{grid_path}: {e}") from None
    configs = runs.sweep_configs(grid)  # every run checked before any work
    engine = sweep_executor(args.workers, args.scheduler)
    out = Path(args.out) if args.out else Path("sweeps") / grid_path.stem
    progress = sys.stdout.isatty() if args.progress is None else args.progress
    if progress:
        try:
            import tqdm  # noqa: F401
        except ImportError:
            progress = False
    try:
        with engine as executor:
            result = runs.sweep(configs, executor, out=out, log=lambda line: print(line, flush=True),
                                progress=progress)
    except KeyboardInterrupt:
        summary = out / runs.SUMMARY_MD
        if summary.exists():
            print("\n" + summary.read_text(), end="")
        print(f"\ninterrupted: finished runs are kept in {out}; run the same command again to continue.",
              file=sys.stderr)
        return 130
    print("\n" + result.table)
    print(f"\nsummary: {out / runs.SUMMARY_CSV}, {out / runs.SUMMARY_MD}, {out / runs.SWEEP_PLOT}")
    return 0 if all(r["status"] == "completed" for r in result.rows) else 1
