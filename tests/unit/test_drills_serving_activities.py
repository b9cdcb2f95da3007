"""The serving drills' activities on a harness of fakes, and the product pieces they rest on: the Service's
per-replica timing, the slowest replica, sampled rows in a window, a replica's last words, and the Service
sending requests that wait on a frozen replica to another one."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from adapters.local.deployer.proxy import ServiceProxy
from adapters.local.deployer.replicas import Replica, last_words
from adapters.local.deployer.upstream import UpstreamLatency
from harness.bootstrap import Given, Harness
from harness.config.settings import load_settings
from harness.domain.records import ReplicaMetrics
from harness.drills import serving_activities as sa
from harness.drills.context import DrillContext, running, use_harness
from harness.pipeline.datasets import iris_csv
from harness.pipeline.journal import RunRecord
from harness.pipeline.observation import observe, parse, sampled_rows, slowest
from serving.digests import FILES_TAG
from tests.fakes import MemoryDeployer, MemoryFaultInjector, MemoryModelRegistry, MemoryObjectStore, MemoryRegistry

ROOT = Path(__file__).resolve().parents[2]
MODEL = "lastmile-classifier"
REFERENCE = json.dumps({"rows": [{"x": 1.0}], "predictions": [0]})
MODEL_KEY = "1/models/m-abc/artifacts/model.skops"


@dataclass
class World:
    h: Harness
    models: MemoryModelRegistry
    deployer: MemoryDeployer
    faults: MemoryFaultInjector
    store: MemoryObjectStore
    registry: MemoryRegistry
    digest: str  # the serving build's


@pytest.fixture
def world(tmp_path, request):
    """@champion is version 1 (source ``models:/m-abc``, its model.skops stored and recorded), deployed as revision
    1; the last good run names the serving build and the iris data set, which is stored. On the profile
    ``request.param`` names (``local`` by default)."""
    profile = getattr(request, "param", "local")
    settings = load_settings(ROOT / "lastmile.yaml", profile, environ={"LASTMILE_STATE_DIR": str(tmp_path / "state")})
    models, store = MemoryModelRegistry(), MemoryObjectStore()
    files = {"model.skops": b"good bytes"}
    tags = {"lastmile.reference": REFERENCE, FILES_TAG: json.dumps({"model.skops": _sha(b"good bytes")})}
    models.register(MODEL, "models:/m-abc", tags=tags, files=files)
    models.set_alias(MODEL, "champion", "1")
    for bucket in ("lastmile-data", "lastmile-mlflow", "lastmile-predictions"):
        store.ensure_bucket(bucket)
    store.put("lastmile-mlflow", MODEL_KEY, b"good bytes")
    store.put("lastmile-data", "datasets/iris.csv", iris_csv())
    deployer, faults, registry = MemoryDeployer(replicas=2), MemoryFaultInjector(), MemoryRegistry()
    layer = registry.push_blob("lastmile/serving", b"the serving bundle")
    build = registry.push_manifest("lastmile/serving", {"layers": [{"digest": layer}]})
    h = Harness(settings, Given(model_registry=models, deployer=deployer, fault_injector=faults, object_store=store,
                                artifact_registry=registry))
    serving = {"registry": build.registry, "repository": build.repository, "digest": build.digest}
    run = RunRecord("20260101-000000-0001", "local", "succeeded",
                    summary={"builds": {"serving": serving}, "dataset": {"uri": "s3://lastmile-data/datasets/iris.csv"}})
    (settings.state_dir / "runs" / run.run_id).mkdir(parents=True)
    (settings.state_dir / "runs" / run.run_id / "journal.json").write_text(json.dumps(run.to_json()))
    with use_harness(h), running(DrillContext("a-drill")):
        sa.roll_out_champion()  # revision 1 serves
        sa._drill().rollouts.clear()
        yield World(h, models, deployer, faults, store, registry, build.digest)


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# load --------------------------------------------------------------------------------------------------------
RESULT = {"elapsed_s": 10.0, "stopped_by": "signal", "error_kinds": {"HTTP 503": 2},
          "totals": {"requests": 400, "failures": 2, "p50_ms": 5.0, "p95_ms": 9.0, "p99_ms": 12.0, "max_ms": 30.0},
          "failures_seen": [{"t": 1.0, "at": 1e9, "kind": "HTTP 503", "name": "dataframe_records x1"}] * 2}


def test_figures_give_the_error_ratio_and_the_answers_a_second():
    f = sa.figures("load", 40, RESULT)
    assert (f["error_ratio"], f["ok_per_s"], f["failed"], f["latency_ms"]["p99"]) == (0.005, 39.8, 2, 12.0)
    assert f["failures"][0] == {"t": 1.0, "at": 1e9, "kind": "HTTP 503"}
    assert sa.figures("load", 40, None, "Traceback...")["error"] == "no results: Traceback..."


def test_a_load_is_judged_against_its_error_budget_and_its_throughput():
    f = sa.figures("load", 40, RESULT)
    assert sa.judge_load(f, 0.005, 36) == ""
    assert "failed 2 of 400" in sa.judge_load(f, 0.0, 36)
    assert "under 45" in sa.judge_load(f, 0.005, 45)
    assert "no results" in sa.judge_load(sa.figures("load", 40, None), 0.005, 0)


def test_load_ok_holds_before_any_load_and_judges_every_load_that_ended(world):
    assert sa.load_ok() is True
    sa._drill().loads["load"] = sa._Load("load", None, Path("."), 40, sa.figures("load", 40, RESULT))
    assert sa.load_ok(max_error_ratio=0.005) is True
    assert sa.load_ok(max_error_ratio=0.0) is False
    assert sa.load_figures()[0]["failed"] == 2


def test_start_load_refuses_a_rate_or_duration_out_of_bounds(world):
    with pytest.raises(Exception, match="rate must be"):
        sa.start_load(rate=0)
    with pytest.raises(Exception, match="rate must be"):
        sa.start_load(rate=40, duration_s=sa.MAX_DURATION_S + 1)


# rollouts ----------------------------------------------------------------------------------------------------
def test_a_revision_that_crash_loops_is_rolled_back_and_the_old_one_serves(world):
    world.deployer.broken.add((world.digest, "1"))  # this build of version 1 no longer starts
    result = sa.roll_out_champion(broken_reference=True)
    assert (result["outcome"], result["before"], result["after"], result["revision"]) == ("rolled back", 1, 1, 2)
    assert result["diagnosis"]["cause"] == "model code"
    assert sa.rollouts_ended("rolled back", naming="keeps failing") is True
    assert sa.rollouts_ended("rolled back", causes=["data integrity"]) is False
    assert sa.rollouts_ended("served") is False


def test_a_fresh_model_copy_sets_the_local_deployers_copy_aside_and_puts_it_back(world):
    copy = world.h.settings.state_dir / "deployer" / "models" / MODEL / "1"
    copy.mkdir(parents=True)
    result = sa.roll_out_champion(fresh_model_copy=True)
    assert result["outcome"] == "served" and copy.is_dir() and not sa._drill().set_aside


@pytest.mark.parametrize("world", ["oci-local"], indirect=True)
def test_on_oke_every_rollout_is_a_fresh_download_so_nothing_is_set_aside(world):
    """Pods load their version from the registry when they start: the activity rolls out, refusing nothing."""
    result = sa.roll_out_champion(fresh_model_copy=True)
    assert (result["outcome"], result["revision"]) == ("served", 2)
    assert not (world.h.settings.state_dir / "deployer" / "models").exists()


@pytest.mark.parametrize("world", ["oci-local"], indirect=True)
def test_on_oke_waiting_for_a_warm_standby_waits_for_the_replicas_only(world):
    """Kubernetes keeps no warm standby (the kubelet restarts a dead container in place): none is awaited."""
    settled = sa.wait_for_deployment(timeout_s=2, standby=True, stable_s=0)
    assert (settled["ready"], settled["standby"]) == (2, "")


def test_rollouts_ended_holds_before_any_rollout_and_a_served_one_is_not_a_rollback(world):
    assert sa.rollouts_ended("rolled back") is True
    assert sa.roll_out_champion()["outcome"] == "served"
    assert sa.rollouts_ended("served") is True and sa.rollouts_ended("rolled back") is False


def test_wait_for_deployment_returns_once_settled(world):
    settled = sa.wait_for_deployment(timeout_s=1, stable_s=0)
    waited = settled.pop("waited_s")
    assert settled == {"revision": 1, "ready": 2, "desired": 2, "standby": ""} and 0 <= waited < 1
    with pytest.raises(TimeoutError, match="standby none"):
        sa.wait_for_deployment(timeout_s=0, standby=True, stable_s=0)


# model files -------------------------------------------------------------------------------------------------
def test_the_model_file_fault_targets_the_object_the_versions_source_leads_to(world):
    result = sa.inject_model_file_fault("corrupt", "model.skops", label="bad-file")
    assert result["target"] == f"object:lastmile-mlflow/{MODEL_KEY}"
    [fault] = world.faults.active()
    assert (fault.spec.kind, fault.spec.action, fault.spec.target) == ("data", "corrupt", result["target"])


def test_a_runs_source_is_found_too_and_a_missing_file_is_refused(world):
    version = world.models.register(MODEL, "runs:/r123/model")
    world.store.put("lastmile-mlflow", "1/r123/artifacts/model/model.skops", b"x")
    assert sa._model_file_object(world.h, version, "model.skops")[1] == "1/r123/artifacts/model/model.skops"
    with pytest.raises(Exception, match="0 objects"):
        sa._model_file_object(world.h, version, "nope.bin")


def test_verify_must_name_exactly_the_files_the_drills_faults_changed(world):
    assert sa.verify_names_faulted_files() is True  # no fault: verify must find nothing
    sa.inject_model_file_fault("corrupt", "model.skops")
    assert sa.verify_names_faulted_files() is False  # the fake's files did not change: verify names nothing
    world.models.files[MODEL, "1"]["model.skops"] = b"corrupted"
    assert sa.verify_names_faulted_files() is True


# observation -------------------------------------------------------------------------------------------------
def _replica_text(requests: int, seconds: float) -> str:
    latency = UpstreamLatency("r")
    for _ in range(requests):
        latency.observe("/invocations", 200, seconds)
    latency.observe("/nope", 404, 9.0)  # unmatched routes never count
    own = (f'lastmile_serving_requests_total{{route="/invocations",status="200"}} {requests}\n'
           f'lastmile_serving_request_duration_seconds_bucket{{route="/invocations",le="0.01"}} {requests}\n'
           f'lastmile_serving_request_duration_seconds_bucket{{route="/invocations",le="+Inf"}} {requests}\n')
    return own + latency.text()


def test_the_services_timing_of_a_replica_is_preferred_to_the_replicas_own(monkeypatch):
    slow, fast = _replica_text(100, 0.3), _replica_text(100, 0.004)
    scrapes = iter([(ReplicaMetrics("a", "ready", ""), ReplicaMetrics("b", "ready", "")),
                    (ReplicaMetrics("a", "ready", slow), ReplicaMetrics("b", "ready", fast))])
    monkeypatch.setattr("harness.pipeline.observation.time.sleep", lambda s: None)
    views, _ = observe(lambda: next(scrapes), window_s=0)
    by_name = {v.name: v for v in views}
    assert by_name["a"].latency_from == "service" and by_name["a"].p50_ms > 250
    assert by_name["b"].p50_ms < 10
    assert slowest(views).name == "a"
    assert parse(slow).hop_buckets[-1] == (float("inf"), 100.0)


def test_no_slowest_replica_without_traffic():
    assert slowest([]) is None


def test_is_replica_hit_by_reads_the_replica_the_fault_hit(world):
    assert sa.is_replica_hit_by("lastmile-r1-1", fault="slow-hop") is True  # no such fault yet
    sa.inject("network", "replica:lastmile-r1-2", "latency", {"latency": 300}, label="slow-hop")
    assert sa.is_replica_hit_by("lastmile-r1-2", fault="slow-hop") is True
    assert sa.is_replica_hit_by("lastmile-r1-1", fault="slow-hop") is False


def _sample(ts: float, **features: float) -> bytes:
    return json.dumps({"ts": ts, "features": features}).encode()


def test_sampled_rows_keep_the_requests_scored_in_the_window():
    store = MemoryObjectStore()
    store.ensure_bucket("p")
    store.put("p", "predictions/m/1/r1/1000000000000-000001.jsonl", _sample(1000.0, x=1.0))  # uploaded too early
    store.put("p", "predictions/m/1/r1/2000000001000-000002.jsonl",
              _sample(1999.0, x=2.0) + b"\n" + _sample(2000.5, x=3.0) + b"\n" + _sample(2003.0, x=4.0))
    assert sampled_rows(store, "p", "predictions/m/", 2000.0, 2002.0) == [{"x": 3.0}]
    assert sampled_rows(store, "p", "predictions/m/", 2000.0) == [{"x": 3.0}, {"x": 4.0}]


def test_the_drift_of_the_drills_traffic_names_the_shifted_feature_only(world):
    assert sa.drift_names_shifted_features() is True and sa.drifted_features() == []
    rows = sa._training_rows(world.h)
    now = time.time()
    lines = b"\n".join(_sample(now, **{**r, "petal_length": r["petal_length"] + 3}) for r in rows)
    world.store.put("lastmile-predictions", f"predictions/{MODEL}/1/r1/{int(now * 1000)}-000001.jsonl", lines)
    sa._drill().drifted.append((now - 1, now + 1, "petal_length"))
    assert sa.drifted_features() == ["petal_length"]
    assert sa.drift_names_shifted_features() is True
    sa._drill().drifted.append((now - 1, now + 1, "sepal_width"))  # claimed, but not in the traffic
    assert sa.drift_names_shifted_features() is False


# what is stored ----------------------------------------------------------------------------------------------
def test_nothing_lost_takes_stock_first_then_finds_what_went_missing(world, monkeypatch):
    monkeypatch.setattr(sa, "_catalog", lambda h: ["lastmile/serving"])
    assert sa.nothing_lost() is True
    world.store.put("lastmile-data", "new", b"more is fine")
    assert sa.nothing_lost() is True
    world.store.delete("lastmile-mlflow", MODEL_KEY)
    assert sa.nothing_lost() is False
    counted = sa.stored_inventory()
    assert (counted["model versions"], counted["build manifests"], counted["blobs"]) == (1, 1, 1)


# the deployer ------------------------------------------------------------------------------------------------
def test_a_replicas_last_words_are_the_error_of_its_last_json_line(tmp_path):
    log = tmp_path / "replica.log"
    log.write_text('serving: uvicorn on 127.0.0.1:1\n{"level": "error", "message": "model not loaded", '
                   '"error": "ModelLoadError: model.skops has sha256 1, not the recorded 2"}\n'
                   '{"level": "error", "message": "Application startup failed. Exiting."}\n')
    assert last_words(log) == "ModelLoadError: model.skops has sha256 1, not the recorded 2"
    log.write_text("Traceback (most recent call last):\nRuntimeError: boom\n\n")
    assert last_words(log) == "RuntimeError: boom"
    log.write_text('{"level": "info", "message": "request", "status": 200}\n')  # killed while it served
    assert last_words(log) == ""
    assert last_words(tmp_path / "missing.log") == ""


class _Deployment:
    def __init__(self, pods: list[Replica]):
        self.pods = pods
        self.current = None

    def routable(self) -> list[Replica]:
        return [p for p in self.pods if p.routable]


def test_a_request_waiting_on_a_replica_that_stops_being_ready_is_answered_by_another():
    frozen, healthy = Replica("frozen", 1, 1, state="ready"), Replica("healthy", 1, 2, state="ready")

    async def scenario() -> tuple[int, dict, bytes]:
        async def answer(request: httpx.Request) -> httpx.Response:
            if request.url.port == frozen.port:
                await asyncio.sleep(30)  # a paused process: the connection is open, no answer comes
            return httpx.Response(200, json={"predictions": [0]})

        proxy = ServiceProxy(_Deployment([frozen, healthy]))
        proxy._client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        proxy._turn = iter([0, 0])  # the frozen replica first
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        async def probe_fails() -> None:
            await asyncio.sleep(0.3)
            frozen.state = "unready"  # the controller's probe timed out

        scope = {"type": "http", "method": "POST", "path": "/invocations", "query_string": b"", "headers": []}
        began = time.monotonic()
        await asyncio.gather(proxy(scope, receive, send), probe_fails())
        await proxy.aclose()
        assert time.monotonic() - began < 5
        return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]

    status, headers, body = asyncio.run(scenario())
    assert (status, headers[b"x-lastmile-replica"], json.loads(body)) == (200, b"healthy", {"predictions": [0]})
    assert healthy.upstream.text().count('route="/invocations"') > 0
