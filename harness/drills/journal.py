"""A drill's record and its journal: ``<state_dir>/drills/<id>/journal.json``.

The journal is Chaos Toolkit's journal, unchanged (so its tooling reads it), plus one key, ``lastmile``: the
record below (verdict, reason, faults with their evidence, invariants) and the drill's captured output. Secret
values are masked before it is written, so a journal that reports a leak does not repeat it.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.drills.leaks import redact
from harness.drills.library import Drill

OUTPUT_LINES = 500
"""How many lines of the drill's output the journal keeps (the last ones)."""


@dataclass
class DrillRecord:
    """What lastmile says about one drill run; ``verdict`` is ``running`` until it is decided."""

    id: str
    name: str
    title: str
    file: str
    tags: list[str]
    stage: str
    verdict: str = "running"
    reason: str = ""
    status: str | None = None  # Chaos Toolkit's
    deviated: bool = False  # Chaos Toolkit's
    started: float = field(default_factory=time.time)
    ended: float | None = None
    faults: list[dict[str, Any]] = field(default_factory=list)
    invariants: dict[str, list[str]] = field(default_factory=dict)
    journal: str = ""
    phase: str = ""  # what runs now: a hypothesis, an activity, the invariants

    @classmethod
    def start(cls, drill: Drill, root: Path) -> DrillRecord:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return cls(f"{stamp}-{drill.name}-{secrets.token_hex(2)}", drill.name, drill.title, _rel(drill.path, root),
                   list(drill.tags), drill.stage)

    @property
    def seconds(self) -> float:
        return (self.ended or time.time()) - self.started

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("phase")
        data["seconds"] = round(self.seconds, 3)
        return data


def write(folder: Path, record: DrillRecord, chaos_journal: Mapping[str, Any], output: Iterable[str],
          secret_values: Iterable[str]) -> Path:
    """Write the journal atomically; returns its path (also kept in ``record.journal``)."""
    path = folder / record.id / "journal.json"
    record.journal = str(path)
    lines = list(output)
    data = {**chaos_journal, "lastmile": {**record.to_json(), "output": lines[-OUTPUT_LINES:]}}
    data = redact(json.loads(json.dumps(data, default=str)), list(secret_values))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    os.replace(tmp, path)
    return path


def load(path: Path) -> dict[str, Any]:
    """A drill journal as written: Chaos Toolkit's keys plus ``lastmile``."""
    return json.loads(path.read_text())


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
