"""Test doubles shipped with the fault proxy: the proxy as a child process, and small loopback servers to put behind
it (a TCP server running a handler per connection, and an HTTP server that records what reached it)."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from harness.infra.processes import stop_process

from .client import FaultProxyClient

REPO = Path(__file__).resolve().parents[3]


class FaultProxyProcess:
    """``python -m adapters.local.faultproxy`` on 127.0.0.1:``port`` in its own session; stopped by its pid
    (SIGTERM, then SIGKILL after ``grace`` seconds). Start failures raise with the log's tail."""

    def __init__(self, port: int, state: Path | None = None, log: Path | None = None, startup_timeout: float = 20.0):
        self.port, self.state, self.startup_timeout = port, state, startup_timeout
        self.log = log or Path(tempfile.mkstemp(prefix="faultproxy-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultProxyProcess:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def start(self) -> None:
        command = [sys.executable, "-m", "adapters.local.faultproxy", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.state is not None:
            command += ["--state", str(self.state)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the fault proxy exited with {self.process.returncode}\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/version", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"the fault proxy did not answer within {self.startup_timeout:.0f} s\n{self.log_tail()}")

    def stop(self, grace: float = 10.0) -> int | None:
        """Stop the process; its exit status."""
        return stop_process(self.process, grace)

    def client(self) -> FaultProxyClient:
        return FaultProxyClient(self.url)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class TcpServer:
    """A TCP server on 127.0.0.1 (the OS picks the port) running ``handler(sock)`` in a thread per connection."""

    def __init__(self, handler: Callable[[socket.socket], None], io_timeout: float = 30.0):
        self.handler, self.io_timeout = handler, io_timeout
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.accepted = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.listener.getsockname()[1]}"

    def __enter__(self) -> TcpServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.listener.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.settimeout(self.io_timeout)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                self.handler(conn)
            except OSError:
                pass


def echo(conn: socket.socket) -> None:
    """Send back whatever arrives, until the peer stops sending."""
    while data := conn.recv(65536):
        conn.sendall(data)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class HttpRecorder:
    """An HTTP/1.1 keep-alive server on 127.0.0.1 that records each request (chunked bodies decoded) and answers
    200 ``ok <method> <path>``."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args) -> None:
                pass

            def _any(self) -> None:
                body = self._read_body()
                recorder.requests.append(RecordedRequest(self.command, self.path, dict(self.headers), body))
                answer = f"ok {self.command} {self.path}".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer)

            def _read_body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    parts = []
                    while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(parts)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> HttpRecorder:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
