"""The local build: deterministic bundles, pushed once by digest, pulled back safely."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from adapters.local.bundle_builder import BundleImageBuilder
from harness.domain.errors import IntegrityError, UserError
from harness.domain.ports import ImageBuilder
from harness.domain.records import ArtifactRef, Descriptor, oci_digest
from harness.infra import bundle
from tests.fakes import MemoryRegistry


@pytest.fixture
def source(tmp_path: Path) -> Path:
    pkg = tmp_path / "src" / "job"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "main.py").write_text("print('hello')\n")
    (pkg / "sub" / "data.txt").write_text("rows\n")
    (pkg / "run.sh").write_text("#!/bin/sh\n")
    (pkg / "run.sh").chmod(0o775)
    (pkg / "Dockerfile").write_text('FROM python:3.11-slim\nENTRYPOINT ["python", "-m", "job.main"]\n')
    return pkg


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def test_same_inputs_give_identical_bytes_and_digest(source):
    first_archive = bundle.archive(source)
    os.utime(source / "main.py", (1_000_000, 1_000_000))  # a touched file is not a changed file
    assert bundle.archive(source) == first_archive
    first, second = MemoryRegistry(), MemoryRegistry()
    assert (bundle.build_bundle(first, "job", source, "lastmile/job").artifact.digest
            == bundle.build_bundle(second, "job", source, "lastmile/job").artifact.digest)


def test_archive_metadata_is_normalised(source):
    data = bundle.archive(source)
    assert data[4:8] == b"\0\0\0\0"  # gzip header mtime
    assert not data[3] & 0x08  # no FNAME field
    found = members(data)
    assert sorted(found) == list(found)
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in found.values()} == {(0, 0, "", "", 0)}
    assert found["job/main.py"].mode == 0o644
    assert found["job/run.sh"].mode == 0o755
    assert found["job/sub"].isdir() and found["job/sub"].mode == 0o755


def test_changed_file_gives_new_digest(source):
    registry = MemoryRegistry()
    before = bundle.build_bundle(registry, "job", source, "lastmile/job")
    (source / "main.py").write_text("print('changed')\n")
    after = bundle.build_bundle(registry, "job", source, "lastmile/job")
    assert after.artifact.digest != before.artifact.digest
    assert after.source_digest != before.source_digest
    assert after.pushed


def test_mode_change_gives_new_digest(source):
    before = bundle.source_digest(source)
    (source / "main.py").chmod(0o755)
    assert bundle.source_digest(source) != before


def test_bytecode_and_caches_are_ignored(source):
    before = bundle.archive(source)
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\x00bytecode")
    (source / "stray.pyc").write_bytes(b"\x00")
    (source / ".pytest_cache").mkdir()
    (source / ".pytest_cache" / "v").write_text("x")
    (source / "sub" / ".DS_Store").write_bytes(b"\x00")
    assert bundle.archive(source) == before


def test_symlink_in_context_is_refused(source):
    (source / "link").symlink_to("/etc/passwd")
    with pytest.raises(UserError, match="symbolic link"):
        bundle.archive(source)


def test_manifest_shape(source):
    registry = MemoryRegistry()
    ref = bundle.build_bundle(registry, "job", source, "lastmile/job")
    manifest = registry.fetch_manifest("lastmile/job", ref.artifact.digest)
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["artifactType"] == bundle.BUNDLE_ARTIFACT_TYPE
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert layer["annotations"] == {"org.opencontainers.image.title": "job.tar.gz"}
    config = json.loads(registry.fetch_blob("lastmile/job", manifest["config"]["digest"]))
    assert config == {"name": "job", "entrypoint": "job.main", "source_digest": ref.source_digest}
    assert manifest["annotations"][bundle.SOURCE_DIGEST] == ref.source_digest


def test_existing_manifest_is_not_pushed_again(source):
    registry = MemoryRegistry()
    first = bundle.build_bundle(registry, "job", source, "lastmile/job")
    pushes = registry.pushes
    second = bundle.build_bundle(registry, "job", source, "lastmile/job")
    assert (first.pushed, second.pushed) == (True, False)
    assert second.artifact == first.artifact
    assert registry.pushes == pushes


def test_entrypoint_from_main_module_without_dockerfile(source):
    (source / "Dockerfile").unlink()
    assert bundle.entrypoint_of(source) is None
    (source / "__main__.py").write_text("")
    assert bundle.entrypoint_of(source) == "job"


def test_pull_round_trip(source, tmp_path):
    registry = MemoryRegistry()
    ref = bundle.build_bundle(registry, "job", source, "lastmile/job")
    dest = bundle.pull_bundle(registry, ref.artifact, tmp_path / "out")
    assert (dest / "job" / "main.py").read_text() == "print('hello')\n"
    assert (dest / "job" / "sub" / "data.txt").read_text() == "rows\n"
    assert os.access(dest / "job" / "run.sh", os.X_OK)


def test_pull_detects_a_tampered_layer(source, tmp_path):
    registry = MemoryRegistry()
    ref = bundle.build_bundle(registry, "job", source, "lastmile/job")
    layer = registry.fetch_manifest("lastmile/job", ref.artifact.digest)["layers"][0]["digest"]
    registry.blobs["lastmile/job", layer] = b"not the archive"
    with pytest.raises(IntegrityError):
        bundle.pull_bundle(registry, ref.artifact, tmp_path / "out")


def test_pull_by_tag_is_refused(source, tmp_path):
    registry = MemoryRegistry()
    with pytest.raises(UserError, match="by digest"):
        bundle.pull_bundle(registry, ArtifactRef(registry.registry, "lastmile/job", "latest"), tmp_path / "out")


def _evil_archive(kind: str) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        ok = tarfile.TarInfo("job/ok.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        if kind == "symlink":
            link = tarfile.TarInfo("job/escape")
            link.type, link.linkname = tarfile.SYMTYPE, "../../outside"
            tar.addfile(link)
        else:
            name = "../evil.txt" if kind == "parent" else "/tmp/lastmile-evil.txt"
            evil = tarfile.TarInfo(name)
            evil.size = 4
            tar.addfile(evil, io.BytesIO(b"evil"))
    return raw.getvalue()


def _push_raw_bundle(registry: MemoryRegistry, archive: bytes) -> ArtifactRef:
    config = bundle.canonical_json({"name": "job", "entrypoint": "job.main", "source_digest": "sha256:0"})
    registry.push_blob("lastmile/job", config)
    registry.push_blob("lastmile/job", archive)
    return registry.push_manifest("lastmile/job", {
        "schemaVersion": 2, "mediaType": bundle.MANIFEST_MEDIA_TYPE, "artifactType": bundle.BUNDLE_ARTIFACT_TYPE,
        "config": Descriptor(bundle.CONFIG_MEDIA_TYPE, oci_digest(config), len(config)).to_oci(),
        "layers": [Descriptor(bundle.LAYER_MEDIA_TYPE, oci_digest(archive), len(archive)).to_oci()],
    })


@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink"])
def test_pull_rejects_members_escaping_dest(kind, tmp_path):
    registry = MemoryRegistry()
    ref = _push_raw_bundle(registry, _evil_archive(kind))
    dest = tmp_path / "a" / "b" / "out"
    with pytest.raises(IntegrityError, match="unsafe"):
        bundle.pull_bundle(registry, ref, dest)
    assert list(dest.iterdir()) == []  # checked before anything was written
    assert not (tmp_path / "a" / "b" / "evil.txt").exists()


def test_builder_implements_the_port(source):
    registry = MemoryRegistry("registry.test")
    builder = BundleImageBuilder(registry, "lastmile")
    assert isinstance(builder, ImageBuilder)
    ref = builder.build("job", source)
    assert (ref.artifact.registry, ref.artifact.repository) == ("registry.test", "lastmile/job")
    assert ref.artifact.digest in {d for (_, d) in registry.manifests}
