"""The local build (stage 2): a source directory as a deterministic OCI artifact, pushed and pulled by digest.

A bundle mirrors the container image of the same deployable: the context directory appears in the archive
under its own name (``training/...``), so ``python -m training.train`` run from the extraction root starts it.
Unchanged inputs give byte-identical archives and therefore the same manifest digest: entries are sorted,
ownership and times are zeroed, modes are normalised, and the gzip header carries no time or file name.
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import json
import re
import shlex
import stat
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from harness.domain.errors import IntegrityError, NotFound, UserError
from harness.domain.media import (
    BUNDLE_ARTIFACT_TYPE,
    SOURCE_DIGEST,
    TITLE,
    canonical_json,
)
from harness.domain.media import (
    BUNDLE_CONFIG as CONFIG_MEDIA_TYPE,
)
from harness.domain.media import (
    OCI_LAYER_TAR_GZIP as LAYER_MEDIA_TYPE,
)
from harness.domain.media import (
    OCI_MANIFEST as MANIFEST_MEDIA_TYPE,
)
from harness.domain.records import ArtifactRef, BuildRef, Descriptor, oci_digest, sha256_hex

IGNORED = ("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".DS_Store")
"""Names left out of every bundle, matched against each path component."""


@dataclass(frozen=True)
class Bundle:
    """A bundle fetched from a registry and checked against its digests."""

    config: Mapping[str, Any]
    archive: bytes

    @property
    def entrypoint(self) -> str | None:
        return self.config.get("entrypoint")


def source_files(context: Path) -> list[Path]:
    """Every file and directory of ``context`` that goes into the bundle, sorted by relative path."""
    context = Path(context)
    if not context.is_dir():
        raise UserError(f"build context {context} is not a directory")
    found = []
    for path in context.rglob("*"):
        rel = path.relative_to(context)
        if any(fnmatch.fnmatch(part, pattern) for part in rel.parts for pattern in IGNORED):
            continue
        if path.is_symlink():
            raise UserError(f"build context {context}: {rel} is a symbolic link; bundles hold files and directories only")
        found.append(path)
    return sorted(found, key=lambda p: p.relative_to(context).as_posix())


def source_digest(context: Path) -> str:
    """A digest of the inputs alone (paths, modes, contents), independent of how they are archived."""
    context = Path(context)
    listing = [[p.relative_to(context).as_posix(), _mode(p), "" if p.is_dir() else sha256_hex(p.read_bytes())]
               for p in source_files(context)]
    return oci_digest(json.dumps(listing, separators=(",", ":")).encode())


def archive(context: Path) -> bytes:
    """The context as a reproducible ``tar.gz`` whose members live under ``<context name>/``."""
    context = Path(context)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
        for path in source_files(context):
            info = tarfile.TarInfo((PurePosixPath(context.name) / path.relative_to(context).as_posix()).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = _mode(path)
            if path.is_dir():
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                data = path.read_bytes()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    # GzipFile rather than gzip.compress: its header is fixed (no name, mtime 0, OS byte 255) on every platform.
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return packed.getvalue()


def entrypoint_of(context: Path) -> str | None:
    """The module the deployable starts with, read from its Dockerfile (``ENTRYPOINT python -m pkg.mod``),
    so the bundle and the container image cannot disagree; else ``<pkg>`` when it has a ``__main__.py``."""
    context = Path(context)
    dockerfile = context / "Dockerfile"
    if dockerfile.is_file():
        for line in dockerfile.read_text().splitlines():
            match = re.match(r"^\s*ENTRYPOINT\s+(.+)$", line)
            if not match:
                continue
            text = match.group(1).strip()
            words = json.loads(text) if text.startswith("[") else shlex.split(text)
            if len(words) >= 3 and Path(words[0]).name.startswith("python") and words[1] == "-m":
                return words[2]
    return context.name if (context / "__main__.py").is_file() else None


@dataclass(frozen=True)
class PlannedBundle:
    """A bundle as it would be pushed: its config and layer bytes, its manifest and that manifest's digest."""

    config: bytes
    layer: bytes
    manifest: Mapping[str, Any]
    digest: str
    source_digest: str


def plan_bundle(name: str, context: Path, entrypoint: str | None = None) -> PlannedBundle:
    """The bundle of ``context`` without pushing it: the same inputs always give the same digest, so a builder
    that runs elsewhere (a DevOps build run) can be checked against it, and skipped when the registry has it."""
    context = Path(context)
    digest_of_source = source_digest(context)
    layer = archive(context)
    config = canonical_json({"name": name, "entrypoint": entrypoint or entrypoint_of(context),
                             "source_digest": digest_of_source})
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": BUNDLE_ARTIFACT_TYPE,
        "config": Descriptor(CONFIG_MEDIA_TYPE, oci_digest(config), len(config)).to_oci(),
        "layers": [Descriptor(LAYER_MEDIA_TYPE, oci_digest(layer), len(layer), {TITLE: f"{name}.tar.gz"}).to_oci()],
        "annotations": {TITLE: name, SOURCE_DIGEST: digest_of_source},
    }
    return PlannedBundle(config, layer, manifest, oci_digest(canonical_json(manifest)), digest_of_source)


def has_manifest(registry, repository: str, digest: str) -> bool:
    """True when ``registry`` holds the manifest ``digest`` in ``repository``."""
    try:
        registry.fetch_manifest(repository, digest)
    except NotFound:
        return False
    return True


def build_bundle(registry, name: str, context: Path, repository: str, entrypoint: str | None = None) -> BuildRef:
    """Archive ``context`` and push it as one OCI artifact; a manifest the registry already holds is not pushed again."""
    planned = plan_bundle(name, context, entrypoint)
    if has_manifest(registry, repository, planned.digest):
        artifact = ArtifactRef(registry.registry, repository, planned.digest)
        return BuildRef(name=name, artifact=artifact, source_digest=planned.source_digest, pushed=False)
    registry.push_blob(repository, planned.config)
    registry.push_blob(repository, planned.layer)
    artifact = registry.push_manifest(repository, planned.manifest)
    if artifact.digest != planned.digest:
        raise IntegrityError(f"{artifact}: the registry stored the manifest under another digest than {planned.digest}")
    return BuildRef(name=name, artifact=artifact, source_digest=planned.source_digest, pushed=True)


def fetch_bundle(registry, ref: ArtifactRef) -> Bundle:
    """The config and archive of a bundle pinned by digest, each checked against its descriptor."""
    if not ref.digest.startswith("sha256:"):
        raise UserError(f"{ref}: bundles are pulled by digest, not by tag")
    manifest = registry.fetch_manifest(ref.repository, ref.digest)
    layers = manifest.get("layers") or []
    if manifest.get("artifactType") != BUNDLE_ARTIFACT_TYPE or len(layers) != 1 \
            or layers[0].get("mediaType") != LAYER_MEDIA_TYPE:
        raise UserError(f"{ref} is not a lastmile bundle (artifactType {manifest.get('artifactType')!r})")
    config = _fetch_checked(registry, ref, manifest["config"])
    layer = _fetch_checked(registry, ref, layers[0])
    return Bundle(config=json.loads(config), archive=layer)


def extract_bundle(data: bytes, dest: Path) -> Path:
    """Unpack an archive into ``dest``; every member is checked before anything is written."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            try:
                if member.name.startswith(("/", "\\")):
                    # The data filter would quietly make the path relative; a bundle never holds one.
                    raise tarfile.AbsolutePathError(member)
                tarfile.data_filter(member, str(dest))
            except tarfile.FilterError as exc:
                raise IntegrityError(f"bundle member {member.name!r} is unsafe ({type(exc).__name__}); "
                                     "nothing was extracted") from None
        tar.extractall(dest, filter="data")
    return dest


def pull_bundle(registry, artifact_ref: ArtifactRef, dest: Path) -> Path:
    """Fetch a bundle by digest, check it, and extract it safely into ``dest``."""
    return extract_bundle(fetch_bundle(registry, artifact_ref).archive, dest)


def _fetch_checked(registry, ref: ArtifactRef, descriptor: Mapping[str, Any]) -> bytes:
    data = registry.fetch_blob(ref.repository, descriptor["digest"])
    if oci_digest(data) != descriptor["digest"] or len(data) != descriptor["size"]:
        raise IntegrityError(f"{ref}: blob {descriptor['digest'][:19]} does not match its descriptor")
    return data


def _mode(path: Path) -> int:
    if path.is_dir():
        return 0o755
    return 0o755 if path.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH) else 0o644
