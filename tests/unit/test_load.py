"""harness.load's pure parts: scenarios from YAML, the payload mix, Locust's files read into figures, the gates."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from harness.domain.errors import ConfigError, UserError
from harness.load import payloads, results
from harness.load import scenario as scenarios
from harness.load.engine import check_target, sending_span

ROOT = Path(__file__).resolve().parents[2]
ROWS = [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
        {"sepal_length": 6.2, "sepal_width": 2.9, "petal_length": 4.3, "petal_width": 1.3}]


def _scenario(**fields) -> scenarios.Scenario:
    return scenarios.validate({"rate": 40, "duration_s": 10, "max_requests": 500, **fields}, "test.yaml")


# scenarios -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", scenarios.discover(ROOT / "scenarios" / "load"), ids=lambda p: p.stem)
def test_every_shipped_scenario_reads(path):
    found = scenarios.load(path)
    assert found.name == path.stem and found.duration_s > 0 and found.max_requests > 0


def test_a_rate_becomes_users_each_pacing_their_share():
    s = _scenario(rate=45)
    assert (s.mode, s.user_count, s.user_rps) == ("rate", 23, pytest.approx(45 / 23))
    assert _scenario(rate=200, per_user_rps=20).user_count == 10


def test_users_mode_runs_as_fast_as_answers_come_unless_paced():
    s = scenarios.validate({"users": 5, "duration_s": 10, "max_requests": 10}, "x")
    assert (s.mode, s.user_count, s.user_rps) == ("users", 5, None)


def test_a_scenario_needs_exactly_one_of_users_and_rate():
    with pytest.raises(ConfigError, match="exactly one of users"):
        scenarios.validate({"users": 5, "rate": 3, "duration_s": 10, "max_requests": 10}, "x.yaml")


def test_a_bad_field_is_one_line_naming_the_file_and_the_field():
    with pytest.raises(ConfigError) as caught:
        _scenario(payloads={"invalid_share": 0.9})
    assert str(caught.value).startswith("test.yaml: payloads.invalid_share: ") and "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"gates\.p98_ms: Extra inputs are not permitted"):
        _scenario(gates={"p98_ms": 3})
    with pytest.raises(ConfigError, match="duration_s: Field required"):
        scenarios.validate({"rate": 1, "max_requests": 1}, "x.yaml")


def test_a_file_that_is_not_yaml_names_its_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rate: 3\nduration_s: [10\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: line \d+ not valid YAML"):
        scenarios.load(bad)


def test_bounds_from_the_command_line_are_validated_again():
    s = _scenario().with_bounds(duration_s=3, max_requests=20, rate=7)
    assert (s.duration_s, s.max_requests, s.rate) == (3, 20, 7)
    with pytest.raises(ConfigError, match="duration_s"):
        _scenario().with_bounds(duration_s=scenarios.MAX_DURATION_S + 1)


def test_an_unknown_scenario_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"no load scenario 'nope'.*smoke"):
        scenarios.find("nope", ROOT / "scenarios" / "load")


# payloads --------------------------------------------------------------------------------------------------------
def test_the_mix_weights_formats_batches_and_the_invalid_share():
    mix = scenarios.Payloads(formats={"csv": 1, "predict": 3}, batch_share=0.25, batch_size=4, invalid_share=0.1)
    kinds = {k.name: k for k in payloads.kinds(mix, ROWS)}
    assert sum(k.weight for k in kinds.values()) == pytest.approx(1.0)
    assert kinds["predict x1"].weight == pytest.approx(0.9 * 0.75 * 0.75)
    assert kinds["csv x4"].weight == pytest.approx(0.9 * 0.25 * 0.25)
    invalid = [k for k in kinds.values() if k.expect == "4xx"]
    assert sum(k.weight for k in invalid) == pytest.approx(0.1) and len(invalid) == 4
    assert all(k.name.startswith(payloads.INVALID_PREFIX) for k in invalid)


def test_each_format_encodes_the_rows_as_the_endpoint_reads_them():
    assert json.loads(payloads.encode("dataframe_split", ROWS)[2])["dataframe_split"]["data"][1][0] == 6.2
    assert json.loads(payloads.encode("instances", ROWS)[2])["instances"] == ROWS
    path, content_type, body = payloads.encode("csv", ROWS)
    assert (path, content_type) == ("/invocations", "text/csv")
    assert list(csv.DictReader(io.StringIO(body)))[1]["petal_width"] == "1.3"
    path, _, body = payloads.encode("predict", ROWS[:1])
    assert (path, json.loads(body)) == ("/predict", {"rows": ROWS[:1]})


def test_a_batch_carries_batch_size_rows():
    kinds = payloads.kinds(scenarios.Payloads(formats={"dataframe_records": 1}, batch_share=1.0, batch_size=7), ROWS)
    assert [k.name for k in kinds] == ["dataframe_records x7"]
    assert all(len(json.loads(b)["dataframe_records"]) == 7 for b in kinds[0].bodies)


def test_training_csv_rows_drop_the_target():
    assert payloads.rows_of_csv(b"a,b,target\n1,2,0\n") == [{"a": 1.0, "b": 2.0}]


# Locust's files ----------------------------------------------------------------------------------------------------
HISTORY = [
    {"Timestamp": "100", "User Count": "0", "Name": "Aggregated", "Total Request Count": "0",
     "Total Failure Count": "0", "50%": "N/A", "95%": "N/A", "99%": "N/A"},
    {"Timestamp": "101", "User Count": "4", "Name": "dataframe_records x1", "Total Request Count": "9"},
    {"Timestamp": "101", "User Count": "4", "Name": "Aggregated", "Total Request Count": "40",
     "Total Failure Count": "0", "50%": "3", "95%": "8", "99%": "9"},
    {"Timestamp": "103", "User Count": "4", "Name": "Aggregated", "Total Request Count": "120",
     "Total Failure Count": "4", "50%": "3", "95%": "20", "99%": "40"},
]


def test_history_rates_come_from_the_cumulative_counts():
    points = results.history(HISTORY, started_at=99.5)
    assert [p["t"] for p in points] == [0.5, 1.5, 3.5]
    assert (points[2]["rps"], points[2]["failures_per_s"], points[2]["error_ratio"]) == (40.0, 2.0, 0.05)
    assert points[0]["p99_ms"] is None and points[2]["p99_ms"] == 40.0 and points[1]["users"] == 4
    assert sending_span(points) == 3.0


FINAL = [{"name": "dataframe_records x1", "method": "POST", "num_requests": 100, "num_failures": 1,
          "response_times": {"2": 90, "10": 9, "50": 1}, "max_response_time": 51.5, "start_time": 10.0,
          "last_request_timestamp": 20.0},
         {"name": "invalid not JSON", "method": "POST", "num_requests": 10, "num_failures": 2,
          "response_times": {"1": 10}, "max_response_time": 1.2, "start_time": 10.5, "last_request_timestamp": 19.0}]


def test_final_statistics_give_totals_percentiles_and_intended_4xx():
    totals, kinds = results.from_final(FINAL, elapsed_s=10.0)
    assert totals == {"requests": 110, "failures": 3, "intended_4xx": 8, "error_ratio": round(3 / 110, 6),
                      "rps": 11.0, "p50_ms": 2.0, "p95_ms": 10.0, "p99_ms": 10.0, "max_ms": 51.5}
    assert kinds[0]["p99_ms"] == 10.0 and kinds[0]["name"] == "dataframe_records x1"
    assert results.percentile({}, 0.5) is None


# gates -----------------------------------------------------------------------------------------------------------
def test_each_failed_gate_names_itself_with_its_figure_and_limit():
    gates = scenarios.Gates(p99_ms=25, error_ratio=0.01, min_rps=50)
    judged = {g["name"]: g for g in results.judge(gates, {"requests": 10, "p99_ms": 41.2, "error_ratio": 0.0,
                                                          "rps": 40.0})}
    assert judged["p99_ms"]["message"] == "gate p99_ms: 41.2 ms > 25 ms" and not judged["p99_ms"]["passed"]
    assert judged["error_ratio"]["passed"] and judged["min_rps"]["message"] == "gate min_rps: 40 req/s < 50 req/s"
    assert set(judged) == {"p99_ms", "error_ratio", "min_rps"}


def test_a_gate_without_a_figure_fails():
    judged = results.judge(scenarios.Gates(p95_ms=10), {"requests": 0, "p95_ms": None})
    assert judged[0]["passed"] is False and "no figure" in judged[0]["message"]


# targets ---------------------------------------------------------------------------------------------------------
def test_load_goes_to_loopback_unless_remote_is_allowed():
    assert check_target("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    with pytest.raises(UserError, match="not on loopback") as caught:
        check_target("http://example.com")
    assert caught.value.exit_code == 2
    assert check_target("https://example.com", allow_remote=True) == "https://example.com"
    with pytest.raises(UserError, match="http:// or https://"):
        check_target("ftp://127.0.0.1")


def test_a_scenario_under_the_working_directory_is_named_relative_to_it(tmp_path, monkeypatch):
    folder = tmp_path / "scenarios" / "load"
    folder.mkdir(parents=True)
    (folder / "quick.yaml").write_text("rate: 5\nduration_s: 2\nmax_requests: 10\n")
    monkeypatch.chdir(tmp_path)
    assert scenarios.load((folder / "quick.yaml").resolve()).file == "scenarios/load/quick.yaml"
