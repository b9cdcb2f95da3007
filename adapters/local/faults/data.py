"""Data faults on stored bytes: an object in the S3 stand-in, a blob in the registry stand-in.

``corrupt`` changes the bytes behind the store's back and keeps what the store recorded about them (an object's
``sha256`` metadata, a blob's digest), so that the reader's own check is what catches it; ``delete`` removes
them. The original bytes wait in ``<state_dir>/faults/<fault id>/`` until the revert puts them back, unless
something else wrote there since (then the revert leaves that alone and says so).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import yaml

from harness.domain.errors import AuthError, UnreachableError, UserError
from harness.domain.records import FaultEvidence, FaultSpec, sha256_hex

from .base import Applied, Profile, Settled
from .ledger import Record

_MISSING = {"NoSuchKey", "NoSuchBucket", "404", "NotFound"}
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def spoil(data: bytes) -> bytes:
    """Different bytes of the same length: every 4096th byte inverted (an empty object becomes one zero byte)."""
    if not data:
        return b"\0"
    out = bytearray(data)
    for index in range(0, len(out), 4096):
        out[index] ^= 0xFF
    return bytes(out)


class ObjectFaults(Settled):
    """``object:<bucket>/<key>``: S3 calls straight to the object store's own server (not through the fault proxy)."""

    def __init__(self, p: Profile):
        self.p = p

    def inject(self, fault_id: str, spec: FaultSpec) -> Applied:
        bucket, key = _object(spec.target)
        s3 = self._client()
        uri = f"s3://{bucket}/{key}"
        try:
            got = s3.get_object(Bucket=bucket, Key=key)
        except Exception as exc:
            raise self._explained(exc, s3, bucket, key) from None
        data = got["Body"].read()
        metadata, content_type = got.get("Metadata", {}), got.get("ContentType") or "binary/octet-stream"
        _keep(self.p.ledger.scratch(fault_id), data)
        state = {"bucket": bucket, "key": key, "metadata": metadata, "content_type": content_type}
        existed = f"{uri} existed ({len(data)} bytes)"
        if spec.action == "delete":
            s3.delete_object(Bucket=bucket, Key=key)
            return Applied(f"deleted {uri}", state, FaultEvidence(True, f"{existed} and was deleted"))
        put = s3.put_object(Bucket=bucket, Key=key, Body=spoil(data), Metadata=metadata, ContentType=content_type)
        state["etag"] = put["ETag"]
        recorded = metadata.get("sha256")
        kept = (f"its recorded sha256 {recorded[:12]}… kept, so a reader that checks it fails" if recorded else
                "it has no recorded sha256, so only a reader that knows its digest notices")
        return Applied(f"overwrote {uri} keeping its metadata", state,
                       FaultEvidence(True, f"{existed}; its bytes were overwritten and {kept}"))


    def revert(self, record: Record) -> str:
        state, folder = record.state, self.p.ledger.folder / record.id
        bucket, key, uri = state["bucket"], state["key"], f"s3://{state['bucket']}/{state['key']}"
        s3 = self._client()
        try:
            current = s3.head_object(Bucket=bucket, Key=key)["ETag"]
        except Exception as exc:
            if _code(exc) not in _MISSING:
                raise
            current = None
        ours = current is None if record.spec.action == "delete" else current in (None, state.get("etag"))
        if not ours:
            shutil.rmtree(folder, ignore_errors=True)
            return f"{uri} was written again since the fault; left as it is"
        s3.put_object(Bucket=bucket, Key=key, Body=(folder / "original").read_bytes(), Metadata=state["metadata"],
                      ContentType=state["content_type"])
        shutil.rmtree(folder, ignore_errors=True)
        return f"{uri} restored with its metadata"

    def _client(self):
        import boto3
        from botocore.config import Config

        cfg = self.p.h.settings.ports.object_store
        access = cfg.s3_access(self.p.h)
        if access is None or not access.endpoint:
            raise UserError(f"object faults need an object store with an S3 API; the {cfg.flavor} flavor has none "
                            f"configured")
        return boto3.client(
            "s3", endpoint_url=self._direct(access.endpoint), region_name=access.region,
            aws_access_key_id=access.access_key_id.reveal() if access.access_key_id else None,
            aws_secret_access_key=access.secret_access_key.reveal() if access.secret_access_key else None,
            config=Config(request_checksum_calculation="when_required", response_checksum_validation="when_required",
                          s3={"addressing_style": "path"}, connect_timeout=3, read_timeout=30,
                          retries={"max_attempts": 2, "mode": "standard"}))

    def _direct(self, endpoint: str) -> str:
        """The S3 endpoint on its server's own address, not through the fault proxy (on oci-local, the OCI API
        stand-in's ``/s3``)."""
        route = self.p.route_for("object_store")
        public = self.p.h.endpoints().urls.get(route, "").rstrip("/")
        if not public or not endpoint.startswith(public):
            return endpoint
        return self.p.direct_url(route, None).rstrip("/") + endpoint[len(public):]

    def _explained(self, exc: Exception, s3, bucket: str, key: str) -> Exception:
        """A missing object or bucket as one line naming what exists; anything else unchanged."""
        if _code(exc) == "NoSuchBucket":
            buckets = ", ".join(sorted(b["Name"] for b in s3.list_buckets().get("Buckets", []))) or "none"
            return UserError(f"object:{bucket}/{key}: no bucket {bucket}; buckets: {buckets}")
        if _code(exc) in _MISSING:
            listed = s3.list_objects_v2(Bucket=bucket, MaxKeys=6).get("Contents", [])
            keys = ", ".join(item["Key"] for item in listed[:5]) + (", …" if len(listed) > 5 else "")
            return UserError(f"object:{bucket}/{key}: no such object in {bucket}; it holds: {keys or 'nothing'}")
        return exc


class BlobFaults(Settled):
    """``blob:<repository>@<digest>``: a corrupt blob is rewritten in the registry stand-in's storage; a deleted one
    goes through the Distribution API (``DELETE /v2/<name>/blobs/<digest>``, enabled on the stand-in), which unlinks
    it from that repository. Blob storage is shared by digest: a corrupt blob is corrupt in every repository."""

    def __init__(self, p: Profile):
        self.p = p

    def inject(self, fault_id: str, spec: FaultSpec) -> Applied:
        repository, digest = _blob(spec.target)
        with self._registry() as registry:
            self._require(registry, spec.target, repository, digest)
            if spec.action == "delete":
                data = registry.get(f"/v2/{repository}/blobs/{digest}").raise_for_status().content
                _keep(self.p.ledger.scratch(fault_id), data)
                answer = registry.delete(f"/v2/{repository}/blobs/{digest}")
                if answer.status_code != 202:
                    raise UserError(f"{spec.target}: the registry refused the delete ({answer.status_code} "
                                    f"{answer.text[:200].strip()})")
                return Applied(f"deleted {digest[:19]} from {repository}", {"repository": repository, "digest": digest},
                               FaultEvidence(True, f"{spec.target} existed ({len(data)} bytes) and was deleted"))
        path = self._storage(spec.target) / "docker/registry/v2/blobs/sha256" / digest[7:9] / digest[7:] / "data"
        data = path.read_bytes()
        _keep(self.p.ledger.scratch(fault_id), data)
        spoiled = spoil(data)
        _replace(path, spoiled)
        return Applied(f"overwrote {digest[:19]} in the registry's storage",
                       {"repository": repository, "digest": digest, "path": str(path), "spoiled": sha256_hex(spoiled)},
                       FaultEvidence(True, f"{spec.target} existed ({len(data)} bytes); its stored bytes were "
                                           f"overwritten, so a reader that checks its digest fails"))


    def revert(self, record: Record) -> str:
        state, folder = record.state, self.p.ledger.folder / record.id
        repository, digest = state["repository"], state["digest"]
        original = (folder / "original").read_bytes()
        if record.spec.action == "corrupt":
            path = Path(state["path"])
            if not path.is_file() or sha256_hex(path.read_bytes()) != state["spoiled"]:
                outcome = f"blob {digest[:19]} changed in the registry's storage since the fault; left as it is"
            else:
                _replace(path, original)
                outcome = f"blob {digest[:19]} restored in the registry's storage"
        else:
            with self._registry() as registry:
                if registry.head(f"/v2/{repository}/blobs/{digest}").status_code == 200:
                    outcome = f"blob {digest[:19]} was pushed to {repository} again since the fault; left as it is"
                else:
                    registry.upload(repository, digest, original)
                    outcome = f"blob {digest[:19]} pushed to {repository} again"
        shutil.rmtree(folder, ignore_errors=True)
        return outcome

    def _registry(self) -> _Registry:
        from adapters.local.flavors import DistributionRegistry

        cfg = self.p.h.settings.ports.artifact_registry
        if not isinstance(cfg, DistributionRegistry):
            raise UserError(f"blob faults need the distribution registry flavor, not {cfg.flavor}")
        password = self.p.h.secret(cfg.password).reveal()
        return _Registry(self.p.direct_url("registry", cfg.endpoint), cfg.username, password)

    def _require(self, registry: _Registry, target: str, repository: str, digest: str) -> None:
        if registry.head(f"/v2/{repository}/blobs/{digest}").status_code == 200:
            return
        catalog = registry.get("/v2/_catalog")
        names = ", ".join(catalog.json().get("repositories") or []) if catalog.status_code == 200 else "unknown"
        raise UserError(f"{target}: the registry has no such blob in {repository}; repositories: {names or 'none'}")

    def _storage(self, target: str) -> Path:
        """The registry stand-in's storage root, as its own config file says."""
        if getattr(self.p.h.settings.ports.artifact_registry, "endpoint", None):
            raise UserError(f"{target}: corrupting a blob needs the registry stand-in's storage, and the profile "
                            f"names a registry endpoint of its own")
        [standin] = [s for s in self.p.h.standins() if s.name == "registry"]
        config = yaml.safe_load((standin.home / "config.yml").read_text())
        return Path(config["storage"]["filesystem"]["rootdirectory"])


class _Registry(httpx.Client):
    """Plain Distribution API calls with the registry's credentials."""

    def __init__(self, url: str, username: str, password: str):
        super().__init__(base_url=url, auth=(username, password), timeout=30.0)
        self.url = url

    def request(self, method, url, *args, **kwargs) -> httpx.Response:
        try:
            answer = super().request(method, url, *args, **kwargs)
        except httpx.TransportError as exc:
            raise UnreachableError(f"the registry at {self.url} did not answer ({type(exc).__name__})") from None
        if answer.status_code == 401:
            raise AuthError(f"the registry at {self.url} refused its credentials")
        return answer

    def upload(self, repository: str, digest: str, data: bytes) -> None:
        """A monolithic upload: open an upload session, then PUT the bytes with their digest."""
        started = self.post(f"/v2/{repository}/blobs/uploads/")
        started.raise_for_status()
        location = httpx.URL(self.url).join(started.headers["Location"]).copy_merge_params({"digest": digest})
        self.put(location, content=data, headers={"Content-Type": "application/octet-stream"}).raise_for_status()


def _object(target: str) -> tuple[str, str]:
    bucket, _, key = target.partition(":")[2].partition("/")
    if not bucket or not key:
        raise UserError(f"{target!r}: an object target is object:<bucket>/<key>")
    return bucket, key


def _blob(target: str) -> tuple[str, str]:
    repository, _, digest = target.partition(":")[2].rpartition("@")
    if not repository or not _DIGEST.match(digest):
        raise UserError(f"{target!r}: a blob target is blob:<repository>@sha256:<64 hex digits>")
    return repository, digest


def _keep(folder: Path, data: bytes) -> None:
    path = folder / "original"
    path.touch(mode=0o600)
    path.write_bytes(data)


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` beside ``path`` and rename it over, so that a reader sees the old bytes or the new."""
    temporary = path.with_name(path.name + ".lastmile-fault")
    temporary.write_bytes(data)
    temporary.replace(path)


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
