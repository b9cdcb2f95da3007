"""Running ``python -m serving`` as a real process for the component tests: its environment, a run to its exit,
and a server kept up until the test ends (stopped with its process group)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from harness.infra.processes import stop_group
from tests.component.serving_fixtures import RegisteredModel

ROOT = Path(__file__).resolve().parents[2]


def serving_env(model: RegisteredModel, **variables: str) -> dict[str, str]:
    """The process environment for serving ``model``'s champion version pinned, plus ``variables``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("LASTMILE_SERVING_")}
    return {**env, "PYTHONPATH": str(ROOT), "MLFLOW_DISABLE_TELEMETRY": "true",
            "LASTMILE_SERVING_MODEL_URI": f"models:/{model.name}/{model.champion_version}",
            "LASTMILE_SERVING_REPLICA": "replica-c", **variables}


@dataclass
class Finished:
    """A serving process that ended: its exit code and what it wrote."""

    returncode: int
    stdout: str
    stderr: str

    def json_lines(self, stream: str = "stdout") -> list[dict]:
        return [json.loads(line) for line in getattr(self, stream).splitlines() if line.startswith("{")]


def run_to_exit(env: dict[str, str], *args: str, stdin: str = "", timeout: float = 120.0) -> Finished:
    """Run ``python -m serving ARGS`` until it exits by itself (a test that hangs here fails at ``timeout``)."""
    done = subprocess.run([sys.executable, "-m", "serving", "--host", "127.0.0.1", *args], cwd=ROOT, env=env,
                          input=stdin, capture_output=True, text=True, timeout=timeout)
    return Finished(done.returncode, done.stdout, done.stderr)


@contextmanager
def serving(env: dict[str, str], port: int, log: Path, *args: str) -> Iterator[subprocess.Popen]:
    """``python -m serving ARGS`` on ``port``, output in ``log``; its process group is stopped at the end."""
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "serving", "--host", "127.0.0.1", "--port", str(port), *args],
                                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield proc
    finally:
        stop_group(proc.pid, grace_s=10, reap=proc.poll)
        proc.wait(timeout=10)


def wait_for_health(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    """Until ``/health`` answers; fails with the server's log when it exits or does not answer in time."""
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        assert proc.poll() is None, f"the server exited with {proc.returncode}:\n{log.read_text()}"
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    pytest.fail(f"no answer on {url} within {timeout} s:\n{log.read_text()}")


def wait_until_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    """Until ``/ready`` answers 200; fails with the server's log otherwise."""
    wait_for_health(url, proc, log, timeout)
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if httpx.get(url + "/ready", timeout=2).status_code == 200:
            return
        assert proc.poll() is None, f"the server exited with {proc.returncode}:\n{log.read_text()}"
        time.sleep(0.05)
    pytest.fail(f"{url} not ready within {timeout} s:\n{log.read_text()}")
