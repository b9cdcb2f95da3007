import random

import pytest

from adapters.local.memory import MemoryObjectStore
from harness import drift
from harness.datasets import iris_csv
from harness.observe import Sample, delta, quantile, view


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
    import csv, io

    rows = [{k: float(v) for k, v in r.items() if k != "target"} for r in csv.DictReader(io.StringIO(training.decode()))]
    shifted = [{**r, "petal_length": r["petal_length"] + 3.0} for r in rows]
    result = {f.feature: f for f in drift.report(training, shifted)}
    assert result["petal_length"].drifted and result["petal_length"].psi > 1
    assert not result["sepal_width"].drifted and result["sepal_width"].psi < 0.01


def test_ship_sends_whole_new_lines_once(tmp_path):
    store = MemoryObjectStore()
    store.ensure_bucket("p")
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    log = outbox / "r1.jsonl"
    log.write_text('{"features": {"a": 1}}\n{"features": {"a": 2}}\n{"features": {"a"')
    assert len(drift.ship(outbox, store, "p")) == 1
    assert drift.samples(store, "p") == [{"a": 1}, {"a": 2}]
    assert drift.ship(outbox, store, "p") == []
    with open(log, "a") as f:
        f.write(': 3}}\n')
    drift.ship(outbox, store, "p")
    assert drift.samples(store, "p") == [{"a": 1}, {"a": 2}, {"a": 3}]
