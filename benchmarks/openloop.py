"""``python benchmarks/openloop.py``: constant-rate, open-loop HTTP load on a prediction endpoint; the benchmarks'
own client (http_load.py, loadgen_client_cpu.py). lastmile's load tests and the drills' load run on Locust
(harness.load); this stays for the benchmarks that measure a bare client's cost.

Request ``i`` is sent at ``start + i / rate`` whatever the earlier requests are doing, so a slow
server does not lower the offered rate (the coordinated-omission trap of closed-loop clients).
Sending stops after ``--duration`` seconds, or at SIGTERM/SIGINT; in-flight requests then get at
most one request timeout to finish, and the results are written as JSON either way.

It runs as a separate process so that its event loop competes with nothing in the caller's, and speaks
HTTP/1.1 over asyncio streams with a keep-alive pool: httpx takes about five times the CPU a request
(benchmarks/loadgen_client_cpu.py), and on a small machine that CPU is taken from the servers under test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_BODY = {"dataframe_records": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4,
                                       "petal_width": 0.2}]}
MAX_RATE = 2000.0
MAX_DURATION_S = 3600.0


@dataclass
class Outcome:
    scheduled_s: float  # when it was due, seconds after the start
    sent_at: float  # wall clock (epoch seconds)
    latency_s: float
    lag_s: float  # how late it was sent: the load generator's own delay, not the server's
    error: str | None  # None when the answer was 2xx; else "http_<status>" or the transport error's class


@dataclass
class LoadRun:
    url: str
    rate: float
    duration_s: float
    timeout_s: float
    started_at: float = 0.0
    elapsed_s: float = 0.0  # from the first send until sending stopped
    stopped_by: str = "duration"
    outcomes: list[Outcome] = field(default_factory=list)
    unfinished: int = 0  # sent, but still pending when the grace period ended

    def summary(self) -> dict:
        failures = [o for o in self.outcomes if o.error is not None]
        latencies = sorted(o.latency_s for o in self.outcomes if o.error is None)
        lags = sorted(o.lag_s for o in self.outcomes)
        sent = len(self.outcomes) + self.unfinished
        kinds: dict[str, int] = {}
        for o in failures:
            kind = o.error or "unknown"
            kinds[kind] = kinds.get(kind, 0) + 1
        if self.unfinished:
            kinds["unfinished"] = self.unfinished
        return {
            "url": self.url, "rate": self.rate, "duration_s": self.duration_s, "timeout_s": self.timeout_s,
            "started_at": self.started_at, "elapsed_s": round(self.elapsed_s, 3), "stopped_by": self.stopped_by,
            "sent": sent, "ok": len(latencies), "failed": len(failures) + self.unfinished,
            "achieved_rps": round(sent / self.elapsed_s, 2) if self.elapsed_s > 0 else 0.0,
            "error_kinds": kinds,
            "latency_ms": {name: _percentile(latencies, q) for name, q in (("p50", 50), ("p95", 95), ("p99", 99))}
            | {"max": round(latencies[-1] * 1000, 2) if latencies else None},
            "send_lag_ms": {"p99": _percentile(lags, 99), "max": round(lags[-1] * 1000, 2) if lags else None},
            "per_second": self._per_second(),
            "failures": [{"t": round(o.scheduled_s, 3), "at": round(o.sent_at, 3), "kind": o.error}
                         for o in sorted(failures, key=lambda o: o.scheduled_s)],
        }

    def _per_second(self) -> list[dict]:
        seconds = max(1, math.ceil(self.elapsed_s))
        rows = [{"second": s, "sent": 0, "ok": 0, "failed": 0} for s in range(seconds)]
        for o in self.outcomes:
            row = rows[min(int(o.scheduled_s), seconds - 1)]
            row["sent"] += 1
            row["ok" if o.error is None else "failed"] += 1
        return rows


def _percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile, in milliseconds."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return round(sorted_values[rank - 1] * 1000, 2)


class ProtocolError(Exception):
    """The server's answer was not HTTP/1.1 as we speak it."""


class Connections:
    """A keep-alive pool of HTTP/1.1 connections to one origin; ``post`` returns the status code."""

    def __init__(self, url: str, max_connections: int):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url}")
        self.host, self.tls = parts.hostname, parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.idle: deque[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = deque()
        self.slots = asyncio.Semaphore(max_connections)

    def request_bytes(self, body: bytes, content_type: str = "application/json") -> bytes:
        return (f"POST {self.target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

    async def post(self, request: bytes) -> int:
        async with self.slots:
            conn = self._reuse() or await asyncio.open_connection(self.host, self.port, ssl=self.tls or None)
            reader, writer = conn
            try:
                writer.write(request)
                await writer.drain()
                status, keep_alive = await _read_response(reader)
            except BaseException:
                writer.close()
                raise
            if keep_alive:
                self.idle.append(conn)
            else:
                writer.close()
            return status

    def _reuse(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        while self.idle:
            reader, writer = self.idle.pop()
            if not reader.at_eof() and not writer.is_closing():  # the server may have closed it while idle
                return reader, writer
            writer.close()
        return None

    def close(self) -> None:
        while self.idle:
            self.idle.pop()[1].close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; its status and whether the connection may carry another request."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    version, _, rest = head[0].partition(" ")
    if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {head[0][:80]!r}")
    status = int(rest[:3])
    headers = {name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in head[1:] if h)}
    if status in (204, 304):
        pass  # never a body
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")  # no trailers are expected: the blank line after the last chunk
    elif "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    else:
        await reader.read()  # the body runs to the end of the connection
        return status, False
    keep_alive = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
    return status, keep_alive


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):  # the whole request, connect to last byte, took longer than the timeout
        return "Timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "ConnectError"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "Disconnected"  # closed before a whole answer
    return type(exc).__name__  # ConnectionResetError, ProtocolError, ...


async def run_load(url: str, rate: float, duration_s: float, body: bytes, timeout_s: float = 5.0,
                   stop: asyncio.Event | None = None, max_connections: int = 256) -> LoadRun:
    """Send ``rate * duration_s`` POSTs of ``body`` to ``url`` on a fixed timeline; stop early when ``stop`` is set."""
    stop = stop or asyncio.Event()
    run = LoadRun(url, rate, duration_s, timeout_s)
    total = int(rate * duration_s)
    connections = Connections(url, max_connections)
    request = connections.request_bytes(body)
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def one(scheduled_s: float) -> None:
        sent_at, began = time.time(), time.perf_counter()
        lag_s = loop.time() - start - scheduled_s
        try:
            async with asyncio.timeout(timeout_s):
                status = await connections.post(request)
            error = None if 200 <= status < 300 else f"http_{status}"
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ProtocolError,
                ValueError) as exc:
            error = _error_kind(exc)
        run.outcomes.append(Outcome(scheduled_s, sent_at, time.perf_counter() - began, lag_s, error))

    run.started_at = time.time()
    pending: set[asyncio.Task] = set()
    stop_wait = asyncio.ensure_future(stop.wait())
    try:
        for i in range(total):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.wait({stop_wait}, timeout=delay)
            if stop.is_set() or loop.time() - start >= duration_s:  # a starved loop must not overrun
                break
            task = asyncio.create_task(one(i / rate))
            pending.add(task)
            task.add_done_callback(pending.discard)
        run.elapsed_s = min(loop.time() - start, duration_s) if stop.is_set() else duration_s
        if stop.is_set():
            run.stopped_by = "signal"
        if pending:
            _, still = await asyncio.wait(set(pending), timeout=timeout_s + 0.5)
            for task in still:
                task.cancel()
            run.unfinished = len(still)
    finally:
        stop_wait.cancel()
        connections.close()
    return run


async def _main_async(args: argparse.Namespace, body: bytes) -> LoadRun:
    stop = asyncio.Event()
    caught: list[str] = []
    loop = asyncio.get_running_loop()

    def on_signal(sig: int) -> None:
        caught.append(signal.Signals(sig).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    run = await run_load(args.url, args.rate, args.duration, body, args.timeout, stop, args.max_connections)
    if caught:
        run.stopped_by = caught[0]
    return run


def _loop_factory():
    """uvloop's event loop when it is installed: less CPU a request than asyncio's."""
    if find_spec("uvloop"):
        import uvloop

        return uvloop.new_event_loop
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/openloop.py",
        description="Constant-rate, open-loop HTTP load: single-row JSON POSTs on a fixed timeline; "
                    "results (counts, error kinds, latency percentiles, failure times) as JSON.",
        epilog="Example: python benchmarks/openloop.py --url http://127.0.0.1:8080/invocations --rate 60 "
               "--duration 20 --out results.json")
    parser.add_argument("--url", required=True, help="the endpoint to POST to")
    parser.add_argument("--rate", type=float, required=True, help=f"requests per second (at most {MAX_RATE:.0f})")
    parser.add_argument("--duration", type=float, required=True,
                        help=f"seconds of sending, a hard cap (at most {MAX_DURATION_S:.0f})")
    parser.add_argument("--out", required=True, help="where to write the JSON results")
    parser.add_argument("--body-file", help="JSON request body (default: one iris row as dataframe_records)")
    parser.add_argument("--timeout", type=float, default=5.0, help="per-request timeout in seconds (default 5)")
    parser.add_argument("--max-connections", type=int, default=256, help="keep-alive pool size (default 256)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not 0 < args.rate <= MAX_RATE:
        parser.error(f"--rate must be in (0, {MAX_RATE:.0f}], not {args.rate}")
    if not 0 < args.duration <= MAX_DURATION_S:
        parser.error(f"--duration must be in (0, {MAX_DURATION_S:.0f}], not {args.duration}")
    if urlsplit(args.url).scheme not in ("http", "https") or not urlsplit(args.url).hostname:
        parser.error(f"--url must be an http:// or https:// URL, not {args.url!r}")
    if args.timeout <= 0:
        parser.error(f"--timeout must be positive, not {args.timeout}")
    if args.body_file:
        body = Path(args.body_file).read_bytes()
        try:
            json.loads(body)
        except ValueError as exc:
            parser.error(f"--body-file {args.body_file} is not JSON: {exc}")
    else:
        body = json.dumps(DEFAULT_BODY).encode()
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        run = runner.run(_main_async(args, body))
    summary = run.summary()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(out)
    print(f"loadgen: sent {summary['sent']} in {summary['elapsed_s']} s ({summary['achieved_rps']} rps), "
          f"ok {summary['ok']}, failed {summary['failed']} {summary['error_kinds'] or ''}; "
          f"p50 {summary['latency_ms']['p50']} ms, p99 {summary['latency_ms']['p99']} ms -> {out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
