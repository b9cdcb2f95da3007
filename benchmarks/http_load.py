"""A closed-loop HTTP/1.1 load generator: N keep-alive connections each POST one body, wait for the answer, repeat.

    python benchmarks/http_load.py http://127.0.0.1:8080/invocations --body-file body.json --requests 5000

Warm-up requests go first and are not measured. Measurement stops at ``--requests`` answers or after
``--max-seconds``, whichever comes first. One JSON object is printed: requests, errors (non-200 answers, timeouts,
broken connections), seconds, rps, p50_ms, p99_ms, max_ms, and whether the time cap ended the run. uvloop is used
when installed, so that the client takes as little of the machine's CPU from the server as possible.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlsplit

REQUEST_TIMEOUT_SECONDS = 10.0
RECONNECTS_PER_CONNECTION = 20


@dataclass
class Tally:
    """What the connections share: how many requests may still start, and what the finished ones measured."""

    remaining: int
    deadline: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    def take(self) -> bool:
        if self.remaining <= 0 or time.perf_counter() >= self.deadline:
            return False
        self.remaining -= 1
        return True


class Connection:
    """One keep-alive connection sending the same POST; it reconnects when the server closes it."""

    def __init__(self, host: str, port: int, request: bytes):
        self.host, self.port, self.request = host, port, request
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self) -> int:
        """The status of one exchange; raises on a broken connection or a malformed answer."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {name.strip().lower(): value.strip() for name, _, value in
                   (line.partition(":") for line in lines[1:] if line)}
        if headers.get("transfer-encoding", "").lower() == "chunked":
            await self._skip_chunks()
        else:
            await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status

    async def _skip_chunks(self) -> None:
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await self.reader.readexactly(size + 2)
            if size == 0:
                return

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def drive(connection: Connection, tally: Tally | None, count: int = 0) -> None:
    """Send requests until the tally says stop (or ``count`` unmeasured ones when there is no tally)."""
    broken = 0
    sent = 0
    while (tally.take() if tally else sent < count) and broken <= RECONNECTS_PER_CONNECTION:
        sent += 1
        started = time.perf_counter()
        try:
            status = await asyncio.wait_for(connection.send(), REQUEST_TIMEOUT_SECONDS)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ValueError):
            broken += 1
            connection.close()
            if tally:
                tally.errors += 1
            continue
        if tally:
            tally.latencies.append(time.perf_counter() - started)
            tally.errors += status != 200


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return sorted_values[max(0, math.ceil(share * len(sorted_values)) - 1)]


async def run(url: str, body: bytes, content_type: str, requests: int, concurrency: int, warmup: int,
              max_seconds: float) -> dict:
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 80
    request = (f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
               f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n").encode() + body
    connections = [Connection(host, port, request) for _ in range(concurrency)]
    try:
        await asyncio.gather(*(drive(c, None, -(-warmup // concurrency)) for c in connections))
        started = time.perf_counter()
        tally = Tally(remaining=requests, deadline=started + max_seconds)
        await asyncio.gather(*(drive(c, tally) for c in connections))
        seconds = time.perf_counter() - started
    finally:
        for connection in connections:
            connection.close()
    latencies = sorted(tally.latencies)
    answered = len(latencies)
    return {"requests": answered, "errors": tally.errors, "seconds": round(seconds, 3),
            "rps": round(answered / seconds, 1) if seconds else 0.0,
            "p50_ms": round(percentile(latencies, 0.50) * 1000, 3) if latencies else None,
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 3) if latencies else None,
            "max_ms": round(latencies[-1] * 1000, 3) if latencies else None,
            "capped": answered + tally.errors < requests, "concurrency": concurrency,
            "event_loop": "uvloop" if find_spec("uvloop") else "asyncio"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="http://host:port/path to POST to")
    parser.add_argument("--body-file", type=Path, required=True, help="the request body, sent unchanged every time")
    parser.add_argument("--content-type", default="application/json")
    parser.add_argument("--requests", type=int, default=5000, help="measured requests (default 5000)")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections (default 8)")
    parser.add_argument("--warmup", type=int, default=300, help="unmeasured requests first (default 300)")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="time cap on the measured part (default 20)")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.max_seconds <= 0:
        parser.error("--requests, --concurrency and --max-seconds must be positive")
    loop_factory = None
    if find_spec("uvloop"):
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result = runner.run(run(args.url, args.body_file.read_bytes(), args.content_type, args.requests,
                                args.concurrency, max(0, args.warmup), args.max_seconds))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
