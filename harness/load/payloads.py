"""The requests a load sends: kinds of request (a format, one row or a batch, or an invalid one) with their weights
and a pool of bodies drawn from data set rows. Built here, in the lastmile process; the locustfile only picks.

Each format the endpoint speaks: ``/invocations`` with ``dataframe_split``, ``dataframe_records``, ``instances``
(JSON) or CSV, and ``/predict``. Invalid requests are made to be refused with a 4xx (a missing feature, a body that
is not JSON, an unsupported media type, a value of the wrong type to ``/predict``); the load counts a 4xx answer
to them as success and anything else as a failure, so they never count as errors of the service.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from harness.load.scenario import Payloads

JSON, CSV = "application/json", "text/csv"
BODIES_PER_KIND = 16
INVALID_PREFIX = "invalid "

Row = Mapping[str, float]


@dataclass(frozen=True)
class RequestKind:
    """One kind of request: its name in the statistics, where it goes, what answer it expects, how often."""

    name: str
    path: str
    content_type: str
    expect: str  # "2xx" or "4xx"
    weight: float
    bodies: tuple[str, ...]

    def to_json(self) -> dict:
        return {**asdict(self), "bodies": list(self.bodies)}


def encode(fmt: str, rows: Sequence[Row]) -> tuple[str, str, str]:
    """``(path, content type, body)`` of ``rows`` in one format."""
    columns = list(rows[0])
    if fmt == "dataframe_split":
        document: dict = {"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}}
    elif fmt == "dataframe_records":
        document = {"dataframe_records": [dict(r) for r in rows]}
    elif fmt == "instances":
        document = {"instances": [dict(r) for r in rows]}
    elif fmt == "predict":
        return "/predict", JSON, json.dumps({"rows": [dict(r) for r in rows]})
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[r[c] for c in columns] for r in rows])
        return "/invocations", CSV, out.getvalue()
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return "/invocations", JSON, json.dumps(document)


def _invalid(rows: Sequence[Row], pick: random.Random) -> list[tuple[str, str, str, str]]:
    """``(name, path, content type, body)`` of requests the endpoint must refuse with a 4xx."""
    row = dict(pick.choice(rows))
    missing = dict(list(row.items())[1:])
    wrong_type = {**row, next(iter(row)): "not-a-number"}
    return [
        ("missing feature", "/invocations", JSON, json.dumps({"dataframe_records": [missing]})),
        ("not JSON", "/invocations", JSON, "{not json"),
        ("unsupported media type", "/invocations", "text/plain", "sepal_length=5.1"),
        ("predict wrong type", "/predict", JSON, json.dumps({"rows": [wrong_type]})),
    ]


def kinds(payloads: Payloads, rows: Sequence[Row], seed: int = 0) -> list[RequestKind]:
    """The request kinds of a payload mix, weights summing to 1, bodies drawn from ``rows`` (deterministic for
    ``seed``)."""
    if not rows:
        raise ValueError("no rows to draw requests from")
    pick = random.Random(seed)
    total = sum(payloads.formats.values())
    valid = 1.0 - payloads.invalid_share
    shapes = [(1, 1.0 - payloads.batch_share), (payloads.batch_size, payloads.batch_share)]
    found: list[RequestKind] = []
    for fmt, weight in payloads.formats.items():
        for size, share in shapes:
            if share <= 0 or weight <= 0:
                continue
            bodies = []
            for _ in range(BODIES_PER_KIND):
                path, content_type, body = encode(fmt, [pick.choice(rows) for _ in range(size)])
                bodies.append(body)
            found.append(RequestKind(f"{fmt} x{size}", path, content_type, "2xx", valid * share * weight / total,
                                     tuple(bodies)))
    if payloads.invalid_share > 0:
        invalid = _invalid(rows, pick)
        for name, path, content_type, body in invalid:
            found.append(RequestKind(INVALID_PREFIX + name, path, content_type, "4xx",
                                     payloads.invalid_share / len(invalid), (body,)))
    return found


def rows_of_csv(data: bytes, target: str = "target") -> list[dict[str, float]]:
    """Feature rows of a training CSV (every column but ``target``), as floats."""
    return [{k: float(v) for k, v in row.items() if k != target and v not in ("", None)}
            for row in csv.DictReader(io.StringIO(data.decode()))]
