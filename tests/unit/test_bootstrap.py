"""The composition root: typed ports built once on first use, fakes passed explicitly, flavors from the
adapter families' own registrations, and clear errors for flavors this build lacks."""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path

import pytest

from harness.bootstrap import Given, Harness, build
from harness.config.flavors import FlavorConfig, families, flavor_configs, flavor_tag
from harness.config.settings import load_settings
from harness.domain.errors import NotBuilt, UserError
from harness.domain.ports import PORTS
from tests.fakes import MemoryObjectStore

CONFIG = Path(__file__).resolve().parents[2] / "lastmile.yaml"


def _settings(tmp_path, profile="local"):
    return load_settings(CONFIG, profile, environ={"LASTMILE_STATE_DIR": str(tmp_path)})


def test_given_names_every_port_in_order():
    assert [f.name for f in fields(Given)] == list(PORTS)


def test_a_given_port_is_used_and_nothing_is_built_for_it(tmp_path):
    fake = MemoryObjectStore()
    h = Harness(_settings(tmp_path), Given(object_store=fake))
    assert h.object_store is fake


def test_ports_are_built_once_on_first_use(tmp_path, monkeypatch):
    calls = []
    cls = type(_settings(tmp_path).ports.object_store)
    monkeypatch.setattr(cls, "build", lambda self, h: calls.append(self.flavor) or MemoryObjectStore())
    h = build(_settings(tmp_path))
    assert calls == []
    assert h.object_store is h.object_store
    assert calls == ["s3"]


def test_an_adapter_that_is_not_its_port_is_refused(tmp_path, monkeypatch):
    cls = type(_settings(tmp_path).ports.object_store)
    monkeypatch.setattr(cls, "build", lambda self, h: object())
    with pytest.raises(TypeError, match="is not a ObjectStore"):
        _ = build(_settings(tmp_path)).object_store


def test_an_unbuilt_flavor_is_a_clear_user_error(tmp_path):
    h = build(load_settings(CONFIG, "containers", environ={"LASTMILE_STATE_DIR": str(tmp_path),
                                                           "LASTMILE_PORTS__DEPLOYER__FLAVOR": "kind"}))
    with pytest.raises(NotBuilt, match="deployer: flavor 'kind' is typed in config but its adapter is not built"):
        _ = h.deployer


def test_building_the_harness_imports_no_adapter_module(tmp_path):
    for name in [m for m in sys.modules if m.startswith("adapters.local.s3")]:
        del sys.modules[name]
    build(_settings(tmp_path))
    assert "adapters.local.s3" not in sys.modules


def test_an_endpoint_without_stand_ins_says_run_up(tmp_path):
    h = build(_settings(tmp_path))
    with pytest.raises(UserError, match="not up"):
        h.endpoint("mlflow", None)
    assert h.endpoint("mlflow", "http://127.0.0.1:1") == "http://127.0.0.1:1"


def test_the_families_come_from_entry_points():
    assert {f.name for f in families()} >= {"local", "oci", "containers"}


@pytest.mark.parametrize("port", list(PORTS))
def test_every_port_has_a_built_flavor_and_tags_are_unique(port):
    configs = flavor_configs(port)
    assert any(c.built() for c in configs), port
    tags = [flavor_tag(c) for c in configs]
    assert len(tags) == len(set(tags)), tags
    assert all(issubclass(c, FlavorConfig) and c.port == port for c in configs)


def test_a_new_flavor_is_one_class_in_its_family(tmp_path):
    """What a new flavor touches: its config class (with its builder), registered by the family's decorator."""
    from typing import Literal

    from harness.config.flavors import Family, ports_model

    family = Family("extra")

    @family.flavor
    class EchoStore(FlavorConfig):
        port = "object_store"
        flavor: Literal["echo"]

        def build(self, h):
            return MemoryObjectStore()

    model = ports_model(tuple([*families(), family]))
    raw = {p: {"flavor": flavor_tag(flavor_configs(p)[0])} for p in PORTS}
    raw["object_store"] = {"flavor": "echo"}
    raw["deployer"] = {"flavor": "local"}
    ports = model.model_validate(raw)
    assert isinstance(ports.object_store, EchoStore)
