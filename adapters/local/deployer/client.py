"""The Deployer port for the local profile: a client of the deployment controller's admin API."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import httpx

from harness.domain.errors import AuthError, NotFound, UnreachableError, UserError
from harness.domain.records import (
    DeploymentSpec,
    DeploymentStatus,
    ModelVersion,
    ReplicaMetrics,
    ReplicaStatus,
    Revision,
    Secret,
)
from harness.infra.bundle import pull_bundle


class LocalDeployer:
    """Deployer over the local controller's admin API (the OKE stand-in)."""

    def __init__(self, admin_url: str, token: Secret, registry, bundles_dir: Path, env: dict[str, str],
                 timeout_s: float, mlflow_credentials: tuple[str, Secret] | None = None, runtime: str = "process"):
        """``env`` goes to every replica (it is kept in the controller's state): never a secret in it.
        ``mlflow_credentials`` are for this process's own download of a model version. ``runtime`` is the
        controller's: ``process`` replicas run the serving bundle, pulled here; ``container`` ones the serving
        image, which the request names and nothing here pulls."""
        self.admin_url = admin_url.rstrip("/")
        self._mlflow_credentials = mlflow_credentials
        self._token = token
        self.registry = registry
        self.bundles_dir = bundles_dir
        self.env = env
        self.timeout_s = timeout_s
        self.runtime = runtime
        self._http: httpx.Client | None = None

    def deploy(self, spec: DeploymentSpec) -> Revision:
        serving = {"image": str(spec.serving)} if self.runtime == "container" else \
            {"bundle_dir": str(self._bundle(spec))}
        reference = {"rows": [dict(r) for r in spec.reference.rows], "predictions": list(spec.reference.predictions)}
        model_dir = self._model_dir(spec.model)
        if self.runtime == "container":
            _readable_by_all(model_dir)  # the containers' user is the image's, not this one
        env = {**self.env, "LASTMILE_SERVING_MODEL_DIR": str(model_dir),
               "LASTMILE_SERVING_REFERENCE": json.dumps(reference)}
        body = {"serving_digest": spec.serving.digest, **serving, "model_name": spec.model.name,
                "model_version": spec.model.version, "env": env, "replicas": spec.replicas}
        return _revision(self._call("PUT", f"/deployments/{spec.name}", json=body)["revision"])

    def status(self, name: str) -> DeploymentStatus:
        return _status(self._call("GET", f"/deployments/{name}"))

    def rollback(self, name: str) -> Revision:
        return _revision(self._call("POST", f"/deployments/{name}/rollback")["revision"])

    def scale(self, name: str, replicas: int) -> DeploymentStatus:
        if replicas < 1:
            raise UserError(f"deployment {name}: replicas must be at least 1, not {replicas}")
        return _status(self._call("PUT", f"/deployments/{name}/scale", json={"replicas": replicas}))

    def replica_metrics(self, name: str) -> tuple[ReplicaMetrics, ...]:
        data = self._call("GET", f"/deployments/{name}/metrics")
        return tuple(ReplicaMetrics(r["replica"], r["state"], r["text"]) for r in data["replicas"])

    def _bundle(self, spec: DeploymentSpec) -> Path:
        """The serving build, pulled by digest once and shared by every replica of that digest."""
        dest = self.bundles_dir / spec.serving.digest.replace(":", "-")
        if not dest.is_dir():
            self.bundles_dir.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=self.bundles_dir))
            try:
                pull_bundle(self.registry, spec.serving, tmp)
                _settle(tmp, dest)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return dest

    def _model_dir(self, model: ModelVersion) -> Path:
        """The version's files, downloaded from MLflow once per version, so that a replica (a restart
        included) starts from local files in a second or two instead of importing MLflow and downloading."""
        dest = self.bundles_dir.parent / "models" / model.name / model.version
        if dest.is_dir():
            return dest
        self.bundles_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=self.bundles_dir.parent))
        try:
            path = download_model_version(self.env["MLFLOW_TRACKING_URI"], model, tmp, self._mlflow_credentials)
            dest.parent.mkdir(parents=True, exist_ok=True)
            _settle(path, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dest

    def _call(self, method: str, path: str, **kwargs) -> dict:
        headers = {"Authorization": f"Bearer {self._token.reveal()}"}
        if self._http is None:  # one client for every call: each new one builds an SSL context, ~50 ms of CPU
            self._http = httpx.Client(timeout=self.timeout_s)
        try:
            response = self._http.request(method, self.admin_url + path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise UnreachableError(f"deployer at {self.admin_url} did not answer ({type(exc).__name__})",
                                   url=self.admin_url, hint="run `lastmile up`") from None
        status = response.status_code
        if status in (401, 403):
            raise AuthError(f"deployer at {self.admin_url} refused the token ({status})", url=self.admin_url,
                            secret_ref="secret:deployer-token")
        if status in (404, 409):  # 409: no previous revision to roll back to
            raise NotFound(_detail(response, path))
        if status == 422:
            raise UserError(f"deployer at {self.admin_url} refused the request: {_detail(response, path)}")
        if status >= 500:
            raise UnreachableError(f"deployer at {self.admin_url} failed ({status}: {_detail(response, path)})",
                                   url=self.admin_url, hint="read .lastmile/logs/deployer.log")
        if status >= 300:
            raise UserError(f"deployer at {self.admin_url} answered {status} to {method} {path}")
        return response.json()


def _detail(response: httpx.Response, default: str) -> str:
    """The admin API's ``detail`` when the body is its JSON, else the start of the body."""
    try:
        detail = response.json().get("detail", default)
    except (ValueError, AttributeError):
        return response.text[:300] or default
    return detail if isinstance(detail, str) else json.dumps(detail)[:300]


def download_model_version(tracking_uri: str, model: ModelVersion, into: Path,
                           credentials: tuple[str, Secret] | None = None) -> Path:
    """Download a registered version's files under ``into`` and write the ``version.json`` that the serving
    app's ``LASTMILE_SERVING_MODEL_DIR`` mode reads next to ``MLmodel``; returns that directory."""
    from mlflow.artifacts import download_artifacts
    from mlflow.tracking import MlflowClient

    from adapters.local.mlflow_registry import use_credentials

    if credentials is not None:
        use_credentials(*credentials)

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    location = client.get_model_version_download_uri(model.name, model.version)
    path = Path(download_artifacts(artifact_uri=location, dst_path=str(into), tracking_uri=tracking_uri))
    record = {"name": model.name, "version": model.version, "run_id": model.run_id, "source": model.source,
              "tags": dict(model.tags)}
    (path / "version.json").write_text(json.dumps(record, indent=2))
    return path


def _readable_by_all(directory: Path) -> None:
    """Let any user read a model copy (its files are the registry's, no secret): a replica container runs as its
    image's user, who owns none of it."""
    for entry in [directory, *directory.rglob("*")]:
        mode = entry.stat().st_mode
        wanted = mode | (0o555 if entry.is_dir() else 0o444)
        if wanted != mode:
            entry.chmod(wanted)


def _settle(tmp: Path, dest: Path) -> None:
    """Move a finished download into place; when another process got there first, theirs is as good."""
    try:
        tmp.rename(dest)
    except OSError:
        if not dest.is_dir():
            raise


def _revision(data: dict) -> Revision:
    return Revision(data["number"], data["serving_digest"], data["model_version"])


def _status(data: dict) -> DeploymentStatus:
    replicas = tuple(ReplicaStatus(r["name"], r["revision"], r["state"], r["restarts"], r.get("detail", ""),
                                   r.get("address"), r.get("pid"), r.get("container"))
                     for r in data["replicas"])
    revision = _revision(data["revision"]) if data["revision"] else None
    return DeploymentStatus(data["name"], data["endpoint"], revision, data["desired"], data["ready"], replicas,
                            data.get("message", ""), data.get("standby", ""))
