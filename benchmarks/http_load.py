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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.openloop import Connections, ProtocolError

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


async def drive(pool: Connections, request: bytes, tally: Tally | None, count: int = 0) -> None:
    """Send requests one after another until the tally says stop (or ``count`` unmeasured ones when there is no
    tally). The pool drops a broken connection and opens a new one for the next request."""
    broken = 0
    sent = 0
    while (tally.take() if tally else sent < count) and broken <= RECONNECTS_PER_CONNECTION:
        sent += 1
        started = time.perf_counter()
        try:
            status = await asyncio.wait_for(pool.post(request), REQUEST_TIMEOUT_SECONDS)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, ProtocolError):
            broken += 1
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
    pool = Connections(url, max_connections=concurrency)
    request = pool.request_bytes(body, content_type)
    try:
        await asyncio.gather(*(drive(pool, request, None, -(-warmup // concurrency)) for _ in range(concurrency)))
        started = time.perf_counter()
        tally = Tally(remaining=requests, deadline=started + max_seconds)
        await asyncio.gather(*(drive(pool, request, tally) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    finally:
        pool.close()
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
