"""The house's import rules, checked on the source: no import cycles anywhere in the
package, and a live path (`synd run` and everything it loads) that never loads the
offline tools (`render`, `train`, `bench`, `benchsuite`, `evaluate`).

Imports inside functions count: they run when the function does, so they tie modules
together as much as imports at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Where each part of the package lives (bridges/ installs as synd.bridges).
PACKAGES = {"synd": ROOT / "synd", "synd.bridges": ROOT / "bridges"}
#: The live daemon's entry point and what it must never load.
LIVE_ROOTS = ("synd.daemon", "synd.engine", "synd.control", "synd.osc", "synd.midi", "synd.tray")
OFFLINE = {"synd.render", "synd.train", "synd.bench", "synd.benchsuite", "synd.evaluate"}


def modules() -> dict[str, Path]:
    """Every module of the package by its dotted name."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.glob("*.py"):
            found[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return found


def import_graph(found: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the package's modules it imports (anywhere in its source)."""
    graph = {}
    for name, path in found.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets.add(node.module)
                targets.update(f"{node.module}.{a.name}" for a in node.names)
        graph[name] = {t for t in targets if t in found and t not in (name, "synd")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), and modules
    that import themselves."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def reachable(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """Every module `start` loads, directly or not, each with the module that imports it."""
    via: dict[str, str] = {}
    todo = [start]
    while todo:
        here = todo.pop()
        for there in sorted(graph[here]):
            if there not in via and there != start:
                via[there] = here
                todo.append(there)
    return via


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(modules())


def test_the_walk_sees_the_whole_package(graph):
    # Enough of the package is found, with the arrows the code is known to have, for
    # the rules below to mean something.
    assert {"synd.daemon", "synd.engine", "synd.render", "synd.bridges.base"} <= set(graph)
    assert "synd.frameloop" in graph["synd.render"]
    assert "synd.bridges.base" in graph["synd.daemon"]  # an import inside a function


def test_no_import_cycles(graph):
    assert cycles(graph) == []


def test_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("root", LIVE_ROOTS)
def test_live_path_loads_no_offline_tool(graph, root):
    via = reachable(graph, root)
    chains = []
    for module in sorted(OFFLINE & set(via)):
        chain = [module]
        while chain[-1] in via:
            chain.append(via[chain[-1]])
        chains.append(" <- ".join(chain))
    assert not chains, f"{root} loads offline tools: {chains}"


def test_no_module_imports_a_test():
    for name, path in modules().items():
        imported = {
            n.module
            for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(n, ast.ImportFrom) and n.module
        }
        assert not {m for m in imported if m.split(".")[0] in ("tests", "conftest")}, name
