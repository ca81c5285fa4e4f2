"""Smoke test of scripts/benchmark.py: a --quick run prints a full table (no timing assertions)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark.py"


def test_quick_run_prints_a_table_with_numbers_in_every_row() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--limit", "400",
         "--peers", "fnn,fnn_on_batch,fnn_continue,numpy_tuned,numpy_plain,seed_loop",
         "--no-parallel", "--no-conv", "--no-cli", "--no-sequence"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert "| workload | implementation | min s | median s | max s |" in out
    rows = [line for line in out.splitlines() if line.startswith("| W") and line.count("|") == 9]
    names = {r.split("|")[2].strip() for r in rows}
    assert {"fnn.train", "fnn.train, on_batch callback", "fnn.train, on_divergence='continue'",
            "tuned NumPy (preallocated, in place)",
            "seed-style per-example loop"} <= names
    assert len(rows) >= 8
    for row in rows:
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert re.fullmatch(r"\d+\.\d{3}", cells[3]), row  # the median, in seconds
    assert "## Targets" in out and "W1 fnn / straightforward NumPy (fresh arrays), 1 thread" in out
    assert "W1 fnn with an on_batch callback / without, 1 thread" in out


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")
def test_both_pytorch_loops_are_timed_and_both_w1_ratios_reported() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--limit", "200", "--workloads", "W1",
         "--peers", "fnn,torch,torch_dataloader", "--no-parallel", "--no-conv", "--no-cli", "--no-sequence"],
        capture_output=True, text=True, timeout=180, check=True,
    ).stdout
    names = {r.split("|")[2].strip() for r in out.splitlines() if r.startswith("| W1 ")}
    assert {"PyTorch eager (CPU), tight index_select loop",
            "PyTorch eager (CPU), DataLoader(shuffle=True) loop"} <= names
    targets = out[out.index("## Targets"):]
    for name in ("W1 fnn / PyTorch tight index_select loop, 1 thread",
                 "W1 fnn / PyTorch DataLoader(shuffle=True) loop, 1 thread"):
        row = next(line for line in targets.splitlines() if line.startswith(f"| {name} |"))
        assert re.search(r"\| \d+\.\d\d \| <= 0.15 \| (pass|FAIL) \|$", row), row


def test_guarantee_costs_run_with_each_guarantee_off() -> None:
    """scripts/bench_guarantees.py times every variant, and fails itself if a switch stopped working."""
    script = SCRIPT.parent / "bench_guarantees.py"
    out = subprocess.run([sys.executable, str(script), "--repeats", "1", "--limit", "300"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    for name in ("all guarantees", "without divergence", "without accuracy", "without read-only", "without input",
                 "none", "NumPy loop"):
        assert re.fullmatch(r"\| .+ \| \d+\.\d{3} \| \d+\.\d{3} \| \d+\.\d{3} \| \d+\.\d\d \|", rows[name]), rows[name]


def test_optimizer_benchmark_reports_every_row() -> None:
    """scripts/bench_optim.py times fnn's update for both nets and optimizers (PyTorch's beside it where installed)."""
    script = SCRIPT.parent / "bench_optim.py"
    out = subprocess.run([sys.executable, str(script), "--repeats", "1", "--calls", "20"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    rows = [line for line in out.splitlines() if line.startswith("| W")]
    assert [r.split("|")[1:3] for r in rows] == [[" W1 ", " momentum "], [" W1 ", " adam "],
                                                 [" W2 ", " momentum "], [" W2 ", " adam "]]
    for row in rows:
        assert re.fullmatch(r"\| W\d \| \w+ \| \d+\.\d \| (\d+\.\d \| \d+\.\d\d|- \| -) \|", row), row
