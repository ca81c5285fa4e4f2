"""The import graph of the fnn package: one-way (no cycles), and no module reaches for another's private names.

Every module of ``fnn`` is parsed (not imported) with :mod:`ast`; every ``import`` and
``from ... import`` counts, at module level or inside a function, and so does an attribute
``alias._name`` read through a module bound by an import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "fnn"



def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _package(name: str) -> str:
    return name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = _package(module).split(".")
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _module_of(dotted: str) -> str | None:
    """The longest prefix of ``dotted`` that is an fnn module."""
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        if ".".join(parts[:k]) in MODULES:
            return ".".join(parts[:k])
    return None


def _scan(module: str) -> tuple[set[str], set[str]]:
    """``(imported fnn modules, private names reached in other fnn modules as 'fnn.x._name')``."""
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    edges: set[str] = set()
    private: set[str] = set()
    bound: dict[str, str] = {}  # local name -> the fnn module (or dotted prefix) it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "fnn":
                    edges.add(_module_of(alias.name) or "fnn")
                    bound[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else "fnn"
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node)
            if source.split(".")[0] != "fnn":
                continue
            for alias in node.names:
                full = f"{source}.{alias.name}"
                if full in MODULES:
                    edges.add(full)
                    bound[alias.asname or alias.name] = full
                    continue
                owner = _module_of(source) or "fnn"
                edges.add(owner)
                if alias.name.startswith("_") and owner != module:
                    private.add(f"{owner}.{alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            chain, base = [], node.value
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in bound:
                owner = _module_of(".".join([bound[base.id], *reversed(chain)]))
                if owner is not None and owner != module:
                    private.add(f"{owner}.{node.attr}")
    edges.discard(module)
    return edges, private


GRAPH = {m: _scan(m) for m in MODULES}


def test_every_module_is_scanned():
    assert {"fnn", "fnn.training", "fnn.optim", "fnn.network", "fnn.parallel", "fnn.tree"} <= set(GRAPH)
    assert "fnn.network" in GRAPH["fnn.training"][0]  # the scan sees imports


def _cycle() -> list[str] | None:
    """One import cycle inside fnn, as a path that ends where it starts, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(GRAPH[m][0]):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        state[m] = 2
        path.pop()
        return None

    for m in sorted(GRAPH):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_no_import_cycle_inside_fnn():
    cycle = _cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_another_modules_private_names(module):
    reached = GRAPH[module][1]
    assert not reached, f"{module} uses private names of other modules: {sorted(reached)}"


def test_the_checks_can_fail(tmp_path, monkeypatch):
    """The scanner finds a private import and a cycle when there is one."""
    global GRAPH
    saved = GRAPH
    try:
        GRAPH = {**saved, "fnn.tree": (saved["fnn.tree"][0] | {"fnn.training"}, saved["fnn.tree"][1])}
        assert _cycle() is not None
    finally:
        GRAPH = saved
    fake = tmp_path / "fake.py"
    fake.write_text("from fnn.io import _hidden\nfrom fnn import data\n\ndef f():\n    return data._proportional\n")
    monkeypatch.setitem(MODULES, "fnn.fake", fake)
    assert {"fnn.io._hidden", "fnn.data._proportional"} <= _scan("fnn.fake")[1]


def test_training_imports_nothing_from_parallel_and_parallel_only_network():
    assert "fnn.parallel" not in GRAPH["fnn.training"][0]
    assert not GRAPH["fnn.parallel"][0] & {"fnn.training", "fnn.optim", "fnn"}
