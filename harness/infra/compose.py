"""What ``compose/compose.yaml`` reads: the env files ``lastmile up --prepare-only`` writes into the state dir.

compose.yaml runs the same containers the supervisor would (same images, commands, ports, mounts, labels), with
every value that depends on the machine or the secret store taken from here:

- ``<state_dir>/compose/compose.env``, for ``docker compose --env-file``: the state dir, its label key, the host
  user, and each stand-in's image and port. No secret.
- ``<state_dir>/compose/<stand-in>.env`` (0600), each service's ``env_file``: the container's environment as
  the supervisor would pass it, credentials from the secret store included (as the secret store's own file
  holds them, beside it).

The labels let ``lastmile up`` find the compose containers of this state dir and adopt them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from harness.infra.containers import state_key
from harness.infra.standin import ContainerSpec


def folder(state_dir: Path) -> Path:
    return state_dir / "compose"


def env_file(state_dir: Path, name: str) -> Path:
    """The env file of stand-in ``name``'s service: its credentials."""
    return folder(state_dir) / f"{name}.env"


def variable(name: str, what: str) -> str:
    """The compose.env variable for a stand-in's ``what`` (``LASTMILE_OBJECT_STORE_PORT``)."""
    return f"LASTMILE_{name.upper()}_{what.upper()}"


def variables(state_dir: Path, specs: Mapping[str, tuple[ContainerSpec, int]],
              extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """compose.env's variables for the stand-ins ``specs`` (name -> its container and port)."""
    key = state_key(state_dir)
    found = {"COMPOSE_PROJECT_NAME": f"lastmile-{key}", "LASTMILE_STATE_DIR": str(state_dir.absolute()),
             "LASTMILE_STATE_KEY": key, "LASTMILE_UID": str(os.getuid()), "LASTMILE_GID": str(os.getgid())}
    for name, (spec, port) in sorted(specs.items()):
        found[variable(name, "image")] = spec.image
        found[variable(name, "port")] = str(port)
    return {**found, **(extra or {})}


def write(state_dir: Path, specs: Mapping[str, tuple[ContainerSpec, int]],
          extra: Mapping[str, str] | None = None) -> Path:
    """Write compose.env and every stand-in's env file; compose.env's path."""
    target = folder(state_dir)
    target.mkdir(parents=True, exist_ok=True)
    for name, (spec, _) in specs.items():
        _write_private(env_file(state_dir, name), "".join(f"{k}={v}\n" for k, v in sorted(spec.environment.items())))
    path = target / "compose.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in variables(state_dir, specs, extra).items()))
    return path


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)
