"""The ``fnn`` command: ``fnn train``, ``fnn evaluate RUN_DIR``, ``fnn info RUN_DIR``, ``fnn sweep GRID``.

``fnn train`` with no options trains the seed network (784-16-16-10, sigmoid,
squared error, plain SGD) on the digits that ship with fnn, prints one line
per epoch and the test accuracy, and writes a run directory (see
:mod:`fnn.runs`). Options override a ``--config`` file (TOML or JSON), which
overrides the defaults. Exit codes: 0 done, 1 training diverged (or the data
could not be downloaded), 2 bad usage, configuration, file or run directory
(``fnn <command>: error: ...``, never a traceback), 130 interrupted (Ctrl-C or
SIGTERM; the last complete epoch's checkpoint is saved and
``fnn train --resume RUN_DIR`` continues from it). A closed stdout (``| head -1``)
never stops training: output stops, training goes on.

>>> build_parser().parse_args(["train", "--layers", "784,32,10", "--lr", "0.5"]).layers
'784,32,10'
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fnn import runs
from fnn.costs import COSTS
from fnn.datasets import DownloadError, IDXError
from fnn.describe import num_params
from fnn.io import CheckpointError
from fnn.layers import ACTIVATIONS, INITS

__all__ = ["main", "build_parser", "read_config_file", "sweep_executor"]

# (option, type, help); the config key is the option name with underscores
_TRAIN_OPTIONS: tuple[tuple[str, Any, str], ...] = (
    ("--dataset", str, f"one of {', '.join(runs.DATASETS)} (default digits, shipped with fnn)"),
    ("--data-dir", str, "folder holding the MNIST/Fashion-MNIST IDX files (default: search the usual places)"),
    ("--layers", str, "layer sizes, comma-separated (default 784,16,16,10)"),
    ("--activation", str, f"hidden activation: {', '.join(ACTIVATIONS)} (default {runs.DEFAULTS['activation']})"),
    ("--output-activation", str, "output activation (default: identity for cross-entropy, else --activation)"),
    ("--cost", str, f"one of {', '.join(COSTS)} (default: mse for the mlp, cross_entropy for the other models)"),
    ("--init", str, f"one of {', '.join(INITS)} (default {runs.DEFAULTS['init']})"),
    ("--optimizer", str, f"one of {', '.join(runs.OPTIMIZERS)} (default: sgd for the mlp, adam for the other models)"),
    ("--lr", float, "learning rate (default: " + ", ".join(f"{r['lr']:g} for {m}" for m, r in runs.RECIPES.items())
     + ")"),
    ("--schedule", str, f"learning-rate schedule: {', '.join(runs.SCHEDULES)} (default constant)"),
    ("--epochs", int, f"total number of epochs, with --resume the new total (default {runs.DEFAULTS['epochs']})"),
    ("--batch-size", int, f"minibatch size (default {runs.DEFAULTS['batch_size']})"),
    ("--seed", int, "seed of the initial params, the batch order and the validation split (default 0)"),
    ("--dtype", str, "float32 or float64 (default float32)"),
    ("--validation", float, "fraction of the training data held out for validation (default 0: use test)"),
    ("--patience", int, "stop after this many epochs without a better validation loss (needs --validation)"),
    ("--model", str, f"architecture: {', '.join(runs.MODELS)} (default mlp; cnn is fnn.cnn; lstm/gru read "
                      "images row by row; all but mlp ignore --layers and give logits)"),
    ("--dropout", float, "drop probability after each hidden layer (default 0)"),
    ("--weight-decay", float, "decoupled for adamw, else an L2 penalty (default: the optimizer's own)"),
    ("--hidden", int, "with --model lstm or gru: the recurrent layer's hidden size (default 64)"),
    ("--channels", str, "with --model cnn: output channels of each conv block, comma-separated (default 32,64)"),
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``fnn`` command.

    >>> args = build_parser().parse_args(["train", "--epochs", "3", "--out", "r", "--overwrite"])
    >>> args.command, args.epochs, args.out, args.overwrite
    ('train', 3, 'r', True)
    """
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
    train.add_argument("--out", metavar="DIR",
                       help="run directory, new or empty: it holds one run (default runs/<UTC time>-<config hash>)")
    train.add_argument("--overwrite", action="store_true", help="clear --out first if it holds a run")
    train.add_argument("--resume", metavar="RUN_DIR",
                       help="continue the run in RUN_DIR from its checkpoint (only --epochs may change)")
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
    if path.suffix not in (".json", ".toml"):
        raise runs.ConfigError(f"{path}: a config file must end in .toml or .json, got {path.suffix!r}.")
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such config file.") from None
    except (OSError, UnicodeDecodeError) as e:
        reason = "it is a directory" if path.is_dir() else getattr(e, "strerror", None) or str(e)
        raise runs.ConfigError(f"{path}: cannot read the config file: {reason}.") from None
    if path.suffix == ".json":
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as e:
            raise runs.ConfigError(f"{path}: not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}.") from None
    else:
        try:
            import tomllib
        except ImportError:  # Python 3.10
            try:
                import tomli as tomllib
            except ImportError:
                raise runs.ConfigError(f"{path}: reading TOML on Python 3.10 needs tomli; use JSON.") from None
        try:
            loaded = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise runs.ConfigError(f"{path}: not valid TOML: {e}.") from None
    if not isinstance(loaded, dict):
        raise runs.ConfigError(f"{path}: expected a table of config keys, got {type(loaded).__name__}.")
    return {k.replace("-", "_"): v for k, v in loaded.items()}


def _given(args: argparse.Namespace) -> dict[str, Any]:
    keys = [flag[2:].replace("-", "_") for flag, _, _ in _TRAIN_OPTIONS] + ["download", "batch_norm", "flip"]
    return {k: getattr(args, k) for k in keys if getattr(args, k) is not None}


def _say(line: str, end: str = "\n") -> None:
    """Print a line; once stdout is closed (``fnn train | head -1``), print nothing more and go on."""
    try:
        print(line, end=end, flush=True)
    except BrokenPipeError:
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error again at exit


def _train(args: argparse.Namespace) -> int:
    say = (lambda line: None) if args.quiet else _say
    config: dict[str, Any] = {}
    if args.config:
        config.update(read_config_file(args.config))
    config.update(_given(args))
    if args.resume:
        if args.out and Path(args.out).resolve() != Path(args.resume).resolve():
            raise runs.ConfigError("--resume continues in its own run directory; drop --out.")
        if args.overwrite:
            raise runs.ConfigError("--resume continues a run and --overwrite clears one; pass one of them.")
        out = Path(args.resume)
        cfg = runs.resolve_config({**runs.read_config(out), **config})  # every name checked before any work
    else:
        cfg = runs.resolve_config(config)
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
    if cfg.get("model") in ("lstm", "gru"):
        layers = f"{cfg['model']} 28x28 rows -> {cfg['hidden']} -> 10"
    if cfg.get("dropout"):
        layers += f" dropout {cfg['dropout']:g}"
    layers += f" ({num_params(runs.build(cfg)):,} params)"
    say(f"fnn train: {layers}, {cfg['cost']}, "
        f"{cfg['optimizer']} lr {cfg['lr']:g}, batch {cfg['batch_size']}, {cfg['epochs']} epochs, "
        f"{cfg['dataset']}, seed {cfg['seed']} -> {out}")
    try:
        if args.resume:
            result = runs.resume(out, config, progress=progress, log=say)
        else:
            result = runs.run(cfg, out, progress=progress, log=say, overwrite=args.overwrite)
    except KeyboardInterrupt:
        if _status(out) == "completed":  # the Ctrl-C came while the last files were saved, which finished
            print(f"\ninterrupted after the run completed; its results are in {out} (fnn info {out}).",
                  file=sys.stderr)
        elif (out / runs.CHECKPOINT_FILE).exists():
            print(f"\ninterrupted: the checkpoint of the last complete epoch is in {out}; "
                  f"continue with: fnn train --resume {out}", file=sys.stderr)
        elif (out / runs.CONFIG_FILE).exists():
            print("\ninterrupted before the first epoch finished; no checkpoint to resume from. Start again with: "
                  f"fnn train --config {out / runs.CONFIG_FILE} --out {out} --overwrite", file=sys.stderr)
        else:
            print("\ninterrupted before the first epoch finished; no checkpoint to resume from.", file=sys.stderr)
        return 130
    except runs.DivergenceError as e:
        print(f"fnn train: {e}\nThe last finite checkpoint is in {out}.", file=sys.stderr)
        return 1
    final = result.record["final"]
    _say(f"test accuracy {final['test_accuracy']:.4f}  ({result.record['wall_time_s']:.1f}s)  run: {out}")
    return 0


def _status(run_dir: Path) -> Any:
    """The status in a run directory's record; None when it has no readable record."""
    try:
        return json.loads((run_dir / runs.RECORD_FILE).read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return None


def _evaluate(args: argparse.Namespace) -> int:
    res = runs.evaluate(args.run_dir)
    if args.json:
        _say(json.dumps(res, indent=2))
        return 0
    _say(f"{res['dataset']} test accuracy {res['accuracy']:.4f} ({res['correct']}/{res['n']}), "
          f"loss {res['loss']:.4f}")
    _say("confusion matrix (rows: true class, columns: predicted):")
    k = len(res["confusion"])
    _say("      " + "".join(f"{j:>6}" for j in range(k)))
    for i, row in enumerate(res["confusion"]):
        _say(f"{i:>6}" + "".join(f"{v:>6}" for v in row))
    _say("per-class accuracy: " + "  ".join(
        f"{i} {'-' if a is None else format(a, '.3f')}" for i, a in enumerate(res["per_class_accuracy"])))
    return 0


def _info(args: argparse.Namespace) -> int:
    path = Path(args.run_dir) / runs.RECORD_FILE
    if not path.exists():
        raise FileNotFoundError(f"{args.run_dir} has no {runs.RECORD_FILE}; is it a run directory?")
    try:
        rec = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise runs.ConfigError(f"{path}: cannot read the record ({e}); the file is damaged.") from None
    if args.json:
        _say(json.dumps(rec, indent=2))
        return 0
    try:
        lines = _info_lines(args.run_dir, rec)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise runs.ConfigError(
            f"{path} is not a complete run record ({type(e).__name__}: {e}); "
            f"`fnn info {args.run_dir} --json` prints it as it is."
        ) from None
    for line in lines:
        _say(line)
    return 0


def _number(value: Any, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _info_lines(run_dir: str, rec: dict[str, Any]) -> list[str]:
    """The lines ``fnn info`` prints for a record; a missing or mistyped field raises."""
    cfg = rec["config"]
    held = "test" if rec["validation_on"] == "test" else "val"
    count = rec.get("num_params")  # records written before it was recorded: count the config's network
    count = num_params(runs.build(runs.resolve_config(cfg))) if count is None else count
    lines = [
        f"run {run_dir}: {rec['status']}, {rec['epochs_done']} epochs, seed {rec['seed']}, "
        f"config {rec['config_hash']}",
        "config: " + ", ".join(f"{k}={v}" for k, v in cfg.items()),
        f"trainable params: {count:,}",
        f"{'epoch':>6} {'loss':>9} {'train acc':>9} {held + ' loss':>9} {held + ' acc':>9} {'lr':>9} {'seconds':>8}",
    ]
    for h in rec["history"]:  # records of older runs lack some keys
        lines.append(f"{h['epoch']:>6} {_number(h['loss'], '.4f'):>9} {_number(h.get('accuracy'), '.4f'):>9} "
                     f"{_number(h['val_loss'], '.4f'):>9} {_number(h['val_accuracy'], '.4f'):>9} "
                     f"{_number(h.get('lr'), '.3g'):>9} {_number(h.get('seconds'), '.1f'):>8}")
    if "final" in rec:
        lines.append("final: " + ", ".join(f"{k} {v:.4f}" for k, v in rec["final"].items() if v is not None))
    if rec.get("error"):
        lines.append(f"error: {rec['error']}")
    wall, total = _number(rec["wall_time_s"], ".1f"), _number(rec["wall_time_total_s"], ".1f")
    lines.append(f"wall time {wall}s (total {total}s); "
                 f"plot: {rec.get('plot')}")
    d, env = rec["data"], rec["environment"]
    lines.append(f"data: {d['dataset']}, train sha256 {d['train_sha256'][:16]}..., "
                 f"{d['n_train']} train / {d['n_validation']} validation / {d['n_test']} test")
    lines.append("environment: " + ", ".join(f"{k} {v}" for k, v in env.items()))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fnn`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    Bad input or a missing resource prints ``fnn <command>: error: ...`` (never a traceback)
    and returns 2; a failed download returns 1, as a diverged training does.

    >>> main(["info", "/nonexistent"])
    2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    command = {"train": _train, "evaluate": _evaluate, "info": _info, "sweep": _sweep}[args.command]
    try:
        return command(args)
    except DownloadError as e:
        print(f"fnn {args.command}: error: {e}", file=sys.stderr)
        return 1
    except (runs.ConfigError, runs.RunError, CheckpointError, IDXError, OSError) as e:
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
            result = runs.sweep(configs, executor, out=out, log=_say,
                                progress=progress)
    except KeyboardInterrupt:
        summary = out / runs.SUMMARY_MD
        if summary.exists():
            _say("\n" + summary.read_text(), end="")
        print(f"\ninterrupted: finished runs are kept in {out}; run the same command again to continue.",
              file=sys.stderr)
        return 130
    _say("\n" + result.table)
    _say(f"\nsummary: {out / runs.SUMMARY_CSV}, {out / runs.SUMMARY_MD}, {out / runs.SWEEP_PLOT}")
    return 0 if all(r["status"] == "completed" for r in result.rows) else 1
