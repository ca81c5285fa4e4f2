"""The ``fnn`` command: ``fnn train``, ``fnn evaluate RUN_DIR``, ``fnn info RUN_DIR``.

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

__all__ = ["main", "build_parser", "read_config_file"]

# (option, type, help); the config key is the option name with underscores
_TRAIN_OPTIONS: tuple[tuple[str, Any, str], ...] = (
    ("--dataset", str, f"one of {', '.join(runs.DATASETS)} (default digits, shipped with fnn)"),
    ("--data-dir", str, "folder holding the MNIST/Fashion-MNIST IDX files (default: search the usual places)"),
    ("--layers", str, "layer sizes, comma-separated (default 784,16,16,10)"),
    ("--activation", str, "hidden activation: sigmoid, tanh, relu, leaky_relu, softmax, identity"),
    ("--output-activation", str, "output activation (default: identity for cross-entropy, else --activation)"),
    ("--cost", str, "mse, cross_entropy or binary_cross_entropy (default mse)"),
    ("--init", str, "xavier, he, normal or torch (default xavier)"),
    ("--optimizer", str, f"one of {', '.join(runs.OPTIMIZERS)} (default sgd)"),
    ("--lr", float, f"learning rate (default {runs.DEFAULTS['lr']:g})"),
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
    if cfg.get("model") in ("lstm", "gru"):
        layers = f"{cfg['model']} 28x28 rows -> {cfg['hidden']} -> 10"
    if cfg.get("dropout"):
        layers += f" dropout {cfg['dropout']:g}"
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
    print(f"{'epoch':>6} {'loss':>9} {'val loss':>9} {rec['validation_on'] + ' acc':>9} {'seconds':>8}")
    for h in rec["history"]:
        vl = "" if h["val_loss"] is None else f"{h['val_loss']:.4f}"
        va = "" if h["val_accuracy"] is None else f"{h['val_accuracy']:.4f}"
        sec = "" if h.get("seconds") is None else f"{h['seconds']:.1f}"
        print(f"{h['epoch']:>6} {h['loss']:>9.4f} {vl:>9} {va:>9} {sec:>8}")
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
    command = {"train": _train, "evaluate": _evaluate, "info": _info}[args.command]
    try:
        return command(args)
    except (runs.ConfigError, FileNotFoundError, runs.fio.CheckpointError) as e:
        print(f"fnn {args.command}: error: {e}", file=sys.stderr)
        return 2
