"""``python -m serving --host 127.0.0.1 --port 8080``: uvicorn serving ``create_app(Settings.from_env())``.

One worker process by default. ``--workers N`` runs N uvicorn worker processes on the one port (uvicorn's own
supervisor: the kernel spreads connections over them), for a machine with more cores than one replica needs to
share: each worker imports and loads the model itself (N times the memory, and the start of the slowest), and
keeps its own metrics, so ``/metrics`` shows the worker that answered. A worker that dies is replaced; one whose
model cannot load stops them all, with the exit code below.

``python -m serving --standby`` is a warm spare for a deployer: it imports everything and loads the model, prints
``warm`` on stdout, then waits for one JSON line on stdin, ``{"port": N, "log": PATH, "env": {...}}``, which makes it
a replica: its output goes to ``log``, ``env`` (the replica's name, its prediction log) is applied, and it serves on
``port`` within a fraction of a second, where a cold start spends seconds importing scikit-learn. End of input
before that line ends it quietly.

uvicorn uses httptools and uvloop when they are installed (both are faster), its pure-Python defaults otherwise.
Its proxy-headers layer is off: nothing here reads the client address, and it cost a layer per request.
The garbage collector is off from uvicorn's import until the first model load returns: both only allocate objects
that live as long as the process, and collecting over them costs about a tenth of the start.

Exit codes: 2 when the environment (or a standby order) is not a valid configuration; 3 (``EXIT_LOAD_FAILED``,
uvicorn's own code for a failed startup) when the model cannot load and never will: with
``LASTMILE_SERVING_MODEL_DIR`` set, in a standby, or a version fetched from the registry and rejected (files that
differ from their digests, a reference it does not reproduce). The reason is then one JSON log line naming the model URI,
on stdout (on stderr in a standby, whose stdout says ``warm``), so that an orchestrator sees a crash loop rather
than a replica that stays unready. From the registry, a load that may heal is retried instead (see
:mod:`serving.app`).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Callable
from importlib.util import find_spec

from serving.settings import Settings, SettingsError

EXIT_BAD_CONFIG = 2
EXIT_LOAD_FAILED = 3


def server_options() -> dict[str, str]:
    """The fastest HTTP parser and event loop among those installed."""
    return {"http": "httptools" if find_spec("httptools") else "h11",
            "loop": "uvloop" if find_spec("uvloop") else "asyncio"}


def _collecting_after(load: Callable) -> Callable:
    """``load``, turning the garbage collector back on once it has returned or failed."""
    def load_then_collect(settings: Settings):
        try:
            return load(settings)
        finally:
            gc.enable()
    return load_then_collect


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__.splitlines()[0],
                                     epilog=f"exit codes: {EXIT_BAD_CONFIG} invalid configuration or standby order, "
                                            f"{EXIT_LOAD_FAILED} the model cannot load (LASTMILE_SERVING_MODEL_DIR "
                                            "set, or --standby). Variables: see serving/settings.py.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes sharing the port, each with its own copy of the model (default 1)")
    parser.add_argument("--standby", action="store_true",
                        help="load the model, print 'warm', then take the port and the rest from a JSON line on stdin")
    args = parser.parse_args(argv)
    if args.workers < 1 or (args.standby and args.workers > 1):
        parser.error("--workers must be at least 1, and 1 with --standby (a standby holds one loaded model)")
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"serving: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG

    if args.workers > 1:
        return _serve_workers(settings, args.host, args.port, args.workers)
    gc.disable()
    from serving.model import load_model

    loader = _collecting_after(load_model)
    if args.standby:
        _log_to_stderr(settings)
        try:
            loaded = loader(settings)
        except Exception as exc:
            _log_load_failure(settings, exc)
            return EXIT_LOAD_FAILED
        print("warm", flush=True)
        order = sys.stdin.readline()
        if not order:
            return 0
        try:
            settings, args.port = _activate(json.loads(order), loaded.uri)
        except (ValueError, KeyError, SettingsError) as exc:
            print(f"serving: bad standby order: {exc}", file=sys.stderr)
            return EXIT_BAD_CONFIG

        def loader(_settings: Settings):
            return loaded
    _serve(settings, loader, args.host, args.port)  # uvicorn exits with EXIT_LOAD_FAILED when the startup fails
    return 0


def _log_to_stderr(settings: Settings) -> None:
    """A standby's log lines (its load's warnings, its failure) go to stderr, since its stdout says ``warm``."""
    from serving import logs

    logs.configure(settings.log_level, {"replica": settings.replica}, handler=logs.StderrHandler)


def _log_load_failure(settings: Settings, exc: Exception) -> None:
    """The standby's failed load, as the one JSON line the app would log."""
    import logging

    from serving import logs
    from serving.model import ModelLoadError, load_failure_fields

    logger = logging.getLogger(logs.LOGGER_NAME)
    logger.error("model not loaded", exc_info=None if isinstance(exc, ModelLoadError) else exc,
                 extra={"fields": load_failure_fields(settings, exc)})


def _activate(order: dict, loaded_uri: str) -> tuple[Settings, int]:
    """Apply a standby order: send output to its log, take its environment; the settings and the port to serve."""
    port = int(order["port"])
    env = order.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise ValueError("env must map names to strings")
    if any(not k.startswith("LASTMILE_SERVING_") or k in _MODEL_VARIABLES for k in env):
        raise ValueError(f"env may set LASTMILE_SERVING_* other than {sorted(_MODEL_VARIABLES)}: the model is loaded")
    if order.get("log"):
        sys.stdout.flush()
        sys.stderr.flush()
        fd = os.open(order["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    os.environ.update(env)
    settings = Settings.from_env()
    print(f"serving: standby for {loaded_uri} activated as {settings.replica}", file=sys.stderr, flush=True)
    return settings, port


_MODEL_VARIABLES = {"LASTMILE_SERVING_MODEL_URI", "LASTMILE_SERVING_MODEL_DIR", "LASTMILE_SERVING_REFERENCE"}


def _serve(settings: Settings, loader: Callable, host: str, port: int) -> None:
    import uvicorn

    from serving.app import create_app
    from serving.logs import uvicorn_log_config

    options = server_options()
    print(f"serving: uvicorn on {host}:{port}, http={options['http']}, loop={options['loop']}",
          file=sys.stderr, flush=True)
    app = create_app(settings, loader=loader)
    uvicorn.run(app, host=host, port=port, workers=1, access_log=False, proxy_headers=False,
                log_config=uvicorn_log_config(settings.log_level, {"replica": settings.replica}),
                http=options["http"], loop=options["loop"])


def _serve_workers(settings: Settings, host: str, port: int, workers: int) -> int:
    """``workers`` uvicorn processes, each building the app from the environment (:func:`serving.app.app_from_env`).

    uvicorn's own ``run`` exits 0 when a worker fails its startup; this one exits ``EXIT_LOAD_FAILED`` then, as
    one worker would.
    """
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    from serving.logs import uvicorn_log_config

    options = server_options()
    print(f"serving: uvicorn on {host}:{port}, {workers} workers, http={options['http']}, loop={options['loop']}",
          file=sys.stderr, flush=True)
    config = uvicorn.Config("serving.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                            access_log=False, proxy_headers=False, log_config=uvicorn_log_config(settings.log_level,
                                                                            {"replica": settings.replica}),
                            http=options["http"], loop=options["loop"])
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    failed = any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes)
    return EXIT_LOAD_FAILED if failed else 0


if __name__ == "__main__":
    sys.exit(main())
