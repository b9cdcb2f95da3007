"""Small file plumbing of the stand-in's state: atomic JSON writes, private files, a JSON file read once per change."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomic(path: Path, data: bytes, private: bool = False) -> None:
    """Replace ``path`` with ``data`` in one rename (a reader sees the old or the new file, never half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o600 if private else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any, private: bool = False) -> None:
    write_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), private)


def read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


class WatchedJson:
    """A JSON file parsed again only when its modification time or size changes, so that a key or secret
    registered by another process (``lastmile up``, the CLI) is seen by the running server without a restart."""

    def __init__(self, path: Path, default: Any):
        self.path, self.default = path, default
        self._stamp: tuple[int, int] | None = None
        self._value: Any = default

    def get(self) -> Any:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            self._stamp, self._value = None, self.default
            return self._value
        if stamp != self._stamp:
            self._value, self._stamp = read_json(self.path, self.default), stamp
        return self._value
