"""Grids of configurations and the summary of a sweep: the pure parts of :func:`fnn.runs.sweep`.

A *grid* is a dict of config keys. A list value is an axis; keys whose value is
itself a list (``layers``, ``channels``) take a list of lists; a scalar is fixed.
:func:`expand` makes the Cartesian product, the last axis varying fastest:

    expand({"lr": [a, b], "seed": [0, 1]}) == [{lr: a, seed: 0}, {lr: a, seed: 1}, {lr: b, seed: 0}, ...]

A sweep's result is a list of *rows*, one per run: the varied keys, ``seed``,
``status`` (``completed``, ``diverged``, ``failed``, ``interrupted``),
``test_accuracy``, ``test_loss``, ``epochs_done``, ``wall_s``, ``run_dir`` and
``error``. :func:`write_csv`, :func:`markdown` and :func:`plot` turn them into
``summary.csv``, ``summary.md`` and ``sweep.png``; :func:`groups` averages them
over seeds (mean and sample standard deviation of the completed runs).

>>> configs = expand({"lr": [1.0, 5.0], "seed": [0, 1], "epochs": 2})
>>> [(c["lr"], c["seed"]) for c in configs], varied(configs)
([(1.0, 0), (1.0, 1), (5.0, 0), (5.0, 1)], ['lr', 'seed'])
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import statistics
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from fnn import io as fio

__all__ = ["COLUMNS", "STATUSES", "Group", "expand", "varied", "groups", "show", "markdown", "write_csv", "plot"]

#: The columns of ``summary.csv`` after the varied keys and ``seed``.
COLUMNS = ("status", "test_accuracy", "test_loss", "epochs_done", "wall_s", "run_dir", "error")
#: What became of a run.
STATUSES = ("completed", "diverged", "failed", "interrupted")


def _is_axis(key: str, value: Any, list_keys: Collection[str]) -> bool:
    if not isinstance(value, (list, tuple)):
        return False
    if key not in list_keys:
        return True
    nested = [isinstance(v, (list, tuple, str)) for v in value]
    if value and all(nested):
        return True
    if any(nested):
        raise ValueError(
            f"{key} = {json.dumps(value)} mixes values and lists; {key} takes a list, so an axis of it is a "
            f"list of lists, e.g. {key} = [[784, 16, 10], [784, 64, 10]]."
        )
    return False


def expand(grid: Mapping[str, Any], list_keys: Collection[str] = ()) -> list[dict[str, Any]]:
    """The configs of a grid: the Cartesian product of its axes, in key order, the last varying fastest.

    Args:
      grid: config keys to values; a list (or tuple) is an axis, anything else is fixed.
      list_keys: keys whose value is itself a list; for them only a list of lists (or of
        strings like ``"784,16,10"``) is an axis.

    Returns:
      one dict per combination, with the keys of ``grid`` in its order.

    Raises ``ValueError`` for an empty axis or a list key given a mix of values and lists.

    >>> expand({"layers": [[784, 8, 10], [784, 16, 10]], "lr": 2.0}, list_keys={"layers"})
    [{'layers': [784, 8, 10], 'lr': 2.0}, {'layers': [784, 16, 10], 'lr': 2.0}]
    >>> expand({"layers": [784, 8, 10]}, list_keys={"layers"})
    [{'layers': [784, 8, 10]}]
    """
    if not isinstance(grid, Mapping):
        raise TypeError(f"a grid is a dict of config keys, got {type(grid).__name__}; e.g. {{'lr': [0.5, 5.0]}}.")
    axes = []
    for key, value in grid.items():
        if _is_axis(key, value, list_keys):
            if not value:
                raise ValueError(f"{key} = [] is an axis with no values; give at least one, e.g. {key} = [...].")
            axes.append([(key, v) for v in value])
        else:
            axes.append([(key, value)])
    return [dict(combination) for combination in itertools.product(*axes)]


def varied(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The keys whose values differ between configs, in the order of the first config.

    >>> varied([{"lr": 1.0, "seed": 0}, {"lr": 1.0, "seed": 1}])
    ['seed']
    """
    if not configs:
        return []
    return [k for k in configs[0] if any(json.dumps(c.get(k)) != json.dumps(configs[0][k]) for c in configs)]


# ---------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------


class Group(NamedTuple):
    """One configuration of a sweep, over its seeds: the statistics of its completed runs."""

    values: dict[str, Any]  # the varied keys bar seed
    rows: list[dict[str, Any]]
    n: int  # completed runs
    accuracy: float | None  # mean test accuracy
    accuracy_std: float | None  # sample standard deviation (n - 1); None below two runs
    loss: float | None
    loss_std: float | None


def _mean_std(xs: list[float]) -> tuple[float | None, float | None]:
    if not xs:
        return None, None
    return statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else None


def groups(rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[Group]:
    """The rows grouped by the values of ``keys`` (seed left out), best mean test accuracy first.

    Groups with no completed run come last, in the order of the rows.

    >>> rows = [{"lr": 1, "seed": s, "status": "completed", "test_accuracy": a, "test_loss": 0.1}
    ...         for s, a in enumerate([0.8, 0.9])] + [{"lr": 5, "seed": 0, "status": "diverged"}]
    >>> [(g.values, g.n, round(g.accuracy, 2), round(g.accuracy_std, 4)) for g in groups(rows, ["lr", "seed"])[:1]]
    [({'lr': 1}, 2, 0.85, 0.0707)]
    """
    keys = [k for k in keys if k != "seed"]
    by: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by.setdefault(json.dumps([row.get(k) for k in keys]), []).append(row)
    out = []
    for members in by.values():
        done = [r for r in members if r.get("status") == "completed" and r.get("test_accuracy") is not None]
        acc, acc_std = _mean_std([float(r["test_accuracy"]) for r in done])
        loss, loss_std = _mean_std([float(r["test_loss"]) for r in done])
        out.append(Group({k: members[0].get(k) for k in keys}, [dict(r) for r in members], len(done),
                         acc, acc_std, loss, loss_std))
    return sorted(out, key=lambda g: math.inf if g.accuracy is None else -g.accuracy)


def show(value: Any) -> str:
    """A value as a table cell: lists as ``784-16-10``, floats with ``:g``.

    >>> show([784, 16, 10]), show(0.50), show(None)
    ('784-16-10', '0.5', '')
    """
    if isinstance(value, (list, tuple)):
        return "-".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)


def _pm(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.4f}" + ("" if std is None else f" ± {std:.4f}")


def _statuses(rows: Sequence[Mapping[str, Any]]) -> str:
    counts = [(s, sum(r.get("status") == s for r in rows)) for s in STATUSES]
    return ", ".join(f"{c} {s}" for s, c in counts if c)


def markdown(rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> str:
    """``summary.md``: one line per configuration, mean ± sample std over seeds, best first.

    >>> rows = [{"lr": lr, "seed": 0, "status": "completed", "test_accuracy": a, "test_loss": 0.1}
    ...         for lr, a in [(1.0, 0.8), (5.0, 0.9)]]
    >>> print(markdown(rows, ["lr"]))  # doctest: +NORMALIZE_WHITESPACE
    # Sweep summary
    <BLANKLINE>
    2 runs: 2 completed. Mean ± sample standard deviation over seeds of the completed runs (n).
    <BLANKLINE>
    | lr | n | test accuracy | test loss | runs |
    |---|---:|---|---|---|
    | 5 | 1 | 0.9000 | 0.1000 | 1 completed |
    | 1 | 1 | 0.8000 | 0.1000 | 1 completed |
    <BLANKLINE>
    Best: lr=5, test accuracy 0.9000 (n=1).
    """
    shown = [k for k in keys if k != "seed"]
    lines = [
        "# Sweep summary",
        "",
        f"{len(rows)} runs: {_statuses(rows)}. Mean ± sample standard deviation over seeds of the completed "
        "runs (n).",
        "",
        "| " + " | ".join([*shown, "n", "test accuracy", "test loss", "runs"]) + " |",
        "|" + "---|" * len(shown) + "---:|---|---|---|",
    ]
    table = groups(rows, keys)
    for g in table:
        cells = [show(g.values[k]) for k in shown]
        cells += [str(g.n), _pm(g.accuracy, g.accuracy_std), _pm(g.loss, g.loss_std), _statuses(g.rows)]
        lines.append("| " + " | ".join(cells) + " |")
    best = table[0] if table and table[0].accuracy is not None else None
    lines.append("")
    if best is None:
        lines.append("Best: none, no run completed.")
    else:
        name = ", ".join(f"{k}={show(v)}" for k, v in best.values.items())
        lines.append(f"Best: {name + ', ' if name else ''}test accuracy {_pm(best.accuracy, best.accuracy_std)} "
                     f"(n={best.n}).")
    return "\n".join(lines)


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, tuple)) else "" if value is None else value


def write_csv(path: str | Path, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> None:
    """``summary.csv``: one row per run; the varied keys, ``seed``, then :data:`COLUMNS`.

    Lists are written as JSON (``[784, 16, 10]``), missing values as empty cells.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "summary.csv"
    >>> write_csv(path, [{"lr": 0.5, "seed": 0, "status": "completed", "test_accuracy": 0.9}], ["lr", "seed"])
    >>> path.read_text().splitlines()[1].split(",")[:4]
    ['0.5', '0', 'completed', '0.9']
    """
    columns = [*[k for k in keys if k != "seed"], "seed", *COLUMNS]
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(columns)
    writer.writerows([_cell(r.get(c)) for c in columns] for r in rows)
    with fio.atomic_write(path) as f:
        f.write(text.getvalue().encode())


def plot(path: str | Path, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> str:
    """``sweep.png``: test accuracy against each varied key (seed only if nothing else varies), a point per run.

    Numbers get a numeric axis (logarithmic when they span a factor of 10 or more), other
    values one position each. Returns the file name, or why it was skipped.

    >>> import tempfile, pathlib
    >>> rows = [{"lr": lr, "seed": 0, "test_accuracy": acc} for lr, acc in [(0.5, 0.8), (5.0, 0.9)]]
    >>> plot(pathlib.Path(tempfile.mkdtemp()) / "sweep.png", rows, ["lr", "seed"]) in (
    ...     "sweep.png", "skipped: matplotlib not installed")  # matplotlib comes with the cli extra
    True
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "skipped: matplotlib not installed"
    shown = [k for k in keys if k != "seed"] or ["seed"]
    done = [r for r in rows if r.get("test_accuracy") is not None]
    fig, axes = plt.subplots(1, len(shown), figsize=(4 * len(shown), 3.5), squeeze=False)
    for ax, key in zip(axes[0], shown):
        values = [r.get(key) for r in done]
        accs = [float(r["test_accuracy"]) for r in done]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if numeric:
            ax.plot(values, accs, "o", alpha=0.7)
            positive = [float(v) for v in values if float(v) > 0]  # type: ignore[arg-type]
            if values and len(positive) == len(values) and max(positive) >= 10 * min(positive):
                ax.set_xscale("log")
        else:
            labels = list(dict.fromkeys(show(v) for v in (r.get(key) for r in rows)))
            ax.plot([labels.index(show(v)) for v in values], accs, "o", alpha=0.7)
            ax.set_xticks(range(len(labels)), labels)
            ax.set_xlim(-0.5, len(labels) - 0.5)
        ax.set_xlabel(key)
        ax.set_ylabel("test accuracy")
    fig.tight_layout()
    with fio.atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return Path(path).name
