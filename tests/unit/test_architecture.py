"""The package's shape (docs/architecture.md): no import cycle, command backends used only by commands, every
location from builder.paths, nothing under builder/ reading tests/."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from builder.paths import PACKAGE

# Modules that implement one command's output; only builder/commands/* may import them.
COMMAND_BACKENDS = ("builder.plan", "builder.diff", "builder.docs_gen", "builder.outdated", "builder.reference",
                    "builder.matrix")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the builder modules it imports anywhere (top level, in functions, under TYPE_CHECKING)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_counting_function_local_imports():
    assert cycles(import_graph()) == []


def test_command_backends_are_imported_by_commands_only():
    offenders = sorted(f"{module} imports {target}" for module, targets in import_graph().items()
                       for target in targets if target in COMMAND_BACKENDS
                       and not module.startswith("builder.commands"))
    assert offenders == []


def test_no_module_computes_a_location_from_its_own_file_or_reads_tests():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "paths.py":
            continue
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(PACKAGE)
        if re.search(r"__file__\)?(\.resolve\(\))?\.parent", text):
            offenders.append(f"{rel}: a location computed from __file__")
        for node in ast.walk(ast.parse(text)):
            joined = isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and \
                isinstance(node.right, ast.Constant) and node.right.value == "tests"  # REPO / "tests" / ...
            spelled = isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                node.value.startswith("tests/")
            if joined or spelled:
                offenders.append(f"{rel}:{node.lineno}: a path under tests/")
    assert offenders == []
