"""The default training data and its content-addressed home in object storage."""

from __future__ import annotations

import io

from harness.domain.ports import ObjectStore
from harness.domain.records import ObjectRef, sha256_hex


def iris_csv() -> bytes:
    """scikit-learn's bundled iris data as CSV (features, then ``target``); byte-identical every time."""
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True).frame
    data.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in data.columns]
    out = io.StringIO()
    data.to_csv(out, index=False, float_format="%.1f", lineterminator="\n")
    return out.getvalue().encode()


DATASETS = {"iris": iris_csv}


def key_for(name: str, data: bytes) -> str:
    return f"datasets/{name}/{sha256_hex(data)}.csv"


def seed(store: ObjectStore, bucket: str, name: str = "iris") -> tuple[ObjectRef, bool]:
    """Upload a shipped dataset under its sha256 unless it is there already. Returns (ref, uploaded)."""
    data = DATASETS[name]()
    key = key_for(name, data)
    existing = store.head(bucket, key)
    if existing is not None and existing.sha256 == sha256_hex(data):
        return existing, False
    return store.put(bucket, key, data), True
