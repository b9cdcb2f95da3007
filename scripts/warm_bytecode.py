"""The bootstrap's import check, writing the bytecode of what lastmile's processes import on the way.

The bootstrap runs this after uv, which does not compile bytecode; pip compiles all 15,000 files, and so does
``uv pip install --compile-bytecode`` (20-40 s on two cores). Without bytecode the first run compiles what it
imports, and where ``PYTHONDONTWRITEBYTECODE`` is set every process of every run does so again (``make e2e``'s
stages: 59 s instead of 26 s). Importing the entry modules of lastmile's processes once, with bytecode writing
on, compiles only what is used (about a quarter of the files): 11-15 s, this import check included.

The modules every process needs are imported first, in one process (exit code 1 when one of them fails: the
dependencies are broken); the process then forks, and the two groups below are imported side by side, one per
core, without compiling the shared part twice. A module of a group that fails to import is named on stderr and
skipped: that costs speed, not correctness.

Run with the venv's Python, from the repository: ``.venv/bin/python scripts/warm_bytecode.py``.
"""

from __future__ import annotations

import importlib
import os
import sys

REQUIRED = ("harness", "mlflow", "moto", "chaoslib")

GROUPS = (
    # The CLI and the stand-ins' servers: MLflow with its basic-auth app and SQL stores, moto, the deployer.
    ("harness.cli", "mlflow.cli", "mlflow.server", "mlflow.server.auth", "mlflow.store.tracking.sqlalchemy_store",
     "mlflow.store.model_registry.sqlalchemy_store", "moto.server", "moto.s3.models", "boto3", "chaoslib.experiment",
     "typer", "rich.live", "psutil", "httpx"),
    # Training, serving and the tests: scikit-learn through MLflow's flavors, FastAPI on uvicorn, pytest.
    ("mlflow.sklearn", "mlflow.pyfunc", "skops.io", "sklearn.datasets", "sklearn.tree", "sklearn.pipeline",
     "sklearn.preprocessing", "sklearn.model_selection", "sklearn.metrics", "pandas", "fastapi", "uvicorn",
     "uvicorn.loops.uvloop", "uvicorn.protocols.http.httptools_impl", "pydantic_settings", "prometheus_client",
     "pytest"),
)


def warm(modules: tuple[str, ...]) -> list[str]:
    """Imports each module; returns the ones that failed, each named on stderr."""
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # any failure: reported here, judged by the caller
            failed.append(name)
            print(f"warm_bytecode: {name} did not import ({type(exc).__name__}: {exc})", file=sys.stderr)
    return failed


def main() -> int:
    sys.dont_write_bytecode = False
    if warm(REQUIRED):
        return 1
    children = []
    for group in GROUPS[1:]:
        pid = os.fork()
        if pid == 0:
            warm(group)
            os._exit(0)
        children.append(pid)
    warm(GROUPS[0])
    for pid in children:
        os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
