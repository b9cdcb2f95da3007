"""The secret invariant: no secret value appears under the state dir (outside the secret store) or in a
drill's output.

The values come from the SecretStore port (every secret reference in the profile's config) and from the local
secret store's file (``<state_dir>/secrets.json``, which also holds the stand-ins' generated credentials). Each
file is read once and searched for every value; files over :data:`MAX_BYTES` are skipped, and so are values
shorter than :data:`MIN_LENGTH`, which would match by chance. A violation names the file and the secret's
reference, never the value.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.bootstrap import Harness
from harness.domain.errors import LastmileError
from harness.domain.records import SecretRef

MAX_BYTES = 64 * 1024 * 1024
MIN_LENGTH = 8
MASK = "******"
IDENTIFIERS = ("access-key-id",)
"""Secret names ending so are identifiers, not secrets: every signed S3 request names its access key id in
the clear (``Credential=<id>/...``), so servers' logs and recordings hold it by design."""


def find_leaks(values: Mapping[str, str], root: Path, *, skip: Iterable[Path] = (),
               texts: Mapping[str, str] | None = None) -> list[str]:
    """Where a secret value shows: files under ``root`` (except ``skip``) and the named ``texts``.

    ``values`` maps a secret's reference (how a violation names it) to its value."""
    needles = {ref: value.encode() for ref, value in values.items() if len(value) >= MIN_LENGTH}
    if not needles:
        return []
    skipped = {os.path.realpath(p) for p in skip}
    found = []
    for path in _files(root):
        if os.path.realpath(path) in skipped:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        where = os.path.relpath(path, root.parent)
        found += [f"{where} holds the value of {ref}" for ref, needle in needles.items() if needle in data]
    for name, text in (texts or {}).items():
        data = text.encode()
        found += [f"{name} holds the value of {ref}" for ref, needle in needles.items() if needle in data]
    return found


def _files(root: Path) -> Iterator[Path]:
    """Regular files under ``root`` up to :data:`MAX_BYTES`, symlinks not followed (a FIFO would block a read)."""
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            try:
                info = path.lstat()
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode) and info.st_size <= MAX_BYTES:
                yield path


def store_file(h: Harness) -> Path:
    """The local secret store's file (where the ``file`` flavor keeps it; it may not exist)."""
    return h.settings.state_dir / str(getattr(h.settings.ports.secret_store, "path", "secrets.json"))


def secret_values(h: Harness) -> dict[str, str]:
    """Every secret value the profile knows, by reference: the config's references resolved through the
    SecretStore port (missing ones are skipped), and every entry of the local secret store's file."""
    values: dict[str, str] = {}
    for text in sorted(set(_strings(h.settings.model_dump(mode="json")))):
        try:
            ref = SecretRef.parse(text)
        except ValueError:
            continue
        try:
            values[str(ref)] = h.secret_store.resolve(ref).reveal()
        except LastmileError:
            continue
    try:
        stored = json.loads(store_file(h).read_text())
    except (OSError, ValueError):
        stored = {}
    if isinstance(stored, dict):
        values.update({f"secret:{name}": value for name, value in stored.items() if isinstance(value, str)})
    return {ref: value for ref, value in values.items() if not ref.endswith(IDENTIFIERS)}


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def redact(node: Any, values: Iterable[str]) -> Any:
    """``node`` (JSON data) with every secret value in its strings replaced by a mask, so that a journal that
    reports a leak does not repeat it."""
    needles = sorted((v for v in values if len(v) >= MIN_LENGTH), key=len, reverse=True)
    if not needles:
        return node

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            for needle in needles:
                if needle in item:
                    item = item.replace(needle, MASK)
            return item
        if isinstance(item, dict):
            return {walk(k): walk(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        return item

    return walk(node)
