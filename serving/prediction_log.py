"""Sampled predictions as JSON lines, one line per scored row, for drift checks and audits.

One :class:`PredictionSampler` draws which requests are sampled and shapes their lines; every sink receives the
same lines: a local file (``LASTMILE_SERVING_PREDICTION_LOG``), object storage (``LASTMILE_SERVING_SAMPLES_URI``,
see :mod:`serving.samples`), or both.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from serving.metrics import ServingMetrics
from serving.settings import Settings


class LineSink(Protocol):
    """Receives the JSON lines of one sampled request; ``write`` runs on the request path and must not block."""

    def write(self, lines: list[str]) -> None: ...

    def close(self) -> None: ...


class PredictionSampler:
    """Turns sampled requests into ``{"ts", "request_id", "route", "model", "version", "features", "prediction"}``
    lines (plus ``"probabilities"`` from ``/predict``) for its sinks.

    A request is written whole or not at all; ``sample_rate`` is the share of requests written.
    """

    def __init__(self, sample_rate: float, columns: Sequence[str], model: str, version: str,
                 sinks: Sequence[LineSink], draw: Callable[[], float] = random.random):
        self.sample_rate = sample_rate
        self.columns = tuple(columns)
        self.model, self.version = model, version
        self.sinks = tuple(sinks)
        self._draw = draw

    def record(self, request_id: str | None, route: str, rows: list[list], predictions: list,
               probabilities: list | None = None) -> bool:
        """Hand this request's lines to every sink when it is drawn in the sample; say whether it was."""
        if self.sample_rate <= 0 or (self.sample_rate < 1 and self._draw() >= self.sample_rate):
            return False
        ts = round(time.time(), 3)
        lines = []
        for i, (row, prediction) in enumerate(zip(rows, predictions, strict=True)):
            entry = {"ts": ts, "request_id": request_id, "route": route, "model": self.model,
                     "version": self.version, "features": dict(zip(self.columns, map(_plain, row), strict=True)),
                     "prediction": prediction}
            if probabilities is not None:
                entry["probabilities"] = probabilities[i]
            lines.append(json.dumps(entry))
        for sink in self.sinks:
            sink.write(lines)
        return True

    def close(self) -> None:
        """Close every sink (object storage flushes what is left, within a bound)."""
        for sink in self.sinks:
            sink.close()


class PredictionLogFile:
    """Appends the lines to a local file, flushed after every request."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")

    def write(self, lines: list[str]) -> None:
        self._file.write("\n".join(lines) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def open_sampler(settings: Settings, columns: Sequence[str], model: str, version: str,
                 metrics: ServingMetrics) -> PredictionSampler | None:
    """The sampler for the sinks ``settings`` turns on, started; None when none is on."""
    sinks: list[LineSink] = []
    if settings.prediction_log is not None:
        sinks.append(PredictionLogFile(settings.prediction_log))
    bucket = settings.samples_bucket
    if bucket is not None:
        from serving.samples import SampleShipper, s3_client

        try:
            client = s3_client(settings.s3_endpoint)
        except Exception:
            for sink in sinks:
                sink.close()
            raise
        shipper = SampleShipper(client, bucket,
                                f"{settings.samples_prefix}{model}/{version}/{settings.replica}/", metrics,
                                flush_seconds=settings.samples_flush_seconds)
        shipper.start()
        sinks.append(shipper)
    if not sinks:
        return None
    return PredictionSampler(settings.prediction_sample_rate, columns, model, version, sinks)


def _plain(value):
    """NaN is not JSON: a missing value is written as null."""
    return None if isinstance(value, float) and math.isnan(value) else value
