"""The ArtifactRegistry contract."""

from __future__ import annotations

import uuid

import pytest

from harness.domain.errors import NotFound
from harness.domain.media import OCI_EMPTY_CONFIG, OCI_MANIFEST
from harness.domain.records import ArtifactRef, Descriptor, oci_digest
from tests.contracts import unique


def _manifest(config: Descriptor, *layers: Descriptor) -> dict:
    return {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.to_oci(),
            "layers": [layer.to_oci() for layer in layers]}


def _push_artifact(registry, repo: str, payload: bytes, tag: str | None = None) -> ArtifactRef:
    config = b"{}"
    config_desc = Descriptor(OCI_EMPTY_CONFIG, registry.push_blob(repo, config), len(config))
    layer_desc = Descriptor("application/octet-stream", registry.push_blob(repo, payload), len(payload))
    return registry.push_manifest(repo, _manifest(config_desc, layer_desc), tag=tag)


class ArtifactRegistryContract:
    """Fixtures: ``registry``; ``repo`` (a fresh repository name)."""

    def test_blob_and_manifest_roundtrip(self, registry, repo):
        payload = uuid.uuid4().bytes * 4
        digest = registry.push_blob(repo, payload)
        assert digest == oci_digest(payload)
        assert registry.has_blob(repo, digest)
        assert registry.fetch_blob(repo, digest) == payload
        ref = _push_artifact(registry, repo, payload)
        assert (ref.registry, ref.repository) == (registry.registry, repo)
        assert registry.fetch_manifest(repo, ref.digest)["layers"][0]["digest"] == digest

    def test_pushing_a_blob_twice_is_idempotent(self, registry, repo):
        payload = uuid.uuid4().bytes
        assert not registry.has_blob(repo, oci_digest(payload))
        assert registry.push_blob(repo, payload) == registry.push_blob(repo, payload)
        assert registry.fetch_blob(repo, oci_digest(payload)) == payload

    def test_a_missing_blob_is_not_found(self, registry, repo):
        digest = oci_digest(uuid.uuid4().bytes)
        assert not registry.has_blob(repo, digest)
        with pytest.raises(NotFound):
            registry.fetch_blob(repo, digest)

    def test_a_tag_follows_the_latest_push(self, registry, repo):
        tag = unique("tag")
        first = _push_artifact(registry, repo, b"first " + uuid.uuid4().bytes, tag=tag)
        assert registry.fetch_manifest(repo, tag) == registry.fetch_manifest(repo, first.digest)
        second = _push_artifact(registry, repo, b"second " + uuid.uuid4().bytes, tag=tag)
        assert second.digest != first.digest
        assert registry.fetch_manifest(repo, tag) == registry.fetch_manifest(repo, second.digest)

    def test_a_missing_manifest_is_not_found(self, registry, repo):
        with pytest.raises(NotFound):
            registry.fetch_manifest(repo, unique("no-such-tag"))
        with pytest.raises(NotFound):
            registry.fetch_manifest(repo, oci_digest(uuid.uuid4().bytes))

    def test_a_manifest_naming_an_unknown_blob_is_refused(self, registry, repo):
        config = b"{}"
        config_desc = Descriptor(OCI_EMPTY_CONFIG, registry.push_blob(repo, config), len(config))
        unknown = Descriptor("application/octet-stream", oci_digest(uuid.uuid4().bytes), 16)
        with pytest.raises(NotFound):
            registry.push_manifest(repo, _manifest(config_desc, unknown))

    def test_blobs_belong_to_their_repository(self, registry, repo):
        digest = registry.push_blob(repo, uuid.uuid4().bytes)
        assert not registry.has_blob(repo + "-other", digest)
