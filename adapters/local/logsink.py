"""LogSink as JSON lines in a file under the state dir, one event a line."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

from harness.domain.records import LogEvent


class JsonlLogSink:
    def __init__(self, path: Path):
        self.path = path

    def emit(self, event: LogEvent) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = {"ts": event.time or time.time(), "level": event.level, "event": event.event,
                "subject": event.subject, "fields": dict(event.fields)}
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line, default=str) + "\n")

    def events(self, subject: str | None = None) -> Iterator[LogEvent]:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as lines:
            for text in lines:
                try:
                    data = json.loads(text)
                except ValueError:
                    continue  # a line cut short by a crash: skip it, keep the rest
                if subject is not None and data.get("subject", "") != subject:
                    continue
                yield LogEvent(data["event"], data.get("level", "info"), data.get("fields", {}),
                               data.get("subject", ""), data.get("ts", 0.0))
