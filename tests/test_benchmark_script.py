"""Smoke test of scripts/benchmark.py: a --quick run prints a full table (no timing assertions)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark.py"


def test_quick_run_prints_a_table_with_numbers_in_every_row() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--limit", "400", "--peers", "fnn,numpy_tuned,numpy_plain,seed_loop",
         "--no-parallel", "--no-conv"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert "| workload | implementation | min s | median s | max s |" in out
    rows = [line for line in out.splitlines() if line.startswith("| W") and line.count("|") == 9]
    names = {r.split("|")[2].strip() for r in rows}
    assert {"fnn.train", "tuned NumPy (preallocated, in place)", "seed-style per-example loop"} <= names
    assert len(rows) >= 8
    for row in rows:
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert re.fullmatch(r"\d+\.\d{3}", cells[3]), row  # the median, in seconds
    assert "## Targets" in out and "W1 fnn / tuned NumPy, 1 thread" in out
