"""The Service's data path: HAProxy in front of the replicas, driven through its runtime API.

The controller starts HAProxy as a child in its own process group (stopping the controller's group stops it too),
bound to 127.0.0.1 on the Service's port, with one backend of ``SLOTS`` empty server slots. After every reconcile
pass the controller hands over its replicas and :meth:`HaproxyService.sync` maps them onto slots through the
runtime API (a unix socket of mode 0600 under the state dir): a routable replica (ready, its smoke check passed)
gets a slot's address and ``state ready``, a retiring one ``state drain``, any other ``state maint``.

What a Kubernetes Service cannot do and this one does, as the Python proxy (:mod:`.proxy`) did:

- a request that never reached a replica (refused, reset, closed before any answer) is sent to another one
  (``retry-on conn-failure empty-response`` with ``option redispatch``);
- a request waiting on a replica that froze (paused, hung) is sent again to another once ``SERVER_TIMEOUT_S``
  passes without an answer (``retry-on response-timeout``). HAProxy keeps a copy of a request for that only when it
  fits in one buffer (16 kB); a larger one is not sent twice and waits ``LARGE_SERVER_TIMEOUT_S``;
- its answer names the replica (``x-lastmile-replica``, through a map of slot to replica name);
- every answer is logged, slot and timings, to a unix datagram socket the controller reads: that feeds each
  replica's histogram (:mod:`.upstream`), so observation still names a slow replica.

Requests go to the replica with the fewest in flight (``leastconn``: a slow replica gets less), over idle server
connections shared between clients (``http-reuse always``: every route only scores rows, so a request is safe on
any connection, and one that meets a connection the replica just closed is retried as above).

HAProxy forwards the path as it came (no decoding), streams bodies (nothing grows with a body's size) and relays
a replica's own answers, its 413 for a body above its limit included.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import shutil
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from adapters.local.deployer.replicas import Replica

log = logging.getLogger("lastmile.deployer")

SLOTS = 40
"""Server slots: more than the 16 replicas a deployment may have, plus a surge and the ones draining."""
BACKEND = "replicas"
SERVER_TIMEOUT_S = 2.0
"""How long a request waits for a replica's answer before it is sent to another one: a replica that answers
nothing for longer is failing its readiness probes too (1 s timeout, every 0.25 s)."""
LARGE_SERVER_TIMEOUT_S = 30.0
LOG_EVERY_BELOW_RPS, LOG_SAMPLE = 200, 10
"""Above ``LOG_EVERY_BELOW_RPS`` requests a second, one answer in ``LOG_SAMPLE`` (drawn at random, so that round
robin cannot alias it onto some replicas only) is logged for the replicas' hop histograms; below it, every answer.
Observation reads only their quantiles, and a log line per request (parsed by the controller, in Python) cost the
endpoint a fifth of its throughput (benchmarks/stable_endpoint.py)."""
START_TIMEOUT_S = 10.0
INSTALL_HINT = "install HAProxy (Debian/Ubuntu: apt-get install haproxy), or set ports.deployer.balancer: python"
_SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes


class HaproxyError(Exception):
    pass


def config(port: int, admin: Path, log_socket: Path, names: Path) -> str:
    """HAProxy's configuration: one frontend on 127.0.0.1:``port``, one backend of empty, disabled slots."""
    replica = f"%[srv_name,map({names},-)]"
    return f"""\
global
    nbthread 1
    maxconn 4096
    stats socket {admin} mode 600 level admin
    log {log_socket} len 2048 format raw local0

defaults
    mode http
    log global
    option dontlognull
    timeout connect 1s
    timeout client 30s
    timeout server {int(SERVER_TIMEOUT_S * 1000)}ms
    timeout http-request 10s
    timeout http-keep-alive 30s

frontend service
    bind 127.0.0.1:{port}
    log-format "{replica} %Tc %Tr %Td %ST %HPO"
    http-request set-log-level silent if {{ fe_req_rate gt {LOG_EVERY_BELOW_RPS} }} {{ rand({LOG_SAMPLE}) gt 0 }}
    default_backend {BACKEND}

backend {BACKEND}
    balance leastconn
    http-reuse always
    option http-buffer-request
    retries 2
    option redispatch 1
    retry-on conn-failure empty-response response-timeout
    http-request set-timeout server {int(LARGE_SERVER_TIMEOUT_S)}s if {{ req.hdr_val(content-length) gt 15000 }} || {{ req.hdr(transfer-encoding) -m found }}
    http-response set-header x-lastmile-replica {replica}
    http-error status 503 content-type application/json string "{{\\"error\\": \\"no ready replica\\"}}" hdr retry-after 1
    server-template s 1-{SLOTS} 127.0.0.1:9 disabled
"""


class HaproxyService:
    """HAProxy as the Service: started by :meth:`start`, kept in step with the replicas by :meth:`sync`."""

    def __init__(self, state_dir: Path, port: int, binary: str = "haproxy"):
        self.home = state_dir / "service"
        self.port = port
        self.binary = binary
        self.proc: asyncio.subprocess.Process | None = None
        self._sockets = self.home if len(str(self.home / "admin.sock")) < _SOCKET_PATH_MAX else \
            Path(tempfile.mkdtemp(prefix="lastmile-haproxy-"))
        self.admin = self._sockets / "admin.sock"
        self.log_socket = self._sockets / "log.sock"
        self.names = self.home / "replicas.map"
        self._slots: dict[str, str] = {}  # replica name -> slot
        self._applied: dict[str, tuple[str, int, str, str]] = {}  # slot -> (host, port, state, replica)
        self._pods: dict[str, Replica] = {}
        self._lock = asyncio.Lock()
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        binary = shutil.which(self.binary)
        if binary is None:
            raise HaproxyError(f"the Service needs HAProxy, which is not on PATH: {INSTALL_HINT}")
        self.home.mkdir(parents=True, exist_ok=True)
        self.names.write_text("".join(f"s{i} -\n" for i in range(1, SLOTS + 1)))
        for path in (self.admin, self.log_socket):
            path.unlink(missing_ok=True)
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _AccessLog(self._observe), family=socket.AF_UNIX, local_addr=str(self.log_socket))
        self.log_socket.chmod(0o600)
        cfg = self.home / "haproxy.cfg"
        cfg.write_text(config(self.port, self.admin, self.log_socket, self.names))
        with open(self.home / "haproxy.log", "ab") as out:
            # No session of its own: it is in the controller's process group, so stopping that group stops it.
            self.proc = await asyncio.create_subprocess_exec(binary, "-db", "-f", str(cfg),
                                                             stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out)
        deadline = loop.time() + START_TIMEOUT_S
        while True:
            with contextlib.suppress(OSError):
                await self.command("show info")
                break
            if self.proc.returncode is not None or loop.time() > deadline:
                tail = (self.home / "haproxy.log").read_text(errors="replace")[-2000:]
                raise HaproxyError(f"HAProxy did not start (exit code {self.proc.returncode}): {tail}")
            await asyncio.sleep(0.05)
        log.info("the Service is HAProxy", extra={"fields": {"pid": self.proc.pid, "port": self.port}})

    async def command(self, line: str) -> str:
        """One runtime API call (commands joined by ``;``), its whole answer."""
        reader, writer = await asyncio.open_unix_connection(str(self.admin))
        try:
            writer.write(line.encode() + b"\n")
            await writer.drain()
            return (await reader.read()).decode()
        finally:
            writer.close()

    async def sync(self, pods: list[Replica], routable: list[Replica]) -> None:
        """Give each replica a slot and the state it should have: ready (routable), drain (retiring) or maint."""
        async with self._lock:
            self._pods = {p.name: p for p in pods}
            for gone in [n for n in self._slots if n not in self._pods]:
                self._slots.pop(gone)
            used = set(self._slots.values())
            free = (f"s{i}" for i in range(1, SLOTS + 1) if f"s{i}" not in used)
            wanted: dict[str, tuple[str, int, str, str]] = {}
            ready = {p.name for p in routable}
            for pod in pods:
                if pod.name not in self._slots:
                    slot = next(free, None)
                    if slot is None:
                        log.error("no free server slot", extra={"fields": {"replica": pod.name}})
                        continue
                    self._slots[pod.name] = slot
                address = urlsplit(pod.route_url or pod.url)
                state = "ready" if pod.name in ready else "drain" if pod.state == "draining" else "maint"
                wanted[self._slots[pod.name]] = (address.hostname or "127.0.0.1", address.port or 80, state, pod.name)
            for slot, applied in self._applied.items():
                if slot not in wanted and applied[2] != "maint":
                    wanted[slot] = (applied[0], applied[1], "maint", "-")
            commands = [c for slot, want in wanted.items() for c in self._changes(slot, want)]
            if not commands:
                return
            try:
                answer = await self.command(";".join(commands))
            except OSError as exc:
                log.warning("the Service's runtime API did not answer", extra={"fields": {"error": str(exc)}})
                return
            if answer.strip():
                log.warning("the Service's runtime API said", extra={"fields": {"answer": answer.strip()[:500]}})
            self._applied.update(wanted)

    def _changes(self, slot: str, want: tuple[str, int, str, str]) -> list[str]:
        host, port, state, name = want
        had = self._applied.get(slot, ("127.0.0.1", 9, "maint", "-"))
        server = f"{BACKEND}/{slot}"
        commands = []
        moved = (host, port) != had[:2]
        if moved:
            if had[2] != "maint":
                commands.append(f"set server {server} state maint")
            commands.append(f"set server {server} addr {host} port {port}")
        if name != had[3]:
            commands.append(f"set map {self.names} {slot} {name}")
        if state != had[2] or (moved and state != "maint"):
            commands.append(f"set server {server} state {state}")
        return commands

    async def inflight(self, pod: Replica) -> int:
        """Requests the replica's slot is answering now (HAProxy's ``scur``)."""
        slot = self._slots.get(pod.name)
        if slot is None:
            return 0
        try:
            text = await self.command("show stat -1 4 -1")
        except OSError:
            return 0
        for row in csv.DictReader(io.StringIO(text.lstrip("# "))):
            if row.get("pxname") == BACKEND and row.get("svname") == slot:
                return int(row.get("scur") or 0)
        return 0

    def _observe(self, name: str, path: str, status: int, seconds: float) -> None:
        pod = self._pods.get(name)
        if pod is not None:
            pod.upstream.observe(path, status, seconds)

    async def aclose(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5.0)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._sockets != self.home:
            shutil.rmtree(self._sockets, ignore_errors=True)


class _AccessLog(asyncio.DatagramProtocol):
    """HAProxy's log lines (``replica Tc Tr Td status path``, raw format), one per datagram."""

    def __init__(self, observe):
        self.observe = observe

    def datagram_received(self, data: bytes, addr) -> None:
        fields = data.decode("latin-1").rstrip("\n").split(" ", 5)
        if len(fields) != 6 or fields[0] == "-":
            return
        try:
            timings = [int(t) for t in fields[1:4]]
            status = int(fields[4])
        except ValueError:
            return
        if status > 0:
            self.observe(fields[0], fields[5], status, sum(t for t in timings if t > 0) / 1000)
