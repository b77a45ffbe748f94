"""The package's layers, as the import graph shows them: every import of ir's own modules (module level, inside
functions, or for type checking only) points down the list below or stays inside its layer, and no modules
import each other in a cycle. A failure names the import and its line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
# Bottom first. A module's layer is the longest prefix that names one.
LAYERS = [
    ("ir", "ir.errors", "ir.paths", "ir.times", "ir.sinks", "ir.redact"),  # the package itself and what every layer may use
    ("ir.format",),  # the playbook format: load, validate, templates, values, catalog, graph, bundle
    ("ir.store",),  # the store Protocol, the SQLite store, the hash-chained timeline
    ("ir.integrations",),  # the registry, Slack, Jira (each with its settings model), the dry-run wording
    ("ir.config",),  # settings from ir.toml, one table per installed integration; secrets from the environment
    ("ir.run",),  # the engine, responders, answers, the outbox, the entry point `drive`
    ("ir.tabletop",),  # scenarios, exercises, the after-action report
    ("ir.export",),  # reports, export formats, offline verification, timeline imports
    ("ir.cli", "ir.script"),  # the command line on top
]


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in ((ROOT / "runner", "ir"), (ROOT / "integrations", "ir.integrations")):
        for path in folder.rglob("*.py"):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _layer(module: str) -> int:
    best = max((prefix for names in LAYERS for prefix in names
                if module == prefix or module.startswith(prefix + ".")), key=len)
    return next(n for n, names in enumerate(LAYERS) if best in names)


def _imports(module: str, path: Path) -> list[tuple[str, int]]:
    """The own modules `module` imports, with the line of each import."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "ir":
            names = [f"{node.module}.{a.name}" for a in node.names]
            out += [(name if name in MODULES else node.module, node.lineno) for name in names]
        elif isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "ir"]
        elif isinstance(node, ast.ImportFrom) and node.level:
            pytest.fail(f"{path}:{node.lineno}: a relative import; write ir.* in full")
    return [(target, line) for target, line in out if target in MODULES and target != module]


def test_the_layers_cover_every_module():
    assert {m for m in MODULES if not any(m == p or m.startswith(p + ".") for names in LAYERS for p in names)} == set()


def test_no_import_points_up():
    upward = [f"{MODULES[m].relative_to(ROOT)}:{line}: {m} ({LAYERS[_layer(m)][0]}) imports {target} "
              f"({LAYERS[_layer(target)][0]})"
              for m, path in MODULES.items() for target, line in _imports(m, path) if _layer(target) > _layer(m)]
    assert upward == []


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles (strongly connected sets of more than one module), by Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return cycles


def test_no_import_cycle():
    assert _cycles({m: {t for t, _ in _imports(m, p)} for m, p in MODULES.items()}) == []


def test_the_checker_sees_an_upward_import_and_a_cycle(tmp_path):
    """The checks above would fail on a planted upward import (the format reaching the run) and a cycle."""
    planted = tmp_path / "planted.py"
    planted.write_text("from ir.run.engine import IncidentRun\n")
    MODULES["ir.format.planted"] = planted
    try:
        assert [t for t, _ in _imports("ir.format.planted", planted)] == ["ir.run.engine"]
        assert _layer("ir.run.engine") > _layer("ir.format.planted")
    finally:
        del MODULES["ir.format.planted"]
    edges = {m: {t for t, _ in _imports(m, p)} for m, p in MODULES.items()}
    edges["ir.format.model"] = {*edges["ir.format.model"], "ir.format.load"}  # as if the models imported their loader
    assert any({"ir.format.load", "ir.format.model"} <= set(cycle) for cycle in _cycles(edges))
