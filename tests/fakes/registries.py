"""In-memory registries: an OCI artifact registry and an MLflow-like model registry. Import them from :mod:`tests.fakes`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping

from harness.domain.digests import FILES_TAG, file_problems
from harness.domain.errors import IntegrityError, NotFound, UserError
from harness.domain.media import canonical_json
from harness.domain.records import ArtifactRef, ModelVersion, oci_digest

_OCI_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_MLFLOW_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)



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


class MemoryModelRegistry:
    """MLflow's model registry in dicts: versions ``"1"``, ``"2"``... per name, their tags, aliases, and the files
    stored for each version (``files[name, version][path]``: bytes a test may replace behind the registry's back)."""

    def __init__(self) -> None:
        self.versions: dict[str, dict[str, ModelVersion]] = {}
        self.aliases: dict[str, dict[str, str]] = {}
        self.files: dict[tuple[str, str], dict[str, bytes]] = {}

    def register(self, name: str, source: str, run_id: str | None = None, tags: Mapping[str, str] | None = None,
                 files: Mapping[str, bytes] | None = None) -> ModelVersion:
        """Not part of the port (training registers through MLflow): how tests arrange versions."""
        versions = self.versions.setdefault(name, {})
        version = ModelVersion(name, str(len(versions) + 1), run_id, source, dict(tags or {}))
        versions[version.version] = version
        self.files[name, version.version] = dict(files or {})
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
            raise UserError(f"alias {alias!r} is reserved by MLflow")
        self.get_version(name, version)
        self.aliases.setdefault(name, {})[alias] = version

    def delete_alias(self, name: str, alias: str) -> None:
        if name not in self.versions:
            raise NotFound(f"registered model {name} not found")
        self.aliases.get(name, {}).pop(alias, None)

    def tag_version(self, name: str, version: str, key: str, value: str) -> None:
        stored = self.get_version(name, version)
        self.versions[name][version] = dataclasses.replace(stored, tags={**stored.tags, key: value}, aliases=())

    def verify(self, name: str, version: str) -> list[str]:
        """The stored files against the ``lastmile.files`` tag, worded as the MLflow adapter words it."""
        uri = f"models:/{name}/{version}"
        raw = self.get_version(name, version).tags.get(FILES_TAG)
        if raw is None:
            return [f"{uri} has no {FILES_TAG} tag: the digests of its files were not recorded at registration"]
        found = {path: hashlib.sha256(data).hexdigest() for path, data in self.files[name, version].items()}
        return [f"{uri}: {problem}" for problem in file_problems(json.loads(raw), found)]
