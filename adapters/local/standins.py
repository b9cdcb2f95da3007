"""The local profile's stand-ins: an S3 server, a Distribution registry and an MLflow server."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import bcrypt
import httpx
import yaml

from harness.config.settings import Settings
from harness.domain.errors import UserError
from harness.domain.ports import SecretStore
from harness.domain.records import SecretRef
from harness.infra.standin import Endpoints, StandIn, http_status

log = logging.getLogger("lastmile.standins")

DEPLOYER_TOKEN = SecretRef.parse("secret:deployer-token")
MLFLOW_FLASK_KEY = SecretRef.parse("secret:mlflow-flask-key")  # signs the auth app's CSRF tokens
ACCESS_KEY = SecretRef.parse("secret:s3-access-key-id")
SECRET_KEY = SecretRef.parse("secret:s3-secret-access-key")


class ObjectStoreStandIn(StandIn):
    """moto's S3 server, or a ``minio`` binary when one is on PATH (``server: auto``)."""

    name = "object_store"

    def __init__(self, port: int, state_dir: Path, server: str, buckets: list[str], secrets: SecretStore):
        super().__init__(port, state_dir)
        self.server = ("minio" if shutil.which("minio") else "moto") if server == "auto" else server
        self.binary = "minio" if self.server == "minio" else None
        self.install_hint = "put a minio binary on PATH, or set standins.object_store.server: moto"
        self.buckets = buckets
        self.secrets = secrets

    @property
    def recording(self) -> Path:
        return self.home / "recording.jsonl"

    def prepare(self, port: int) -> None:
        self.secrets.ensure(ACCESS_KEY, 12)
        self.secrets.ensure(SECRET_KEY, 24)
        if self.server == "moto":
            _compact_recording(self.recording, port)

    def command(self, port: int, endpoints: Endpoints) -> list[str]:
        if self.server == "minio":
            return ["minio", "server", str(self.home / "data"), "--address", f"127.0.0.1:{port}",
                    "--console-address", "127.0.0.1:0", "--quiet"]
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]

    def environment(self, endpoints: Endpoints) -> dict[str, str]:
        if self.server != "minio":
            # moto keeps objects in memory; its recorder appends every request to a file, and the
            # mutating ones are replayed on the next start, so objects outlive `lastmile down`.
            return {"MOTO_ENABLE_RECORDING": "true", "MOTO_RECORDER_FILEPATH": str(self.recording)}
        return {"MINIO_ROOT_USER": self.secrets.resolve(ACCESS_KEY).reveal(),
                "MINIO_ROOT_PASSWORD": self.secrets.resolve(SECRET_KEY).reveal()}

    def is_ready(self, url: str) -> bool:
        path = "/minio/health/live" if self.server == "minio" else "/moto-api/"
        return http_status(url + path) == 200

    def after_ready(self, url: str) -> None:
        from adapters.local.s3 import S3ObjectStore

        if self.server == "moto" and self.recording.exists() and self.recording.stat().st_size:
            httpx.post(url + "/moto-api/recorder/replay-recording", timeout=120).raise_for_status()

        store = S3ObjectStore(url, "us-east-1", self.secrets.resolve(ACCESS_KEY), self.secrets.resolve(SECRET_KEY))
        for bucket in self.buckets:
            store.ensure_bucket(bucket)


class RegistryStandIn(StandIn):
    """The CNCF Distribution registry (Debian's ``docker-registry``) with htpasswd auth."""

    name = "registry"
    binary = "docker-registry"
    install_hint = "install it with: apt-get install docker-registry"

    def __init__(self, port: int, state_dir: Path, username: str, password_ref: str, secrets: SecretStore):
        super().__init__(port, state_dir)
        self.username = username
        self.password_ref = SecretRef.parse(password_ref)
        self.secrets = secrets

    def prepare(self, port: int) -> None:
        password = self.secrets.ensure(self.password_ref).reveal()
        htpasswd = self.home / "htpasswd"
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
        _write_private(htpasswd, f"{self.username}:{hashed}\n")
        config = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "json", "fields": {"service": "registry"}},
            "storage": {"filesystem": {"rootdirectory": str(self.home / "data")}, "delete": {"enabled": True}},
            "http": {"addr": f"127.0.0.1:{port}", "headers": {"X-Content-Type-Options": ["nosniff"]}},
            "auth": {"htpasswd": {"realm": "lastmile-registry", "path": str(htpasswd)}},
        }
        _write_private(self.home / "config.yml", yaml.safe_dump(config))

    def command(self, port: int, endpoints: Endpoints) -> list[str]:
        return ["docker-registry", "serve", str(self.home / "config.yml")]

    def is_ready(self, url: str) -> bool:
        return http_status(url + "/v2/") == 401


class MlflowStandIn(StandIn):
    """MLflow tracking and registry; SQLite or PostgreSQL; artifacts proxied into object storage.

    MLflow's basic-auth app guards every route but ``/health``: the registry moves ``@champion``, so calls
    need the admin user named in config, whose password is generated into the secret store on first ``up``.
    Its user store is SQLite under ``.lastmile/mlflow/``; checked credentials are cached for a minute, since
    each check is a PBKDF2 hash (0.3 s) and a training run makes dozens of calls.
    """

    name = "mlflow"
    start_timeout_s = 60.0

    def __init__(self, port: int, state_dir: Path, artifacts_bucket: str, database_ref: str | None,
                 secrets: SecretStore, username: str = "lastmile", password_ref: str = "secret:mlflow-password",
                 artifact_store: Callable[[], dict[str, str]] | None = None):
        """``artifact_store`` gives the S3 client environment of the profile's object store when it is not the
        S3 stand-in (on oci-local: OCI's S3 compatibility API on the OCI API stand-in, with a customer secret
        key); without it, or when it gives nothing, MLflow's artifacts go to the S3 stand-in."""
        super().__init__(port, state_dir)
        self.artifact_store = artifact_store
        self.artifacts_bucket = artifacts_bucket
        self.database_ref = SecretRef.parse(database_ref) if database_ref else None
        self.secrets = secrets
        self.username = username
        self.password_ref = SecretRef.parse(password_ref)

    @property
    def auth_config(self) -> Path:
        return self.home / "basic_auth.ini"

    def prepare(self, port: int) -> None:
        self.secrets.ensure(self.password_ref)
        self.secrets.ensure(MLFLOW_FLASK_KEY, 32)
        # MLflow's auth database holds the users' password hashes: private like every other credential file.
        for database in (self.home / "basic_auth.db", self.home / "mlflow.db"):
            database.touch(mode=0o600, exist_ok=True)
            database.chmod(0o600)
        # No secret in this file: the admin password reaches MLflow through its environment.
        _write_private(self.auth_config, "\n".join([
            "[mlflow]",
            "default_permission = NO_PERMISSIONS",
            f"database_uri = sqlite:///{self.home / 'basic_auth.db'}",
            f"admin_username = {self.username}",
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
            "auth_cache_ttl_seconds = 60",
            ""]))

    def _backend(self) -> str:
        if self.database_ref:
            return self.secrets.resolve(self.database_ref).reveal()
        return f"sqlite:///{self.home / 'mlflow.db'}"

    def command(self, port: int, endpoints: Endpoints) -> list[str]:
        return [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth",
                "--host", "127.0.0.1", "--port", str(port),
                "--workers", "1", "--backend-store-uri", self._backend(),
                "--artifacts-destination", f"s3://{self.artifacts_bucket}"]

    def environment(self, endpoints: Endpoints) -> dict[str, str]:
        store = self.artifact_store() if self.artifact_store else {}
        return {
            **(store or {"MLFLOW_S3_ENDPOINT_URL": endpoints["object_store"],
                         "AWS_ACCESS_KEY_ID": self.secrets.resolve(ACCESS_KEY).reveal(),
                         "AWS_SECRET_ACCESS_KEY": self.secrets.resolve(SECRET_KEY).reveal(),
                         "AWS_DEFAULT_REGION": "us-east-1"}),
            # The job executor (GenAI jobs) starts eight extra processes; the pipeline uses none of them.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_AUTH_CONFIG_PATH": str(self.auth_config),
            "MLFLOW_AUTH_ADMIN_PASSWORD": self.secrets.resolve(self.password_ref).reveal(),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": self.secrets.resolve(MLFLOW_FLASK_KEY).reveal(),
        }

    def is_ready(self, url: str) -> bool:
        return http_status(url + "/health") == 200


class DeployerStandIn(StandIn):
    """The OKE stand-in: a deployment controller (admin API, route ``deployer``) and the Service it fronts
    (route ``service``, the deployment's stable endpoint).

    Replicas inherit its environment, which carries the object store's credentials (as a Kubernetes Secret
    would), so that they ship their prediction samples; the revision's own environment holds no secret. With
    a fault proxy up, the controller routes to each replica through a proxy of its own (``replica-<name>``)."""

    name = "deployer"

    def __init__(self, port: int, state_dir: Path, service_port: int, deployment: str, cfg, secrets: SecretStore,
                 sample_store: Callable[[], dict[str, str]] | None = None):
        """``sample_store`` gives the credentials the replicas' S3 client needs for the profile's object store."""
        super().__init__(port, state_dir)
        self.service_port = service_port
        self.deployment = deployment
        self.cfg = cfg
        self.secrets = secrets
        self.sample_store = sample_store
        # The oke flavor on the oci-local profile runs this controller too and has no choice of balancer.
        self.balancer = getattr(cfg, "balancer", "haproxy")
        if self.balancer == "haproxy":
            self.binary = "haproxy"
            self.install_hint = "apt-get install haproxy (Debian/Ubuntu), or set ports.deployer.balancer: python"
        self.runtime = getattr(cfg, "runtime", "process")  # the docker flavor's replicas are containers

    def check_installed(self) -> None:
        super().check_installed()
        if self.runtime == "container" and not shutil.which("docker"):
            raise UserError("deployer: replicas run as containers and the 'docker' client is not on PATH",
                            hint="install the Docker CLI (apt-get install docker.io), or use the local deployer")

    kube_port: int | None = None
    """With a port, the controller also serves its Kubernetes API front door (route ``kubeapi``), accepting the
    OKE tokens the OCI API stand-in verifies when that stand-in runs."""

    def public_ports(self) -> dict[str, int]:
        kube = {"kubeapi": self.kube_port} if self.kube_port else {}
        return {self.name: self.port, "service": self.service_port, **kube}

    def prepare(self, port: int) -> None:
        token = self.secrets.ensure(DEPLOYER_TOKEN, 32).reveal()
        # Only the digest leaves the secret store: the controller compares digests (the token is 256 random bits).
        _write_private(self.home / "token.sha256", hashlib.sha256(token.encode()).hexdigest())

    def command(self, port: int, endpoints: Endpoints) -> list[str]:
        cfg = self.cfg
        service = self.internal.get("service", self.service_port)
        command = [sys.executable, "-m", "adapters.local.deployer", "--port", str(port),
                   "--service-port", str(service),
                   "--service-url", f"http://127.0.0.1:{self.public.get('service', service)}",
                   "--state-dir", str(self.home),
                   "--token-sha256-file", str(self.home / "token.sha256"), "--name", self.deployment,
                   "--replicas", str(cfg.replicas), "--max-surge", str(cfg.max_surge),
                   "--max-unavailable", str(cfg.max_unavailable), "--balancer", self.balancer,
                   "--runtime", self.runtime]
        if "faults" in endpoints.urls:
            command += ["--fault-proxy", endpoints["faults"]]
        if self.kube_port:
            command += ["--kube-port", str(self.internal.get("kubeapi", self.kube_port)),
                        "--cluster-id", getattr(cfg, "cluster_id", "")]
            if "oci" in endpoints.urls:
                command += ["--oke-token-verifier", endpoints["oci"]]
        return command

    def environment(self, endpoints: Endpoints) -> dict[str, str]:
        if self.sample_store is not None:
            return self.sample_store()
        return {"AWS_ACCESS_KEY_ID": self.secrets.resolve(ACCESS_KEY).reveal(),
                "AWS_SECRET_ACCESS_KEY": self.secrets.resolve(SECRET_KEY).reveal(),
                "AWS_DEFAULT_REGION": "us-east-1"}

    def is_ready(self, url: str) -> bool:
        return http_status(url + "/healthz") == 200


class FaultProxyStandIn(StandIn):
    """The front: lastmile's Toxiproxy-compatible fault proxy, with one proxy per route of every other stand-in
    (named after the route: object_store, registry, mlflow, deployer, service) on the route's public port."""

    name = "faults"
    front = True

    @property
    def state_file(self) -> Path:
        return self.home / "proxies.json"

    def _saved(self) -> list[dict]:
        try:
            saved = json.loads(self.state_file.read_text())
        except (FileNotFoundError, ValueError):
            return []
        return saved if isinstance(saved, list) else []

    def command(self, port: int, endpoints: Endpoints) -> list[str]:
        return [sys.executable, "-m", "adapters.local.faultproxy", "--host", "127.0.0.1", "--port", str(port),
                "--state", str(self.state_file)]

    def is_ready(self, url: str) -> bool:
        return http_status(url + "/version") == 200

    def apply_routes(self, url: str, routes: dict[str, tuple[int, int]]) -> None:
        """Before it starts (``url`` empty): the proxies it restores at start; once up: the same, through its API
        (a proxy whose route did not change keeps its toxics)."""
        proxies = {route: (f"127.0.0.1:{public}", f"127.0.0.1:{internal}")
                   for route, (public, internal) in sorted(routes.items())}
        if not url:
            # Keep the proxies others made (the controller's replica-* routes): a restarted front restores them.
            kept = [p for p in self._saved() if p.get("name") not in proxies]
            routed = [{"name": name, "listen": listen, "upstream": upstream, "enabled": True}
                      for name, (listen, upstream) in proxies.items()]
            self.home.mkdir(parents=True, exist_ok=True)
            self.state_file.write_text(json.dumps(routed + kept, indent=2))
            return
        from adapters.local.faultproxy.client import FaultProxyClient

        with FaultProxyClient(url) as client:
            for name, (listen, upstream) in proxies.items():
                client.ensure_proxy(name, upstream, listen)


def standins(settings: Settings, secrets: SecretStore,
             sample_store: Callable[[], dict[str, str]] | None = None,
             artifact_store: Callable[[], dict[str, str]] | None = None, s3_standin: bool = True) -> list[StandIn]:
    """The stand-ins of a ``processes`` profile, in start order. ``s3_standin`` is False when no port uses the S3
    stand-in (oci-local: object storage is the OCI API stand-in's); MLflow's artifacts then go where
    ``artifact_store`` says."""
    cfg, state = settings.standins, settings.state_dir
    registry, tracking = settings.ports.artifact_registry, settings.ports.model_registry
    b = settings.buckets
    front: list[StandIn] = [FaultProxyStandIn(cfg.faults.port, state)] if cfg.faults.enabled else []
    deployer = DeployerStandIn(cfg.deployer.port, state, cfg.deployer.service_port, settings.project,
                               settings.ports.deployer, secrets, sample_store)
    deployer.kube_port = cfg.deployer.kube_port
    return [
        *front,
        *([ObjectStoreStandIn(cfg.object_store.port, state, cfg.object_store.server,
                              [b.data, b.artifacts, b.predictions], secrets)] if s3_standin else []),
        RegistryStandIn(cfg.registry.port, state, _login(registry), _password_ref(registry), secrets),
        MlflowStandIn(cfg.mlflow.port, state, b.artifacts, cfg.mlflow.database_url, secrets,
                      getattr(tracking, "username", "lastmile"),
                      getattr(tracking, "password", None) or "secret:mlflow-password", artifact_store),
        deployer,
    ]


def _login(registry) -> str:
    """The user a registry flavor logs in as: OCIR's ``<namespace>/<user>``, else its username."""
    username = getattr(registry, "username", "lastmile")
    namespace = getattr(registry, "namespace", "")
    return username if "/" in username or not namespace else f"{namespace}/{username}"


def _password_ref(registry) -> str:
    return getattr(registry, "password", None) or getattr(registry, "auth_token", None) or "secret:registry-password"


def _compact_recording(recording: Path, port: int) -> None:
    """Keep the requests that changed state, pointed at this start's port; reads need no replay.

    moto's recorder appends from the server's threads without a lock, so under concurrent writes (replicas shipping
    samples at a thousand requests a second) two entries can share a line, or one be cut by another: the whole
    entries on such a line are kept, the broken ones skipped and the lines counted in a warning."""
    if not recording.exists():
        return
    entries, damaged = _recorded_entries(recording.read_text(encoding="utf-8", errors="replace"))
    if damaged:
        log.warning("the S3 stand-in's recording had %d damaged lines (concurrent writes); they are not replayed, "
                    "so an object they wrote may be missing", damaged)
    kept = []
    for entry in entries:
        if entry.get("method") in ("PUT", "POST", "DELETE") and isinstance(entry.get("url"), str):
            url = urlsplit(entry["url"])
            entry["url"] = urlunsplit((url.scheme or "http", f"127.0.0.1:{port}", url.path, url.query, ""))
            kept.append(json.dumps(entry))
    tmp = recording.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    tmp.replace(recording)


def _recorded_entries(text: str) -> tuple[list[dict], int]:
    """The whole entries of a recording (several on one line included), and how many lines held a broken one.

    A line that does not parse is searched for the next ``{`` that starts a whole JSON object: an entry glued on
    after the broken one is found so; the broken one's own inner objects (its headers) are no entries."""
    decoder, entries, damaged = json.JSONDecoder(), [], 0
    for line in text.splitlines():
        at, broken = 0, False
        while (start := line.find("{", at)) >= 0:
            broken |= bool(line[at:start].strip())
            try:
                entry, at = decoder.raw_decode(line, start)
            except ValueError:
                broken, at = True, start + 1
                continue
            if isinstance(entry, dict) and "method" in entry and "url" in entry:
                entries.append(entry)
        damaged += broken or bool(line[at:].strip())
    return entries, damaged


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)
