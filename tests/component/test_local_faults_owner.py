"""Replica faults find their processes through the replicas' owner, the local controller, on every profile: on
oci-local the Deployer port is the oke deployer, whose pods carry no pid."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapters.local.faults import targets
from adapters.local.faults.base import Profile
from adapters.local.faults.ledger import Ledger
from adapters.local.standins import DEPLOYER_TOKEN
from harness.bootstrap import Given, build
from harness.config.settings import load_settings
from harness.domain.records import DeploymentStatus, ReplicaStatus
from tests.component.kube_support import serve
from tests.fakes import MemorySecretStore

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "t" * 32


class Pods:
    """The oke deployer's view: the controller's replicas by name, with no pid."""

    def status(self, name: str) -> DeploymentStatus:
        return DeploymentStatus(name, None, None, 1, 1, (ReplicaStatus("lastmile-r1-1", 1, "ready"),))


def _controller_app(seen: list[str]) -> Starlette:
    async def deployment(request: Request) -> JSONResponse:
        seen.append(request.headers.get("authorization", ""))
        return JSONResponse({"name": request.path_params["name"], "endpoint": None, "revision": None, "desired": 1,
                             "ready": 1, "replicas": [{"name": "lastmile-r1-1", "revision": 1, "state": "ready",
                                                       "restarts": 0, "pid": 4242}]})

    return Starlette(routes=[Route("/deployments/{name}", deployment)])


class _AtController(Profile):
    """The profile with the deployer stand-in's admin API at ``url`` (a test server, not a running stand-in)."""

    url = ""

    def direct_url(self, route: str, configured: str | None) -> str:
        assert route == "deployer"
        return self.url


@pytest.fixture
def profile(tmp_path):
    settings = load_settings(ROOT / "lastmile.yaml", "oci-local", {"LASTMILE_STATE_DIR": str(tmp_path / ".lm")})
    secrets = MemorySecretStore({DEPLOYER_TOKEN: TOKEN})
    h = build(settings, Given(deployer=Pods(), secret_store=secrets))
    return _AtController(h, Ledger(tmp_path / "faults"))


def test_on_oci_local_replica_any_is_the_controllers_replica_with_its_pid(profile):
    seen: list[str] = []
    with serve(_controller_app(seen)) as url:
        profile.url = url
        chosen = targets.replica(profile, "replica:any")
    assert (chosen.name, chosen.pid) == ("lastmile-r1-1", 4242)
    assert seen == [f"Bearer {TOKEN}"]

