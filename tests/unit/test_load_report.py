"""lastmile's HTML load report (harness.load.report): what it shows, what it escapes, and that it fetches nothing."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from harness.load import report
from harness.load.charts import nice_ticks, runs
from tests.load_results import synthetic_result


class Page(HTMLParser):
    """The parts of a rendered report the tests look at: elements' attributes, scripts, table rows' text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.rows: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag == "table":
            self._table = dict(attrs).get("class") or ""
        elif tag == "tr" and self._table is not None:
            self.rows.setdefault(self._table, []).append([])
        elif tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None and self._table is not None:
            self.rows[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def charts(self) -> dict[str, int]:
        return {a["data-chart"] or "": int(a["data-points"] or 0) for _, a in self.elements if "data-chart" in a}

    def body_rows(self, table: str) -> list[list[str]]:
        return [row for row in self.rows.get(table, []) if row]  # the header row has th cells only


@pytest.fixture
def result():
    return synthetic_result(60)


def test_every_chart_carries_the_points_it_draws(result):
    html = report.render(result)
    charts = Page(html).charts()
    assert charts == {"throughput": 2 * 61, "latency": 3 * 60, "error_ratio": 61, "users": 61}  # t=0 has no latency
    latency = re.search(r'<svg[^>]*data-chart="latency".*?</svg>', html, re.S)
    assert latency and latency.group(0).count('class="series"') == 3


def test_the_error_ratio_gate_is_drawn_as_a_limit_on_its_chart(result):
    limits = [a.get("data-limit") for tag, a in Page(report.render(result)).elements if a.get("class") == "limit"]
    assert sorted(limits, key=str) == ["1", "40"]  # error_ratio 0.01 as a percentage; the p95_ms gate in ms


def test_the_gates_table_shows_each_gate_passing_or_failing(result):
    rows = Page(report.render(result)).body_rows("gates")
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("error_ratio", "0.01", "0.0056", "pass"), ("p95_ms", "40", "46", "fail"), ("min_rps", "50", "98", "pass")]
    assert rows[1][4] == "p95 latency 46 ms is over 40 ms"


@pytest.mark.parametrize(("passed", "verdict"), [(True, "PASS"), (False, "FAIL"), (None, "NO VERDICT")])
def test_the_banner_says_whether_the_run_passed(result, passed, verdict):
    result["passed"] = passed
    assert re.search(rf'class="verdict [a-z]+"[^>]*>{verdict}<small>2 of 3 gates passed', report.render(result))


def test_the_model_that_served_and_the_replicas_view_are_shown(result):
    html = report.render(result)
    for shown in ("iris-classifier", "<dd>7</dd>", "<dd>3</dd>", "iris-classifier-3-a1b2, iris-classifier-3-c3d4"):
        assert shown in html
    replicas = Page(html).body_rows("replicas")
    assert replicas[0] == ["iris-classifier-3-a1b2", "lastmile_predictions_total", "120", "3,061", "+2,941"]
    assert replicas[1] == ["iris-classifier-3-a1b2", "process_resident_memory_bytes", "143.1 MiB", "154.5 MiB",
                           "+11.4 MiB"]  # bytes read as MiB
    assert [r[0] for r in Page(html).body_rows("by-request")] == ["predict", "predict (bad input)", "health"]


def test_locusts_reports_are_linked_relative_to_the_report(result):
    hrefs = [a["href"] for tag, a in Page(report.render(result)).elements if tag == "a"]
    assert hrefs == ["locust.html", "locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv"]


def test_the_report_references_nothing_on_the_network(result):
    result["artifacts"]["locust_html"] = "https://example.com/locust.html"
    html = report.render(result)
    references = [v for _, a in Page(html).elements for k, v in a.items() if k in ("src", "href", "srcset", "data")]
    assert not [r for r in references if r and re.match(r"(?i)\s*(https?:)?//|javascript:", r)], references
    assert not re.search(r"(?i)@import|url\(|<script|<link|<iframe", html)
    assert "https://example.com/locust.html" in html  # shown as text, not followed


def test_strings_from_the_result_are_escaped_not_markup(result):
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    result["scenario"]["name"] = hostile
    result["target"] = 'http://h/"><script>1</script>'
    result["gates"][0]["message"] = hostile
    result["gates"][0]["name"] = "error_ratio <u>"
    result["by_request"][0]["name"] = hostile
    result["replicas"][0]["name"] = hostile
    result["served_by"]["model_name"] = hostile
    result["artifacts"]["locust_html"] = 'x"><script>1</script>.html'
    html = report.render(result)
    page = Page(html)
    assert not [tag for tag, _ in page.elements if tag in ("script", "img", "u")]
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert page.body_rows("gates")[0][4] == hostile  # what the user wrote, shown as text


def test_an_empty_result_renders_no_data_placeholders():
    html = report.render({})
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert Page(html).charts() == {"throughput": 0, "latency": 0, "error_ratio": 0, "users": 0}
    for placeholder in ("no data over time", "no gates defined", "did not record which model served it"):
        assert placeholder in html
    assert "NO VERDICT" in html


def test_gaps_and_odd_values_are_tolerated(result):
    for row in result["history"][10:20]:
        row["p50_ms"] = row["p95_ms"] = row["p99_ms"] = None
    result["history"][30]["rps"] = float("nan")
    result["history"].append({"t": None, "rps": "fast"})  # a row without a time is skipped
    result.update(served_by=None, replicas=[{"name": "r", "start": {"m": "up"}, "end": {}}], gates="oops",
                  totals={"p50_ms": None}, started_at="yesterday", extra_field={"kept": True})
    result["scenario"] = {"name": "rate run", "mode": "rate", "rate": 20.0}
    html = report.render(result)
    charts = Page(html).charts()
    assert charts["latency"] == 3 * 50 and charts["throughput"] == 2 * 61 - 1
    assert re.search(r'<svg[^>]*data-chart="latency".*?</svg>', html, re.S).group(0).count('class="series"') == 6
    assert "20 requests/s (constant rate)" in html and "no gates defined" in html
    assert Page(html).body_rows("replicas") == [["r", "m", "up", "no data", "no data"]]


def test_a_series_splits_at_its_gaps_and_ticks_are_round_numbers():
    assert runs([(0, 1.0), (1, None), (2, 2.0), (3, 3.0), (4, float("nan"))]) == [[(0, 1.0)], [(2, 2.0), (3, 3.0)]]
    assert nice_ticks(0, 60, 6) == [0, 20, 40, 60]
    assert nice_ticks(0, 0.063, 5) == [0, 0.02, 0.04, 0.06, 0.08]


def test_a_clean_run_has_a_readable_error_axis(result):
    for row in result["history"]:
        row["error_ratio"] = 0.0
    result["gates"] = []
    svg = re.search(r'<svg[^>]*data-chart="error_ratio".*?</svg>', report.render(result), re.S).group(0)
    assert re.findall(r'class="tick"[^>]*text-anchor="end">([^<]*)<', svg) == ["0", "0.25", "0.5", "0.75", "1"]


def test_the_command_line_re_renders_a_kept_result(result, tmp_path, capsys):
    source = tmp_path / "result.json"
    source.write_text(json.dumps(result))
    assert report.main([str(source)]) == 0
    assert "<h1>smoke</h1>" in (tmp_path / "report.html").read_text()
    assert report.main([str(source), "-o", str(tmp_path / "other.html")]) == 0
    assert (tmp_path / "other.html").read_text() == (tmp_path / "report.html").read_text()


def test_the_command_line_names_an_unreadable_result_in_one_line(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(tmp_path / "bad.json")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "cannot read" in err and "bad.json" in err and err.count("\n") == 1
