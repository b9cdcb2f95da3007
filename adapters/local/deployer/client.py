"""The Deployer port for the local profile: a client of the deployment controller's admin API."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import httpx

from harness.bundle import pull_bundle
from harness.errors import AuthError, LastmileError, NotFound, UnreachableError, UserError
from harness.records import DeploymentSpec, DeploymentStatus, ReplicaStatus, Revision, Secret


class RolloutFailed(LastmileError):
    """The new revision never became ready (or failed its smoke check) and was rolled back."""


class LocalDeployer:
    def __init__(self, admin_url: str, token: Secret, registry, bundles_dir: Path, env: dict[str, str],
                 timeout_s: float):
        self.admin_url = admin_url.rstrip("/")
        self._token = token
        self.registry = registry
        self.bundles_dir = bundles_dir
        self.env = env
        self.timeout_s = timeout_s

    def deploy(self, spec: DeploymentSpec) -> Revision:
        bundle = self._bundle(spec)
        body = {"serving_digest": spec.serving.digest, "bundle_dir": str(bundle), "model_name": spec.model.name,
                "model_version": spec.model.version, "env": self.env, "replicas": spec.replicas,
                "smoke": {**asdict(spec.smoke), "expected": list(spec.smoke.expected)} if spec.smoke else None}
        result = self._call("PUT", f"/deployments/{spec.name}", json=body)
        revision = _revision(result["revision"])
        if result["status"] != "complete":
            serving = f"revision {revision.number} keeps serving" if revision else "nothing serves"
            raise RolloutFailed(f"deploy of {spec.name} rolled back: {result['reason']}; {serving}")
        return revision

    def status(self, name: str) -> DeploymentStatus:
        return _status(self._call("GET", f"/deployments/{name}"))

    def rollback(self, name: str) -> Revision:
        result = self._call("POST", f"/deployments/{name}/rollback")
        if result["status"] != "complete":
            raise RolloutFailed(f"rollback of {name} failed: {result['reason']}")
        return _revision(result["revision"])

    def scale(self, name: str, replicas: int) -> DeploymentStatus:
        if replicas < 1:
            raise UserError(f"deployment {name}: replicas must be at least 1, not {replicas}")
        return _status(self._call("PUT", f"/deployments/{name}/scale", json={"replicas": replicas}))

    def _bundle(self, spec: DeploymentSpec) -> Path:
        """The serving build, pulled by digest once and shared by every replica of that digest."""
        dest = self.bundles_dir / spec.serving.digest.replace(":", "-")
        if not dest.is_dir():
            tmp = dest.with_name(dest.name + ".partial")
            pull_bundle(self.registry, spec.serving, tmp)
            tmp.rename(dest)
        return dest

    def _call(self, method: str, path: str, **kwargs) -> dict:
        headers = {"Authorization": f"Bearer {self._token.reveal()}"}
        try:
            response = httpx.request(method, self.admin_url + path, headers=headers, timeout=self.timeout_s, **kwargs)
        except httpx.HTTPError as exc:
            raise UnreachableError(f"deployer at {self.admin_url} did not answer ({type(exc).__name__})",
                                   hint="run `lastmile up`") from None
        if response.status_code == 401:
            raise AuthError(f"deployer at {self.admin_url} refused the token")
        if response.status_code == 404:
            raise NotFound(response.json().get("detail", path))
        if response.status_code == 409:
            raise UserError(response.json().get("detail", "conflict"))
        response.raise_for_status()
        return response.json()


def _revision(data: dict | None) -> Revision | None:
    if not data:
        return None
    return Revision(data["number"], data["serving_digest"], data["model_version"])


def _status(data: dict) -> DeploymentStatus:
    replicas = tuple(ReplicaStatus(r["name"], r["revision"], r["url"], r["state"], r["pid"], r["restarts"])
                     for r in data["replicas"])
    return DeploymentStatus(data["name"], data["endpoint"], _revision(data["revision"]), data["desired"],
                            data["ready"], replicas, data.get("message", ""))
