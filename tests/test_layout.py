"""Config types never import the machinery they configure: ``edge.config`` loads alone.

Every part of the pipeline imports :mod:`edge.config`, so a config type that imported its
machinery (the recorder's core, the spine, a sink's worker) closed an import circle through the
whole tree and made validating a YAML file load OpenCV and a metrics server. These tests guard
both sides: what importing ``edge.config`` loads, and the import graph of the source files.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import deque
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "edge"

# What edge.config may load: the config types of each stage, in light modules, and the small
# helpers they share. A package's __init__ is only its docstring, so it loads nothing.
CONFIG_MODULES = {
    "edge", "edge.config", "edge.errors", "edge.paths", "edge.files", "edge.jsonout",
    "edge.front", "edge.front.config",
    "edge.sinks", "edge.sinks.config", "edge.sinks.records",
    "edge.recorder", "edge.recorder.config",
    "edge.status", "edge.status.config",
    "edge.decisions", "edge.decisions.rules",
}

# The machinery, by stage, and the heavy dependencies behind it.
MACHINERY = (
    "edge.capture.", "edge.timebase.", "edge.join.", "edge.front.cascade", "edge.features.",
    "edge.runtime.", "edge.decisions.decide", "edge.sinks.worker", "edge.sinks.sinkset",
    "edge.sinks.mqtt", "edge.recorder.core", "edge.recorder.store", "edge.status.health",
    "edge.status.endpoint", "edge.service.", "edge.sim", "edge.train",
)
HEAVY = ("numpy", "cv2", "av", "sounddevice", "onnxruntime", "paho", "prometheus_client", "torch")


@pytest.fixture(scope="module")
def loaded_by_config() -> set[str]:
    """The modules a fresh interpreter has after ``import edge.config`` (a subprocess, so the
    modules this test process already imported hide nothing)."""
    code = "import json, sys; import edge.config; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout))


def test_config_loads_no_pipeline_machinery(loaded_by_config: set[str]) -> None:
    machinery = sorted(m for m in loaded_by_config if m.startswith(MACHINERY))
    assert not machinery, f"importing edge.config loads machinery: {machinery}"
    heavy = sorted(m for m in HEAVY if m in loaded_by_config)
    assert not heavy, f"importing edge.config loads {heavy}"


def test_config_loads_only_config_types(loaded_by_config: set[str]) -> None:
    extra = sorted(m for m in loaded_by_config if m.split(".")[0] == "edge" and m not in CONFIG_MODULES)
    assert not extra, f"importing edge.config loads more than config types: {extra}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _module_imports(tree: ast.Module) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Import statements at module level (in ``if``/``try`` blocks too), each with whether it
    is type-only; imports inside functions run when called and are left out."""
    found: list[tuple[ast.Import | ast.ImportFrom, bool]] = []

    def walk(body: list[ast.stmt], type_only: bool) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append((node, type_only))
            elif isinstance(node, ast.If):
                walk(node.body, type_only or _is_type_checking(node.test))
                walk(node.orelse, type_only)
            elif isinstance(node, ast.Try):
                for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                    walk(block, type_only)

    walk(tree.body, False)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the edge modules its module-level imports load, type-only imports included
    (the circle this guards against closed through one). Importing ``a.b.c`` loads the packages
    ``a`` and ``a.b`` first, so those count as well. A type-only import of ``edge.config``
    itself is left out: a helper of the config (:mod:`edge.paths`) may name the type it fills."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node, type_only in _module_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                # ``from a import b`` loads ``a``, and ``a.b`` where b is a submodule.
                targets = [base] + [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
            for target in targets:
                if type_only and target == "edge.config":
                    continue
                parts = target.split(".")
                deps.update(m for m in (".".join(parts[:i]) for i in range(1, len(parts) + 1)) if m in modules)
        deps.discard(name)
        graph[name] = deps
    return graph


def test_import_graph_has_no_cycle_through_config() -> None:
    graph = import_graph()
    start = "edge.config"
    came_from: dict[str, str] = {}
    todo = deque(graph[start])
    for m in graph[start]:
        came_from[m] = start
    while todo:
        m = todo.popleft()
        if m == start:
            break
        for dep in graph[m]:
            if dep not in came_from:
                came_from[dep] = m
                todo.append(dep)
    if start in came_from:
        path = [start]
        m = came_from[start]
        while m != start:
            path.append(m)
            m = came_from[m]
        path.append(start)
        pytest.fail("import cycle through edge.config: " + " -> ".join(reversed(path)))
