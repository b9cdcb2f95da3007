"""What the fault proxy costs with no fault: one HTTP server on loopback, measured directly and through a proxy
with no toxic and no rule, with the same client in the same run.

    .venv/bin/python benchmarks/faultproxy_overhead.py                    # wrk, 10 s each, 32 connections
    .venv/bin/python benchmarks/faultproxy_overhead.py --seconds 5 --connections 8 --json

The server is a minimal ASGI app (this module's ``app``: 200, ``ok``) under one uvicorn worker with uvloop and
httptools. The client is wrk (Debian's ``wrk``: one thread, keep-alive connections, latency distribution) when it is
on PATH, otherwise ``benchmarks/http_load.py`` (a Python keep-alive client, POSTs). Each target gets a short warm-up,
then one measured run. It prints requests per second, p50 and p99 of each, and the ratio proxied / direct.
Exit status: 0 when the comparison ran, whatever it found; 1 when something broke; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from support import REPO, ServerProcess, free_port, python_env, run_benchmark

HERE = Path(__file__).resolve().parent
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


async def app(scope, receive, send) -> None:
    """The upstream: as little work per request as an HTTP server can do."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="measured seconds per target (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections (default 32)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = parser.parse_args(argv)
    if args.seconds < 1 or args.connections < 1:
        parser.error("--seconds and --connections must be positive")
    return args


def run_wrk(url: str, seconds: int, connections: int) -> dict:
    done = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                          capture_output=True, text=True, timeout=seconds + 60, check=True)
    out = done.stdout

    def latency(share: str) -> float:
        value, unit = re.search(rf"^\s+{share}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * UNITS[unit]

    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50_ms": latency("50"),
            "p99_ms": latency("99"), "errors": errors + (int(non_2xx.group(1)) if non_2xx else 0)}


def run_python_client(url: str, seconds: int, connections: int, root: Path) -> dict:
    body = root / "body.txt"
    body.write_text("{}")
    done = subprocess.run([sys.executable, str(HERE / "http_load.py"), url, "--body-file", str(body),
                           "--concurrency", str(connections), "--requests", "10000000", "--warmup", "500",
                           "--max-seconds", str(seconds)], capture_output=True, text=True, timeout=seconds + 120,
                          check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {k: result[k] for k in ("rps", "p50_ms", "p99_ms", "errors")}


def measure(args: argparse.Namespace, root: Path) -> dict:
    from adapters.local.faultproxy.client import FaultProxyClient

    env = python_env(root)
    server_port, api_port = free_port(), free_port()
    upstream = ServerProcess(
        "uvicorn", [sys.executable, "-m", "uvicorn", "faultproxy_overhead:app", "--app-dir", str(HERE),
                    "--host", "127.0.0.1", "--port", str(server_port), "--loop", "uvloop", "--http", "httptools",
                    "--no-access-log", "--log-level", "warning"],
        env, root, root / "upstream.log", f"http://127.0.0.1:{server_port}/")
    proxy = ServerProcess(
        "faultproxy", [sys.executable, "-m", "adapters.local.faultproxy", "--host", "127.0.0.1",
                       "--port", str(api_port), "--log-level", "warning"],
        env, REPO, root / "faultproxy.log", f"http://127.0.0.1:{api_port}/version")
    client = "wrk" if shutil.which("wrk") else "http_load.py"
    with upstream, proxy:
        upstream.wait_until_answering(None, 60)
        proxy.wait_until_answering(None, 60)
        with FaultProxyClient(f"http://127.0.0.1:{api_port}") as api:
            listen = api.create_proxy("bench", f"127.0.0.1:{server_port}").listen
        results = {}
        for name, url in (("direct", f"http://127.0.0.1:{server_port}/"), ("proxied", f"http://{listen}/")):
            if client == "wrk":
                run_wrk(url, 2, args.connections)  # warm-up
            cpu = {p.name: p.cpu_seconds() for p in (upstream, proxy)}
            results[name] = (run_wrk(url, args.seconds, args.connections) if client == "wrk"
                             else run_python_client(url, args.seconds, args.connections, root))
            requests = results[name]["rps"] * args.seconds
            for p in (upstream, proxy):
                used = p.cpu_seconds()
                if used is not None and cpu[p.name] is not None and requests:
                    results[name][f"{p.name}_cpu_us_per_request"] = round((used - cpu[p.name]) / requests * 1e6, 1)
    return {"client": client, "seconds": args.seconds, "connections": args.connections,
            "load_average_at_start": args.load_average_at_start, **results,
            "ratio_rps": round(results["proxied"]["rps"] / results["direct"]["rps"], 3),
            "added_p50_ms": round(results["proxied"]["p50_ms"] - results["direct"]["p50_ms"], 3)}


def render(summary: dict) -> str:
    lines = [f"client: {summary['client']}, {summary['connections']} connections, {summary['seconds']} s each "
             f"(load average at start {summary['load_average_at_start']})",
             f"{'target':<10}{'req/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}"]
    for name in ("direct", "proxied"):
        r = summary[name]
        lines.append(f"{name:<10}{r['rps']:>12.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}{r['errors']:>8}")
    lines.append(f"proxied / direct throughput: {summary['ratio_rps']:.2f}; "
                 f"p50 added by the proxy: {summary['added_p50_ms']:.2f} ms")
    proxied = summary["proxied"]
    if "faultproxy_cpu_us_per_request" in proxied:
        lines.append(f"CPU per proxied request: fault proxy {proxied['faultproxy_cpu_us_per_request']} us, "
                     f"upstream server {proxied['uvicorn_cpu_us_per_request']} us (two cores share wrk, the "
                     f"server and the proxy)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_benchmark(args, "faultproxy-bench-", measure, render, lambda line: print(line, file=sys.stderr))


if __name__ == "__main__":
    sys.exit(main())
