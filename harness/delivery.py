"""Stages 6 and 7: deploy the champion behind the deployer's stable endpoint, then observe it.

The deploy carries a smoke check: reference rows whose offline predictions (from the registry, for
the very version deployed) every new replica must reproduce before it takes traffic. Observation
repeats the check through the stable endpoint, scrapes the metrics and ships prediction samples.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx

from harness import drift
from harness.errors import LastmileError
from harness.journal import Journal
from harness.observe import observe
from harness.promotion import CHAMPION
from harness.records import ArtifactRef, DeploymentSpec, SmokeCheck

REFERENCE_ROWS = 3


class ObservationFailed(LastmileError):
    """The deployed endpoint did not answer as the registered model does."""


def reference_rows(dataset_csv: bytes, count: int = REFERENCE_ROWS, target: str = "target") -> list[dict[str, float]]:
    """Rows spread over the dataset (first, middle, last...), features only."""
    rows = list(csv.DictReader(io.StringIO(dataset_csv.decode())))
    picks = [rows[i * (len(rows) - 1) // max(1, count - 1)] for i in range(count)]
    return [{k: float(v) for k, v in row.items() if k != target} for row in picks]


def deploy_stage(h, journal: Journal, serving: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    model, name = h.settings.model, h.settings.project
    with journal.stage("deployment", serving=serving["digest"], model=model.name) as rec:
        champion = h.model_registry.by_alias(model.name, CHAMPION)
        if champion is None:
            raise ObservationFailed(f"model {model.name} has no @{CHAMPION} to deploy")
        bucket, key = dataset["uri"].removeprefix("s3://").split("/", 1)
        rows = reference_rows(h.object_store.get(bucket, key))
        expected = h.model_registry.predict(model.name, champion.version, rows)
        smoke = SmokeCheck("/invocations", {"dataframe_records": rows}, tuple(expected))
        artifact = ArtifactRef(serving["registry"], serving["repository"], serving["digest"])
        revision = h.deployer.deploy(DeploymentSpec(name, artifact, champion, smoke=smoke))
        status = h.deployer.status(name)
        out = {"revision": revision.number, "serving_digest": revision.serving_digest,
               "model_version": revision.model_version, "endpoint": status.endpoint,
               "ready": f"{status.ready}/{status.desired}", "reference_rows": rows, "expected": list(expected)}
        rec.outputs.update(out)
        return out


def observe_stage(h, journal: Journal, deployed: dict[str, Any]) -> dict[str, Any]:
    endpoint = deployed["endpoint"]
    with journal.stage("observation", endpoint=endpoint) as rec:
        with httpx.Client(base_url=endpoint, timeout=10) as client:
            for path in ("/health", "/ready"):
                status = client.get(path).status_code
                if status != 200:
                    raise ObservationFailed(f"{endpoint}{path} answered {status}")
            answer = client.post("/invocations", json={"dataframe_records": deployed["reference_rows"]}).json()
            if answer.get("predictions") != deployed["expected"]:
                raise ObservationFailed(f"{endpoint} predicted {answer.get('predictions')} where model version "
                                        f"{deployed['model_version']} predicts {deployed['expected']} offline")
            version = client.get("/version").json()
            sample = client.post("/predict", json={"row": deployed["reference_rows"][0]}).json()
        replicas = [(r.name, r.url, r.state) for r in h.deployer.status(h.settings.project).replicas]
        views, total = observe(replicas, window_s=1.0)
        shipped = drift.ship(h.settings.state_dir / "predictions" / "outbox", h.object_store,
                             h.settings.buckets.predictions)
        out = {"endpoint": endpoint, "model_version": version.get("model_version"),
               "sample": {"row": deployed["reference_rows"][0], "answer": sample},
               "replicas": [v.__dict__ for v in views], "total": total.__dict__,
               "predictions_shipped": len(shipped)}
        rec.outputs.update(out)
        return out
