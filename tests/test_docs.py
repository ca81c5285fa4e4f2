"""Every ```python block of each page in docs/ runs as written, top to bottom, in a fresh folder."""

import os
import re
import runpy
from pathlib import Path

import pytest

DOCS = sorted((Path(__file__).resolve().parent.parent / "docs").glob("*.md"))


def python_blocks(text: str) -> list[str]:
    """The ```python blocks of a page, in order (```python notest blocks are left out)."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_page_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(page.read_text())
    assert blocks, f"{page.name} has no python blocks"
    script = tmp_path / (page.stem + ".py")
    script.write_text("\n\n".join(blocks))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    runpy.run_path(str(script), run_name="__main__")
    assert os.getcwd() == str(tmp_path)
