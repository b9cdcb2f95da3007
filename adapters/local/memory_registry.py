"""In-memory registries: an OCI artifact registry, a builder that pushes to it, and an MLflow-like model registry.

Re-exported from :mod:`adapters.local.memory`; import them from there.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from pathlib import Path
from typing import Callable, Mapping, Sequence

from harness.errors import IntegrityError, NotFound, UserError
from harness.records import ArtifactRef, BuildRef, Descriptor, ModelVersion, TrackedRun, oci_digest, sha256_hex

_OCI_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_MLFLOW_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)
_RUN_END_STATUSES = ("FINISHED", "FAILED", "KILLED")

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
EMPTY_CONFIG_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
BUNDLE_MEDIA_TYPE = "application/vnd.lastmile.bundle.v1+json"


def canonical_json(value: Mapping) -> bytes:
    """The bytes a manifest is stored and digested as."""
    return json.dumps(dict(value), sort_keys=True, separators=(",", ":")).encode()


class MemoryRegistry:
    """An OCI registry in dicts. Blobs and manifests are kept per repository, as in a real registry."""

    def __init__(self, registry: str = "memory.invalid"):
        self._registry = registry
        self.blobs: dict[tuple[str, str], bytes] = {}
        self.manifests: dict[tuple[str, str], bytes] = {}
        self.tags: dict[tuple[str, str], str] = {}
        self.pushes = 0

    @property
    def registry(self) -> str:
        return self._registry

    def has_blob(self, repository: str, digest: str) -> bool:
        return (repository, digest) in self.blobs

    def push_blob(self, repository: str, data: bytes) -> str:
        digest = oci_digest(data)
        if (repository, digest) not in self.blobs:
            self.blobs[repository, digest] = bytes(data)
            self.pushes += 1
        return digest

    def fetch_blob(self, repository: str, digest: str) -> bytes:
        try:
            data = self.blobs[repository, digest]
        except KeyError:
            raise NotFound(f"blob {digest} not found in {self._registry}/{repository}") from None
        if oci_digest(data) != digest:
            raise IntegrityError(f"blob {self._registry}/{repository}@{digest} does not match its digest")
        return data

    def push_manifest(self, repository: str, manifest: Mapping, tag: str | None = None) -> ArtifactRef:
        if tag is not None and not _OCI_TAG.match(tag):
            raise UserError(f"invalid tag {tag!r} for {self._registry}/{repository}")
        for digest in _referenced_blobs(manifest):
            if not self.has_blob(repository, digest):
                raise NotFound(f"manifest references blob {digest} unknown to {self._registry}/{repository}")
        data = canonical_json(manifest)
        digest = oci_digest(data)
        self.manifests[repository, digest] = data
        if tag is not None:
            self.tags[repository, tag] = digest
        return ArtifactRef(self._registry, repository, digest)

    def fetch_manifest(self, repository: str, reference: str) -> dict:
        """Fetch by digest (``sha256:...``) or by tag."""
        digest = reference if reference.startswith("sha256:") else self.tags.get((repository, reference))
        data = self.manifests.get((repository, digest)) if digest else None
        if data is None:
            raise NotFound(f"manifest {reference} not found in {self._registry}/{repository}")
        return json.loads(data)


def _referenced_blobs(manifest: Mapping) -> list[str]:
    descriptors = [*manifest.get("layers", ()), *([manifest["config"]] if "config" in manifest else [])]
    return [d["digest"] for d in descriptors]


class MemoryImageBuilder:
    """Bundles a context directory into an OCI artifact and pushes it to a :class:`MemoryRegistry`."""

    def __init__(self, registry: MemoryRegistry, repository_prefix: str = "lastmile"):
        self.registry = registry
        self.repository_prefix = repository_prefix
        self.builds: list[BuildRef] = []

    def build(self, name: str, context: Path) -> BuildRef:
        context = Path(context)
        if not context.is_dir():
            raise UserError(f"build context {context} is not a directory")
        files = {p.relative_to(context).as_posix(): p.read_bytes() for p in context.rglob("*") if p.is_file()}
        listing = [[path, sha256_hex(files[path])] for path in sorted(files)]
        source_digest = oci_digest(json.dumps(listing, separators=(",", ":")).encode())
        bundle = canonical_json({path: base64.b64encode(files[path]).decode() for path in files})
        config = b"{}"
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": BUNDLE_MEDIA_TYPE,
            "config": Descriptor(EMPTY_CONFIG_MEDIA_TYPE, oci_digest(config), len(config)).to_oci(),
            "layers": [Descriptor(BUNDLE_MEDIA_TYPE, oci_digest(bundle), len(bundle)).to_oci()],
            "annotations": {"org.opencontainers.image.title": name, "dev.lastmile.source-digest": source_digest},
        }
        repository = f"{self.repository_prefix}/{name}" if self.repository_prefix else name
        existed = (repository, oci_digest(canonical_json(manifest))) in self.registry.manifests
        self.registry.push_blob(repository, config)
        self.registry.push_blob(repository, bundle)
        artifact = self.registry.push_manifest(repository, manifest)
        ref = BuildRef(name=name, artifact=artifact, source_digest=source_digest, pushed=not existed)
        self.builds.append(ref)
        return ref


class MemoryModelRegistry:
    """MLflow tracking and model registry in dicts: runs, versions ``"1"``, ``"2"``... per name, and aliases."""

    def __init__(self) -> None:
        self.experiments: dict[str, str] = {}
        self.runs: dict[str, TrackedRun] = {}
        self.versions: dict[str, dict[str, ModelVersion]] = {}
        self.aliases: dict[str, dict[str, str]] = {}
        self.predictors: dict[tuple[str, str], Callable[[Mapping], object]] = {}
        """Per (name, version), the function a test gives a version to predict one row; absent means 0."""

    def start_run(self, experiment: str, tags: Mapping[str, str] | None = None) -> TrackedRun:
        experiment_id = self.experiments.setdefault(experiment, str(len(self.experiments) + 1))
        run = TrackedRun(f"run-{len(self.runs) + 1}", experiment_id, "RUNNING", tags=dict(tags or {}))
        self.runs[run.run_id] = run
        return run

    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None:
        run = self.get_run(run_id)
        self.runs[run_id] = dataclasses.replace(run, metrics={**run.metrics, **metrics})

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        """Params are write-once, as in MLflow: logging a different value for a key raises ``ValueError``."""
        run = self.get_run(run_id)
        for key, value in params.items():
            if key in run.params and run.params[key] != str(value):
                raise ValueError(f"param {key!r} of run {run_id} is already {run.params[key]!r}")
        self.runs[run_id] = dataclasses.replace(run, params={**run.params, **{k: str(v) for k, v in params.items()}})

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        if status not in _RUN_END_STATUSES:
            raise ValueError(f"run status must be one of {', '.join(_RUN_END_STATUSES)}, not {status!r}")
        self.runs[run_id] = dataclasses.replace(self.get_run(run_id), status=status)

    def get_run(self, run_id: str) -> TrackedRun:
        try:
            return self.runs[run_id]
        except KeyError:
            raise NotFound(f"run {run_id} not found") from None

    def register(self, name: str, source: str, run_id: str | None = None) -> ModelVersion:
        if run_id is not None:
            self.get_run(run_id)
        versions = self.versions.setdefault(name, {})
        version = ModelVersion(name, str(len(versions) + 1), run_id, source)
        versions[version.version] = version
        return version

    def get_version(self, name: str, version: str) -> ModelVersion:
        try:
            stored = self.versions[name][version]
        except KeyError:
            raise NotFound(f"model version {name}/{version} not found") from None
        aliases = sorted(a for a, v in self.aliases.get(name, {}).items() if v == version)
        return dataclasses.replace(stored, tags=dict(stored.tags), aliases=tuple(aliases))

    def by_alias(self, name: str, alias: str) -> ModelVersion | None:
        version = self.aliases.get(name, {}).get(alias)
        return None if version is None else self.get_version(name, version)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` at ``version``, moving it off any other version."""
        if _MLFLOW_RESERVED_ALIAS.match(alias):
            raise ValueError(f"alias {alias!r} is reserved by MLflow")
        self.get_version(name, version)
        self.aliases.setdefault(name, {})[alias] = version

    def delete_alias(self, name: str, alias: str) -> None:
        if name not in self.versions:
            raise NotFound(f"registered model {name} not found")
        self.aliases.get(name, {}).pop(alias, None)

    def predict(self, name: str, version: str, rows: Sequence[Mapping]) -> list:
        self.get_version(name, version)
        predictor = self.predictors.get((name, version), lambda row: 0)
        return [predictor(row) for row in rows]

    def tag_version(self, name: str, version: str, key: str, value: str) -> None:
        stored = self.get_version(name, version)
        self.versions[name][version] = dataclasses.replace(stored, tags={**stored.tags, key: value}, aliases=())
