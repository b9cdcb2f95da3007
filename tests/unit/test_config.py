"""Config: layering (base, profile, environment), validation errors that name file, key and allowed values."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config.settings import deep_merge, env_overrides, load_settings, redacted
from harness.domain.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "lastmile.yaml"


@pytest.mark.parametrize("profile,flavor,mode", [("local", "s3", "processes"), ("containers", "s3", "containers"),
                                                 ("oci", "oci", "none")])
def test_shipped_profiles_load(profile, flavor, mode):
    settings = load_settings(CONFIG, profile, environ={})
    assert (settings.ports.object_store.flavor, settings.standins.mode) == (flavor, mode)


def test_default_profile_is_local():
    assert load_settings(CONFIG, environ={}).profile == "local"


def test_env_selects_profile():
    assert load_settings(CONFIG, environ={"LASTMILE_PROFILE": "oci"}).profile == "oci"


def test_profile_overlays_base_and_env_overrides_both():
    settings = load_settings(CONFIG, "containers", environ={"LASTMILE_PORTS__DEPLOYER__REPLICAS": "5"})
    assert settings.ports.deployer.flavor == "docker"
    assert settings.ports.deployer.replicas == 5
    assert settings.ports.model_registry.flavor == "mlflow"  # from base, untouched


def test_env_values_are_typed():
    settings = load_settings(CONFIG, "local", environ={"LASTMILE_STANDINS__MLFLOW__PORT": "6123"})
    assert settings.standins.mlflow.port == 6123


def test_flavor_change_replaces_the_whole_block():
    merged = deep_merge({"p": {"flavor": "s3", "endpoint": "x"}}, {"p": {"flavor": "oci", "namespace": "n"}})
    assert merged == {"p": {"flavor": "oci", "namespace": "n"}}


def test_same_flavor_merges_key_by_key():
    merged = deep_merge({"p": {"flavor": "s3", "endpoint": "x", "region": "a"}}, {"p": {"region": "b"}})
    assert merged == {"p": {"flavor": "s3", "endpoint": "x", "region": "b"}}


def test_env_override_names():
    assert env_overrides({"LASTMILE_PORTS__MODEL_REGISTRY__TRACKING_URI": "http://h:1", "LASTMILE_PROFILE": "oci",
                          "OTHER": "x"}) == {"ports.model_registry.tracking_uri": "http://h:1"}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lastmile.yaml"
    path.write_text(CONFIG.read_text() + text)
    return path


@pytest.mark.parametrize("extra,expected", [
    ("  broken:\n    ports:\n      object_store: {flavor: gcs}\n",
     "lastmile.yaml (profiles.broken): ports.object_store: flavor 'gcs' is not known; allowed: 's3', 'oci'"),
    ("  broken:\n    ports:\n      deployer: {flavor: local, replicaz: 3}\n",
     "lastmile.yaml (profiles.broken): ports.deployer.replicaz: unknown key; allowed: flavor, replicas, max_surge, "
     "max_unavailable, ready_deadline_s, endpoint"),
    ("  broken:\n    standins: {mode: vm}\n",
     "lastmile.yaml (profiles.broken): standins.mode: 'vm' is not allowed; allowed: 'processes', 'containers' or 'none'"),
    ("  broken:\n    buckets: {data: Bad_Bucket}\n",
     "lastmile.yaml (profiles.broken): buckets.data: 'Bad_Bucket' does not match"),
    ("  broken:\n    ports:\n      artifact_registry: {flavor: distribution, password: hunter2}\n",
     "lastmile.yaml (profiles.broken): ports.artifact_registry.password: must be a secret reference"),
])
def test_invalid_profile_names_file_key_and_allowed(tmp_path, extra, expected):
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, extra), "broken", environ={})
    assert str(caught.value).startswith(expected)
    assert caught.value.exit_code == 2


def test_secret_value_never_echoed(tmp_path):
    extra = "  broken:\n    ports:\n      artifact_registry: {flavor: distribution, password: hunter2}\n"
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, extra), "broken", environ={})
    assert "hunter2" not in str(caught.value)


def test_invalid_env_override_names_the_variable():
    with pytest.raises(ConfigError, match=r"^LASTMILE_MODEL__FLOOR: model.floor: "):
        load_settings(CONFIG, "local", environ={"LASTMILE_MODEL__FLOOR": "-1"})


def test_unknown_profile_lists_the_allowed():
    with pytest.raises(ConfigError, match=r"profile 'prod' is not defined; allowed: containers, local, oci"):
        load_settings(CONFIG, "prod", environ={})


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "lastmile.yaml"
    path.write_text("project: x\nports: [unclosed\n")
    with pytest.raises(ConfigError, match=r"lastmile.yaml: line \d+ not valid YAML"):
        load_settings(path, environ={})


def test_a_file_that_is_not_utf8_is_one_line_naming_it(tmp_path):
    path = tmp_path / "lastmile.yaml"
    path.write_bytes("project: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"^lastmile.yaml: not UTF-8 text \(byte 12 cannot be decoded\); save it as UTF-8$"):
        load_settings(path, environ={})


def test_redacted_keeps_references_and_masks_values():
    settings = load_settings(CONFIG, "local", environ={})
    shown = redacted(settings)
    assert shown["ports"]["artifact_registry"]["password"] == "secret:registry-password"
    from harness.config.settings import _mask

    assert _mask({"database_url": "postgresql://u:pw@h/db"}) == {"database_url": "******"}
