"""CPU a request of benchmarks.openloop's asyncio-streams client against httpx.AsyncClient, same rate, same server.

    python benchmarks/loadgen_client_cpu.py [--rate 60] [--seconds 10]

A tiny ASGI app under uvicorn (its own process, on a free 127.0.0.1 port) answers every POST at once. Each client
sends ``rate * seconds`` requests on the same fixed timeline in this process; the CPU time this process spends
(user + system) is divided by the requests sent. Prints one line per client and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.openloop import Connections, run_load  # noqa: E402
from harness.infra.processes import free_port  # noqa: E402

APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"predictions": [0]}'})
'''
BODY = b'{"dataframe_records": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}'


async def httpx_load(url: str, rate: float, seconds: float) -> int:
    loop = asyncio.get_running_loop()
    start, tasks = loop.time(), []
    async with httpx.AsyncClient(timeout=5.0) as client:
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
            tasks.append(asyncio.create_task(client.post(url, content=BODY,
                                                         headers={"content-type": "application/json"})))
        answers = await asyncio.gather(*tasks, return_exceptions=True)
    return sum(1 for a in answers if isinstance(a, httpx.Response) and a.status_code == 200)


async def streams_load(url: str, rate: float, seconds: float) -> int:
    return (await run_load(url, rate, seconds, BODY, timeout_s=5.0)).summary()["ok"]


def measure(name: str, load, url: str, rate: float, seconds: float) -> float:
    before = time.process_time()
    ok = asyncio.run(load(url, rate, seconds))
    per_request_ms = (time.process_time() - before) / max(1, ok) * 1000
    print(f"{name:8s} {ok} ok, {per_request_ms:.3f} ms CPU a request")
    return per_request_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=60.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as app_dir:
        (Path(app_dir) / "bench_app.py").write_text(APP)
        server = subprocess.Popen([sys.executable, "-m", "uvicorn", "bench_app:app", "--host", "127.0.0.1",
                                   "--port", str(port), "--log-level", "warning", "--no-access-log"], cwd=app_dir)
        try:
            _compare(f"http://127.0.0.1:{port}/invocations", args.rate, args.seconds)
        finally:
            server.terminate()
            server.wait(timeout=10)
    return 0


def _compare(url: str, rate: float, seconds: float) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.post(url, content=BODY, timeout=1.0)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    Connections(url, 1)  # validates the URL before anything is measured
    streams = measure("streams", streams_load, url, rate, seconds)
    via_httpx = measure("httpx", httpx_load, url, rate, seconds)
    print(f"httpx / streams CPU a request: {via_httpx / streams:.1f}x")


if __name__ == "__main__":
    sys.exit(main())
