"""Where the profile's faults are kept: ``<state_dir>/faults/active.json``, read by every process of the profile.

The file holds the active faults and the last reverted ones (so that reverting one twice, even from another
process, returns its evidence instead of failing). Changes happen under an exclusive ``flock`` of ``lock`` in
the same folder and land with an atomic rename; plain reads need no lock. Nothing secret is ever written here:
a record names what a fault hit and how to undo it, never a value.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.domain.errors import NotFound
from harness.domain.records import FaultEvidence, FaultHandle, FaultSpec

KEEP_REVERTED = 200
"""How many reverted faults the file remembers (oldest forgotten first)."""


@dataclass(frozen=True)
class Record:
    """One fault: its spec, what it did (``state``: JSON the kind needs to undo it and to tell what it met), and
    its evidence when that was settled at injection (processes, data) or at revert (every kind)."""

    id: str
    spec: FaultSpec
    detail: str
    state: dict[str, Any] = field(default_factory=dict)
    injected_at: float = 0.0
    evidence: FaultEvidence | None = None
    reverted_at: float | None = None

    @property
    def handle(self) -> FaultHandle:
        return FaultHandle(self.id, self.spec, self.detail)

    def to_json(self) -> dict[str, Any]:
        spec = self.spec
        return {"id": self.id, "detail": self.detail, "state": self.state, "injected_at": self.injected_at,
                "reverted_at": self.reverted_at,
                "spec": {"kind": spec.kind, "target": spec.target, "action": spec.action, "params": dict(spec.params)},
                "evidence": None if self.evidence is None else {"took_effect": self.evidence.took_effect,
                                                                "detail": self.evidence.detail}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        evidence = data.get("evidence")
        return cls(data["id"], FaultSpec(**data["spec"]), data["detail"], data.get("state") or {},
                   data.get("injected_at", 0.0),
                   FaultEvidence(evidence["took_effect"], evidence["detail"]) if evidence else None,
                   data.get("reverted_at"))


class Book:
    """The file's content while the lock is held: ``active`` and ``reverted`` records by id, oldest first."""

    def __init__(self, active: dict[str, Record], reverted: dict[str, Record]):
        self.active, self.reverted = active, reverted

    def find(self, fault_id: str) -> Record:
        record = self.active.get(fault_id) or self.reverted.get(fault_id)
        if record is None:
            raise NotFound(f"no fault {fault_id} was ever injected in this profile")
        return record

    def add(self, record: Record) -> None:
        self.active[record.id] = record

    def retire(self, record: Record, evidence: FaultEvidence, at: float) -> None:
        self.active.pop(record.id, None)
        self.reverted[record.id] = replace(record, evidence=evidence, reverted_at=at)
        while len(self.reverted) > KEEP_REVERTED:
            self.reverted.pop(next(iter(self.reverted)))


class Ledger:
    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / "active.json"

    def read(self) -> Book:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return Book({}, {})
        return Book({r["id"]: Record.from_json(r) for r in data.get("active", [])},
                    {r["id"]: Record.from_json(r) for r in data.get("reverted", [])})

    @contextmanager
    def locked(self) -> Iterator[Book]:
        """The book, held exclusively; written back when the block ends without an exception."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            book = self.read()
            yield book
            self._write(book)

    def scratch(self, fault_id: str) -> Path:
        """A private folder for what one fault must put back (the bytes of an object it corrupted, say)."""
        path = self.folder / fault_id
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def _write(self, book: Book) -> None:
        data = {"active": [r.to_json() for r in book.active.values()],
                "reverted": [r.to_json() for r in book.reverted.values()]}
        handle, temporary = tempfile.mkstemp(prefix="active.", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(handle, "w") as out:
                json.dump(data, out, indent=2)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
