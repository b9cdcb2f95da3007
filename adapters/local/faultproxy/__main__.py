"""``python -m adapters.local.faultproxy --host 127.0.0.1 --port PORT [--state FILE]``: the fault proxy server.

It serves the Toxiproxy-compatible API on ``--port`` and every proxy it is asked for, all on 127.0.0.1; logs are
lastmile's JSON lines on stderr. With ``--state`` the proxies (not their toxics or fault rules) survive a restart.
SIGTERM or SIGINT stops it: listeners and connections are closed first.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .proxy import LOOPBACK


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m adapters.local.faultproxy", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=LOOPBACK, help="the API's address; only 127.0.0.1 is allowed")
    parser.add_argument("--port", type=int, default=8474, help="the API's port (Toxiproxy's is 8474)")
    parser.add_argument("--state", type=Path, help="a JSON file that keeps the proxies across restarts")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.host not in (LOOPBACK, "localhost"):
        print(f"faultproxy: refusing --host {args.host}: the fault proxy listens on {LOOPBACK} only", file=sys.stderr)
        return 2

    import uvicorn

    from harness.infra import logs

    from .api import create_app
    from .registry import Registry

    logs.configure(args.log_level.upper(), static={"service": "faultproxy"})
    config = uvicorn.Config(create_app(Registry(args.state)), host=LOOPBACK, port=args.port, lifespan="on",
                            log_config=None, log_level=args.log_level, access_log=False,
                            timeout_graceful_shutdown=5)
    logging.getLogger("lastmile.faultproxy").info(
        "fault proxy starting", extra={"fields": {"port": args.port, "state": str(args.state or "")}})
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
