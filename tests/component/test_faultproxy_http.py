"""HTTP fault rules: the proxy answers matching requests itself, forwards the others byte for byte, and counts both."""

from __future__ import annotations

import json
import socket
import time
import xml.etree.ElementTree as ET

import httpx
import pytest

from adapters.local.faultproxy.client import FaultProxyError
from adapters.local.faultproxy.testing import FaultProxyProcess, HttpRecorder, TcpServer, echo
from harness.infra.processes import free_port

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def faultproxy(tmp_path_factory):
    with FaultProxyProcess(free_port(), log=tmp_path_factory.mktemp("faultproxy") / "faultproxy.log") as process:
        yield process


@pytest.fixture(scope="module")
def recorder():
    with HttpRecorder() as server:
        yield server


@pytest.fixture
def api(faultproxy, recorder):
    recorder.requests.clear()
    with faultproxy.client() as client:
        for name in client.proxies():
            client.delete_proxy(name)
        yield client


@pytest.fixture
def web(api, recorder) -> httpx.Client:
    """An HTTP client whose requests go through the proxy ``web`` to the recorder."""
    port = api.create_proxy("web", recorder.address).port
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield client


def test_a_matching_request_is_answered_by_the_rule_and_not_forwarded(api, web, recorder):
    api.add_fault("web", "PUT", "/bucket/*", status=503, body="busy", headers={"Retry-After": "2"}, name="busy")
    answer = web.put("/bucket/key", content=b"x" * 10_000)

    assert (answer.status_code, answer.text) == (503, "busy")
    assert answer.headers["connection"] == "close" and answer.headers["retry-after"] == "2"
    assert recorder.requests == []
    stats = api.stats("web")
    assert stats.http_requests == 1 and (stats.faults["busy"].matched, stats.faults["busy"].injected) == (1, 1)


def test_requests_no_rule_matches_are_forwarded(api, web, recorder):
    api.add_fault("web", "PUT", "/bucket/*")
    answers = [web.get("/bucket/key"), web.put("/other/key", content=b"body")]

    assert [a.text for a in answers] == ["ok GET /bucket/key", "ok PUT /other/key"]
    assert [(r.method, r.path, r.body) for r in recorder.requests] == [("GET", "/bucket/key", b""),
                                                                       ("PUT", "/other/key", b"body")]


def test_a_forwarded_request_arrives_byte_for_byte(api):
    received = bytearray()

    def capture(conn: socket.socket) -> None:
        while not received.endswith(b"hello"):
            received.extend(conn.recv(4096))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    request = (b"POST /x?q=1 HTTP/1.1\r\nHost: h\r\nX-Odd-Case:   spaced  \r\nx-lower: a\r\n"
               b"Content-Length: 5\r\n\r\nhello")
    with TcpServer(capture) as server:
        port = api.create_proxy("raw", server.address).port
        api.add_fault("raw", "*", "/never/*")  # rules exist, so heads are held and checked
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            for piece in (request[:7], request[7:40], request[40:]):  # a head split across reads
                conn.sendall(piece)
                time.sleep(0.05)
            assert conn.recv(1024).endswith(b"ok")

    assert bytes(received) == request


def test_probability_one_half_injects_about_half(api, web, recorder):
    api.add_fault("web", "GET", "/coin", probability=0.5, name="coin")
    statuses = [web.get("/coin").status_code for _ in range(200)]
    faults = statuses.count(503)

    assert 60 <= faults <= 140, faults  # ±5.6 standard deviations
    assert statuses.count(200) == len(recorder.requests) == 200 - faults
    counted = api.stats("web").faults["coin"]
    assert (counted.matched, counted.injected) == (200, faults)


def chunks(count: int, size: int):
    for index in range(count):
        yield bytes([index % 256]) * size


def test_a_chunked_upload_is_consumed_before_the_answer(api, web, recorder):
    api.add_fault("web", "PUT", "/upload", status=503)
    answer = web.put("/upload", content=chunks(40, 16_384))

    assert answer.status_code == 503 and recorder.requests == []


def test_the_answer_waits_for_the_last_chunk(api, recorder):
    port = api.create_proxy("wait", recorder.address).port
    api.add_fault("wait", "PUT", "*", status=503)
    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
        conn.sendall(b"PUT /k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        with pytest.raises(TimeoutError):
            conn.recv(1024)  # the body is not over yet
        conn.sendall(b"3;ext=1\r\nabc\r\n0\r\nTrailer: t\r\n\r\n")
        conn.settimeout(5)
        assert conn.recv(1024).startswith(b"HTTP/1.1 503 ")
    assert recorder.requests == []


def test_a_chunked_upload_no_rule_matches_arrives_whole(api, web, recorder):
    api.add_fault("web", "PUT", "/upload", status=503)
    answer = web.put("/through", content=chunks(40, 16_384))

    assert answer.status_code == 200
    assert recorder.requests[0].body == b"".join(chunks(40, 16_384))


def test_expect_100_continue_is_answered_without_waiting_for_the_body(api, recorder):
    port = api.create_proxy("expect", recorder.address).port
    api.add_fault("expect", "PUT", "*", preset="s3-slowdown")
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        conn.sendall(b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
        assert conn.recv(1024).startswith(b"HTTP/1.1 503 Service Unavailable\r\n")


def test_a_connection_opened_before_the_rule_meets_it(api, web, recorder):
    assert web.get("/a").status_code == 200
    api.add_fault("web", "GET", "/b", status=500)

    assert web.get("/b").status_code == 500
    assert api.stats("web").connections_accepted == 1  # the same keep-alive connection
    assert [r.path for r in recorder.requests] == ["/a"]


def test_a_regex_path_sees_the_query(api, web):
    api.add_fault("web", "PUT", r"^/bucket/[^?]+\?partNumber=", status=503)

    assert web.put("/bucket/k?partNumber=1&uploadId=u", content=b"part").status_code == 503
    assert web.put("/bucket/k", content=b"whole").status_code == 200


def test_removed_rules_stop_applying(api, web):
    api.add_fault("web", "GET", "*", status=500, name="one")
    api.add_fault("web", "POST", "*", status=500, name="two")
    api.remove_fault("web", "one")
    assert [f.name for f in api.faults("web")] == ["two"]
    api.clear_faults("web")

    assert web.get("/x").status_code == 200 and web.post("/x").status_code == 200 and api.faults("web") == []


def test_a_rule_whose_default_name_holds_its_path_can_be_removed_by_that_name(api, web):
    rule = api.add_fault("web", "POST", "/20200831/logs/*", status=429)
    assert "/" in rule.name
    api.remove_fault("web", rule.name)
    assert api.faults("web") == [] and web.post("/20200831/logs/x").status_code == 200


def test_a_head_request_gets_no_body(api, web):
    api.add_fault("web", "HEAD", "*", status=503, body="not for HEAD")
    answer = web.head("/x")

    assert answer.status_code == 503 and answer.content == b"" and answer.headers["content-length"] == "12"


def test_a_stream_that_is_not_http_passes_untouched(api):
    with TcpServer(echo) as server:
        port = api.create_proxy("binary", server.address).port
        api.add_fault("binary", "*", "*", status=503)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"\x00\x01 not http\r\n\r\n")
            assert conn.recv(64) == b"\x00\x01 not http\r\n\r\n"


@pytest.mark.parametrize("preset, status, code", [
    ("s3-slowdown", 503, "SlowDown"),
    ("mlflow-internal-error", 500, "INTERNAL_ERROR"),
    ("registry-blob-upload-error", 500, "UNKNOWN"),
    ("deployer-unavailable", 503, None),
    ("replica-not-ready", 503, "NOT_READY"),
    ("oci-too-many-requests", 429, "TooManyRequests"),
])
def test_presets_answer_in_the_service_format(api, web, preset, status, code):
    api.add_fault("web", "*", "*", preset=preset)
    answer = web.post("/v2/anything/blobs/uploads/")

    assert answer.status_code == status
    if preset == "s3-slowdown":
        assert ET.fromstring(answer.content).findtext("Code") == code
        return
    body = answer.json()
    found = body.get("error_code") or body.get("code") or (body.get("errors") or [{}])[0].get("code")
    assert found == code and (code is not None or body == {"error": "no ready replica"})


def test_boto3_reads_the_s3_preset_as_slowdown(api, web):
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    api.add_fault("web", "PUT", "*", preset="s3-slowdown")
    s3 = boto3.client("s3", endpoint_url=str(web.base_url).rstrip("/"), region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test",
                      config=Config(retries={"max_attempts": 1, "mode": "standard"}, s3={"addressing_style": "path"}))
    with pytest.raises(ClientError) as refusal:
        s3.put_object(Bucket="models", Key="m.bin", Body=b"weights")

    assert refusal.value.response["Error"]["Code"] == "SlowDown"


@pytest.mark.parametrize("rule", [
    {"probability": 2}, {"path": "^(unclosed"}, {"preset": "nope"}, {"probabilty": 0.5}, {"status": 42},
    {"headers": {"X-Split": "a\r\nInjected: b"}}, {"method": "get it"},
])
def test_bad_rules_are_400(faultproxy, api, web, rule):
    answer = httpx.post(f"{faultproxy.url}/proxies/web/faults", json=rule)

    assert answer.status_code == 400 and answer.json()["status"] == 400 and api.faults("web") == []


def test_a_duplicate_rule_name_is_409_and_an_unknown_proxy_404(api, web):
    api.add_fault("web", name="once")
    with pytest.raises(FaultProxyError) as duplicate:
        api.add_fault("web", name="once")
    with pytest.raises(FaultProxyError) as unknown:
        api.add_fault("nowhere")

    assert duplicate.value.status == 409 and unknown.value.status == 404


def test_fault_rules_are_listed_with_their_resolved_fields(faultproxy, api, web):
    api.add_fault("web", "PUT", "/m/*", preset="mlflow-internal-error", probability=0.25, name="m")
    listed = httpx.get(f"{faultproxy.url}/proxies/web/faults").json()

    assert listed == [{"name": "m", "method": "PUT", "path": "/m/*", "probability": 0.25, "status": 500,
                       "body": json.dumps({"error_code": "INTERNAL_ERROR",
                                           "message": "Injected fault: the tracking server failed."}),
                       "content_type": "application/json", "headers": {}, "preset": "mlflow-internal-error"}]
