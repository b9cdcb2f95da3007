"""One contract per port, run against the in-memory fake and against every real adapter of that port.

Each module holds a ``<Port>Contract`` class of test methods; a test module subclasses it once per
implementation (``class TestS3ObjectStore(ObjectStoreContract)``) and provides the fixtures the contract's
docstring names. Contract classes do not start with ``Test``, so pytest collects them only through their
subclasses. Every check uses fresh, randomly named keys, repositories and models, so it can run against a
backend with prior state.
"""

from __future__ import annotations

import uuid


def unique(label: str) -> str:
    return f"contract-{label}-{uuid.uuid4().hex[:12]}"
