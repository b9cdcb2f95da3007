"""``lastmile load run`` and the background API against a tiny endpoint-like HTTP server on loopback: 2xx for rows,
4xx for what the endpoint refuses (so intended invalid requests are judged), slow on demand."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.infra.processes import group_members
from harness.load import background

ROOT = Path(__file__).resolve().parents[2]
LASTMILE = [sys.executable, "-m", "harness.cli"]
ROWS = [{"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class Endpoint:
    """Answers /invocations and /predict as the serving app would, 4xx for refused bodies; ``delay_s`` slows it."""

    def __init__(self) -> None:
        self.delay_s = 0.0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                time.sleep(owner.delay_s)
                status = _status(self.headers.get("content-type", ""), body)
                answer = b'{"predictions": [0]}'
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _status(content_type: str, body: bytes) -> int:
    if content_type not in ("application/json", "text/csv"):
        return 415
    if content_type == "text/csv":
        return 200
    try:
        document = json.loads(body)
    except ValueError:
        return 400
    rows = document.get("dataframe_records") or document.get("rows") or []
    bad = any(len(r) != 4 or not all(isinstance(v, float | int) for v in r.values()) for r in rows)
    return 400 if bad else 200


@pytest.fixture
def endpoint():
    server = Endpoint()
    yield server
    server.close()


@pytest.fixture
def project(tmp_path) -> Path:
    """A folder with a lastmile.yaml of its own, so runs land in its .lastmile/loads."""
    (tmp_path / "lastmile.yaml").write_text((ROOT / "lastmile.yaml").read_text())
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios")
    return tmp_path


def _run(project: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LASTMILE_STATE_DIR": str(project / ".lastmile"), "COLUMNS": "200"}
    return subprocess.run([*LASTMILE, "load", "run", *args], cwd=project, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _result(project: Path) -> dict:
    (found,) = (project / ".lastmile" / "loads").glob("*/result.json")
    return json.loads(found.read_text())


def test_smoke_passes_its_gates_and_writes_the_results(endpoint, project):
    done = _run(project, "smoke", "--target", endpoint.url, "--duration", "4", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result == _result(project)
    assert result["passed"] and result["stopped_by"] == "duration" and result["workers"] == 0
    assert result["totals"]["requests"] > 30 and result["totals"]["failures"] == 0
    assert result["totals"]["intended_4xx"] == sum(k["requests"] for k in result["by_request"]
                                                   if k["name"].startswith("invalid "))
    assert {"csv x1", "predict x5", "dataframe_split x1"} <= {k["name"] for k in result["by_request"]}
    assert result["history"] and {"t", "rps", "error_ratio", "p99_ms", "users"} <= set(result["history"][-1])
    folder = project / ".lastmile" / "loads" / result["id"]
    assert (folder / result["artifacts"]["locust_html"]).is_file()
    assert (folder / f"{result['artifacts']['locust_csv_prefix']}_stats_history.csv").is_file()
    assert result["served_by"] is None and result["replicas"] == []


def test_two_workers_share_the_load_and_stop_with_the_master(endpoint, project):
    done = _run(project, "smoke", "--target", endpoint.url, "--duration", "5", "--workers", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    result = _result(project)
    assert result["workers"] == 2 and result["totals"]["requests"] > 20, result["totals"]
    folder = project / ".lastmile" / "loads" / result["id"]
    assert (folder / "worker-1.log").exists() and (folder / "worker-2.log").exists()


def test_a_failed_gate_exits_1_and_names_itself(endpoint, project):
    endpoint.delay_s = 0.05
    scenario = project / "slow.yaml"
    scenario.write_text("rate: 10\nduration_s: 3\nmax_requests: 100\ngates: {p50_ms: 10, error_ratio: 0.5}\n")
    done = _run(project, str(scenario), "--target", endpoint.url)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "gate p50_ms: " in done.stderr and "ms > 10 ms" in done.stderr
    assert [g["passed"] for g in _result(project)["gates"]] == [False, True]


def test_max_requests_stops_the_run(endpoint, project):
    done = _run(project, "smoke", "--target", endpoint.url, "--duration", "30", "--max-requests", "25")
    result = _result(project)
    assert result["stopped_by"] == "max_requests", done.stderr[-2000:]
    assert 25 <= result["totals"]["requests"] < 60 and result["elapsed_s"] < 20


def test_a_remote_target_is_refused_without_allow_remote(project):
    done = _run(project, "smoke", "--target", "http://192.0.2.1:8080")
    assert done.returncode == 2 and "not on loopback" in done.stderr and "--allow-remote" in done.stderr


def test_sigterm_stops_locust_and_still_writes_the_results(endpoint, project):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LASTMILE_STATE_DIR": str(project / ".lastmile")}
    proc = subprocess.Popen([*LASTMILE, "load", "run", "smoke", "--target", endpoint.url, "--duration", "60"],
                            cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    plan = None
    deadline = time.monotonic() + 30
    while plan is None and time.monotonic() < deadline:
        time.sleep(0.5)
        plan = next((project / ".lastmile" / "loads").glob("*/locust_stats_history.csv"), None) \
            if (project / ".lastmile" / "loads").exists() else None
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=40)
    result = _result(project)
    assert result["stopped_by"] == "signal" and result["totals"]["requests"] > 0, stderr[-2000:]
    assert (project / ".lastmile" / "loads" / result["id"] / "locust.html").is_file()
    assert "interrupted" in stderr


def test_background_load_reads_live_and_final_figures_and_leaves_no_process(endpoint, tmp_path):
    load = background.start(30, endpoint.url, tmp_path, ROWS, duration_s=30)
    try:
        assert load.wait_started(), (load.folder / "locust.log").read_text()[-2000:]
        time.sleep(2.5)
        live = load.live()
        assert live["requests"] > 0 and live["failures"] == 0 and live["p99_ms"] is not None, live
    finally:
        result = load.stop()
    assert result["stopped_by"] == "signal" and result["totals"]["requests"] >= live["requests"]
    assert json.loads((load.folder / "result.json").read_text())["id"] == result["id"]
    assert not any(group_members(pid) for pid in load.pids)
