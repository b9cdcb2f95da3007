"""``python -m serving --host 127.0.0.1 --port 8080``: one uvicorn worker serving ``create_app(Settings.from_env())``.

uvicorn uses httptools and uvloop when they are installed (both are faster), its pure-Python defaults otherwise.
The garbage collector is off from uvicorn's import until the first model load returns: both only allocate objects
that live as long as the process, and collecting over them costs about a tenth of the start. Exit code 2 when the
environment is not a valid configuration.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable
from importlib.util import find_spec

from serving.settings import Settings, SettingsError


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
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"serving: {exc}", file=sys.stderr)
        return 2

    gc.disable()
    import uvicorn

    from serving.app import create_app
    from serving.logs import uvicorn_log_config
    from serving.model import load_model

    options = server_options()
    print(f"serving: uvicorn on {args.host}:{args.port}, http={options['http']}, loop={options['loop']}",
          file=sys.stderr, flush=True)
    app = create_app(settings, loader=_collecting_after(load_model))
    uvicorn.run(app, host=args.host, port=args.port, workers=1, access_log=False,
                log_config=uvicorn_log_config(settings.log_level, {"replica": settings.replica}),
                **options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
