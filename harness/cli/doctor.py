"""What this machine offers, and which profiles can run here."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.table import Table

from harness.config.flavors import families, flavor_tag
from harness.config.settings import Settings


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: str


def findings() -> list[Finding]:
    return [
        _docker_engine(),
        _kind(),
        _binary("registry", "docker-registry", "Distribution registry: apt-get install docker-registry"),
        _binary("minio", "minio", "optional; moto's S3 server stands in without it"),
        _oci_config(),
    ]


def profile_verdict(settings: Settings, found: list[Finding]) -> tuple[bool, str]:
    """Can this profile run here? Checks that every flavor is built and its stand-ins can start."""
    have = {f.name: f.ok for f in found}
    missing = [f"{port}={cfg.flavor}" for port, cfg in settings.ports if not type(cfg).built()]
    mode = settings.standins.mode
    modes = {m for family in families() for m in family.standins}
    reasons = []
    if mode == "processes" and not have["registry"]:
        reasons.append("needs docker-registry")
    if mode == "containers" and not have["docker engine"]:
        reasons.append("needs a Docker engine")
    if mode != "none" and mode not in modes:
        reasons.append(f"stand-ins in {mode} not built yet")
    for family in families():
        if family.doctor is not None and any(type(cfg) in family.configs for _, cfg in settings.ports):
            reasons += family.doctor(settings.ports)
    if missing:
        reasons.append("adapters not built yet: " + ", ".join(missing))
    return (not reasons, "; ".join(reasons) or "ready")


def _binary(name: str, command: str, purpose: str) -> Finding:
    path = shutil.which(command)
    return Finding(name, path is not None, path or f"not on PATH ({purpose})")


def _kind() -> Finding:
    """The ``kind`` deployer flavor needs the ``kind`` binary and its node image ``kindest/node`` in the engine;
    the ``docker`` flavor (replicas as containers) needs neither."""
    binary = shutil.which("kind")
    image = _engine_has_image("kindest/node")
    ok = binary is not None and image is True
    parts = [f"kind at {binary}" if binary else "no kind binary on PATH",
             {True: "kindest/node in the engine", False: "no kindest/node image in the engine",
              None: "no engine to hold kindest/node"}[image]]
    verdict = "the kind deployer flavor could run (its adapter is not built yet)" if ok else \
        "the kind deployer flavor cannot run here; the docker flavor (replicas as containers) is the available one"
    return Finding("kind", ok, f"{', '.join(parts)}: {verdict}")


def _engine_socket() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")


def _engine_has_image(reference: str) -> bool | None:
    """Whether the local engine has an image of ``reference`` (any tag); None when no engine answers."""
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=_engine_socket()), timeout=2) as client:
            found = client.get("http://docker/images/json",
                               params={"filters": json.dumps({"reference": [reference]})}).json()
    except (httpx.HTTPError, OSError, ValueError):
        return None
    return bool(found) if isinstance(found, list) else None


def _docker_engine() -> Finding:
    socket = _engine_socket()
    if not shutil.which("docker") and not Path(socket).exists():
        return Finding("docker engine", False, "no docker client and no engine socket")
    try:
        transport = httpx.HTTPTransport(uds=socket)
        with httpx.Client(transport=transport, timeout=2) as client:
            version = client.get("http://docker/version").json().get("Version", "?")
        return Finding("docker engine", True, f"engine {version} at {socket}")
    except (httpx.HTTPError, OSError, ValueError):
        return Finding("docker engine", False, f"no engine answers at {socket} (start dockerd)")


def _oci_config() -> Finding:
    if os.environ.get("OCI_RESOURCE_PRINCIPAL_VERSION"):
        return Finding("oci config", True, "resource principal")
    path = Path(os.environ.get("OCI_CLI_CONFIG_FILE", "~/.oci/config")).expanduser()
    sdk = importlib.util.find_spec("oci") is not None
    if path.is_file():
        return Finding("oci config", True, f"{path}" + ("" if sdk else " (oci SDK not installed)"))
    return Finding("oci config", False, f"no {path} and no resource principal")


def families_table() -> Table:
    """Every installed adapter family with its flavors per port; a flavor not built yet is marked."""
    table = Table(title="adapter families (entry points lastmile.adapters)")
    for column in ("family", "port", "flavors"):
        table.add_column(column)
    for family in families():
        ports: dict[str, list[str]] = {}
        for cls in family.configs:
            ports.setdefault(cls.port, []).append(flavor_tag(cls) + ("" if cls.built() else " (not built)"))
        for port, names in ports.items():
            table.add_row(family.name, port, ", ".join(names))
    return table
