"""compose/compose.yaml runs what `lastmile up` runs with testcontainers: the same images, commands, ports,
mounts, user, labels and environment, once interpolated with the env files `lastmile up --prepare-only` writes.

No Docker engine needed: the containers are compared as they would be started (:func:`run_options`), and the
compose file is read as compose reads it (YAML with merge keys, then ``${VAR}`` interpolation).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from harness.bootstrap import build
from harness.config.settings import load_settings
from harness.infra import compose, containers
from harness.infra.standin import network_alias

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose" / "compose.yaml"
VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(value, env: dict[str, str]):
    """Compose's interpolation: ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``, in every string."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match) -> str:
        name, op, arg = match.groups()
        found = env.get(name)
        if op in (":?", "?"):
            assert found, f"{name} is required by compose.yaml and --prepare-only did not write it"
            return found
        if op in (":-", "-"):
            return found if found else arg
        return found or ""

    return VARIABLE.sub(one, value)


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))


@pytest.fixture
def prepared(tmp_path):
    state_dir = tmp_path / ".lastmile"
    h = build(load_settings(ROOT / "lastmile.yaml", "containers", environ={"LASTMILE_STATE_DIR": str(state_dir)}))
    specs = h.supervisor.prepare(h.standins())
    env = compose.write(state_dir, specs, {"LASTMILE_ARTIFACTS_BUCKET": h.settings.buckets.artifacts})
    services = interpolate(yaml.safe_load(COMPOSE_FILE.read_text())["services"], read_env(env))
    return state_dir, specs, services


def test_compose_runs_the_three_container_standins_and_nothing_else(prepared):
    _, specs, services = prepared
    assert set(specs) == {"object_store", "registry", "mlflow"}
    assert set(services) == {network_alias(name) for name in specs}  # the service name is the network alias


@pytest.mark.parametrize("name", ["object_store", "registry", "mlflow"])
def test_each_service_is_the_container_lastmile_starts(prepared, name):
    state_dir, specs, services = prepared
    spec, port = specs[name]
    options = containers.run_options(spec, name=name, state_dir=state_dir, port=port, aliases=[network_alias(name)])
    service = services[network_alias(name)]
    assert service["image"] == options.image
    assert service["command"] == list(options.command)
    assert service["ports"] == [f"{ip}:{host}:{inside.split('/')[0]}" for inside, (ip, host) in options.ports.items()]
    assert service["volumes"] == [f"{host}:{inside}" for host, inside in options.volumes.items()]
    assert service["user"] == options.user
    assert service["labels"] == dict(options.labels)
    (env_file,) = service["env_file"]
    assert read_env(Path(env_file)) == dict(options.environment)
    assert Path(env_file).stat().st_mode & 0o777 == 0o600


def test_mlflow_reaches_the_s3_service_by_its_compose_name(prepared):
    _, specs, services = prepared
    spec, _ = specs["mlflow"]
    s3_port = specs["object_store"][1]
    assert spec.environment["MLFLOW_S3_ENDPOINT_URL"] == f"http://{network_alias('object_store')}:{s3_port}"
    assert network_alias("object_store") in services["mlflow"]["depends_on"]


def test_compose_env_holds_no_secret(prepared):
    state_dir, specs, _ = prepared
    text = (compose.folder(state_dir) / "compose.env").read_text()
    secrets = [v for spec, _ in specs.values() for k, v in spec.environment.items()
               if any(word in k for word in ("PASSWORD", "SECRET", "KEY_ID"))]
    assert secrets and not [s for s in secrets if s in text]
