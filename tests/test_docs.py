"""Every ```python block of README.md and docs/*.md runs as written.

One test per file: its ```python blocks run in order in one namespace, in a fresh temporary
folder, as a reader would paste them. A block whose first line starts with ``>>>`` runs as a
doctest in that namespace (so do ```pycon blocks). ```python notest marks a block that cannot
run here (a real cluster address); other languages (bash, toml, text) are not run. A file
whose example imports an optional package that is not installed (distributed, matplotlib, ...)
is skipped, naming the package; a missing fnn module is a failure.
"""

from __future__ import annotations

import doctest
import linecache
import re
import traceback
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# An opening fence of three or more backticks and its info string, the body, the same fence closing.
FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>[^`\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)
DOCTEST_FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


class Block(NamedTuple):
    """One runnable fenced block: its number among all fenced blocks of the file (from 1), first line, text."""

    number: int
    line: int
    kind: str  # "python" or "doctest"
    text: str


def blocks(markdown: str) -> list[Block]:
    """The runnable blocks of a markdown text, in order.

    >>> md = "```python\\nx = 1\\n```\\n\\n```bash\\nls\\n```\\n\\n```python notest\\nboom\\n```\\n"
    >>> [(b.number, b.line, b.kind, b.text) for b in blocks(md)]
    [(1, 2, 'python', 'x = 1\\n')]
    """
    found = []
    for number, m in enumerate(FENCE.finditer(markdown), start=1):
        words = m["info"].split()
        lang = words[0].lower() if words else ""
        if lang not in ("python", "py", "pycon") or "notest" in words[1:]:
            continue
        line = markdown.count("\n", 0, m.start("body")) + 1
        text = m["body"]
        kind = "doctest" if lang == "pycon" or text.lstrip().startswith(">>>") else "python"
        found.append(Block(number, line, kind, text))
    return found


def run_python(block: Block, where: str, namespace: dict) -> None:
    """Exec one block; its source is registered with linecache so the traceback shows its lines."""
    filename = f"<{where}, block {block.number}, line {block.line}>"
    linecache.cache[filename] = (len(block.text), None, block.text.splitlines(keepends=True), filename)
    exec(compile(block.text, filename, "exec"), namespace)


def run_doctest(block: Block, where: str, namespace: dict) -> None:
    """Run one ``>>>`` block as a doctest in ``namespace``; raise with doctest's report if it fails."""
    test = doctest.DocTestParser().get_doctest(block.text, namespace, f"{where} block {block.number}", where,
                                               block.line - 1)
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=DOCTEST_FLAGS)
    result = runner.run(test, out=report.append, clear_globs=False)
    if result.failed:
        raise AssertionError("".join(report))


def optional_missing(error: BaseException) -> str | None:
    """The name of a missing third-party package behind ``error``, or None (fnn's own modules never are)."""
    if isinstance(error, ModuleNotFoundError) and error.name and error.name.split(".")[0] != "fnn":
        return error.name
    return None


def run_markdown(markdown: str, where: str) -> None:
    """Run the blocks of one markdown text in order in one namespace, in the current folder.

    Skips (naming the package) when a block needs an optional package that is not installed;
    fails with the block's number, first line and traceback when a block raises.
    """
    namespace: dict = {"__name__": f"docs_{Path(where).stem}"}
    for block in blocks(markdown):
        failure = missing = None
        try:
            (run_doctest if block.kind == "doctest" else run_python)(block, where, namespace)
        except Exception as error:  # every failure becomes a report naming the block
            missing = optional_missing(error)
            failure = traceback.format_exc()
        if missing:
            pytest.skip(f"{where} needs the optional package {missing!r}, which is not installed")
        if failure:
            pytest.fail(f"{where}: block {block.number} (line {block.line}) failed:\n{failure}", pytrace=False)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_markdown_examples_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_markdown(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())


def test_every_file_is_collected() -> None:
    """README.md and docs/ are found, and the README has runnable blocks (the collector works)."""
    assert FILES[0].name == "README.md" and len(FILES) > 1
    assert any(b.kind == "python" for b in blocks(FILES[0].read_text(encoding="utf-8")))
    assert any(b.kind == "doctest" for b in blocks(FILES[0].read_text(encoding="utf-8")))


@pytest.mark.parametrize(
    ("markdown", "message"),
    [
        ("```python\nx = 1\n```\n\n```python\ny = x / 0\n```\n", r"block 2 \(line 6\) failed.*ZeroDivisionError"),
        ("```python\nx = 2\n```\n\n```python\n>>> x + 1\n4\n\n```\n", r"block 2 \(line 6\).*Expected:.*4.*Got:.*3"),
        ("```pycon\n>>> undefined_name\n```\n", r"block 1 \(line 2\) failed.*NameError"),
    ],
)
def test_a_failing_block_fails_the_file(markdown: str, message: str) -> None:
    with pytest.raises(pytest.fail.Exception, match=f"(?s)page[.]md: {message}"):
        run_markdown(markdown, "page.md")


def test_notest_and_other_languages_do_not_run() -> None:
    run_markdown("```python notest\n1 / 0\n```\n\n```bash\nexit 1\n```\n\n```toml\nx = \n```\n", "page.md")


def test_a_missing_optional_package_skips_and_a_missing_fnn_module_fails() -> None:
    with pytest.raises(pytest.skip.Exception, match="optional package 'no_such_package'"):
        run_markdown("```python\nimport no_such_package\n```\n", "page.md")
    with pytest.raises(pytest.fail.Exception, match="ModuleNotFoundError"):
        run_markdown("```python\nimport fnn.no_such_module\n```\n", "page.md")
