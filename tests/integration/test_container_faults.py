"""The container faults against a real Docker engine: pause freezes a container, a kill lands on a paused one, a
restart keeps the container (its id) and the revert of a pause unpauses it. A throwaway container of the local base
image (``sleep``) stands for a stand-in; it is removed whatever happens."""

from __future__ import annotations

import uuid

import pytest

from adapters.local.faults.boxed import ContainerFaults
from harness.domain.errors import UserError
from harness.infra.containers import docker_client

pytestmark = pytest.mark.integration

IMAGE = "lastmile/python:3.11-slim-local"


@pytest.fixture
def sleeper():
    try:
        client = docker_client()
    except UserError as e:
        pytest.skip(f"no Docker engine answers: {e}")
    if not client.images.list(name=IMAGE):
        pytest.skip(f"the local base image {IMAGE} is missing (scripts/local-base-image.sh builds it)")
    owner = f"lastmile-test-faults-{uuid.uuid4().hex[:8]}"
    container = client.containers.run(IMAGE, ["sleep", "600"], name=owner, labels={"lastmile.owner": owner},
                                      init=True, detach=True, network_mode="none")
    try:
        yield container
    finally:
        container.remove(force=True)


def test_pause_unpause_restart_and_kill_through_the_engine(sleeper):
    boxed = ContainerFaults()
    _, paused = boxed.apply("pause", sleeper.id, "sleeper")
    assert paused.took_effect and boxed.status(sleeper.id) == "paused"
    assert boxed.unpause(sleeper.id, "sleeper") == "docker unpause sleeper"
    assert boxed.status(sleeper.id) == "running"

    boxed.apply("pause", sleeper.id, "sleeper")
    _, restarted = boxed.apply("restart", sleeper.id, "sleeper")
    assert restarted.took_effect and boxed.status(sleeper.id) == "running"  # the same container, by its id

    boxed.apply("pause", sleeper.id, "sleeper")
    _, killed = boxed.apply("kill", sleeper.id, "sleeper")
    assert killed.took_effect
    assert boxed.status(sleeper.id) == "exited", "a kill of a paused container must land"
    assert "not paused" in boxed.unpause(sleeper.id, "sleeper")
