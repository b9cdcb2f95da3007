"""Process faults on targets in containers (the containers profile) map to the Docker engine's kill, pause, unpause
and restart, with the evidence and reverts the signal faults give; a fake engine records what was asked."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest

from adapters.local.faults import processes, targets
from adapters.local.faults.boxed import ContainerFaults
from adapters.local.faults.ledger import Record
from adapters.local.faults.processes import ProcessFaults
from harness.domain.errors import UserError
from harness.domain.records import FaultSpec, ReplicaStatus


class FakeContainer:
    def __init__(self, engine: FakeEngine, ref: str):
        self.engine, self.ref = engine, ref

    def _do(self, call: str, new: str) -> None:
        self.engine.calls.append((call, self.ref))
        self.engine.states[self.ref] = new

    def kill(self, signal: str) -> None:
        assert signal == "SIGKILL"
        self._do("kill", "exited")

    def pause(self) -> None:
        self._do("pause", "paused")

    def unpause(self) -> None:
        if self.engine.states[self.ref] != "paused":
            raise docker.errors.APIError(f"container {self.ref} is not paused")
        self._do("unpause", "running")

    def restart(self, timeout: int) -> None:
        assert timeout == 0, "a restart fault gives no grace: SIGKILL, as the process faults' restart"
        self._do("restart", "running")


@dataclass
class FakeEngine:
    states: dict[str, str]
    calls: list[tuple[str, str]] = field(default_factory=list)

    @property
    def api(self) -> Any:
        def inspect_container(ref: str) -> dict:
            if ref not in self.states:
                raise docker.errors.NotFound(f"no such container: {ref}")
            return {"State": {"Status": self.states[ref]}}
        return SimpleNamespace(inspect_container=inspect_container)

    @property
    def containers(self) -> Any:
        return SimpleNamespace(get=lambda ref: FakeContainer(self, ref))


def engine(**states: str) -> tuple[FakeEngine, ContainerFaults]:
    fake = FakeEngine(dict(states))
    return fake, ContainerFaults(lambda: fake)


@pytest.mark.parametrize(("action", "before", "call", "after"), [
    ("kill", "running", "kill", "exited"),
    ("pause", "running", "pause", "paused"),
    ("resume", "paused", "unpause", "running"),
    ("restart", "running", "restart", "running"),
])
def test_each_action_is_the_engines_own_and_took_effect(action, before, call, after):
    fake, boxed = engine(c1=before)
    detail, evidence = boxed.apply(action, "c1", "replica web-1")
    assert fake.calls == [(call, "c1")]
    assert fake.states["c1"] == after
    assert evidence.took_effect, evidence.detail
    assert "replica web-1" in detail and "c1" in detail


def test_killing_a_paused_container_thaws_it_so_the_kill_lands():
    fake, boxed = engine(c1="paused")
    _, evidence = boxed.apply("kill", "c1", "job run-1")
    assert fake.calls[0] == ("kill", "c1") and evidence.took_effect


@pytest.mark.parametrize(("action", "before"), [("pause", "paused"), ("resume", "running"), ("kill", "exited"),
                                                ("restart", None)])
def test_a_fault_that_meets_nothing_to_do_says_so_and_does_nothing(action, before):
    fake, boxed = engine(**({"c1": before} if before else {}))
    detail, evidence = boxed.apply(action, "c1", "registry")
    assert not evidence.took_effect
    assert fake.calls == []
    assert "nothing" in detail


def test_unpause_reverts_a_pause_and_only_a_pause():
    fake, boxed = engine(c1="paused", c2="running")
    assert boxed.unpause("c1", "mlflow") == "docker unpause mlflow"
    assert "not paused" in boxed.unpause("c2", "registry")
    assert "gone" in boxed.unpause("c3", "object_store")
    assert fake.calls == [("unpause", "c1")]


def test_an_unknown_action_is_refused_in_a_line():
    _, boxed = engine(c1="running")
    with pytest.raises(UserError, match="kill, pause, resume or restart"):
        boxed.apply("explode", "c1", "registry")


def test_the_engine_is_asked_for_only_when_a_fault_needs_it():
    made = []
    boxed = ContainerFaults(lambda: made.append(1) or FakeEngine({}))
    assert made == []
    boxed.status("c1")
    boxed.status("c1")
    assert made == [1]


# ProcessFaults: a target in a container goes to the engine, any other to signals --------------------------
class Supervisor:
    def __init__(self, boxed: dict[str, str]):
        self.boxed = boxed
        self.asked_up: list[str] = []

    def container(self, name: str) -> str | None:
        return self.boxed.get(name)

    def status(self, standins):
        return [SimpleNamespace(state="healthy", pid=None) for _ in standins]

    def processes(self, name: str):
        raise AssertionError(f"{name} runs in a container: no process of it is signalled")


def profile(supervisor: Supervisor) -> Any:
    h = SimpleNamespace(supervisor=supervisor, standins=lambda: [SimpleNamespace(name=n) for n in supervisor.boxed])
    return SimpleNamespace(h=h, route_for=lambda target: target)


def spec(target: str, action: str) -> FaultSpec:
    return FaultSpec(kind="process", target=target, action=action)


def record(s: FaultSpec, applied: processes.Applied) -> Record:
    return Record("fault-1", s, applied.detail, applied.state, time.time(), applied.evidence)


def test_a_standin_in_a_container_is_paused_by_the_engine_and_its_revert_unpauses_it():
    fake, boxed = engine(cid="running")
    faults = ProcessFaults(profile(Supervisor({"registry": "cid"})), boxed)
    s = spec("registry", "pause")
    applied = faults.inject("fault-1", s)
    assert fake.states["cid"] == "paused" and applied.evidence and applied.evidence.took_effect
    assert faults.revert(record(s, applied)) == "docker unpause registry"
    assert fake.states["cid"] == "running"


def test_restarting_a_standin_in_a_container_keeps_its_container_and_waits_for_it():
    fake, boxed = engine(cid="running")
    faults = ProcessFaults(profile(Supervisor({"mlflow": "cid"})), boxed)
    applied = faults.inject("fault-1", spec("mlflow", "restart"))
    assert fake.calls == [("restart", "cid")]
    assert "mlflow answers again (same container)" in applied.detail


def test_a_replica_container_is_hit_by_name_and_its_restart_is_a_kill(monkeypatch):
    fake, boxed = engine(**{"lastmile-web-1": "running"})
    replica = ReplicaStatus("web-1", 1, "ready", pid=4242, container="lastmile-web-1")
    monkeypatch.setattr(targets, "replica", lambda p, target: replica)
    faults = ProcessFaults(profile(Supervisor({})), boxed)
    s = spec("replica:any", "restart")
    applied = faults.inject("fault-1", s)
    assert fake.calls == [("kill", "lastmile-web-1")]
    assert applied.state["what"] == "replica"
    assert faults.revert(record(s, applied)).startswith("nothing to undo")


def test_the_current_job_in_a_container_is_paused_by_the_engine(monkeypatch):
    fake, boxed = engine(jobc="running")
    monkeypatch.setattr(targets, "current_job", lambda p: targets.Job("run-1", 777, "jobc"))
    faults = ProcessFaults(profile(Supervisor({})), boxed)
    applied = faults.inject("fault-1", spec("job:current", "pause"))
    assert fake.calls == [("pause", "jobc")] and "job run-1" in applied.detail


def test_a_replica_process_still_gets_signals(monkeypatch):
    """The processes profile is unchanged: no container named, no engine asked."""
    replica = ReplicaStatus("web-1", 1, "ready", pid=4242)
    monkeypatch.setattr(targets, "replica", lambda p, target: replica)
    sent = []
    monkeypatch.setattr(ProcessFaults, "_group", lambda self, s, label, pid, what: sent.append((label, pid)))
    faults = ProcessFaults(profile(Supervisor({})), ContainerFaults(lambda: pytest.fail("the engine was asked")))
    faults.inject("fault-1", spec("replica:any", "pause"))
    assert sent == [("replica web-1", 4242)]


# the docker image builder under a registry fault -----------------------------------------------------------
@pytest.mark.parametrize(("error", "kind"), [
    ("received unexpected HTTP status: 500 Internal Server Error", "CapacityError"),
    ("toomanyrequests: received unexpected HTTP status: 429 Too Many Requests", "CapacityError"),
    ("dial tcp 127.0.0.1:5000: connect: connection refused", "UnreachableError"),
    ("unauthorized: authentication required", "AuthError"),
    ("blob upload invalid: digest did not match", "BuildFailed"),
])
def test_a_failed_push_names_the_registry_by_what_it_answered(error, kind):
    """A registry answering 5xx/429 to the engine's push (the build-registry-blob-upload-500 drill) is its capacity,
    named by its endpoint, not a failure of the build."""
    from adapters.containers.builder import DockerImageBuilder, RegistryLogin
    from harness.domain.records import Secret

    builder = DockerImageBuilder.__new__(DockerImageBuilder)
    builder.registry = SimpleNamespace(registry="127.0.0.1:5000", endpoint="http://127.0.0.1:5000")
    builder.login = RegistryLogin("lastmile", Secret("not-a-real-password"), "secret:registry-password")
    builder.log_tail = lambda run_id, lines=25: ""
    exc = builder._push_error("127.0.0.1:5000/lastmile/serving", "abc", error, "build-1")
    assert type(exc).__name__ == kind
    if kind in ("CapacityError", "UnreachableError"):
        assert exc.url == "http://127.0.0.1:5000"
