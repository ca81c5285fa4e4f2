"""Runs: a configuration in, a trained network and a record out. The library behind ``fnn train``.

A *config* is a flat ``dict`` whose keys are the long options of ``fnn train``
with underscores (``batch_size`` for ``--batch-size``); :data:`DEFAULTS` lists
them all. :func:`resolve_config` fills in the defaults and checks every name and
number before any work starts. :func:`run` is a pure function of the resolved
config (and the data files): two runs of one config give byte-identical params
files. With ``out`` it writes a run directory, which holds one run:

- ``config.json``: the fully resolved configuration;
- ``record.json``: ``status`` (``running``, ``completed``, ``interrupted``,
  ``diverged`` or ``failed``), per-epoch history, final metrics, seed, wall time,
  versions, OS, CPU, BLAS threads and the SHA-256 of the training data;
- ``params.npz``: the final params (:func:`fnn.load` reads them), only while the run is
  finished: a completed run resumed for more epochs removes it (and ``curve.png``) with its
  first new epoch, and writes both again when it completes;
- ``checkpoint.npz``: a :class:`Checkpoint`: the latest :class:`fnn.TrainState`,
  the hash of the config and of the training data it belongs to, and the
  early-stopping state; saved atomically after every epoch, :func:`resume`
  verifies it and continues from it bit for bit;
- ``curve.png``: loss and accuracy per epoch (when matplotlib is installed);
- ``.lock``: while a process works in the directory, naming it (pid and host).

A run is a few named steps: :func:`_setup` reads the data and builds the network
(no writes), :func:`_claim` creates and locks the directory (refusing one that
holds another run), :func:`_train` trains with a :class:`_Recorder` watching each
epoch, :func:`_finish` writes the params and the completed record.

Seeds: the seed is split into three keys, for the initial params, the training
order and the held-out validation split.

>>> result = run({"layers": [784, 8, 10], "epochs": 1, "batch_size": 50})
>>> result.record["epochs_done"], round(result.record["final"]["test_accuracy"], 1) >= 0.5
(1, True)
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from fnn import data as fdata
from fnn import datasets, layers, metrics, models, optim, validate
from fnn import io as fio
from fnn import random as fr
from fnn import schedules as fs
from fnn.arguments import integer, number
from fnn.costs import COSTS
from fnn.describe import num_params
from fnn.layers import ACTIVATIONS, INITS, Dropout, Reshape, check_rate
from fnn.network import Params, loss
from fnn.training import DivergenceError, TrainState, train

__all__ = [
    "DEFAULTS",
    "RECIPES",
    "DATASETS",
    "SCHEDULES",
    "RESUMABLE",
    "ConfigError",
    "RunError",
    "RunResult",
    "Checkpoint",
    "resolve_config",
    "read_config",
    "config_hash",
    "result_hash",
    "run",
    "resume",
    "evaluate",
    "load_run",
    "SweepResult",
    "sweep_configs",
    "sweep",
]

#: Every config key with its default. ``output_activation: None`` means "identity" for the
#: cross-entropy costs (they take logits) and the hidden ``activation`` otherwise.
DEFAULTS: dict[str, Any] = {
    "dataset": "digits",
    "data_dir": None,
    "download": True,
    "layers": [784, 16, 16, 10],
    "activation": "sigmoid",
    "output_activation": None,
    "cost": None,  # None: the model's recipe (RECIPES), as for optimizer and lr
    "init": "xavier",
    "dtype": "float32",
    "optimizer": None,
    "lr": None,
    "schedule": "constant",
    "epochs": 40,
    "batch_size": 32,
    "seed": 0,
    "validation": 0.0,
    "patience": None,
    # architecture and regularisation (issue 8): model "cnn" is fnn.cnn behind a Reshape to 28x28x1
    # (it ignores layers/activation/init); dropout is the drop probability after each hidden layer;
    # weight_decay is decoupled for adamw and an L2 penalty (PyTorch's weight_decay) otherwise
    "model": "mlp",
    "dropout": 0.0,
    "weight_decay": None,
    "batch_norm": False,
    "channels": [32, 64],
    "flip": False,
    # sequence models (issue 17): model "lstm"/"gru" reads each image row by row, 28 steps of 28
    # pixels: Reshape((28, 28)) -> LSTM/GRU(28 -> hidden) -> Last -> Dense(hidden -> 10), logits
    "hidden": 64,
}

#: The data sets by name: ``load(data_dir, download) -> ((x, y), (x_test, y_test))``.
DATASETS: dict[str, Callable[[str | None, bool], Any]] = {
    "digits": lambda data_dir, download: datasets.load_digits(),  # shipped with fnn
    "mnist": lambda data_dir, download: datasets.load_mnist(data_dir, download=download),
    "fashion-mnist": lambda data_dir, download: datasets.load_fashion_mnist(data_dir, download=download),
}


def _warmup_cosine(lr: float, total: int) -> Any:
    warm = max(total // 20, 1)  # a linear warmup over the first 5% of the steps
    return fs.warmup_cosine_decay(lr, warmup_steps=warm, decay_steps=max(total - warm, 1))


#: The learning-rate schedules by name: ``recipe(lr, total_steps) -> lr or schedule``.
SCHEDULES: dict[str, Callable[[float, int], Any]] = {
    "constant": lambda lr, total: lr,
    "cosine": lambda lr, total: fs.cosine_decay(lr, steps=total),
    "step": lambda lr, total: fs.step_decay(lr, every=max(-(-total // 3), 1), factor=0.1),  # x0.1 at 1/3 and 2/3
    "exponential": lambda lr, total: fs.exponential_decay(lr, rate=0.01, steps=total),  # down to 1% at the end
    "warmup_cosine": _warmup_cosine,
}
OPTIMIZERS = tuple(optim.OPTIMIZERS)  # the names fnn.optimizer_from_name resolves
MODELS = ("mlp", "cnn", "lstm", "gru")
#: What each model trains with when the config leaves ``cost``, ``optimizer`` or ``lr`` out: the
#: seed network's squared error and SGD for the MLP; softmax cross-entropy and Adam for the
#: networks that give logits (the recipes of docs/results.md and docs/sequences.md).
RECIPES: dict[str, dict[str, Any]] = {
    "mlp": {"cost": "mse", "optimizer": "sgd", "lr": 15.0},
    "cnn": {"cost": "cross_entropy", "optimizer": "adam", "lr": 1e-3},
    "lstm": {"cost": "cross_entropy", "optimizer": "adam", "lr": 3e-3},
    "gru": {"cost": "cross_entropy", "optimizer": "adam", "lr": 3e-3},
}
DTYPES = ("float32", "float64")
_IN, _OUT = 784, 10  # every data set here: 28x28 images, 10 classes

PARAMS_FILE, CHECKPOINT_FILE, CONFIG_FILE, RECORD_FILE, CURVE_FILE, LOCK_FILE = (
    "params.npz", "checkpoint.npz", "config.json", "record.json", "curve.png", ".lock",
)

#: The config keys a resumed run may change: none of them changes what is computed
#: (``epochs`` only says how far to go; the data are checked by their SHA-256).
RESUMABLE = ("epochs", "data_dir", "download")


class ConfigError(ValueError):
    """A configuration key, name or value is not valid; the message lists the valid ones."""


class RunError(RuntimeError):
    """A run directory cannot be used: in use by another process, holding another run, not
    writable, or the disk is full. The message names the directory and the way out."""


class Checkpoint(NamedTuple):
    """What ``checkpoint.npz`` holds: the state after the last complete epoch and what verifies it.

    ``config_hash`` is :func:`result_hash` of the run's config and ``train_sha256`` the hash of its
    training data: :func:`resume` refuses a checkpoint whose run they do not describe.
    ``best_params`` are the params of the best validation loss so far when early stopping needs
    them (``patience`` set and the best epoch is not the last), else ``None``. ``finished`` is
    ``""`` while the run goes on, then ``"completed"`` or ``"stopped_early"``.
    """

    state: TrainState
    config_hash: str
    train_sha256: str
    best_params: Params | None = None
    finished: str = ""


class RunResult(NamedTuple):
    """What :func:`run` returns: the record (as in ``record.json``), the final params and state."""

    record: dict[str, Any]
    params: Params
    state: TrainState


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------


def _choice(cfg: dict[str, Any], key: str, valid: Iterable[str]) -> None:
    valid = list(valid)
    if cfg[key] not in valid:
        raise ConfigError(f"unknown {key} {cfg[key]!r}; valid names: {', '.join(valid)}.")


def _checked(cfg: dict[str, Any], key: str, check: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """``cfg[key]`` through a check of :mod:`fnn.arguments` (``check(value, *args)``), its error a ConfigError."""
    try:
        cfg[key] = check(cfg[key], *args, **kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e)) from None


def _int(cfg: dict[str, Any], key: str, minimum: int) -> None:
    _checked(cfg, key, integer, key, "10" if minimum else "0", minimum)


def _layers(value: Any) -> list[int]:
    if isinstance(value, str):
        try:
            value = [int(s) for s in value.replace(" ", "").split(",") if s]
        except ValueError:
            raise ConfigError(f"layers must be comma-separated sizes like 784,16,16,10, got {value!r}.") from None
    if (
        not isinstance(value, (list, tuple))
        or len(value) < 2
        or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in value)
    ):
        raise ConfigError(f"layers must be at least two positive sizes like [784, 16, 16, 10], got {value!r}.")
    sizes = [int(v) for v in value]
    if sizes[0] != _IN or sizes[-1] != _OUT:
        raise ConfigError(
            f"layers must start with {_IN} inputs (28x28 pixels) and end with {_OUT} outputs (classes) for "
            f"these data sets, got {sizes}; e.g. {_IN},16,16,{_OUT}."
        )
    return sizes


def resolve_config(config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The full configuration: defaults filled in, every name and number checked.

    Raises :class:`ConfigError` for an unknown key or name (listing the valid ones) or a
    bad value, before any data is read.

    >>> cfg = resolve_config({"layers": "784,32,10", "cost": "cross_entropy"})
    >>> cfg["layers"], cfg["output_activation"], cfg["optimizer"]
    ([784, 32, 10], 'identity', 'sgd')
    >>> resolve_config({"activation": "swish"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    fnn.runs.ConfigError: unknown activation 'swish'; valid names: ...
    """
    config = dict(config or {})
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown config keys {unknown}; valid keys: {', '.join(DEFAULTS)}.")
    cfg = {**DEFAULTS, **config}
    _choice(cfg, "model", MODELS)
    for key, value in RECIPES[cfg["model"]].items():  # what the config leaves open
        if cfg[key] is None:
            cfg[key] = value
    _choice(cfg, "dataset", DATASETS)
    _choice(cfg, "activation", ACTIVATIONS)
    _choice(cfg, "cost", COSTS)
    if cfg["output_activation"] is None:
        cfg["output_activation"] = "identity" if cfg["cost"] != "mse" else cfg["activation"]
    _choice(cfg, "output_activation", ACTIVATIONS)
    if COSTS[cfg["cost"]].takes_logits and cfg.get("model") != "cnn" and layers.rule(
            ACTIVATIONS[cfg["output_activation"]]).squashes:
        raise ConfigError(
            f"cost {cfg['cost']} takes logits, but output_activation {cfg['output_activation']!r} squashes or "
            "rectifies them; use output_activation identity (the default for this cost), or cost mse."
        )
    _choice(cfg, "init", INITS)
    _choice(cfg, "dtype", DTYPES)
    _choice(cfg, "optimizer", OPTIMIZERS)
    _choice(cfg, "schedule", SCHEDULES)
    _regularisation(cfg)
    cfg["layers"] = _layers(cfg["layers"])
    _checked(cfg, "lr", number, "lr", "0.1", 0.0, open_low=True)
    _int(cfg, "hidden", 1)
    _int(cfg, "epochs", 1)
    _int(cfg, "batch_size", 1)
    _int(cfg, "seed", 0)
    _checked(cfg, "validation", number, "validation (the held-out fraction of the training data)", "0.1",
             0.0, 1.0, open_high=True)
    if cfg["patience"] is not None:
        _int(cfg, "patience", 1)
        if cfg["validation"] == 0:
            raise ConfigError(
                "patience stops on the validation loss and needs held-out data: set validation, e.g. 0.1 "
                "(the test split is kept for the final, unbiased accuracy)."
            )
    if cfg["data_dir"] is not None:
        cfg["data_dir"] = str(cfg["data_dir"])
    if not isinstance(cfg["download"], bool):
        raise ConfigError(f"download must be true or false, got {cfg['download']!r}.")
    return cfg


def _regularisation(cfg: dict[str, Any]) -> None:
    _checked(cfg, "dropout", check_rate, "dropout (the probability of dropping a unit)", "0.2")
    if cfg["weight_decay"] is not None:
        _checked(cfg, "weight_decay", number, "weight_decay", "1e-4", 0.0)
    if not isinstance(cfg["flip"], bool):
        raise ConfigError(f"flip must be true or false, got {cfg['flip']!r}.")
    if not isinstance(cfg["batch_norm"], bool):
        raise ConfigError(f"batch_norm must be true or false, got {cfg['batch_norm']!r}.")
    ch = cfg["channels"]
    if isinstance(ch, str):
        ch = [s for s in ch.replace(" ", "").split(",") if s]
        ch = [int(s) if s.isdigit() else s for s in ch]
    if (not isinstance(ch, (list, tuple)) or not 1 <= len(ch) <= 4
            or any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1 for c in ch)):
        raise ConfigError(f"channels must be 1 to 4 positive sizes like 32,64 (one per conv block), got {ch!r}.")
    cfg["channels"] = [int(c) for c in ch]


def config_hash(config: Mapping[str, Any]) -> str:
    """A short hash of a resolved config (8 hex digits), as in default run-directory names.

    >>> len(config_hash(resolve_config({})))
    8
    """
    return hashlib.sha256(json.dumps(dict(config), sort_keys=True).encode()).hexdigest()[:8]


def result_hash(config: Mapping[str, Any]) -> str:
    """The hash of the keys of a resolved config that decide the result (all but :data:`RESUMABLE`).

    >>> result_hash(resolve_config({"epochs": 3})) == result_hash(resolve_config({"epochs": 9}))
    True
    >>> result_hash(resolve_config({"seed": 1})) == result_hash(resolve_config({}))
    False
    """
    kept = {k: v for k, v in config.items() if k not in RESUMABLE}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------
# Data, model, optimizer: names resolved here, at the edge
# ---------------------------------------------------------------------------


def _sha256(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _load_data(cfg: Mapping[str, Any]) -> tuple[tuple[Any, ...], tuple[Any, ...] | None, tuple[Any, ...], dict]:
    folder = cfg["data_dir"]
    if folder is not None and cfg["dataset"] != "digits" and not Path(folder).expanduser().is_dir():
        raise FileNotFoundError(  # never created to download into: a typo would fetch the data set somewhere new
            f"the data folder {folder} does not exist (or is not a folder); pass the folder that holds the four "
            f"{cfg['dataset']} files as --data-dir (create it first to download into it), or leave --data-dir out "
            "to search the usual places."
        )
    (x, y), (xt, yt) = DATASETS[cfg["dataset"]](cfg["data_dir"], cfg["download"])
    info = {
        "dataset": cfg["dataset"],
        "train_sha256": _sha256(x, y),
        "test_sha256": _sha256(xt, yt),
        "sha256_of": "the raw arrays' bytes: images (uint8, C order) then labels (int64)",
    }
    dtype = np.dtype(cfg["dtype"])
    train_set: tuple[np.ndarray, ...] = (fdata.normalize(x).astype(dtype, copy=False), y)
    test_set = (fdata.normalize(xt).astype(dtype, copy=False), yt)
    val_set: tuple[np.ndarray, ...] | None = None
    if cfg["validation"] > 0:
        n_val = round(cfg["validation"] * len(y))
        if not 1 <= n_val < len(y):
            raise ConfigError(
                f"validation {cfg['validation']!r} of {len(y)} training examples holds out {n_val}; "
                f"hold out at least one example and keep one to train on, e.g. validation = 0.1."
            )
        val_key = fr.split(cfg["seed"], 3)[2]
        val_set, train_set = fdata.split(val_key, train_set, cfg["validation"])
    info.update(n_train=len(train_set[1]), n_validation=0 if val_set is None else len(val_set[1]), n_test=len(yt))
    return train_set, val_set, test_set, info


def build(cfg: Mapping[str, Any]) -> Params:
    """The initial network of a resolved config."""
    seed, dtype = fr.split(cfg["seed"], 3)[0], np.dtype(cfg["dtype"])
    if cfg["model"] == "cnn":
        rate = cfg["dropout"]
        net = models.cnn(seed, channels=cfg["channels"], dropout=rate, hidden_dropout=min(2 * rate, 0.5),
                         batch_norm=cfg["batch_norm"], flip=cfg["flip"],
                         dtype=dtype)
        return (Reshape((28, 28, 1)),) + net
    if cfg["model"] in ("lstm", "gru"):  # rows of the image as time steps: (batch, 28, 28)
        make, keys = getattr(layers, cfg["model"]), fr.split(seed, 2)
        return (Reshape((28, 28)), make(keys[0], 28, cfg["hidden"], dtype=dtype), layers.Last(),
                layers.dense(keys[1], cfg["hidden"], _OUT, init="torch", dtype=dtype))
    params = models.mlp(cfg["layers"], cfg["activation"], cfg["output_activation"], seed=seed, init=cfg["init"],
                        dtype=dtype)
    if cfg["dropout"] == 0:
        return params
    hidden = range(1, len(params) - 2, 2)  # the hidden activations: Dense, act, ..., Dense, out
    return tuple(x for i, layer in enumerate(params) for x in ((layer, Dropout(cfg["dropout"])) if i in hidden
                                                               else (layer,)))


def _schedule(cfg: Mapping[str, Any], total: int) -> Any:
    return SCHEDULES[cfg["schedule"]](cfg["lr"], total)


def _optimizer(cfg: Mapping[str, Any], n_train: int) -> tuple[Any, float | None]:
    """``(optimizer, lr)`` for :func:`fnn.train`: plain SGD (``None, lr``) or an optimizer from its name."""
    wd = cfg.get("weight_decay")
    if cfg["optimizer"] == "sgd" and cfg["schedule"] == "constant" and not wd:
        return None, cfg["lr"]

    total = cfg["epochs"] * fdata.num_batches(n_train, cfg["batch_size"])
    lr = _schedule(cfg, total)
    if wd is None:
        return optim.optimizer_from_name(cfg["optimizer"], lr), None
    if cfg["optimizer"] == "adamw":
        return optim.adamw(lr, weight_decay=wd), None
    return optim.chain(optim.add_l2_penalty(wd), optim.optimizer_from_name(cfg["optimizer"], lr)), None


# ---------------------------------------------------------------------------
# The record
# ---------------------------------------------------------------------------


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas_threads() -> Any:
    try:
        from threadpoolctl import threadpool_info

        return [{k: p.get(k) for k in ("internal_api", "num_threads")} for p in threadpool_info()]
    except Exception:  # not installed, or it failed: fall back to the usual environment hints
        keys = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        return {k: os.environ.get(k) for k in keys}


def environment() -> dict[str, Any]:
    """Versions of Python, numpy, toolz and fnn, the OS, the CPU and the BLAS threads."""
    import toolz

    import fnn

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "toolz": getattr(toolz, "__version__", "unknown"),
        "fnn": fnn.__version__,
        "os": platform.platform(),
        "cpu": _cpu(),
        "cpu_count": os.cpu_count(),
        "blas_threads": _blas_threads(),
    }


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _write_json(path: Path, obj: Any) -> None:
    with fio.atomic_write(path) as f:
        f.write((json.dumps(obj, indent=2, allow_nan=True) + "\n").encode())


def _plot(out: Path, history: list[dict[str, Any]], held_out: str = "validation") -> str:
    """Draw ``curve.png``; ``held_out`` names what the per-epoch metrics were measured on."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "skipped: matplotlib not installed"
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.plot(epochs, [h["loss"] for h in history], label="training loss")
    if any(h["val_loss"] is not None for h in history):
        ax1.plot(epochs, [h["val_loss"] for h in history], label=f"{held_out} loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax2.plot(epochs, [h["val_accuracy"] for h in history], color="C2")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel(f"{held_out} accuracy")
    fig.tight_layout()
    with fio.atomic_write(out / CURVE_FILE) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return CURVE_FILE


def _metrics(params: Params, batch: tuple[Any, ...], cost: Any) -> tuple[float, float, np.ndarray]:
    """``(loss, accuracy, confusion matrix)`` on ``batch``, from :mod:`fnn.metrics`."""
    confusion = metrics.confusion_matrix(params, batch)  # (true, predicted)
    return loss(params, batch, cost), float(np.trace(confusion) / confusion.sum()), confusion


# ---------------------------------------------------------------------------
# Running, in named steps: set up (no writes), claim the directory, train while recording, finish
# ---------------------------------------------------------------------------


class _Setup(NamedTuple):
    """Everything a run needs before its first write: data, network, optimizer, keys."""

    cfg: dict[str, Any]
    train_set: tuple[Any, ...]
    val_set: tuple[Any, ...] | None
    test_set: tuple[Any, ...]
    data_info: dict[str, Any]
    cost: Any
    params: Params
    optimizer: Any
    lr: float | None
    train_key: Any


def _setup(cfg: dict[str, Any]) -> _Setup:
    """Read the data and build the network and optimizer of a resolved config; writes nothing."""
    train_set, val_set, test_set, data_info = _load_data(cfg)
    params = build(cfg)
    optimizer, lr = _optimizer(cfg, len(train_set[1]))
    return _Setup(cfg, train_set, val_set, test_set, data_info, COSTS[cfg["cost"]], params, optimizer, lr,
                  fr.split(cfg["seed"], 3)[1])


class _Lock:
    """An exclusive lock on a run directory (``fcntl.flock`` on ``.lock``, which names the holder).

    A second process fails at once, naming the holder; the kernel drops the lock when its
    holder dies, so a crash never leaves a directory locked.
    """

    def __init__(self, folder: Path) -> None:
        import fcntl

        self.path = folder / LOCK_FILE
        f = open(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(f.fileno()).st_ino != os.stat(self.path).st_ino:  # unlinked by its last holder
                raise BlockingIOError
        except (BlockingIOError, FileNotFoundError):
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise RunError(
                f"{folder} is in use by {holder} (lock file {self.path}); wait for that run to end, "
                "or write this one to another --out."
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        f.flush()
        self.file = f

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()
        self.file.close()  # closing drops the flock


def _claim(out: Path, *, resuming: bool, overwrite: bool) -> _Lock:
    """Create and lock the run directory ``out``; refuse one that holds another run.

    A new run needs an empty (or new) directory; ``overwrite`` first clears one that holds a
    run. Stale temporary files of an earlier, killed process are removed.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise RunError(f"{out} is a file (or lies under one), not a directory; choose another --out.") from None
    except OSError as e:
        raise RunError(f"cannot create the run directory {out}: {e.strerror}; choose another --out.") from e
    try:
        lock = _Lock(out)
    except PermissionError as e:
        raise RunError(f"cannot write to the run directory {out}: {e.strerror}; choose another --out.") from e
    try:
        for stale in out.glob(".*.tmp"):
            stale.unlink()
        held = sorted(p.name for p in out.iterdir() if p.name != LOCK_FILE)
        if held and not resuming:
            if not overwrite:
                if CHECKPOINT_FILE in held:
                    ways = f"Continue that run with --resume {out}, clear it with --overwrite, or"
                elif CONFIG_FILE in held or RECORD_FILE in held:
                    why = "" if PARAMS_FILE in held else " (its run stopped before the first epoch ended)"
                    ways = f"It has no {CHECKPOINT_FILE} to resume from{why}: clear it with --overwrite, or"
                else:
                    ways = "It is not a run directory, which --overwrite never clears:"
                raise RunError(
                    f"{out} is not empty (it holds {', '.join(held[:6])}{', ...' if len(held) > 6 else ''}): a run "
                    f"directory holds one run. {ways} write this one to another --out."
                )
            if CONFIG_FILE not in held and RECORD_FILE not in held:
                raise RunError(
                    f"{out} holds files but no {CONFIG_FILE} or {RECORD_FILE}: it is not a run directory, and "
                    "--overwrite clears only run directories. Choose another --out."
                )
            for name in held:
                target = out / name
                shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
    except BaseException:
        lock.release()
        raise
    return lock


@contextlib.contextmanager
def _stops_as_interrupts() -> Any:
    """SIGTERM raises ``KeyboardInterrupt`` as Ctrl-C does, for the block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Recorder:
    """Watches a run: saves the checkpoint and record after every epoch, logs, drives the bar.

    The one place that holds a run's changing bookkeeping (the last state, each epoch's
    seconds, the best params for early stopping, the progress bar).
    """

    def __init__(self, setup: _Setup, out: Path | None, start: TrainState, best_params: Params | None,
                 log: Callable[[str], Any] | None, observers: tuple[Callable[[TrainState], Any], ...],
                 resumed_from: int | None) -> None:
        self.setup, self.cfg, self.out, self.log, self.observers = setup, setup.cfg, out, log, observers
        self.resumed_from, self.last = resumed_from, start
        self.completed = False  # the record says completed and the checkpoint finished: no stop changes them
        self.bar: Any = None
        self.started, self.t0 = _now(), time.perf_counter()
        self.wall_before = 0.0
        losses = [h.val_loss for h in start.history if h.val_loss is not None]
        self.best_loss = min(losses) if losses else float("inf")
        self.best_params = best_params
        self.val_name = "val" if setup.val_set is not None else "test"
        if out is not None and resumed_from is not None:
            with contextlib.suppress(OSError, ValueError, TypeError, AttributeError, KeyError):
                old = json.loads((out / RECORD_FILE).read_text())  # a damaged record only loses timings
                self.wall_before = float(old.get("wall_time_total_s") or 0.0)

    def on_batch(self, state: TrainState, value: float) -> None:
        if self.bar is None:
            from tqdm import tqdm

            n = fdata.num_batches(len(self.setup.train_set[1]), self.cfg["batch_size"])
            self.bar = tqdm(total=n, desc=f"epoch {state.epoch + 1}/{self.cfg['epochs']}", leave=False,
                            unit="batch", dynamic_ncols=True)
        n = self.bar.total
        done = (state.step - 1) % n + 1  # minibatches of this epoch so far
        if done % max(1, n // 100) == 0 or done == n:  # the bar moves ~100 times an epoch: watching costs nothing
            self.bar.set_postfix(loss=f"{value:.4f}", refresh=False)
            self.bar.update(done - self.bar.n)

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def checkpoint(self, state: TrainState, finished: str = "") -> Checkpoint:
        best = None
        if self.cfg["patience"] is not None and state.history and state.history[-1].val_loss != self.best_loss:
            best = self.best_params
        return Checkpoint(state, result_hash(self.cfg), self.setup.data_info["train_sha256"], best, finished)

    def __call__(self, state: TrainState) -> None:
        """The observer: after each epoch, first the checkpoint, so that a printed epoch is a saved one."""
        self.close_bar()
        val_loss = state.history[-1].val_loss
        if val_loss is not None and val_loss < self.best_loss:
            self.best_loss, self.best_params = val_loss, state.params
        if self.out is not None:
            with fio.hold_interrupts():  # a Ctrl-C waits: the record tells of the epoch the checkpoint holds
                for name in (PARAMS_FILE, CURVE_FILE):  # a finished run's (resumed for more epochs): stale now
                    (self.out / name).unlink(missing_ok=True)
                fio.save(self.out / CHECKPOINT_FILE, self.checkpoint(state))
                self.last = state
                _write_json(self.out / RECORD_FILE, self.record(state, "running"))
        self.last = state
        if self.log is not None:
            h = state.history[-1]
            self.log(f"epoch {state.epoch:>{len(str(self.cfg['epochs']))}}/{self.cfg['epochs']}  loss {h.loss:.4f}  "
                     f"{self.val_name} acc {h.val_accuracy:.4f}  {h.seconds:.1f}s")
        for o in self.observers:
            o(state)

    def history(self, state: TrainState) -> list[dict[str, Any]]:
        return [h._asdict() for h in state.history]  # each epoch's seconds are in its EpochStats

    def record(self, state: TrainState, status: str, **extra: Any) -> dict[str, Any]:
        wall = time.perf_counter() - self.t0
        return {
            "status": status,
            "config": self.cfg,
            "config_hash": config_hash(self.cfg),
            "seed": self.cfg["seed"],
            "epochs_done": state.epoch,
            "steps_done": state.step,
            "resumed_from_epoch": self.resumed_from,
            "validation_on": self.val_name,
            "num_params": num_params(self.setup.params),
            "history": self.history(state),
            **extra,
            "started": self.started,
            "finished": _now(),
            "wall_time_s": round(wall, 3),
            "wall_time_total_s": round(self.wall_before + wall, 3),
            "data": self.setup.data_info,
            "environment": environment(),
        }

    def stopped(self, status: str, **extra: Any) -> None:
        """Write the record of a run that stops here (interrupted, diverged, failed), best effort.

        A run whose completed record and finished checkpoint are written keeps them: a Ctrl-C that
        arrived while they were saved stops the process, not the run, which is complete.
        """
        self.close_bar()
        if self.out is not None and not self.completed:
            with contextlib.suppress(OSError):
                _write_json(self.out / RECORD_FILE, self.record(self.last, status, **extra))


def _train(setup: _Setup, start: TrainState, recorder: _Recorder, progress: bool) -> Params:
    """The training itself: :func:`fnn.train` from ``start`` with the recorder watching."""
    cfg = setup.cfg
    params, _ = train(
        setup.params, setup.train_set, epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=setup.lr,
        optimizer=setup.optimizer, cost=setup.cost, seed=setup.train_key,
        validation=setup.val_set if setup.val_set is not None else setup.test_set,
        initial_state=start, patience=cfg["patience"], best_params=recorder.best_params,
        observers=[recorder], on_batch=recorder.on_batch if progress else None,
    )
    return params


def _finish(setup: _Setup, params: Params, recorder: _Recorder) -> dict[str, Any]:
    """Final metrics, params file, plot and the completed record (and checkpoint)."""
    cfg, state, out = setup.cfg, recorder.last, recorder.out
    test_loss, test_acc, _ = _metrics(params, setup.test_set, setup.cost)
    final = {"train_loss": state.history[-1].loss if state.history else None,
             "test_loss": test_loss, "test_accuracy": test_acc}
    if setup.val_set is not None:
        final["val_loss"], final["val_accuracy"], _ = _metrics(params, setup.val_set, setup.cost)
    early = cfg["patience"] is not None and state.epoch < cfg["epochs"]
    extra: dict[str, Any] = {"final": final, "stopped_early": early}
    if out is not None:
        fio.save(out / PARAMS_FILE, params)
        extra["params_path"] = str((out / PARAMS_FILE).resolve())
        extra["checkpoint_path"] = str((out / CHECKPOINT_FILE).resolve())
        extra["plot"] = _plot(out, recorder.history(state), "validation" if setup.val_set is not None else "test")
    rec = recorder.record(state, "completed", **extra)
    if out is not None:  # a stop before this leaves a run that resume finishes; a Ctrl-C here waits for both
        with fio.hold_interrupts():
            _write_json(out / RECORD_FILE, rec)
            fio.save(out / CHECKPOINT_FILE, recorder.checkpoint(state, "stopped_early" if early else "completed"))
            recorder.completed = True
    return rec


def _execute(setup: _Setup, out: Path | None, start: TrainState, *, best_params: Params | None = None,
             resumed_from: int | None = None, overwrite: bool = False, progress: bool = False,
             log: Callable[[str], Any] | None = None,
             observers: Iterable[Callable[[TrainState], Any]] = ()) -> RunResult:
    """Claim ``out``, train from ``start`` while recording, finish; every stop leaves a true record."""
    observers = tuple(observers)
    lock = None if out is None else _claim(out, resuming=resumed_from is not None, overwrite=overwrite)
    recorder = _Recorder(setup, out, start, best_params, log, observers, resumed_from)
    try:
        with _stops_as_interrupts():
            if out is not None:
                _write_json(out / CONFIG_FILE, setup.cfg)
            params = _train(setup, start, recorder, progress)
            rec = _finish(setup, params, recorder)
    except KeyboardInterrupt:
        recorder.stopped("interrupted")
        raise
    except DivergenceError as e:
        if out is not None:  # the last finite state: the last complete epoch, or the start
            with contextlib.suppress(OSError, fio.CheckpointError):
                fio.save(out / CHECKPOINT_FILE, recorder.checkpoint(recorder.last))
        recorder.stopped("diverged", error=str(e))
        raise
    except (OSError, fio.CheckpointError) as e:
        cause = e.__cause__ if isinstance(e.__cause__, OSError) else e
        full = getattr(cause, "errno", None) == errno.ENOSPC
        what = "the disk is full" if full else str(e)
        recorder.stopped("failed", error=f"{type(e).__name__}: {e}")
        raise RunError(
            f"cannot write to the run directory {out}: {what}. The last complete epoch's checkpoint is kept; "
            f"free space (or fix the permissions) and continue with --resume {out}."
        ) from e
    finally:
        if lock is not None:
            lock.release()
    return RunResult(rec, params, recorder.last)


def run(
    config: Mapping[str, Any] | None = None,
    out: str | os.PathLike[str] | None = None,
    *,
    initial_state: TrainState | None = None,
    progress: bool = False,
    log: Callable[[str], Any] | None = None,
    observers: Iterable[Callable[[TrainState], Any]] = (),
    overwrite: bool = False,
) -> RunResult:
    """Train the network a config describes; returns a :class:`RunResult` ``(record, params, state)``.

    Args:
      config: a config dict (see :data:`DEFAULTS`); resolved and checked first.
      out: a run directory to write: new or empty (a run directory holds one run; see
        ``overwrite`` and :func:`resume`); ``None`` writes nothing. It is locked while the run
        goes on: a second process on it fails at once with :class:`RunError` naming the holder.
      initial_state: a :class:`fnn.TrainState` to continue from (checked by :func:`fnn.train`);
        ``config["epochs"]`` is the total number of epochs. :func:`resume` is the usual way.
      progress: show a tqdm bar over the minibatches of each epoch (needs tqdm).
      log: called with one line per epoch, e.g. ``print``; ``None`` is silent.
      observers: called with the state after each epoch; they cannot change the result.
      overwrite: clear ``out`` first if it holds a run (never a folder that is not a run directory).

    Every stop leaves a true record: on ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM, which raises
    it during a run) or :class:`fnn.DivergenceError` the run directory keeps the checkpoint of the
    last complete epoch and a record with ``"status"`` ``"interrupted"`` or ``"diverged"``, and the
    exception propagates; a failed write (disk full, permissions) records ``"failed"`` and raises
    :class:`RunError` naming the directory.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> result = run({"layers": [784, 8, 10], "epochs": 1, "batch_size": 100}, out)
    >>> result.record["status"], sorted(p.name for p in out.iterdir() if p.suffix != ".png")
    ('completed', ['checkpoint.npz', 'config.json', 'params.npz', 'record.json'])
    >>> run({"epochs": 1}, out)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    fnn.runs.RunError: ... is not empty (it holds ...): a run directory holds one run. ...
    """
    cfg = resolve_config(config)
    setup = _setup(cfg)
    start = initial_state if initial_state is not None else TrainState(
        setup.params, () if setup.optimizer is None else setup.optimizer.init(setup.params), setup.train_key, 0, 0, ()
    )
    return _execute(setup, None if out is None else Path(out), start, overwrite=overwrite, progress=progress,
                    log=log, observers=observers)


def _run_dir(run_dir: str | os.PathLike[str]) -> Path:
    path = Path(run_dir)
    if not path.is_dir():
        what = "is a file" if path.exists() else "does not exist"
        raise FileNotFoundError(f"{path} {what}; a run directory is the --out folder of fnn train.")
    return path


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path.parent} is not a run directory: it has no {path.name}.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the {what} ({e}); the file is damaged.") from None


def read_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The resolved config of a run directory (its ``config.json``, checked).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "config.json").write_text('{"lr": 0.5}')
    >>> read_config(d)["lr"], read_config(d)["epochs"]
    (0.5, 40)
    """
    path = _run_dir(run_dir) / CONFIG_FILE
    cfg = _read_json(path, "config")
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: expected an object of config keys, got {type(cfg).__name__}; the file is damaged.")
    try:
        return resolve_config(cfg)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def _read_checkpoint(run_dir: Path) -> Checkpoint:
    if not (run_dir / CHECKPOINT_FILE).exists():
        raise RunError(
            f"{run_dir} has no {CHECKPOINT_FILE}: its run stopped before the first epoch ended (or the file was "
            f"removed), so there is no state to continue or params to read. Start the run again with: "
            f"fnn train --config {run_dir / CONFIG_FILE} --out {run_dir} --overwrite"
        )
    found = fio.load(run_dir / CHECKPOINT_FILE)
    if not isinstance(found, Checkpoint):
        raise ConfigError(
            f"{run_dir / CHECKPOINT_FILE} holds a {type(found).__name__}, not a run checkpoint (fnn.runs.Checkpoint); "
            "it was not written by fnn train, or by an older fnn that did not record what it belongs to."
        )
    return found


def _resume_plan(run_dir: Path, overrides: Mapping[str, Any]) -> tuple[dict[str, Any], Checkpoint]:
    """The config to continue with and the verified checkpoint; refuses what would not continue the run."""
    saved = read_config(run_dir)
    unknown = sorted(set(overrides) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown config keys {unknown}; valid keys: {', '.join(DEFAULTS)}.")
    cfg = resolve_config({**saved, **overrides})
    changed = [k for k in DEFAULTS if k not in RESUMABLE and cfg[k] != saved[k]]
    if changed:
        diff = "; ".join(f"{k}: {saved[k]!r} -> {cfg[k]!r}" for k in changed)
        raise ConfigError(
            f"--resume continues the run in {run_dir} as it was configured; these keys would change its result: "
            f"{diff}. Only {', '.join(RESUMABLE)} may change; start a new run (another --out) for the rest."
        )
    ckpt = _read_checkpoint(run_dir)
    if ckpt.config_hash != result_hash(saved):
        raise ConfigError(
            f"{run_dir / CHECKPOINT_FILE} belongs to another run (config hash {ckpt.config_hash}, while "
            f"{CONFIG_FILE} hashes to {result_hash(saved)}): was it copied from another run directory?"
        )
    done = ckpt.state.epoch
    if ckpt.finished == "stopped_early":
        raise RunError(
            f"{run_dir} stopped early after epoch {done} (patience {saved['patience']}): the run is complete."
        )
    if cfg["epochs"] < done or (ckpt.finished == "completed" and cfg["epochs"] == done):
        more = f"--epochs above {done}" if cfg["epochs"] <= done else "more epochs"
        raise RunError(
            f"{run_dir} has done {done} epochs and is {'complete' if ckpt.finished else 'past that'}: "
            f"--epochs {cfg['epochs']} leaves nothing to train. Pass {more} to train it longer."
        )
    return cfg, ckpt


def resume(
    run_dir: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None, **kwargs: Any
) -> RunResult:
    """Continue the run in ``run_dir`` from its checkpoint, writing to the same directory.

    ``overrides`` changes config keys, usually ``{"epochs": 10}`` (the new total); only the
    keys in :data:`RESUMABLE` may change, any other difference raises :class:`ConfigError`
    listing the keys. The checkpoint must belong to the run (:func:`result_hash` of
    ``config.json``) and the training data must have the SHA-256 it was trained on. Early
    stopping continues exactly (its state is in the checkpoint); a run that stopped early, or
    completed with no more epochs asked for, stays as it is (:class:`RunError`). A run stopped
    after epoch k and resumed ends bit-identical to the same run never stopped (keep ``epochs``
    unchanged when the schedule decays over the whole run: its length follows ``epochs``).
    Other keyword arguments (``progress``, ``log``, ``observers``) go as in :func:`run`.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> _ = run({"layers": [784, 8, 10], "epochs": 1, "batch_size": 100}, out)
    >>> resume(out, {"epochs": 2}).record["epochs_done"]
    2
    >>> resume(out, {"epochs": 2, "seed": 7})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    fnn.runs.ConfigError: --resume continues the run in ... these keys would change its result: seed: 0 -> 7. ...
    """
    run_dir = _run_dir(run_dir)
    cfg, ckpt = _resume_plan(run_dir, dict(overrides or {}))
    setup = _setup(cfg)
    if setup.data_info["train_sha256"] != ckpt.train_sha256:
        raise ConfigError(
            f"the training data differ from those {run_dir} was trained on (SHA-256 "
            f"{setup.data_info['train_sha256'][:16]}... instead of {ckpt.train_sha256[:16]}...); "
            "resume with the same data files."
        )
    _check_state(run_dir, ckpt, setup)
    return _execute(setup, run_dir, ckpt.state, best_params=ckpt.best_params, resumed_from=ckpt.state.epoch,
                    **kwargs)


def _damaged(path: Path, reason: str) -> fio.CheckpointError:
    run_dir = path.parent
    return fio.CheckpointError(
        f"{path} is damaged: {reason} Restore it, or start the run again with: "
        f"fnn train --config {run_dir / CONFIG_FILE} --out {run_dir} --overwrite"
    )


def _check_state(run_dir: Path, ckpt: Checkpoint, setup: _Setup) -> None:
    """Refuse a checkpoint whose state cannot continue the run ``setup`` describes, before any write."""
    path = run_dir / CHECKPOINT_FILE
    try:
        validate.initial_state(ckpt.state, setup.params, setup.optimizer, name="state")
        if ckpt.best_params is not None:
            validate.params_like(ckpt.best_params, setup.params, "best_params", "")
    except (TypeError, ValueError) as e:
        raise _damaged(path, str(e).splitlines()[0]) from None


def _final_params(run_dir: Path, cfg: Mapping[str, Any]) -> Params:
    """The params of a run directory: the params file, or the checkpoint's when the run did not finish."""
    path = run_dir / PARAMS_FILE
    if path.exists():
        params = fio.load(path, like=build(cfg))
    else:
        path = run_dir / CHECKPOINT_FILE
        params = _read_checkpoint(run_dir).state.params
        fio.check_like(path, params, build(cfg))
    try:  # fnn never saves NaN: a diverged run keeps its last finite state
        validate.params_like(params, build(cfg), "params", "")
    except ValueError as e:
        raise _damaged(path, str(e).splitlines()[0]) from None
    return params


def load_run(run_dir: str | os.PathLike[str]) -> RunResult:
    """The record, final params and latest checkpoint state of a run directory.

    The params are checked against the architecture in ``config.json``. A run that did
    not finish has no params file: its params are the checkpoint's.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> _ = run({"layers": [784, 8, 10], "epochs": 1, "batch_size": 100}, out)
    >>> record, params, state = load_run(out)
    >>> record["status"], [type(layer).__name__ for layer in params], state.epoch
    ('completed', ['Dense', 'Sigmoid', 'Dense', 'Sigmoid'], 1)
    """
    run_dir = _run_dir(run_dir)
    cfg = read_config(run_dir)
    record_path = run_dir / RECORD_FILE
    record = _read_json(record_path, "record") if record_path.exists() else {}
    if not isinstance(record, dict):
        raise ConfigError(f"{record_path}: expected a run record (an object), got {type(record).__name__}.")
    return RunResult(record, _final_params(run_dir, cfg), _read_checkpoint(run_dir).state)


def evaluate(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Accuracy, loss, confusion matrix (rows: true class, columns: predicted) and per-class accuracy
    (``None`` for a class absent from it) on the test split, from :mod:`fnn.metrics`.

    Reads ``config.json`` and the params (never the record, which it does not need).

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> _ = run({"layers": [784, 8, 10], "epochs": 1, "batch_size": 100}, out)
    >>> result = evaluate(out)
    >>> result["n"], result["accuracy"] == load_run(out).record["final"]["test_accuracy"]
    (2000, True)
    """
    run_dir = _run_dir(run_dir)
    cfg = read_config(run_dir)
    params = _final_params(run_dir, cfg)
    _, _, test_set, info = _load_data(cfg)
    test_loss, acc, confusion = _metrics(params, test_set, COSTS[cfg["cost"]])
    per_class = metrics.per_class_accuracy(params, test_set)
    return {"dataset": cfg["dataset"], "n": int(confusion.sum()), "correct": int(np.trace(confusion)),
            "accuracy": acc, "loss": test_loss, "confusion": confusion.tolist(),
            "per_class_accuracy": [None if np.isnan(a) else float(a) for a in per_class],
            "test_sha256": info["test_sha256"]}



# ---------------------------------------------------------------------------
# Sweeps: a grid of runs, on a process pool or Dask, resumable, with a summary
# ---------------------------------------------------------------------------

SUMMARY_CSV, SUMMARY_MD, SWEEP_PLOT, RUNS_DIR = "summary.csv", "summary.md", "sweep.png", "runs"
_FINISHED = ("completed", "diverged")  # a rerun skips these; interrupted and failed runs run again


class SweepResult(NamedTuple):
    """What :func:`sweep` returns: one row per run (as in ``summary.csv``) and ``summary.md``'s text."""

    rows: list[dict[str, Any]]
    table: str


def sweep_configs(grid_or_configs: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The resolved configs of a grid (see :func:`fnn.grid.expand`) or of a list of configs, all checked.

    Raises :class:`ConfigError` naming the run, its varied values and the bad key and value,
    or for two entries that are the same run.

    >>> [c["lr"] for c in sweep_configs({"lr": [0.5, 5], "epochs": 1})]
    [0.5, 5.0]
    >>> sweep_configs({"lr": [0.5, -1.0]})
    Traceback (most recent call last):
      ...
    fnn.runs.ConfigError: run 2 of 2 (lr=-1.0): lr must be a finite number > 0, got -1.0; pass e.g. 0.1.
    """
    from fnn import grid

    if isinstance(grid_or_configs, Mapping):
        try:
            raw = grid.expand(grid_or_configs, list_keys={k for k, v in DEFAULTS.items() if isinstance(v, list)})
        except ValueError as e:
            raise ConfigError(str(e)) from None
    else:
        raw = [dict(c) if isinstance(c, Mapping) else c for c in grid_or_configs]
        bad = [i for i, c in enumerate(raw) if not isinstance(c, dict)]
        if bad:
            raise ConfigError(f"every config must be a dict, got {type(raw[bad[0]]).__name__} at index {bad[0]}.")
    if not raw:
        raise ConfigError("a sweep needs at least one config; got an empty list.")
    keys = grid.varied(raw)
    configs: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, c in enumerate(raw):
        where = f"run {i + 1} of {len(raw)}" + (f" ({', '.join(f'{k}={c.get(k)!r}' for k in keys)})" if keys else "")
        try:
            cfg = resolve_config(c)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
        h = config_hash(cfg)
        if h in seen:
            raise ConfigError(f"{where} is the same run as run {seen[h] + 1}; list each configuration once.")
        seen[h] = i
        configs.append(cfg)
    return configs


def _limit_blas() -> Any:
    """Limit BLAS to one thread until ``.restore_original_limits()``; None without threadpoolctl.

    Every run of a sweep takes one BLAS thread, so that its result does not depend on where it
    ran (the last bits of a matrix product depend on the thread count). The limit is process-wide:
    on an executor running several sweep runs as threads of one process, a run ending restores
    the limits under the others; use processes (or one thread per Dask worker).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(1)


def _pool_worker() -> None:
    """A sweep pool process: one BLAS thread; Ctrl-C ignored except while a run trains (see :func:`_sweep_run`)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_blas()


def _read_record(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None


def _outcome(run_dir: Path, status: str, error: str | None = None, wall: float | None = None) -> dict[str, Any]:
    """A summary row's run fields, from the run directory's record (if any)."""
    rec = _read_record(run_dir) or {}
    final = (rec.get("final") or {}) if status == "completed" else {}
    return {
        "status": status,
        "test_accuracy": final.get("test_accuracy"),
        "test_loss": final.get("test_loss"),
        "epochs_done": rec.get("epochs_done", 0),
        "wall_s": rec.get("wall_time_total_s", None if wall is None else round(wall, 3)),
        "run_dir": str(run_dir),
        "error": error if error is not None else rec.get("error"),
    }


def _sweep_run(cfg: dict[str, Any], run_dir: str, interruptible: bool = False) -> dict[str, Any]:
    """Runs on a worker: one run of a sweep, fresh or from its checkpoint; its outcome, never an exception.

    ``interruptible``: this is a sweep pool's process, which ignores Ctrl-C when idle; during
    the run Ctrl-C stops the run cleanly (as it stops the sweep in the parent process).
    """
    import signal

    path, t0 = Path(run_dir), time.perf_counter()
    if interruptible:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    limiter = _limit_blas()
    try:
        if (path / CHECKPOINT_FILE).exists():
            resume(path)
        else:
            if path.exists():  # an earlier attempt that failed before its first epoch: start afresh
                import shutil

                shutil.rmtree(path)
            run(cfg, path)
        return _outcome(path, "completed")
    except DivergenceError as e:
        return _outcome(path, "diverged", str(e))
    except KeyboardInterrupt:
        return _outcome(path, "interrupted", "interrupted (Ctrl-C)")
    except Exception as e:  # failures are data: recorded, and the other runs go on
        return _outcome(path, "failed", f"{type(e).__name__}: {e}", time.perf_counter() - t0)
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
        if interruptible:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stopped(run_dir: Path) -> dict[str, Any]:
    """The row of a run that a Ctrl-C or a lost worker left unfinished (it may have finished meanwhile)."""
    rec = _read_record(run_dir)
    if rec is None:
        return _outcome(run_dir, "interrupted", "not started")
    status = rec.get("status")
    return _outcome(run_dir, status if status in _FINISHED else "interrupted")


def _process_pool(workers: int) -> Any:
    """``workers`` local processes for a sweep, each with one BLAS thread.

    Forked from this process when it runs a single thread (no start-up cost: fnn and
    matplotlib are already imported), else from a fork server that imported them once.
    """
    import multiprocessing as mp
    import threading
    from concurrent.futures import ProcessPoolExecutor

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401  (every run draws its curve.png)
    except ImportError:
        pass
    methods = mp.get_all_start_methods()
    ctx: Any
    if "fork" in methods and threading.active_count() == 1:  # fork is only safe without other threads
        ctx = mp.get_context("fork")
    elif "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["fnn.runs", "matplotlib.pyplot"])
    else:
        ctx = mp.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_pool_worker)
    pool.submit(int).result()  # start the processes now, before any other thread (a progress bar's) exists
    return pool


def _write_summary(out: Path, rows: list[dict[str, Any]], keys: list[str]) -> str:
    from fnn import grid

    grid.write_csv(out / SUMMARY_CSV, rows, keys)
    table = grid.markdown(rows, keys)
    with fio.atomic_write(out / SUMMARY_MD) as f:
        f.write((table + "\n").encode())
    grid.plot(out / SWEEP_PLOT, rows, keys)
    return table


def _row_line(row: dict[str, Any], keys: list[str], done: int, total: int) -> str:
    from fnn import grid

    what = ", ".join(f"{k}={grid.show(row.get(k))}" for k in [*[k for k in keys if k != "seed"], "seed"])
    acc = "" if row["test_accuracy"] is None else f"  test acc {row['test_accuracy']:.4f}"
    wall = "" if row["wall_s"] is None else f"  {row['wall_s']:.1f}s"
    err = "" if row["status"] == "completed" or not row["error"] else f"  ({row['error']})"
    return f"[{done:>{len(str(total))}}/{total}] {row['status']:<11} {what}{acc}{wall}  {row['run_dir']}{err}"


def sweep(
    grid_or_configs: Mapping[str, Any] | Iterable[Mapping[str, Any]],
    executor: Any = None,
    *,
    out: str | os.PathLike[str],
    log: Callable[[str], Any] | None = None,
    progress: bool = False,
) -> SweepResult:
    """Run every configuration of a grid, resumably, and write its summary; returns a :class:`SweepResult`.

    Args:
      grid_or_configs: a grid (a dict whose list values are axes, see :func:`fnn.grid.expand`)
        or a list of config dicts. All are resolved and checked before any run starts
        (:func:`sweep_configs`).
      executor: ``None`` runs one by one in this process; an ``int`` N runs N at a time in
        local processes; or anything with ``submit(fn, *args) -> Future``, e.g. Dask's
        ``client.get_executor()`` (a task whose worker dies is rerun on another worker).
      out: the sweep directory. Run ``i`` is the ordinary run directory
        ``out/runs/<config hash>/`` (see :func:`run`); ``out/summary.csv`` has a row per run,
        ``out/summary.md`` the configurations averaged over seeds, best first, and
        ``out/sweep.png`` test accuracy against each varied key.
      log: called with a line per finished run, e.g. ``print``.
      progress: a tqdm bar over the runs.

    Every run uses one BLAS thread wherever it runs, so its results do not depend on the
    executor: a run directory is bit-identical to ``run(config, out)`` (or ``fnn train``) with
    one BLAS thread. Run again with the same ``out``, a sweep skips the finished runs
    (completed or diverged), continues interrupted ones from their checkpoint, runs failed
    ones afresh and rewrites the summary. A run that diverges or fails is a row with its
    status and error; the others finish. On Ctrl-C the summary of what finished is written
    and ``KeyboardInterrupt`` propagates.

    >>> import tempfile
    >>> result = sweep({"layers": [784, 8, 10], "epochs": 1, "seed": [0, 1]}, out=tempfile.mkdtemp())
    >>> [(r["seed"], r["status"]) for r in result.rows]
    [(0, 'completed'), (1, 'completed')]
    """
    from fnn import grid

    configs = sweep_configs(grid_or_configs)
    if executor is not None and not isinstance(executor, int) and not callable(getattr(executor, "submit", None)):
        raise TypeError(f"executor must be None, a number of processes or have submit(fn, *args); got {executor!r}.")
    if isinstance(executor, bool) or (isinstance(executor, int) and executor < 1):
        raise ValueError(f"executor as a number of processes must be >= 1, got {executor!r}.")
    out = Path(out)
    keys = grid.varied(configs)
    dirs = [out / RUNS_DIR / config_hash(c) for c in configs]
    try:
        (out / RUNS_DIR).mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise RunError(f"{out} is a file (or lies under one), not a directory; choose another --out.") from None
    except OSError as e:
        raise RunError(f"cannot create the sweep directory {out}: {e.strerror}; choose another --out.") from e

    rows: list[dict[str, Any] | None] = [None] * len(configs)
    for i, d in enumerate(dirs):
        rec = _read_record(d)
        if rec is not None and rec.get("status") in _FINISHED and (
            rec["status"] != "completed" or (d / PARAMS_FILE).exists()
        ):
            rows[i] = _outcome(d, rec["status"])
    todo = [i for i, r in enumerate(rows) if r is None]
    # the pool starts before tqdm's monitor thread, so that it can fork
    pool = _process_pool(min(executor, len(todo))) if isinstance(executor, int) and todo else None
    say = log or (lambda line: None)
    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(configs), initial=len(configs) - len(todo), unit="run", desc="sweep", dynamic_ncols=True)
        say = tqdm.write if log is not None else say
    say(f"fnn sweep: {len(configs)} runs ({len(configs) - len(todo)} already finished) -> {out}")

    def row(i: int) -> dict[str, Any]:
        cfg = configs[i]
        return {**{k: cfg[k] for k in keys if k != "seed"}, "seed": cfg["seed"], **(rows[i] or {})}

    def finished(i: int, outcome: dict[str, Any]) -> None:
        rows[i] = outcome
        if bar is not None:
            bar.update(1)
        say(_row_line(row(i), keys, sum(r is not None for r in rows), len(configs)))

    interrupted = False
    try:
        if executor is None:
            for i in todo:
                outcome = _sweep_run(configs[i], str(dirs[i]))
                finished(i, outcome)
                if outcome["status"] == "interrupted":
                    raise KeyboardInterrupt
        elif isinstance(executor, int):
            if pool is not None:
                with pool:
                    import signal

                    parent_stops = signal.getsignal(signal.SIGINT) is not signal.SIG_IGN  # else runs ignore it too
                    _gather(pool, configs, dirs, todo, finished, interruptible=parent_stops)
        else:
            _gather(executor, configs, dirs, todo, finished, interruptible=False)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.close()
    for i, d in enumerate(dirs):
        if rows[i] is None:
            rows[i] = _stopped(d)
    table = _write_summary(out, [row(i) for i in range(len(configs))], keys)
    if interrupted:
        raise KeyboardInterrupt
    return SweepResult([row(i) for i in range(len(configs))], table)


def _gather(executor: Any, configs: list[dict[str, Any]], dirs: list[Path], todo: list[int],
            finished: Callable[[int, dict[str, Any]], None], interruptible: bool) -> None:
    """Submit the runs ``todo`` to ``executor`` and report each as it finishes; a lost run is failed."""
    import concurrent.futures as cf

    futures = {executor.submit(_sweep_run, configs[i], str(dirs[i]), interruptible): i for i in todo}
    reported = set()
    try:
        for f in cf.as_completed(futures):
            i = futures[f]
            reported.add(f)
            try:
                finished(i, f.result())
            except (Exception, cf.CancelledError) as e:  # the engine lost the run (worker died, pool broke)
                left = _stopped(dirs[i])
                lost = {**left, "status": "failed", "error": f"{type(e).__name__}: {e}"}
                finished(i, left if left["status"] in _FINISHED else lost)
    except KeyboardInterrupt:
        for f in futures:
            f.cancel()
        for f, i in futures.items():
            # our pool's runs in progress got the Ctrl-C too and stop at once: collect their records;
            # elsewhere (Dask) only what is done: the rest are rows "interrupted" from their run directories
            if f not in reported and not f.cancelled() and (interruptible or f.done()):
                try:
                    finished(i, f.result())
                except (Exception, cf.CancelledError):
                    pass
        raise
