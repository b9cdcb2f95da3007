"""LogSink as JSON lines in a file under the state dir."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator

from harness.records import LogEvent


class JsonlLogSink:
    def __init__(self, path: Path):
        self.path = path

    def emit(self, event: LogEvent) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = {"ts": time.time(), "level": event.level, "event": event.event, **event.fields}
        with open(self.path, "a") as out:
            out.write(json.dumps(line, default=str) + "\n")

    def events(self) -> Iterator[LogEvent]:
        if not self.path.exists():
            return
        with open(self.path) as lines:
            for text in lines:
                data = json.loads(text)
                data.pop("ts", None)
                yield LogEvent(data.pop("event"), data.pop("level", "info"), data)
