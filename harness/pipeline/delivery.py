"""Stages 6 and 7: roll the champion out behind the stable endpoint, then observe it, through ports only.

The deployment carries the champion's reference predictions (recorded by the training job as the version tag
``lastmile.reference``); each replica must reproduce them before it reports ready. The rollout policy
(:mod:`harness.pipeline.rollout`) rolls back a revision that does not become ready, and so does this stage
when the endpoint does not answer as the registry recorded. Observation reads replica metrics through the
Deployer port and prediction samples from object storage, where the replicas ship them: no address of a
replica is ever needed, so the same stages run on OKE.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from harness.bootstrap import Harness
from harness.domain.errors import LastmileError
from harness.domain.promotion import CHAMPION
from harness.domain.records import ArtifactRef, DeploymentSpec, ModelVersion, Reference
from harness.pipeline import drift
from harness.pipeline.journal import Journal
from harness.pipeline.observation import observe
from harness.pipeline.rollout import RolloutFailed, RolloutPolicy, roll_out, undo

REFERENCE_TAG = "lastmile.reference"
"""The version tag the training job writes: ``{"rows": [...], "predictions": [...]}``."""
SAMPLES_WAIT_S = 5.0


class ObservationFailed(LastmileError):
    """The deployed endpoint did not answer as the registered model does."""


def reference_of(version: ModelVersion) -> Reference:
    raw = version.tags.get(REFERENCE_TAG)
    if not raw:
        raise ObservationFailed(f"model version {version.version} has no {REFERENCE_TAG} tag (registered before "
                                "lastmile recorded reference predictions); retrain it with `lastmile run --force`")
    data = json.loads(raw)
    return Reference(tuple(data["rows"]), tuple(data["predictions"]))


def policy_of(h: Harness) -> RolloutPolicy:
    return RolloutPolicy(deadline_s=h.settings.ports.deployer.ready_deadline_s)


def deploy_stage(h: Harness, journal: Journal, serving: dict[str, Any]) -> dict[str, Any]:
    model, name = h.settings.model, h.settings.project
    with journal.stage("deployment", serving=serving["digest"], model=model.name) as rec:
        champion = h.model_registry.by_alias(model.name, CHAMPION)
        if champion is None:
            raise ObservationFailed(f"model {model.name} has no @{CHAMPION} to deploy")
        reference = reference_of(champion)
        artifact = ArtifactRef(serving["registry"], serving["repository"], serving["digest"])
        policy = policy_of(h)
        revision = roll_out(h.deployer, DeploymentSpec(name, artifact, champion, reference), policy)
        status = h.deployer.status(name)
        try:
            check_endpoint(status.endpoint, reference, revision.model_version)
        except ObservationFailed as exc:
            raise RolloutFailed(f"revision {revision.number} rolled back: {exc}; "
                                f"{undo(h.deployer, name, policy)}") from None
        out = {"revision": revision.number, "serving_digest": revision.serving_digest,
               "model_version": revision.model_version, "endpoint": status.endpoint,
               "ready": f"{status.ready}/{status.desired}", "reference_rows": [dict(r) for r in reference.rows],
               "expected": list(reference.predictions)}
        rec.outputs.update(out)
        return out


def check_endpoint(endpoint: str | None, reference: Reference, version: str) -> None:
    """Health, readiness and the reference predictions through the stable endpoint."""
    if not endpoint:
        raise ObservationFailed("the deployment reports no endpoint")
    try:
        with httpx.Client(base_url=endpoint, timeout=10) as client:
            for path in ("/health", "/ready"):
                status = client.get(path).status_code
                if status != 200:
                    raise ObservationFailed(f"{endpoint}{path} answered {status}")
            answer = client.post("/invocations", json={"dataframe_records": [dict(r) for r in reference.rows]})
    except httpx.HTTPError as exc:
        raise ObservationFailed(f"{endpoint} did not answer ({type(exc).__name__})") from None
    predictions = answer.json().get("predictions") if answer.status_code == 200 else None
    if predictions != list(reference.predictions):
        raise ObservationFailed(f"{endpoint} predicted {predictions} (status {answer.status_code}) where model "
                                f"version {version} recorded {list(reference.predictions)}")


def observe_stage(h: Harness, journal: Journal, deployed: dict[str, Any]) -> dict[str, Any]:
    endpoint, name = deployed["endpoint"], h.settings.project
    with journal.stage("observation", endpoint=endpoint) as rec:
        reference = Reference(tuple(deployed["reference_rows"]), tuple(deployed["expected"]))
        check_endpoint(endpoint, reference, deployed["model_version"])
        with httpx.Client(base_url=endpoint, timeout=10) as client:
            version = client.get("/version").json()
            sample = client.post("/predict", json={"row": deployed["reference_rows"][0]}).json()
        views, total = observe(lambda: h.deployer.replica_metrics(name), window_s=1.0)
        samples = wait_for_samples(h, deployed["model_version"])
        out = {"endpoint": endpoint, "model_version": version.get("model_version"),
               "sample": {"row": deployed["reference_rows"][0], "answer": sample},
               "replicas": [v.__dict__ for v in views], "total": total.__dict__,
               "prediction_samples": samples}
        rec.outputs.update(out)
        return out


def wait_for_samples(h: Harness, version: str, wait_s: float = SAMPLES_WAIT_S) -> int:
    """How many sample objects of this version the replicas shipped, waiting a little for the first one."""
    prefix = f"{drift.PREFIX}{h.settings.model.name}/{version}/"
    until = time.monotonic() + wait_s
    while True:
        found = h.object_store.list(h.settings.buckets.predictions, prefix)
        if found or time.monotonic() >= until:
            if not found:
                raise ObservationFailed(f"no prediction samples of version {version} reached "
                                        f"s3://{h.settings.buckets.predictions}/{prefix} within {wait_s:g} s")
            return len(found)
        time.sleep(0.2)
