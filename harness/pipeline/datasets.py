"""The default training data and its content-addressed home in object storage."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

from harness.domain.errors import IntegrityError, NotFound
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


@dataclass(frozen=True)
class Seeded:
    """What :func:`seed` found and did: the stored object, whether it uploaded, and why."""

    ref: ObjectRef
    uploaded: bool
    replaced_corrupted: bool = False
    note: str = ""
    """Why it uploaded ("first upload", or what no longer matched); "" when the stored object was good."""

    def __iter__(self) -> Iterator[ObjectRef | bool]:
        """Unpacks as ``(ref, uploaded)``, the shape ``seed`` returned before it said why."""
        return iter((self.ref, self.uploaded))


def seed(store: ObjectStore, bucket: str, name: str = "iris") -> Seeded:
    """Make sure the shipped dataset is stored under its sha256, intact: upload it when it is missing, and
    replace it when the stored object no longer matches that sha256 (in its metadata or in its content, which
    is read back and checked; the shipped datasets are small)."""
    data = DATASETS[name]()
    key, expected = key_for(name, data), sha256_hex(data)
    existing = store.head(bucket, key)
    if existing is None:
        return Seeded(store.put(bucket, key, data), True, note="first upload")
    problem = _mismatch(store, existing, expected)
    if not problem:
        return Seeded(existing, False)
    return Seeded(store.put(bucket, key, data), True, replaced_corrupted=True,
                  note=f"replaced {existing.uri}: {problem}")


def _mismatch(store: ObjectStore, stored: ObjectRef, expected: str) -> str:
    """Why the stored object is not the dataset any more, or "" when it is."""
    if stored.sha256 and stored.sha256 != expected:
        return f"its sha256 metadata says {stored.sha256[:12]}…, not {expected[:12]}…"
    try:
        content = store.get(stored.bucket, stored.key)
    except IntegrityError:
        return f"its content no longer matched its sha256 {expected[:12]}…"
    except NotFound:
        return "it vanished between head and get"
    actual = sha256_hex(content)
    if actual != expected:
        return f"its content hashes to {actual[:12]}…, not {expected[:12]}…"
    return ""
