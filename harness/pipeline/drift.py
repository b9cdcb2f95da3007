"""Prediction samples, which the replicas ship to object storage under ``predictions/<model>/<version>/<replica>/``,
compared with the training data by the population stability index (PSI) per feature."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.domain.ports import ObjectStore

PREFIX = "predictions/"


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float
    drifted: bool
    samples: int


def samples(store: ObjectStore, bucket: str, prefix: str = PREFIX) -> list[dict[str, float]]:
    """The feature rows of every sample object under ``prefix``."""
    rows = []
    for ref in store.list(bucket, prefix):
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
    return sum((ai - ei) * math.log(ai / ei) for ei, ai in zip(e, a, strict=True))


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
