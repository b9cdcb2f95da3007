"""The bootstrap: lazy factories by (port, flavor), clear errors for flavors this build lacks."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

from adapters.local.memory import MemoryObjectStore
from harness.config import load_settings
from harness.errors import UserError
from harness.wiring import FACTORIES, Harness, build

CONFIG = Path(__file__).resolve().parents[2] / "lastmile.yaml"


def test_ports_are_built_once_on_first_use(tmp_path):
    calls = []

    def fake(cfg, h):
        calls.append(cfg.flavor)
        return MemoryObjectStore()

    h = Harness(load_settings(CONFIG, "local", environ={"LASTMILE_STATE_DIR": str(tmp_path)}),
                factories={("object_store", "s3"): fake})
    assert calls == []
    assert h.object_store is h.object_store
    assert calls == ["s3"]


def test_unbuilt_flavor_is_a_clear_user_error(tmp_path):
    h = build(load_settings(CONFIG, "oci", environ={"LASTMILE_STATE_DIR": str(tmp_path)}))
    with pytest.raises(UserError, match="object_store: flavor 'oci' of profile 'oci' is not built"):
        h.object_store


def test_building_the_harness_imports_no_adapter(tmp_path):
    for name in [m for m in sys.modules if m.startswith("adapters.local.s3")]:
        del sys.modules[name]
    build(load_settings(CONFIG, "local", environ={"LASTMILE_STATE_DIR": str(tmp_path)}))
    assert "adapters.local.s3" not in sys.modules


def test_endpoint_without_standins_says_run_up(tmp_path):
    h = build(load_settings(CONFIG, "local", environ={"LASTMILE_STATE_DIR": str(tmp_path)}))
    with pytest.raises(UserError, match="not up"):
        h.endpoint("mlflow", None)
    assert h.endpoint("mlflow", "http://127.0.0.1:1") == "http://127.0.0.1:1"


def test_every_factory_target_exists():
    targets = re.findall(r'_lazy\("([^"]+)"\)', (CONFIG.parent / "harness" / "wiring.py").read_text())
    assert len(targets) >= len(FACTORIES)
    for target in targets:
        module, _, name = target.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), target
