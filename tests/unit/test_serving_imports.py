"""The serving modules import each other without a cycle (function-level imports count too)."""

from __future__ import annotations

import ast
from pathlib import Path

SERVING = Path(__file__).resolve().parents[2] / "serving"


def serving_imports(folder: Path = SERVING) -> dict[str, set[str]]:
    """``{module: serving modules it imports}``, by module name (``serving.app``; ``serving`` is ``__init__``)."""
    modules = {_name(path): path for path in folder.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # ``from serving import logs`` imports the module serving.logs; ``from serving import X`` the package.
                targets |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                            for alias in node.names}
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node):], node]
        if node in done:
            return None
        for target in sorted(graph.get(node, ())):
            cycle = visit(target, [*path, node])
            if cycle:
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return None


def _name(path: Path) -> str:
    return "serving" if path.stem == "__init__" else f"serving.{path.stem}"


def test_the_serving_modules_have_no_import_cycle():
    assert find_cycle(serving_imports()) is None


def test_both_loaders_share_served_and_only_model_dispatches_to_model_dir():
    graph = serving_imports()
    assert "serving.served" in graph["serving.model"] and "serving.served" in graph["serving.model_dir"]
    assert "serving.model" not in graph["serving.model_dir"]
    assert {name for name, targets in graph.items() if "serving.model_dir" in targets} == {"serving.model"}


def test_a_cycle_is_found_when_there_is_one(tmp_path):
    (tmp_path / "model.py").write_text("def load():\n    from serving.model_dir import load_dir\n")
    (tmp_path / "model_dir.py").write_text("from serving import model\n")
    (tmp_path / "schema.py").write_text("import json\n")
    assert find_cycle(serving_imports(tmp_path)) == ["serving.model", "serving.model_dir", "serving.model"]
