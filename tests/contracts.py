"""Contract checks shared by every implementation of a port.

Plain functions that take an instance and raise ``AssertionError`` (or let an unexpected error
through) when it breaks the port's contract. Unit tests run them against the in-memory fakes;
integration tests run the same checks against the real adapters. Each check uses fresh,
randomly named keys, repositories and models so it can run against a backend with prior state.
"""

from __future__ import annotations

import hashlib
import uuid

import pytest

from harness.errors import NotFound
from harness.records import ArtifactRef, Descriptor, oci_digest


def _unique(label: str) -> str:
    return f"contract-{label}-{uuid.uuid4().hex[:12]}"


# ObjectStore ------------------------------------------------------------------------------------
def check_object_roundtrip(store, bucket: str) -> None:
    store.ensure_bucket(bucket)
    key, data = f"{_unique('obj')}/data.bin", uuid.uuid4().bytes * 3
    ref = store.put(bucket, key, data)
    assert (ref.bucket, ref.key) == (bucket, key)
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert ref.size == len(data)
    assert store.get(bucket, key) == data
    assert store.head(bucket, key) == ref


def check_object_missing_key(store, bucket: str) -> None:
    store.ensure_bucket(bucket)
    key = _unique("missing")
    assert store.head(bucket, key) is None
    with pytest.raises(NotFound):
        store.get(bucket, key)


def check_ensure_bucket_idempotent(store, bucket: str) -> None:
    store.ensure_bucket(bucket)
    ref = store.put(bucket, _unique("keep"), b"kept")
    store.ensure_bucket(bucket)
    assert store.get(bucket, ref.key) == b"kept"


def check_put_into_missing_bucket(store, bucket: str) -> None:
    """``bucket`` must not exist (and is not created)."""
    with pytest.raises(NotFound):
        store.put(bucket, "key", b"data")


def check_object_list_by_prefix(store, bucket: str) -> None:
    store.ensure_bucket(bucket)
    prefix = _unique("list") + "/"
    for name in ("b", "c/1", "a"):
        store.put(bucket, prefix + name, name.encode())
    store.put(bucket, prefix[:-1] + "-sibling", b"not under the prefix")
    listed = store.list(bucket, prefix)
    assert [ref.key for ref in listed] == [prefix + "a", prefix + "b", prefix + "c/1"]
    assert [ref.size for ref in listed] == [1, 1, 3]


def check_object_delete(store, bucket: str) -> None:
    store.ensure_bucket(bucket)
    ref = store.put(bucket, _unique("gone"), b"soon gone")
    store.delete(bucket, ref.key)
    assert store.head(bucket, ref.key) is None
    with pytest.raises(NotFound):
        store.get(bucket, ref.key)


# ArtifactRegistry -------------------------------------------------------------------------------
def _manifest(config: Descriptor, *layers: Descriptor) -> dict:
    return {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config.to_oci(),
        "layers": [layer.to_oci() for layer in layers],
    }


def _push_artifact(registry, repo: str, payload: bytes, tag: str | None = None) -> ArtifactRef:
    config = b"{}"
    config_desc = Descriptor("application/vnd.oci.empty.v1+json", registry.push_blob(repo, config), len(config))
    layer_desc = Descriptor("application/octet-stream", registry.push_blob(repo, payload), len(payload))
    return registry.push_manifest(repo, _manifest(config_desc, layer_desc), tag=tag)


def check_blob_and_manifest_roundtrip(registry, repo: str) -> None:
    payload = uuid.uuid4().bytes * 4
    digest = registry.push_blob(repo, payload)
    assert digest == oci_digest(payload)
    assert registry.has_blob(repo, digest)
    assert registry.fetch_blob(repo, digest) == payload
    ref = _push_artifact(registry, repo, payload)
    assert (ref.registry, ref.repository) == (registry.registry, repo)
    manifest = registry.fetch_manifest(repo, ref.digest)
    assert manifest["layers"][0]["digest"] == digest


def check_blob_push_is_idempotent(registry, repo: str) -> None:
    payload = uuid.uuid4().bytes
    assert not registry.has_blob(repo, oci_digest(payload))
    assert registry.push_blob(repo, payload) == registry.push_blob(repo, payload)
    assert registry.fetch_blob(repo, oci_digest(payload)) == payload


def check_missing_blob_not_found(registry, repo: str) -> None:
    digest = oci_digest(uuid.uuid4().bytes)
    assert not registry.has_blob(repo, digest)
    with pytest.raises(NotFound):
        registry.fetch_blob(repo, digest)


def check_manifest_by_tag(registry, repo: str) -> None:
    tag = _unique("tag")
    first = _push_artifact(registry, repo, b"first " + uuid.uuid4().bytes, tag=tag)
    assert registry.fetch_manifest(repo, tag) == registry.fetch_manifest(repo, first.digest)
    second = _push_artifact(registry, repo, b"second " + uuid.uuid4().bytes, tag=tag)
    assert second.digest != first.digest
    assert registry.fetch_manifest(repo, tag) == registry.fetch_manifest(repo, second.digest)


def check_missing_manifest_not_found(registry, repo: str) -> None:
    with pytest.raises(NotFound):
        registry.fetch_manifest(repo, _unique("no-such-tag"))
    with pytest.raises(NotFound):
        registry.fetch_manifest(repo, oci_digest(uuid.uuid4().bytes))


def check_manifest_with_unknown_blob_rejected(registry, repo: str) -> None:
    config = b"{}"
    config_desc = Descriptor("application/vnd.oci.empty.v1+json", registry.push_blob(repo, config), len(config))
    unknown = Descriptor("application/octet-stream", oci_digest(uuid.uuid4().bytes), 16)
    with pytest.raises(NotFound):
        registry.push_manifest(repo, _manifest(config_desc, unknown))


# ModelRegistry ----------------------------------------------------------------------------------
def _two_versions(registry_model) -> tuple[str, str, str]:
    name = _unique("model")
    run = registry_model.start_run(_unique("experiment"))
    one = registry_model.register(name, "s3://contract/model-1", run_id=run.run_id)
    two = registry_model.register(name, "s3://contract/model-2", run_id=run.run_id)
    return name, one.version, two.version


def check_versions_count_per_name(registry_model) -> None:
    name, one, two = _two_versions(registry_model)
    assert (one, two) == ("1", "2")
    other = registry_model.register(_unique("model"), "s3://contract/other")
    assert other.version == "1"
    assert registry_model.get_version(name, two).source == "s3://contract/model-2"


def check_alias_moves(registry_model) -> None:
    name, one, two = _two_versions(registry_model)
    assert registry_model.by_alias(name, "champion") is None
    registry_model.set_alias(name, "champion", one)
    assert registry_model.by_alias(name, "champion").version == one
    registry_model.set_alias(name, "champion", two)
    assert registry_model.by_alias(name, "champion").version == two
    assert "champion" in registry_model.get_version(name, two).aliases
    assert "champion" not in registry_model.get_version(name, one).aliases
    registry_model.delete_alias(name, "champion")
    assert registry_model.by_alias(name, "champion") is None


def check_alias_to_missing_version(registry_model) -> None:
    name, _, _ = _two_versions(registry_model)
    with pytest.raises(NotFound):
        registry_model.set_alias(name, "champion", "99")
    assert registry_model.by_alias(name, "champion") is None


def check_run_tracking(registry_model) -> None:
    run = registry_model.start_run(_unique("experiment"), tags={"git_sha": "abc123"})
    registry_model.log_params(run.run_id, {"max_depth": "4"})
    registry_model.log_metrics(run.run_id, {"accuracy": 0.5})
    registry_model.log_metrics(run.run_id, {"accuracy": 0.9})
    registry_model.end_run(run.run_id)
    got = registry_model.get_run(run.run_id)
    assert (got.status, got.params["max_depth"], got.metrics["accuracy"]) == ("FINISHED", "4", 0.9)
    assert got.tags["git_sha"] == "abc123"
