"""The fault proxy's Toxiproxy-compatible API, driven by Toxiproxy's own Python client (toxiproxy-python) where it
can be, and by plain HTTP to see status codes and error bodies."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
import toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from adapters.local.faultproxy.testing import FaultProxyProcess, TcpServer, echo
from harness.infra.processes import free_port

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def faultproxy(tmp_path_factory):
    with FaultProxyProcess(free_port(), log=tmp_path_factory.mktemp("faultproxy") / "faultproxy.log") as process:
        yield process


@pytest.fixture
def server(faultproxy):
    """Toxiproxy's client pointed at the fault proxy, with no proxy left from another test."""
    toxi = toxiproxy.Toxiproxy()
    toxi.update_api_consumer("127.0.0.1", faultproxy.port)
    toxi.destroy_all()
    return toxi


@pytest.fixture(scope="module")
def upstream():
    with TcpServer(echo) as tcp:
        yield tcp.address


def round_trip(port: int, payload: bytes = b"ping") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(payload)
        return conn.recv(1024)


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_version_is_toxiproxy_shaped(server):
    assert server.running()
    assert json.loads(server.version())["version"].startswith("2.")


def test_create_picks_a_port_forwards_and_destroy_stops_it(server, upstream):
    proxy = server.create(upstream=upstream, name="echo", listen="127.0.0.1:0")
    port = int(proxy.listen.rpartition(":")[2])

    assert port != 0 and set(server.proxies()) == {"echo"}
    assert round_trip(port) == b"ping"
    server.destroy(proxy)
    assert server.proxies() == {} and refused(port)


def test_proxy_json_has_toxiproxy_fields(faultproxy, server, upstream):
    server.create(upstream=upstream, name="shape")
    shown = httpx.get(f"{faultproxy.url}/proxies/shape").json()

    assert set(shown) == {"name", "listen", "upstream", "enabled", "toxics"}
    assert shown["enabled"] is True and shown["toxics"] == []


def test_a_duplicate_name_is_409(server, upstream):
    server.create(upstream=upstream, name="twice")
    with pytest.raises(ProxyExists) as refusal:  # sent past the client's own check, to see the server's answer
        APIConsumer.post("/proxies", json={"name": "twice", "upstream": upstream})
    assert json.loads(refusal.value.args[0]) == {"error": "proxy already exists", "status": 409}


def test_unknown_proxy_and_toxic_are_404(faultproxy, server, upstream):
    with pytest.raises(NotFound) as refusal:
        APIConsumer.get("/proxies/nowhere")
    assert json.loads(refusal.value.args[0]) == {"error": "proxy not found", "status": 404}
    server.create(upstream=upstream, name="known")
    answer = httpx.get(f"{faultproxy.url}/proxies/known/toxics/nothing")
    assert (answer.status_code, answer.json()["error"]) == (404, "toxic not found")


@pytest.mark.parametrize("toxic, error", [
    ({"type": "earthquake"}, "invalid toxic type"),
    ({"type": "latency", "attributes": {"latency": "slow"}}, "bad request body"),
    ({"type": "latency", "stream": "sideways"}, "stream was invalid"),
    ({"type": "latency", "toxicity": 1.5}, "bad request body"),
])
def test_bad_toxics_are_400(server, upstream, toxic, error):
    proxy = server.create(upstream=upstream, name="strict")
    with pytest.raises(InvalidToxic) as refusal:
        proxy.add_toxic(**toxic)
    body = json.loads(refusal.value.args[0])
    assert body["status"] == 400 and body["error"].startswith(error)
    assert proxy.toxics() == {}


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "192.0.2.1:8080", "[::1]:0", ":0"])
def test_a_listen_address_beyond_loopback_is_refused(faultproxy, server, upstream, listen):
    answer = httpx.post(f"{faultproxy.url}/proxies", json={"name": "wide", "upstream": upstream, "listen": listen})

    assert answer.status_code == 400 and "127.0.0.1" in answer.json()["error"]
    assert "wide" not in server.proxies()


def test_toxics_are_listed_shown_updated_and_removed(faultproxy, server, upstream):
    proxy = server.create(upstream=upstream, name="toxic")
    proxy.add_toxic(type="latency", attributes={"latency": 50, "jitter": 5})
    proxy.add_toxic(type="bandwidth", stream="upstream", name="thin", attributes={"rate": 100}, toxicity=0.5)

    listed = httpx.get(f"{faultproxy.url}/proxies/toxic/toxics").json()
    assert [t["name"] for t in listed] == ["thin", "latency_downstream"]  # upstream chain first, as Toxiproxy
    assert listed[1] == {"attributes": {"latency": 50, "jitter": 5}, "name": "latency_downstream",
                         "type": "latency", "stream": "downstream", "toxicity": 1.0}
    updated = httpx.post(f"{faultproxy.url}/proxies/toxic/toxics/thin", json={"attributes": {"rate": 7}}).json()
    assert updated["attributes"] == {"rate": 7} and updated["toxicity"] == 0.5
    proxy.destroy_toxic("thin")
    assert set(proxy.toxics()) == {"latency_downstream"}


def test_disable_stops_listening_and_enable_listens_again_on_the_same_port(server, upstream):
    proxy = server.create(upstream=upstream, name="flaky")
    port = int(proxy.listen.rpartition(":")[2])

    with proxy.down():
        assert refused(port) and server.get_proxy("flaky").enabled is False
    assert round_trip(port) == b"ping" and server.get_proxy("flaky").listen == proxy.listen


def test_disable_closes_live_connections(server, upstream):
    proxy = server.create(upstream=upstream, name="cut")
    with socket.create_connection(("127.0.0.1", int(proxy.listen.rpartition(":")[2])), timeout=5) as conn:
        conn.sendall(b"hello")
        assert conn.recv(16) == b"hello"
        proxy.disable()
        try:
            closed = conn.recv(16) == b""
        except ConnectionResetError:
            closed = True
    assert closed


def test_reset_enables_proxies_and_removes_toxics_and_faults(faultproxy, server, upstream):
    proxy = server.create(upstream=upstream, name="messy")
    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    httpx.post(f"{faultproxy.url}/proxies/messy/faults", json={"status": 500}).raise_for_status()
    proxy.disable()

    assert server.reset()
    shown = server.get_proxy("messy")
    assert shown.enabled is True and shown.toxics() == {}
    assert httpx.get(f"{faultproxy.url}/proxies/messy/faults").json() == []
    assert round_trip(int(shown.listen.rpartition(":")[2])) == b"ping"


def test_populate_creates_keeps_unchanged_and_replaces_changed(faultproxy, server, upstream):
    port = free_port()
    wanted = [{"name": "pop", "listen": f"127.0.0.1:{port}", "upstream": upstream}]
    first = httpx.post(f"{faultproxy.url}/populate", json=wanted)
    server.get_proxy("pop").add_toxic(type="latency", attributes={"latency": 10})
    again = httpx.post(f"{faultproxy.url}/populate", json=wanted).json()["proxies"][0]
    moved = httpx.post(f"{faultproxy.url}/populate", json=[{**wanted[0], "upstream": "127.0.0.1:9"}])

    assert first.status_code == 201 and first.json()["proxies"][0]["listen"] == f"127.0.0.1:{port}"
    assert [t["name"] for t in again["toxics"]] == ["latency_downstream"]  # untouched
    assert moved.json()["proxies"][0]["toxics"] == [] and moved.json()["proxies"][0]["upstream"] == "127.0.0.1:9"


def test_populate_missing_field_is_400_and_creates_nothing(faultproxy, server, upstream):
    answer = httpx.post(f"{faultproxy.url}/populate", json=[{"name": "ok", "upstream": upstream}, {"name": "bad"}])

    assert answer.status_code == 400 and answer.json()["error"] == "missing required field: upstream at proxy 2"
    assert server.proxies() == {}


def test_ensure_proxy_creates_then_keeps_then_updates_in_place(faultproxy, upstream):
    with faultproxy.client() as api:
        created = api.ensure_proxy("ensured", upstream)
        api.add_toxic("ensured", "latency", {"latency": 1})
        kept = api.ensure_proxy("ensured", upstream)
        moved = api.ensure_proxy("ensured", "127.0.0.1:9")

    assert kept.listen == created.listen and [t.name for t in kept.toxics] == ["latency_downstream"]
    assert moved.listen == created.listen and moved.upstream == "127.0.0.1:9" and len(moved.toxics) == 1


def test_browsers_are_refused(faultproxy):
    answer = httpx.get(f"{faultproxy.url}/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert answer.status_code == 403


def test_state_file_restores_proxies_but_not_faults(tmp_path, upstream):
    state, port = tmp_path / "state.json", free_port()
    with FaultProxyProcess(port, state=state, log=tmp_path / "first.log") as first, first.client() as api:
        kept = api.create_proxy("kept", upstream)
        api.create_proxy("off", upstream, enabled=False)
        api.add_toxic("kept", "timeout", {"timeout": 0})
    saved = {p["name"]: p for p in json.loads(state.read_text())}
    with FaultProxyProcess(port, state=state, log=tmp_path / "second.log") as second, second.client() as api:
        restored = api.proxies()

        assert saved["kept"]["listen"] == kept.listen and saved["off"]["enabled"] is False
        assert restored["kept"].listen == kept.listen and restored["kept"].toxics == ()
        assert restored["off"].enabled is False
        assert round_trip(kept.port) == b"ping"


def test_sigterm_closes_listeners_and_connections(tmp_path, upstream):
    process = FaultProxyProcess(free_port(), log=tmp_path / "proxy.log")
    with process, process.client() as api:
        port = api.create_proxy("bye", upstream).port
        conn = socket.create_connection(("127.0.0.1", port), timeout=5)
        conn.sendall(b"hi")
        assert conn.recv(8) == b"hi"
        status = process.stop()
    with conn:
        assert conn.recv(8) == b""
    assert status in (0, -15) and refused(port) and refused(process.port)
