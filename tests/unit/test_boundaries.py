"""The dependency rule: harness imports no adapter, serving or training code; adapter families never
import each other; serving and training do not depend on harness."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _top(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


@pytest.mark.parametrize("path", _modules("harness"), ids=lambda p: p.name)
def test_harness_imports_no_adapter_serving_or_training(path):
    assert _top(_imports(path)) & {"adapters", "serving", "training"} == set()


@pytest.mark.parametrize("path", _modules("serving") + _modules("training"), ids=lambda p: p.name)
def test_deployables_do_not_import_harness_or_adapters(path):
    assert _top(_imports(path)) & {"harness", "adapters"} == set()


def _family(path: Path) -> str:
    return path.relative_to(ROOT / "adapters").parts[0]


@pytest.mark.parametrize("path", [p for p in _modules("adapters") if len(p.relative_to(ROOT / "adapters").parts) > 1],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_adapter_families_do_not_import_each_other(path):
    own = _family(path)
    others = {n.split(".")[1] for n in _imports(path) if n.startswith("adapters.") and n.count(".") >= 1}
    assert others <= {own}


def test_the_rule_is_checked_on_real_files():
    assert len(_modules("harness")) >= 8 and _modules("adapters")


def test_wiring_names_adapters_only_as_strings():
    """The wiring refers to adapters by import path strings, loaded lazily, never by import."""
    assert "adapters" not in _top(_imports(ROOT / "harness" / "wiring.py"))
    assert "adapters.local." in (ROOT / "harness" / "wiring.py").read_text()
