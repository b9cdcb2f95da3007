"""The local secret store: a JSON file of mode 0600 under the state dir, plus ``env:`` references."""

from __future__ import annotations

import fcntl
import json
import os
import secrets as _random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.domain.errors import NotFound, UserError
from harness.domain.records import Secret, SecretRef


class FileSecretStore:
    """Secrets by name in ``<state_dir>/secrets.json`` (0600). ``env:VAR`` reads the environment."""

    def __init__(self, path: Path):
        self.path = path

    def resolve(self, ref: SecretRef) -> Secret:
        if ref.scheme == "env":
            if ref.name not in os.environ:
                raise NotFound(f"secret {ref}: environment variable {ref.name} is not set")
            return Secret(os.environ[ref.name])
        self._check_scheme(ref)
        values = self._read()
        if ref.name not in values:
            raise NotFound(f"secret {ref} is not in the local secret store; `lastmile up` creates the stand-ins' ones")
        return Secret(values[ref.name])

    def put(self, ref: SecretRef, value: str) -> None:
        self._check_scheme(ref)
        with self.edit() as values:
            values[ref.name] = value

    def ensure(self, ref: SecretRef, length: int = 24) -> Secret:
        """Resolve ``ref``, generating a random value on first use (once, whoever asks at the same time)."""
        if ref.scheme == "env":
            return self.resolve(ref)
        self._check_scheme(ref)
        with self.edit() as values:
            value = values.setdefault(ref.name, _random.token_urlsafe(length))
        return Secret(value)

    @contextmanager
    def edit(self) -> Iterator[dict[str, str]]:
        """The secrets as a dict to change in place, under a lock; written back (0600, atomically) on exit."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            values = self._read()
            yield values
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(values, out, indent=2, sort_keys=True)
            tmp.replace(self.path)

    def _read(self) -> dict[str, str]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}

    @staticmethod
    def _check_scheme(ref: SecretRef) -> None:
        if ref.scheme != "secret":
            raise UserError(f"secret {ref}: the local secret store takes secret:NAME or env:VAR references")

