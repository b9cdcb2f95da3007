"""For the Kubernetes front door's tests: an in-memory controller and an ASGI app served on loopback in a thread."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn

from harness.infra.processes import free_port


class FakeController:
    """What the front door needs of :class:`adapters.local.deployer.controller.Deployment`, kept in dicts.

    Replicas of a revision become ready at once, unless their model version is in ``broken`` (they then crash
    loop). A rollout replaces every replica at once; that is enough for what the front door reports."""

    def __init__(self, name: str = "churn"):
        self.name = name
        self.max_surge, self.max_unavailable = 1, 0
        self.desired = 1
        self.revisions: list = []
        self.current = None
        self.broken: set[str] = set()
        self.addresses: dict[str, str] = {}

    def deploy(self, spec, replicas=None):
        spec.number = len(self.revisions) + 1
        self.revisions.append(spec)
        self.current = spec
        if replicas is not None:
            self.desired = replicas
        return spec

    def scale(self, replicas: int) -> None:
        self.desired = replicas

    def status(self) -> dict:
        current = self.current
        if current is None:
            return {"name": self.name, "desired": self.desired, "revision": None, "ready": 0, "replicas": [],
                    "message": "", "standby": ""}
        broken = current.model_version in self.broken
        replicas = [{"name": f"{self.name}-r{current.number}-{i}", "revision": current.number,
                     "state": "dead" if broken else "ready", "restarts": 3 if broken else 0,
                     "detail": "the model did not load; last exit code 3" if broken else "",
                     "exit_code": 3 if broken else None, "address": self.addresses.get(f"{self.name}-r{current.number}-{i}"), "pid": None}
                    for i in range(self.desired)]
        if broken and len(self.revisions) > 1:  # the old revision keeps serving, as maxUnavailable 0 keeps it
            previous = self.revisions[-2]
            replicas += [{"name": f"{self.name}-r{previous.number}-0", "revision": previous.number, "state": "ready",
                          "restarts": 0, "detail": "", "address": None, "pid": 1}]
        ready = 0 if broken else self.desired
        return {"name": self.name, "desired": self.desired, "ready": ready, "replicas": replicas,
                "message": f"rolling out revision {current.number}" if broken else "", "standby": "",
                "revision": {"number": current.number, "serving_digest": current.serving_digest,
                             "model_version": current.model_version}}


@contextlib.contextmanager
def serve(app) -> Iterator[str]:
    """``app`` on 127.0.0.1 at a free port, in a thread, until the block ends; yields its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the test server on port {port} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
