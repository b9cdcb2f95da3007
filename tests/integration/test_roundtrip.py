"""The ports against the real stand-ins: the same contract checks the fakes pass."""

from __future__ import annotations

import uuid

import httpx
import pytest

from harness.errors import AuthError, IntegrityError
from harness.records import oci_digest
from tests import contracts

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("check", [
    contracts.check_object_roundtrip,
    contracts.check_object_missing_key,
    contracts.check_ensure_bucket_idempotent,
    contracts.check_object_list_by_prefix,
    contracts.check_object_delete,
])
def test_object_store_contract(stack, check):
    check(stack.object_store, stack.settings.buckets.data)


def test_put_into_missing_bucket(stack):
    contracts.check_put_into_missing_bucket(stack.object_store, f"absent-{uuid.uuid4().hex[:8]}")


def test_buckets_created_on_up(stack):
    client = stack.object_store._client
    names = {b["Name"] for b in client.list_buckets()["Buckets"]}
    assert set(stack.settings.buckets.model_dump().values()) <= names


def test_object_checksum_detects_tampering(stack):
    """An object rewritten behind the store's back no longer matches the sha256 it was stored with."""
    store, bucket = stack.object_store, stack.settings.buckets.data
    ref = store.put(bucket, "tamper/data.csv", b"a,b\n1,2\n")
    store._client.put_object(Bucket=bucket, Key=ref.key, Body=b"a,b\n9,9\n", Metadata={"sha256": ref.sha256})
    with pytest.raises(IntegrityError):
        store.get(bucket, ref.key)


@pytest.mark.parametrize("check", [
    contracts.check_blob_and_manifest_roundtrip,
    contracts.check_blob_push_is_idempotent,
    contracts.check_missing_blob_not_found,
    contracts.check_manifest_by_tag,
    contracts.check_missing_manifest_not_found,
    contracts.check_manifest_with_unknown_blob_rejected,
])
def test_registry_contract(stack, check):
    check(stack.artifact_registry, f"lastmile/contract-{uuid.uuid4().hex[:8]}")


def test_registry_refuses_anonymous(stack):
    url = stack.endpoints()["registry"]
    digest = stack.artifact_registry.push_blob("lastmile/anon", b"secret payload")
    assert httpx.get(f"{url}/v2/").status_code == 401
    assert httpx.get(f"{url}/v2/lastmile/anon/blobs/{digest}").status_code == 401
    assert httpx.post(f"{url}/v2/lastmile/anon/blobs/uploads/").status_code == 401


def test_registry_refuses_wrong_password(stack):
    from adapters.local.distribution import DistributionRegistry
    from harness.records import Secret

    wrong = DistributionRegistry(stack.endpoints()["registry"], "lastmile", Secret("not-the-password"))
    with pytest.raises(AuthError, match="refused"):
        wrong.has_blob("lastmile/anon", oci_digest(b"x"))


def test_registry_credentials_file_is_private(stack):
    for path in (stack.settings.state_dir / "secrets.json", stack.settings.state_dir / "registry" / "htpasswd"):
        assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("check", [
    contracts.check_run_tracking,
    contracts.check_versions_count_per_name,
    contracts.check_alias_moves,
    contracts.check_alias_to_missing_version,
])
def test_model_registry_contract(stack, check):
    check(stack.model_registry)


def test_metric_logged_to_mlflow_reads_back(stack):
    registry = stack.model_registry
    run = registry.start_run("integration")
    registry.log_metrics(run.run_id, {"accuracy": 0.93, "f1": 0.91})
    got = registry.get_run(run.run_id)
    assert got.metrics == {"accuracy": 0.93, "f1": 0.91}
    assert got.experiment_id == run.experiment_id


def test_mlflow_artifacts_land_in_object_storage(stack):
    """The MLflow server proxies artifacts into the object-storage stand-in's artifacts bucket."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(stack.endpoints()["mlflow"])
    run = stack.model_registry.start_run("artifacts")
    client.log_text(run.run_id, "hello", "notes/hello.txt")
    keys = [ref.key for ref in stack.object_store.list(stack.settings.buckets.artifacts)]
    assert any(key.endswith(f"{run.run_id}/artifacts/notes/hello.txt") for key in keys), keys


def test_mlflow_refuses_calls_without_the_right_credentials(stack):
    """The registry moves @champion: every MLflow route but /health needs the admin credentials."""
    url = stack.endpoints()["mlflow"]
    search = f"{url}/api/2.0/mlflow/experiments/search"
    create = f"{url}/api/2.0/mlflow/experiments/create"
    name = f"anon-{uuid.uuid4().hex[:8]}"
    password = stack.secret(stack.settings.ports.model_registry.password).reveal()
    assert httpx.get(f"{url}/health").status_code == 200
    assert httpx.get(search, params={"max_results": 1}).status_code == 401
    assert httpx.post(create, json={"name": name}).status_code == 401
    assert httpx.post(create, json={"name": name}, auth=("lastmile", "not-the-password")).status_code == 401
    assert httpx.post(create, json={"name": name}, auth=("someone", password)).status_code == 401
    assert httpx.post(create, json={"name": name}, auth=("lastmile", password)).status_code == 200


def test_mlflow_registry_with_a_wrong_password_fails_in_one_line(stack, monkeypatch):
    from adapters.local.mlflow_registry import MlflowModelRegistry
    from harness.records import Secret

    # The adapter hands credentials to MLflow's client through the environment; restore it afterwards.
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "unset")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "unset")
    wrong = MlflowModelRegistry(stack.endpoints()["mlflow"], "lastmile", Secret("not-the-password"))
    with pytest.raises(AuthError, match=r"refused the credentials of user 'lastmile' \(401\)"):
        wrong.start_run("never")


def test_the_deployer_admin_api_needs_its_bearer_token(stack):
    url, name = stack.endpoints()["deployer"], stack.settings.project
    token = stack.secret("secret:deployer-token").reveal()
    assert httpx.get(f"{url}/healthz").status_code == 200
    for headers in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": f"Basic {token}"},
                    {"Authorization": "Bearer"}, {"Authorization": f"Bearer {token}x"}):
        assert httpx.get(f"{url}/deployments/{name}", headers=headers).status_code == 401, headers
        assert httpx.put(f"{url}/deployments/{name}/scale", json={"replicas": 3}, headers=headers).status_code == 401
    assert httpx.get(f"{url}/deployments/{name}", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    on_disk = [p for p in stack.settings.state_dir.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]
    assert [p.name for p in on_disk] == ["secrets.json"], "the token is kept in the secret store only"
