"""`lastmile up / status / down` against real processes: reuse, restart, moved ports, failed starts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from adapters.local.standins import ObjectStoreStandIn
from harness.bootstrap import build
from harness.domain.errors import UserError
from harness.infra.supervisor import Supervisor
from tests.integration.conftest import ROOT, settings_for

pytestmark = pytest.mark.integration


def _pids_alive(pids) -> list[int]:
    return [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]


def test_up_reuses_restarts_and_down_leaves_nothing(tmp_path, budget):
    h = build(settings_for(tmp_path / ".lastmile"))
    standins = h.standins()
    first = {s.name: s for s in h.supervisor.up(standins)}
    family = [p.pid for s in first.values() for p in [psutil.Process(s.pid), *psutil.Process(s.pid).children(True)]]
    try:
        assert {s.state for s in first.values()} == {"healthy"}

        started = time.monotonic()
        again = {s.name: s for s in h.supervisor.up(standins)}
        budget("a warm `up` (everything reused)", time.monotonic() - started, 2.0)
        assert {n: (s.pid, s.action) for n, s in again.items()} == {n: (s.pid, "reused") for n, s in first.items()}

        os.kill(first["registry"].pid, signal.SIGKILL)
        psutil.Process(first["registry"].pid).wait(5) if psutil.pid_exists(first["registry"].pid) else None
        assert {s.name: s.state for s in h.supervisor.status(standins)}["registry"] == "dead"
        healed = {s.name: s for s in h.supervisor.up(standins)}
        assert healed["registry"].action == "restarted" and healed["registry"].pid != first["registry"].pid
        assert healed["mlflow"].pid == first["mlflow"].pid
        family.append(healed["registry"].pid)
    finally:
        stopped = h.supervisor.down()
    assert stopped == ["deployer", "faults", "mlflow", "object_store", "registry"]
    assert _pids_alive(family) == []
    assert {s.state for s in h.supervisor.status(standins)} == {"stopped"}


def _object_store(tmp_path: Path, port: int) -> ObjectStoreStandIn:
    from adapters.local.secrets import FileSecretStore

    return ObjectStoreStandIn(port, tmp_path, "moto", ["lastmile-test"], FileSecretStore(tmp_path / "secrets.json"))


def test_taken_port_moves_to_a_free_one(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        supervisor = Supervisor(tmp_path)
        try:
            [status] = supervisor.up([_object_store(tmp_path, taken)])
            assert status.url != f"http://127.0.0.1:{taken}"
            assert status.action == f"moved from port {taken}"
            assert supervisor.endpoints()["object_store"] == status.url
        finally:
            supervisor.down()


class _Crashing(ObjectStoreStandIn):
    name = "crasher"

    def command(self, port, endpoints):
        return [sys.executable, "-c", "import sys; print('bad config, giving up'); sys.exit(3)"]


def test_standin_that_exits_during_start_leaves_nothing_running(tmp_path):
    supervisor = Supervisor(tmp_path)
    good = _object_store(tmp_path, 0)
    crasher = _Crashing(0, tmp_path, "moto", [], good.secrets)
    with pytest.raises(UserError) as caught:
        supervisor.up([good, crasher])
    assert "crasher exited during start (exit code 3)" in str(caught.value)
    assert "crasher.log" in caught.value.hint
    assert "bad config, giving up" in (tmp_path / "logs" / "crasher.log").read_text()
    assert supervisor.endpoints().urls == {}
    assert not list(tmp_path.glob("*.pid"))


def test_missing_binary_starts_nothing(tmp_path):
    supervisor = Supervisor(tmp_path)
    good = _object_store(tmp_path, 0)
    minio = ObjectStoreStandIn(0, tmp_path, "minio", [], good.secrets)
    if minio.binary and __import__("shutil").which(minio.binary):
        pytest.skip("a minio binary is on PATH here, so it is not missing")
    with pytest.raises(UserError, match="'minio' is not on PATH"):
        supervisor.up([good, minio])
    assert supervisor.endpoints().urls == {}


def test_cli_error_is_one_line_without_traceback(tmp_path):
    env = {**os.environ, "LASTMILE_STATE_DIR": str(tmp_path), "LASTMILE_STANDINS__OBJECT_STORE__SERVER": "minio",
           "PATH": os.path.dirname(sys.executable) + os.pathsep + "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "harness.cli", "up"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("lastmile: error: object_store: 'minio' is not on PATH")


def test_objects_outlive_down_and_up(tmp_path):
    """moto keeps objects in memory; its recording is replayed on the next start."""
    from adapters.local.s3 import S3ObjectStore
    from adapters.local.standins import ACCESS_KEY, SECRET_KEY

    supervisor = Supervisor(tmp_path)
    standin = _object_store(tmp_path, 0)

    def store(url):
        return S3ObjectStore(url, "us-east-1", standin.secrets.resolve(ACCESS_KEY), standin.secrets.resolve(SECRET_KEY))

    [first] = supervisor.up([standin])
    try:
        kept = store(first.url).put("lastmile-test", "keep/me.bin", b"\x00\x01 binary \xff")
        store(first.url).put("lastmile-test", "gone.txt", b"deleted later")
        store(first.url).delete("lastmile-test", "gone.txt")
    finally:
        supervisor.down()
    [second] = supervisor.up([_object_store(tmp_path, 0)])
    try:
        again = store(second.url)
        assert again.get("lastmile-test", "keep/me.bin") == b"\x00\x01 binary \xff"
        assert again.head("lastmile-test", "keep/me.bin") == kept
        assert again.head("lastmile-test", "gone.txt") is None
    finally:
        supervisor.down()


def test_a_killed_leader_s_children_are_stopped_with_it_and_up_starts_one_server(tmp_path):
    """MLflow's reported pid is a launcher whose uvicorn child serves: killing the launcher alone must not leave
    a second server on the same SQLite files after `up`, nor a leftover that `down` never stops."""
    h = build(settings_for(tmp_path / ".lastmile"))
    standins = h.standins()
    first = {s.name: s for s in h.supervisor.up(standins)}
    try:
        leader = psutil.Process(first["mlflow"].pid)
        children = leader.children(recursive=True)
        assert children, "MLflow serves from a child process"
        leader.kill()
        leader.wait(10)
        status = {s.name: s for s in h.supervisor.status(standins)}["mlflow"]
        assert status.state == "dead" and status.action == "leftovers running"
        healed = {s.name: s for s in h.supervisor.up(standins)}["mlflow"]
        assert healed.action == "restarted"
        assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        home = str(tmp_path / ".lastmile" / "mlflow")
        servers = [p for p in psutil.process_iter(["cmdline"]) if "mlflow" in " ".join(p.info["cmdline"] or [])
                   and home in " ".join(p.info["cmdline"] or [])]
        assert len({p.pid for p in servers} - {c.pid for c in psutil.Process(healed.pid).children(True)}) <= 1
    finally:
        h.supervisor.down()
    assert not [p for p in psutil.process_iter() if _cwd_under(p, tmp_path)]


def test_every_route_goes_through_the_fault_proxy(tmp_path):
    """Clients get the fault proxy's ports; the servers listen elsewhere; a toxic on a route slows real calls."""
    import httpx

    from adapters.local.faultproxy.client import FaultProxyClient

    h = build(settings_for(tmp_path / ".lastmile"))
    h.supervisor.up(h.standins())
    try:
        public, internal = h.endpoints(), h.supervisor.internal_endpoints()
        assert set(public.urls) >= {"faults", "object_store", "registry", "mlflow", "deployer", "service"}
        for route in ("object_store", "registry", "mlflow", "deployer", "service"):
            assert public[route] != internal[route], route
        with FaultProxyClient(public["faults"]) as proxies:
            assert {p.listen for p in proxies.proxies().values()} >= {
                public[r].removeprefix("http://") for r in ("object_store", "registry", "mlflow")}
            proxies.add_toxic("mlflow", "latency", {"latency": 400}, name="slow")
            started = time.monotonic()
            assert httpx.get(public["mlflow"] + "/health", timeout=10).status_code == 200
            slowed = time.monotonic() - started
            proxies.remove_toxic("mlflow", "slow")
            started = time.monotonic()
            httpx.get(internal["mlflow"] + "/health", timeout=10)
            direct = time.monotonic() - started
        assert slowed >= 0.4 > direct
    finally:
        h.supervisor.down()


def _cwd_under(process: psutil.Process, root: Path) -> bool:
    try:
        return process.cwd().startswith(str(root))
    except psutil.Error:
        return False
