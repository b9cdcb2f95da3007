import random

import pytest

from harness.domain.records import ReplicaMetrics
from harness.pipeline import drift
from harness.pipeline.datasets import iris_csv
from harness.pipeline.observation import Sample, delta, observe, quantile, view
from tests.fakes import MemoryObjectStore


def test_quantile_interpolates_inside_the_bucket():
    buckets = ((0.001, 0.0), (0.005, 50.0), (0.01, 100.0), (float("inf"), 100.0))
    assert quantile(buckets, 0.5) == pytest.approx(0.005)
    assert quantile(buckets, 0.75) == pytest.approx(0.0075)
    assert quantile(((0.01, 0.0), (float("inf"), 0.0)), 0.5) is None


def test_window_rate_and_error_rate():
    before = Sample(100, 1, ((0.01, 100.0), (float("inf"), 100.0)), "3")
    after = Sample(300, 3, ((0.01, 290.0), (float("inf"), 300.0)), "3")
    v = view("r1", "ready", delta(before, after), 2.0)
    assert (v.rate, v.error_rate, v.version) == (100.0, 0.01, "3")
    assert v.p50_ms == pytest.approx(10 * 100 / 190, rel=1e-6)


def test_psi_zero_for_same_distribution_and_large_for_a_shift():
    rng = random.Random(7)
    base = [rng.gauss(0, 1) for _ in range(2000)]
    same = [rng.gauss(0, 1) for _ in range(2000)]
    shifted = [rng.gauss(1.5, 1) for _ in range(2000)]
    assert drift.psi(base, same) < 0.05
    assert drift.psi(base, shifted) > 0.5


def test_report_names_the_drifted_feature():
    training = iris_csv()
    import csv
    import io

    rows = [{k: float(v) for k, v in r.items() if k != "target"} for r in csv.DictReader(io.StringIO(training.decode()))]
    shifted = [{**r, "petal_length": r["petal_length"] + 3.0} for r in rows]
    result = {f.feature: f for f in drift.report(training, shifted)}
    assert result["petal_length"].drifted and result["petal_length"].psi > 1
    assert not result["sepal_width"].drifted and result["sepal_width"].psi < 0.01


def test_samples_are_read_from_every_object_under_the_prefix():
    store = MemoryObjectStore()
    store.ensure_bucket("p")
    store.put("p", "predictions/m/1/r1/0001.jsonl", b'{"features": {"a": 1}}\n{"features": {"a": 2}}\n')
    store.put("p", "predictions/m/2/r1/0001.jsonl", b'{"features": {"a": 3}}\n')
    store.put("p", "elsewhere/x.jsonl", b'{"features": {"a": 9}}\n')
    assert drift.samples(store, "p") == [{"a": 1}, {"a": 2}, {"a": 3}]
    assert drift.samples(store, "p", "predictions/m/2/") == [{"a": 3}]


def _exposition(requests: int, errors: int, version: str = "3") -> str:
    return (f'lastmile_serving_requests_total{{route="/invocations",status="200"}} {requests - errors}\n'
            f'lastmile_serving_requests_total{{route="/invocations",status="503"}} {errors}\n'
            f'lastmile_serving_request_duration_seconds_bucket{{route="/invocations",le="0.01"}} {requests}\n'
            f'lastmile_serving_request_duration_seconds_bucket{{route="/invocations",le="+Inf"}} {requests}\n'
            f'lastmile_serving_model_info{{model_version="{version}"}} 1\n')


def test_observe_reads_replicas_through_the_scrape_it_is_given(monkeypatch):
    scrapes = iter([
        (ReplicaMetrics("r1", "ready", _exposition(100, 0)), ReplicaMetrics("r2", "ready", None)),
        (ReplicaMetrics("r1", "ready", _exposition(300, 2)), ReplicaMetrics("r2", "ready", None)),
    ])
    monkeypatch.setattr("harness.pipeline.observation.time.sleep", lambda s: None)
    views, total = observe(lambda: next(scrapes), window_s=0)
    by_name = {v.name: v for v in views}
    assert by_name["r1"].version == "3" and by_name["r1"].error_rate == pytest.approx(0.01)
    assert by_name["r2"].health == "unreachable"
    assert total.version == "3" and total.health == "1/2 ready"
