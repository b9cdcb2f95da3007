"""Sampled predictions as JSON lines, one line per scored row, for drift checks and audits."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class PredictionLog:
    """Appends ``{"ts", "request_id", "route", "model", "version", "features", "prediction"}`` lines to a file.

    A request is written whole or not at all; ``sample_rate`` is the share of requests written.
    """

    def __init__(self, path: Path, sample_rate: float, columns: Sequence[str], model: str, version: str,
                 draw: Callable[[], float] = random.random):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        self.sample_rate = sample_rate
        self.columns = tuple(columns)
        self.model, self.version = model, version
        self._draw = draw

    def record(self, request_id: str | None, route: str, rows: list[list], predictions: list,
               probabilities: list | None = None) -> bool:
        """Write this request's rows when it is drawn in the sample; say whether it was."""
        if self.sample_rate <= 0 or (self.sample_rate < 1 and self._draw() >= self.sample_rate):
            return False
        ts = round(time.time(), 3)
        lines = []
        for i, (row, prediction) in enumerate(zip(rows, predictions)):
            entry = {"ts": ts, "request_id": request_id, "route": route, "model": self.model,
                     "version": self.version, "features": dict(zip(self.columns, map(_plain, row))),
                     "prediction": prediction}
            if probabilities is not None:
                entry["probabilities"] = probabilities[i]
            lines.append(json.dumps(entry))
        self._file.write("\n".join(lines) + "\n")
        self._file.flush()
        return True

    def close(self) -> None:
        self._file.close()


def _plain(value):
    """NaN is not JSON: a missing value is written as null."""
    return None if isinstance(value, float) and math.isnan(value) else value
