"""ModelRegistry over an MLflow tracking server (the stand-in locally, MLflow on OKE or a VM on OCI).

Training registers versions through MLflow's own client; this adapter reads versions, moves aliases and checks
a version's stored files against the sha256 digests training recorded in its ``lastmile.files`` tag."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import httpx
from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from adapters.shared.jobenv import CLIENT_LIMITS
from harness.domain.digests import FILES_TAG, file_problems
from harness.domain.errors import AuthError, CapacityError, NotFound, UnreachableError, UserError
from harness.domain.records import ModelVersion, Secret


def use_credentials(username: str, password: Secret | None) -> None:
    """Make MLflow's client in this process send basic-auth credentials.

    MLflow's REST client reads them only from ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``,
    per request, so they go there; a process talks to one tracking server. ``None`` (a server without
    auth) leaves the environment as it is.
    """
    if password is not None:
        os.environ["MLFLOW_TRACKING_USERNAME"] = username
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password.reveal()


class MlflowModelRegistry:
    def __init__(self, tracking_uri: str, username: str = "lastmile", password: Secret | None = None,
                 client_settings: Mapping[str, str] = CLIENT_LIMITS):
        """``client_settings``: MLflow client variables for this process (``jobenv.mlflow_client_settings``)."""
        self.tracking_uri = tracking_uri.rstrip("/")
        self.username = username
        self._password = password
        use_credentials(username, password)
        for variable, value in client_settings.items():
            os.environ.setdefault(variable, value)  # MLflow reads them per request, from the environment
        self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        self._checked = False

    def get_version(self, name: str, version: str) -> ModelVersion:
        self._ping()
        with _missing(f"model {name} version {version}", self.tracking_uri):
            return _version(self._client.get_model_version(name, version))

    def by_alias(self, name: str, alias: str) -> ModelVersion | None:
        self._ping()
        try:
            with _missing(f"model {name}@{alias}", self.tracking_uri):
                return _version(self._client.get_model_version_by_alias(name, alias))
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                return None
            raise
        except NotFound:
            return None

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._ping()
        with _missing(f"model {name} version {version}", self.tracking_uri):
            try:
                self._client.set_registered_model_alias(name, alias, version)
            except MlflowException as exc:
                if exc.error_code == "INVALID_PARAMETER_VALUE":
                    raise UserError(f"alias {alias!r} of model {name}: {exc.message}") from None
                raise

    def delete_alias(self, name: str, alias: str) -> None:
        self._ping()
        with _missing(f"alias {name}@{alias}", self.tracking_uri):
            self._client.delete_registered_model_alias(name, alias)

    def tag_version(self, name: str, version: str, key: str, value: str) -> None:
        self._ping()
        with _missing(f"model {name} version {version}", self.tracking_uri):
            self._client.set_model_version_tag(name, version, key, value)

    def verify(self, name: str, version: str) -> list[str]:
        """Download the version's files through MLflow as a deployer does; compare them with ``lastmile.files``."""
        self._ping()
        uri = f"models:/{name}/{version}"
        with _missing(f"model {name} version {version}", self.tracking_uri):
            recorded = (self._client.get_model_version(name, version).tags or {}).get(FILES_TAG)
            location = self._client.get_model_version_download_uri(name, version)
        if recorded is None:
            return [f"{uri} has no {FILES_TAG} tag: the digests of its files were not recorded at registration"]
        try:
            digests = json.loads(recorded)
        except ValueError:
            digests = None
        if type(digests) is not dict:
            return [f"{uri}: the {FILES_TAG} tag is not a JSON object of path: sha256 hex"]
        with tempfile.TemporaryDirectory(prefix="lastmile-verify-") as scratch:
            try:
                root = download_artifacts(artifact_uri=location, dst_path=scratch, tracking_uri=self.tracking_uri)
            except (MlflowException, OSError) as exc:
                return [f"{uri}: its files cannot be downloaded from {location}: {type(exc).__name__}: {exc}"]
            return [f"{uri}: {problem}" for problem in file_problems(digests, file_digests(Path(root)))]

    def _ping(self) -> None:
        """Fail in seconds, naming the endpoint; MLflow's own client retries a dead server for minutes.

        First, this registry's credentials go back into the environment MLflow's client reads them from: another
        registry in the same process (a second server, a test's) may have put its own there since."""
        use_credentials(self.username, self._password)
        if self._checked:
            return
        try:
            httpx.get(f"{self.tracking_uri}/health", timeout=5).raise_for_status()
            auth = None
            if os.environ.get("MLFLOW_TRACKING_PASSWORD"):
                auth = (os.environ.get("MLFLOW_TRACKING_USERNAME", ""), os.environ["MLFLOW_TRACKING_PASSWORD"])
            answer = httpx.get(f"{self.tracking_uri}/api/2.0/mlflow/experiments/search", auth=auth,
                               params={"max_results": 1}, timeout=10)
        except httpx.HTTPError as exc:
            raise UnreachableError(f"MLflow at {self.tracking_uri} did not answer ({type(exc).__name__})",
                                   url=self.tracking_uri) from None
        if answer.status_code in (401, 403):
            raise AuthError(f"MLflow at {self.tracking_uri} refused the credentials of user {self.username!r} "
                            f"({answer.status_code}); check ports.model_registry.username and password",
                            url=self.tracking_uri)
        self._checked = True


class _missing:
    """MLflow's errors as lastmile's: missing -> NotFound; a server that kept failing or throttling after the
    client's bounded retries -> CapacityError; one that did not answer -> UnreachableError."""

    def __init__(self, what: str, tracking_uri: str = ""):
        self.what, self.tracking_uri = what, tracking_uri

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, MlflowException):
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                raise NotFound(f"{self.what}: not found") from None
            text = str(exc)
            if "Max retries exceeded" in text or ("too many" in text and "error responses" in text) or \
                    exc.error_code in ("INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"):
                where = self.tracking_uri or "MLflow"
                if "NewConnectionError" in text or "Connection refused" in text:
                    raise UnreachableError(f"MLflow at {where} did not answer ({self.what})",
                                           url=self.tracking_uri or None) from None
                raise CapacityError(f"MLflow at {where} kept failing ({self.what}): {text.splitlines()[0][:200]}",
                                    url=self.tracking_uri or None) from None
        return False


def file_digests(root: Path) -> dict[str, str]:
    """``{relative POSIX path: sha256 hex}`` of every file under ``root``."""
    digests = {}
    for folder, _dirs, files in os.walk(root):
        for file in files:
            path = Path(folder, file)
            with path.open("rb") as stream:
                digests[path.relative_to(root).as_posix()] = hashlib.file_digest(stream, "sha256").hexdigest()
    return digests


def _version(mv) -> ModelVersion:
    return ModelVersion(
        name=mv.name, version=str(mv.version), run_id=mv.run_id, source=mv.source,
        tags=dict(mv.tags or {}), aliases=tuple(getattr(mv, "aliases", ()) or ()),
    )

