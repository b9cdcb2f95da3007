"""harness.load.openloop against a tiny HTTP server on loopback that answers 200, 500 or slowly, on demand."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.infra.processes import free_port
from harness.load.openloop import run_load

ROOT = Path(__file__).resolve().parents[2]
BODY = b'{"dataframe_records": [{"x": 1.0}]}'


@dataclass
class Behaviour:
    fail_every: int = 0  # every n-th request answers 500; 0 = never
    drop_every: int = 0  # every n-th request gets its connection closed, unanswered
    delay_s: float = 0.0
    chunked: bool = False  # answer with Transfer-Encoding: chunked rather than Content-Length
    close: bool = False  # answer with Connection: close
    received: int = 0


class _QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that timed out and left is expected
            super().handle_error(request, client_address)


class TinyServer:
    """A keep-alive HTTP/1.1 server in a thread; ``behaviour`` decides each answer."""

    def __init__(self) -> None:
        self.behaviour = behaviour = Behaviour()
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                with lock:
                    behaviour.received += 1
                    n = behaviour.received
                time.sleep(behaviour.delay_s)
                if behaviour.drop_every and n % behaviour.drop_every == 0:
                    self.close_connection = True
                    return
                status = 500 if behaviour.fail_every and n % behaviour.fail_every == 0 else 200
                payload = b'{"predictions": [0]}'
                self.send_response(status)
                self.send_header("content-type", "application/json")
                if behaviour.close:
                    self.send_header("connection", "close")
                    self.close_connection = True
                if behaviour.chunked:
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    half = len(payload) // 2
                    for chunk in (payload[:half], payload[half:]):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args) -> None:
                pass

        self.httpd = _QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/invocations"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> TinyServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server():
    with TinyServer() as s:
        yield s


def test_the_offered_rate_is_kept(server):
    run = asyncio.run(run_load(server.url, rate=50, duration_s=2.0, body=BODY, timeout_s=2.0))
    summary = run.summary()
    assert summary["sent"] == 100 and summary["ok"] == 100 and summary["failed"] == 0
    assert 47 <= summary["achieved_rps"] <= 53
    assert [row["sent"] for row in summary["per_second"]] == [50, 50]
    assert server.behaviour.received == 100
    assert 0 < summary["latency_ms"]["p50"] <= summary["latency_ms"]["p95"] <= summary["latency_ms"]["p99"]


def test_slow_answers_do_not_lower_the_offered_rate(server):
    server.behaviour.delay_s = 0.5
    began = time.monotonic()
    run = asyncio.run(run_load(server.url, rate=40, duration_s=1.5, body=BODY, timeout_s=2.0))
    summary = run.summary()
    assert summary["sent"] == 60 and summary["ok"] == 60
    assert summary["latency_ms"]["p50"] >= 500
    assert time.monotonic() - began < 1.5 + 0.5 + 1.0  # the last ones answer about 0.5 s after the last send


def test_non_2xx_answers_are_failures_with_their_kind_and_time(server):
    server.behaviour.fail_every = 5
    summary = asyncio.run(run_load(server.url, rate=50, duration_s=1.0, body=BODY, timeout_s=2.0)).summary()
    assert summary["sent"] == 50 and summary["failed"] == 10 and summary["ok"] == 40
    assert summary["error_kinds"] == {"http_500": 10}
    assert len(summary["failures"]) == 10
    assert all(0 <= f["t"] < 1.0 and f["kind"] == "http_500" for f in summary["failures"])
    assert sum(row["failed"] for row in summary["per_second"]) == 10


@pytest.mark.parametrize("answer", ["chunked", "close"])
def test_chunked_and_connection_close_answers_are_read_whole(server, answer):
    setattr(server.behaviour, answer, True)
    summary = asyncio.run(run_load(server.url, rate=50, duration_s=1.0, body=BODY, timeout_s=2.0)).summary()
    assert summary["sent"] == summary["ok"] == 50 and summary["failed"] == 0


def test_a_connection_closed_unanswered_is_a_failure(server):
    server.behaviour.drop_every = 10
    summary = asyncio.run(run_load(server.url, rate=50, duration_s=1.0, body=BODY, timeout_s=2.0)).summary()
    assert summary["sent"] == 50 and summary["failed"] == 5 and summary["error_kinds"] == {"Disconnected": 5}


def test_transport_errors_are_failures_named_by_their_kind():
    url = f"http://127.0.0.1:{free_port()}/invocations"  # nothing listens there
    summary = asyncio.run(run_load(url, rate=20, duration_s=0.5, body=BODY, timeout_s=1.0)).summary()
    assert summary["sent"] == 10 and summary["ok"] == 0 and summary["failed"] == 10
    assert summary["error_kinds"] == {"ConnectError": 10}


def test_sigterm_stops_the_process_and_still_writes_the_results(server, tmp_path):
    out = tmp_path / "results.json"
    body = tmp_path / "body.json"
    body.write_bytes(BODY)
    proc = subprocess.Popen([sys.executable, "-m", "harness.load.openloop", "--url", server.url, "--rate", "40",
                             "--duration", "30", "--out", str(out), "--body-file", str(body), "--timeout", "2"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while server.behaviour.received < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.behaviour.received >= 40, proc.stderr.read1().decode() if proc.poll() is not None else ""
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    summary = json.loads(out.read_text())
    assert summary["stopped_by"] == "SIGTERM"
    assert 40 <= summary["sent"] < 40 * 30 and summary["ok"] == summary["sent"] and summary["failed"] == 0
    assert summary["elapsed_s"] < 15  # a stop that does not come would run the full 30 s


def test_help_describes_every_option():
    result = subprocess.run([sys.executable, "-m", "harness.load.openloop", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0
    for option in ("--url", "--rate", "--duration", "--out", "--body-file", "--timeout"):
        assert option in result.stdout


def test_a_nonsense_rate_is_refused_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "harness.load.openloop", "--url", "http://127.0.0.1:9/x", "--rate",
                             "0", "--duration", "1", "--out", str(tmp_path / "r.json")], cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "--rate must be in" in result.stderr
    assert not (tmp_path / "r.json").exists()


def test_an_answer_later_than_the_timeout_is_a_failure(server, budget):
    server.behaviour.delay_s = 1.0
    began = time.monotonic()
    summary = asyncio.run(run_load(server.url, rate=20, duration_s=0.5, body=BODY, timeout_s=0.3)).summary()
    assert summary["sent"] == 10 and summary["ok"] == 0 and summary["failed"] == 10
    assert set(summary["error_kinds"]) <= {"Timeout", "ReadTimeout"}
    budget("a load run whose answers all time out", time.monotonic() - began, 0.5 + 0.3 + 1.0)
