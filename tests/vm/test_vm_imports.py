"""The contract VM's modules import each other without a circle or a private name.

How it works: every ``contracts_vm/*.py`` file is parsed with ``ast``; each import of
a ``contracts_vm`` module (at any depth, function-level imports included) is an edge
of a graph, which must be acyclic. ``from contracts_vm.x import _name`` is refused:
what modules share is public.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "contracts_vm"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(imported contracts_vm module, names taken from it) for every import in the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.startswith("contracts_vm")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("contracts_vm"):
            names = [a.name for a in node.names]
            if node.module == "contracts_vm":      # `from contracts_vm import errors` names a submodule
                out += [(f"contracts_vm.{n}", []) for n in names if (PKG / f"{n}.py").exists()]
            else:
                out.append((node.module, names))
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(PKG.rglob("*.py")):
        name = _module_name(path)
        graph[name] = {m for m, _ in _imports(path) if m != name and m != "contracts_vm"}
    return graph


def test_no_private_names_imported_across_modules():
    bad = [f"{_module_name(p)}: from {m} import {n}"
           for p in sorted(PKG.rglob("*.py")) for m, names in _imports(p) for n in names
           if n.startswith("_") and not n.startswith("__")]
    assert bad == []


def test_contracts_vm_import_graph_is_acyclic():
    graph = _graph()
    state: dict[str, int] = {}        # 1 = on the current path, 2 = done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == []


def test_compiler_modules_form_a_chain():
    graph = _graph()
    assert "contracts_vm.compiler" not in graph["contracts_vm.compile_function"]
    assert "contracts_vm.compiler" not in graph["contracts_vm.compile_expr"]
    assert not graph["contracts_vm.compile_model"] & {
        "contracts_vm.compiler", "contracts_vm.compile_function", "contracts_vm.compile_expr"}
