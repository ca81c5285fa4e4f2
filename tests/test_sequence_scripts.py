"""Smoke tests of scripts/char_lm.py and scripts/bench_sequence.py: they run and report numbers that make sense."""

from __future__ import annotations

import importlib.util
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
HAS_TORCH = importlib.util.find_spec("torch") is not None
WORDS_FILE = Path("/usr/share/dict/american-english")  # what fnn.datasets.load_words reads by default


def run(script: str, *args: str) -> str:
    return subprocess.run([sys.executable, str(SCRIPTS / script), *args], capture_output=True, text=True,
                          timeout=300, check=True).stdout


def rows(out: str, first: str) -> dict[str, list[str]]:
    """The cells of a Markdown table's rows, by the first cell; only rows whose first cell is in ``first``."""
    found = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] in first.split(","):
            found[cells[0]] = cells[1:]
    return found


@pytest.mark.skipif(not WORDS_FILE.exists(), reason="the word list is not installed (apt-get install wamerican)")
def test_char_lm_learns_something_and_matches_pytorch():
    out = run("char_lm.py", "--quick", *([] if HAS_TORCH else ["--no-torch"]))
    table = rows(out, "bigram counts (add-one),lstm,transformer")
    assert set(table) == {"bigram counts (add-one)", "lstm", "transformer"}, out
    uniform = math.log(27)  # nats per character of a model that knows nothing
    for name in ("lstm", "transformer"):
        fnn_loss = float(table[name][0])
        assert fnn_loss < 0.8 * uniform, (name, fnn_loss)
        if HAS_TORCH:  # same initial weights, same batches: the same curve up to float32 rounding
            assert float(table[name][1]) == pytest.approx(fnn_loss, rel=0.01), (name, table[name])
    assert float(table["lstm"][0]) < float(table["bigram counts (add-one)"][0])
    assert re.search(r"lstm, 10 words sampled with key 0: ([a-z]+ ){9}[a-z]+", out), out


def test_bench_sequence_reports_a_ratio_for_each_workload():
    out = run("bench_sequence.py", "--workloads", "lstm,transformer", "--repeats", "1", "--steps", "2")
    table = rows(out, "lstm,transformer")
    assert set(table) == {"lstm", "transformer"}, out
    for name, cells in table.items():
        ratio = cells[4] if HAS_TORCH else None  # fnn / PyTorch
        assert re.fullmatch(r"\d+(\.\d+)? \(.*\)", cells[2]), (name, cells)  # fnn: median (min-max)
        if ratio is not None:
            assert 0.05 < float(ratio) < 20, (name, cells)
