"""Prediction samples: shipped from the replicas' outbox to object storage, and compared with the
training data by the population stability index (PSI) per feature."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from harness.ports import ObjectStore
from harness.records import ObjectRef

PREFIX = "predictions/"


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float
    drifted: bool
    samples: int


def ship(outbox: Path, store: ObjectStore, bucket: str) -> list[ObjectRef]:
    """Upload what each replica appended since the last shipment (whole lines only) and remember where
    it stopped, so nothing is lost and nothing is sent twice; the replicas keep their files open."""
    offsets_file = outbox / "shipped.json"
    offsets = json.loads(offsets_file.read_text()) if offsets_file.exists() else {}
    shipped = []
    for path in sorted(outbox.glob("*.jsonl")):
        start = offsets.get(path.name, 0)
        with open(path, "rb") as f:
            f.seek(start)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1
        if end <= 0:
            continue
        shipped.append(store.put(bucket, f"{PREFIX}{path.stem}/{start:012d}.jsonl", chunk[:end]))
        offsets[path.name] = start + end
        offsets_file.write_text(json.dumps(offsets))
    return shipped


def samples(store: ObjectStore, bucket: str) -> list[dict[str, float]]:
    rows = []
    for ref in store.list(bucket, PREFIX):
        for line in store.get(bucket, ref.key).splitlines():
            rows.append(json.loads(line)["features"])
    return rows


def psi(expected: Sequence[float], actual: Sequence[float], bins: int = 10) -> float:
    """PSI with bin edges at the expected (training) quantiles; empty bins get a small floor."""
    ordered = sorted(expected)
    edges = sorted({ordered[min(len(ordered) - 1, int(len(ordered) * i / bins))] for i in range(1, bins)})

    def shares(values: Sequence[float]) -> list[float]:
        counts = [0] * (len(edges) + 1)
        for v in values:
            counts[sum(v >= e for e in edges)] += 1
        return [max(c / len(values), 1e-4) for c in counts]

    e, a = shares(expected), shares(actual)
    return sum((ai - ei) * math.log(ai / ei) for ei, ai in zip(e, a))


def report(training_csv: bytes, sampled: Iterable[dict[str, float]], threshold: float = 0.2,
           target: str = "target") -> list[FeatureDrift]:
    """PSI per feature of the training data; a feature drifted when its PSI exceeds ``threshold``."""
    training = list(csv.DictReader(io.StringIO(training_csv.decode())))
    sampled = list(sampled)
    features = [c for c in training[0] if c != target] if training else []
    out = []
    for feature in features:
        expected = [float(r[feature]) for r in training if r[feature] not in ("", None)]
        actual = [float(r[feature]) for r in sampled if r.get(feature) is not None]
        if not actual:
            out.append(FeatureDrift(feature, float("nan"), False, 0))
            continue
        value = psi(expected, actual)
        out.append(FeatureDrift(feature, value, value > threshold, len(actual)))
    return out
