"""A deployment controller (``python -m adapters.local.deployer``) with two replicas of the test model, for the
tests of its stable endpoint; each balancer in turn."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness.infra.processes import free_port, stop_group
from tests.component.serving_fixtures import RegisteredModel

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token"
NAME = "iris"


@dataclass
class Controller:
    admin: str
    endpoint: str
    state_dir: Path
    log: Path

    def status(self) -> dict:
        return httpx.get(f"{self.admin}/deployments/{NAME}", headers={"Authorization": f"Bearer {TOKEN}"},
                         timeout=5).json()

    def replica_url(self) -> str:
        return self.status()["replicas"][0]["address"]

    def metrics(self) -> list[dict]:
        return httpx.get(f"{self.admin}/deployments/{NAME}/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                         timeout=10).json()["replicas"]


@contextmanager
def controller(model: RegisteredModel, state_dir: Path, balancer: str, replicas: int = 2,
               timeout_s: float = 120.0) -> Iterator[Controller]:
    """The controller, its deployment of ``model``'s champion rolled out and every replica ready."""
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "token.sha256").write_text(hashlib.sha256(TOKEN.encode()).hexdigest())
    port, service = free_port(), free_port()
    log = state_dir / "controller.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "adapters.local.deployer", "--port", str(port), "--service-port", str(service),
             "--state-dir", str(state_dir), "--token-sha256-file", str(state_dir / "token.sha256"), "--name", NAME,
             "--replicas", str(replicas), "--balancer", balancer],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    running = Controller(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{service}", state_dir, log)
    try:
        _wait(lambda: httpx.get(f"{running.admin}/healthz", timeout=1).status_code == 200, proc, log, timeout_s)
        deployed = httpx.put(f"{running.admin}/deployments/{NAME}", headers={"Authorization": f"Bearer {TOKEN}"},
                             json={"serving_digest": "sha256:test", "bundle_dir": str(ROOT), "model_name": model.name,
                                   "model_version": model.champion_version, "replicas": replicas,
                                   "env": {"MLFLOW_TRACKING_URI": model.tracking_uri,
                                           "LASTMILE_SERVING_MODEL_DIR": model.model_dir,
                                           "LASTMILE_SERVING_PREDICTION_SAMPLE_RATE": "0"}}, timeout=10)
        assert deployed.status_code == 200, deployed.text

        def settled() -> bool:
            status = running.status()
            return status["ready"] == replicas and all(r["state"] == "ready" for r in status["replicas"]) and \
                httpx.get(f"{running.endpoint}/ready", timeout=2).status_code == 200
        _wait(settled, proc, log, timeout_s)
        yield running
    finally:
        stop_group(proc.pid, reap=proc.poll)
        proc.wait(5)


def _wait(condition, proc: subprocess.Popen, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        assert proc.poll() is None, f"the controller exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
        try:
            if condition():
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"the controller never settled:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)
