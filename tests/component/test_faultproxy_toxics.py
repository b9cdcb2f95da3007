"""Each toxic's effect, measured on real sockets through the fault proxy against small servers on loopback.

Lower time bounds are strict (a toxic cannot be faster than it says); upper bounds are loose, for a busy machine.
"""

from __future__ import annotations

import socket
import time

import pytest

from adapters.local.faultproxy.testing import FaultProxyProcess, TcpServer, echo
from harness.infra.processes import free_port

pytestmark = pytest.mark.timeout(60)
PATTERN = bytes(range(256)) * 400  # 102,400 bytes that show any loss or reordering


@pytest.fixture(scope="module")
def faultproxy(tmp_path_factory):
    with FaultProxyProcess(free_port(), log=tmp_path_factory.mktemp("faultproxy") / "faultproxy.log") as process:
        yield process


@pytest.fixture
def api(faultproxy):
    with faultproxy.client() as client:
        for name in client.proxies():
            client.delete_proxy(name)
        yield client


def greet_then_echo(conn: socket.socket) -> None:
    conn.sendall(b"hello")
    echo(conn)


def send_pattern(conn: socket.socket) -> None:
    conn.sendall(PATTERN)
    conn.recv(1)  # until the client closes


def say_bye_and_close(conn: socket.socket) -> None:
    conn.sendall(b"bye")


@pytest.fixture(scope="module")
def servers():
    with TcpServer(echo) as e, TcpServer(greet_then_echo) as g, TcpServer(send_pattern) as p, \
            TcpServer(say_bye_and_close) as b:
        yield {"echo": e.address, "greet": g.address, "pattern": p.address, "bye": b.address}


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def timed_exchange(conn: socket.socket, payload: bytes = b"ping") -> float:
    began = time.monotonic()
    conn.sendall(payload)
    assert conn.recv(1024) == payload
    return time.monotonic() - began


def read_all(conn: socket.socket, limit: int = 1_000_000) -> tuple[bytes, int, float]:
    """Everything until the end (or ``limit`` bytes), the number of reads it took, and the seconds."""
    began, parts = time.monotonic(), []
    while sum(map(len, parts)) < limit and (part := conn.recv(65536)):
        parts.append(part)
    return b"".join(parts), len(parts), time.monotonic() - began


def test_latency_delays_every_exchange(api, servers):
    port = api.create_proxy("lat", servers["echo"]).port
    with connect(port) as conn:
        plain = timed_exchange(conn)
    api.add_toxic("lat", "latency", {"latency": 250})
    with connect(port) as conn:
        slowed = [timed_exchange(conn) for _ in range(2)]

    assert plain < 0.25
    assert all(0.25 <= t < 2.5 for t in slowed), slowed


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
def test_latency_acts_on_its_direction_only(api, servers, stream):
    port = api.create_proxy("way", servers["greet"]).port
    api.add_toxic("way", "latency", {"latency": 300}, stream=stream)
    with connect(port) as conn:
        began = time.monotonic()
        assert conn.recv(16) == b"hello"
        greeting = time.monotonic() - began
        round_trip = timed_exchange(conn)

    assert round_trip >= 0.3  # a round trip crosses both directions
    assert (greeting < 0.3) if stream == "upstream" else (greeting >= 0.3), greeting


def test_latency_added_to_a_live_connection_applies_to_it(api, servers):
    port = api.create_proxy("live", servers["echo"]).port
    with connect(port) as conn:
        before = timed_exchange(conn)
        api.add_toxic("live", "latency", {"latency": 250})
        after = timed_exchange(conn)
        api.remove_toxic("live", "latency_downstream")
        removed = timed_exchange(conn)

    assert before < 0.25 and after >= 0.25 and removed < 0.25


def test_an_updated_toxic_changes_live_connections(api, servers):
    port = api.create_proxy("tune", servers["echo"]).port
    api.add_toxic("tune", "latency", {"latency": 250})
    with connect(port) as conn:
        slow = timed_exchange(conn)
        updated = api.update_toxic("tune", "latency_downstream", {"latency": 0})
        fast = timed_exchange(conn)

    assert updated.attributes == {"latency": 0, "jitter": 0}
    assert slow >= 0.25 and fast < 0.25


def test_bandwidth_bounds_throughput(api, servers):
    port = api.create_proxy("thin", servers["pattern"]).port
    with connect(port) as conn:
        _, _, plain = read_all(conn, len(PATTERN))
    api.add_toxic("thin", "bandwidth", {"rate": 200})  # KB/s
    with connect(port) as conn:
        data, _, seconds = read_all(conn, len(PATTERN))

    assert data == PATTERN
    assert len(data) / seconds <= 200_000 * 1.15, f"{len(data) / seconds:.0f} B/s"
    assert plain < seconds / 3


def test_slow_close_delays_the_end_not_the_data(api, servers):
    port = api.create_proxy("linger", servers["bye"]).port
    api.add_toxic("linger", "slow_close", {"delay": 400})
    with connect(port) as conn:
        began = time.monotonic()
        assert conn.recv(16) == b"bye"
        data_at = time.monotonic() - began
        assert conn.recv(16) == b""
        end_at = time.monotonic() - began

    assert data_at < 0.3 and end_at >= 0.4


def test_timeout_drops_data_then_closes(api, servers):
    port = api.create_proxy("void", servers["echo"]).port
    api.add_toxic("void", "timeout", {"timeout": 300})
    with connect(port) as conn:
        began = time.monotonic()
        conn.sendall(b"anyone?")
        assert conn.recv(16) == b""
        closed_at = time.monotonic() - began

    assert 0.25 <= closed_at < 3


def test_timeout_zero_holds_the_connection_and_its_removal_closes_it(api, servers):
    port = api.create_proxy("hang", servers["echo"]).port
    api.add_toxic("hang", "timeout", {"timeout": 0})
    with connect(port, timeout=0.5) as conn:
        conn.sendall(b"anyone?")
        with pytest.raises(TimeoutError):
            conn.recv(16)
        api.remove_toxic("hang", "timeout_downstream")
        conn.settimeout(5)
        assert conn.recv(16) == b""  # Toxiproxy: the dropped data is gone and the connection closes
    with connect(port) as conn:
        assert timed_exchange(conn) < 1


def test_timeout_hold_releases_the_held_data_when_removed(api, servers):
    port = api.create_proxy("hold", servers["echo"]).port
    api.add_toxic("hold", "timeout", {"timeout": 0, "hold": True}, stream="upstream")
    with connect(port, timeout=0.5) as conn:
        conn.sendall(b"held")
        with pytest.raises(TimeoutError):
            conn.recv(16)
        api.remove_toxic("hold", "timeout_upstream")
        conn.settimeout(5)
        assert conn.recv(16) == b"held"


def test_reset_peer_resets_after_its_timeout(api, servers):
    port = api.create_proxy("rst", servers["echo"]).port
    api.add_toxic("rst", "reset_peer", {"timeout": 150})
    with connect(port) as conn:
        began = time.monotonic()
        conn.sendall(b"ping")
        with pytest.raises(ConnectionResetError):
            conn.recv(16)

    assert time.monotonic() - began >= 0.15


def test_slicer_delivers_everything_in_many_pieces(api, servers):
    port = api.create_proxy("slices", servers["pattern"]).port
    with connect(port) as conn:
        _, plain_reads, _ = read_all(conn, len(PATTERN))
    api.add_toxic("slices", "slicer", {"average_size": 500, "size_variation": 100, "delay": 2000})
    with connect(port) as conn:
        data, reads, _ = read_all(conn, len(PATTERN))

    assert data == PATTERN
    assert reads >= 40 and plain_reads < 20, (reads, plain_reads)


def test_limit_data_cuts_after_the_limit(api, servers):
    port = api.create_proxy("cap", servers["pattern"]).port
    api.add_toxic("cap", "limit_data", {"bytes": 1000})
    with connect(port) as conn:
        data, _, _ = read_all(conn)

    assert data == PATTERN[:1000]


def test_toxics_changed_mid_stream_lose_and_reorder_nothing(api):
    big = PATTERN * 20  # 2 MB

    def send_big(conn: socket.socket) -> None:
        conn.sendall(big)
        conn.recv(1)

    with TcpServer(send_big) as server:
        port = api.create_proxy("churn", server.address).port
        with connect(port) as conn:
            received, rounds = bytearray(), 0
            while len(received) < len(big) and rounds < 200:
                rounds += 1
                kind = ("latency", "slicer", "bandwidth")[rounds % 3]
                attributes = {"latency": {"latency": 5}, "slicer": {"average_size": 3000, "delay": 100},
                              "bandwidth": {"rate": 20_000}}[kind]
                api.add_toxic("churn", kind, attributes, name="churn")
                received += conn.recv(50_000)
                api.remove_toxic("churn", "churn")
            received += read_all(conn, len(big) - len(received))[0]

    assert len(received) == len(big) and bytes(received) == big


@pytest.mark.parametrize("toxicity", [0.0, 1.0])
def test_toxicity_zero_never_applies_and_one_always_does(api, servers, toxicity):
    port = api.create_proxy("odds", servers["echo"]).port
    api.add_toxic("odds", "latency", {"latency": 250}, toxicity=toxicity)
    times = []
    for _ in range(4):
        with connect(port) as conn:
            times.append(timed_exchange(conn))

    assert all((t >= 0.25) == bool(toxicity) for t in times), times
    counted = api.stats("odds").toxics["latency_downstream"]
    assert (counted.connections, counted.applied) == (4, 4 if toxicity else 0)


def test_toxicity_is_drawn_once_per_connection(api, servers):
    port = api.create_proxy("coin", servers["echo"]).port
    api.add_toxic("coin", "latency", {"latency": 250}, toxicity=0.5)
    slowed = []
    for _ in range(12):
        with connect(port) as conn:
            first, second = timed_exchange(conn), timed_exchange(conn)
        assert (first >= 0.25) == (second >= 0.25), (first, second)
        slowed.append(first >= 0.25)

    assert api.stats("coin").toxics["latency_downstream"].applied == sum(slowed)
    assert 1 <= sum(slowed) <= 11  # p of failing by chance: 2 in 4,096


def test_counters_follow_the_traffic(api, servers):
    port = api.create_proxy("count", servers["echo"]).port
    with connect(port) as conn:
        timed_exchange(conn, b"x" * 1000)
    stats = api.stats("count")

    assert stats.connections_accepted == 1
    assert stats.bytes_upstream == stats.bytes_upstream_sent == 1000
    assert stats.bytes_downstream == stats.bytes_downstream_sent == 1000
    deadline = time.monotonic() + 5
    while api.stats("count").connections_active and time.monotonic() < deadline:
        time.sleep(0.02)
    assert api.stats("count").connections_active == 0


def test_an_unreachable_upstream_closes_the_client_and_is_counted(api):
    port = api.create_proxy("dead", f"127.0.0.1:{free_port()}").port
    with connect(port) as conn:
        try:
            ended = conn.recv(16) == b""
        except ConnectionResetError:
            ended = True

    assert ended and api.stats("dead").upstream_connect_failures == 1
