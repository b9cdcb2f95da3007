"""The stand-ins as a user meets them: buckets made at `up`, credentials required and kept private."""

from __future__ import annotations

import uuid

import httpx
import pytest

from harness.domain.errors import AuthError
from harness.domain.records import oci_digest

pytestmark = pytest.mark.integration


def test_buckets_created_on_up(stack):
    client = stack.object_store._client
    names = {b["Name"] for b in client.list_buckets()["Buckets"]}
    assert set(stack.settings.buckets.model_dump().values()) <= names


def test_registry_refuses_anonymous(stack):
    url = stack.endpoints()["registry"]
    digest = stack.artifact_registry.push_blob("lastmile/anon", b"secret payload")
    assert httpx.get(f"{url}/v2/").status_code == 401
    assert httpx.get(f"{url}/v2/lastmile/anon/blobs/{digest}").status_code == 401
    assert httpx.post(f"{url}/v2/lastmile/anon/blobs/uploads/").status_code == 401


def test_registry_refuses_wrong_password(stack):
    from adapters.shared.distribution import DistributionRegistry
    from harness.domain.records import Secret

    wrong = DistributionRegistry(stack.endpoints()["registry"], "lastmile", Secret("not-the-password"))
    with pytest.raises(AuthError, match="refused"):
        wrong.has_blob("lastmile/anon", oci_digest(b"x"))


def test_registry_credentials_file_is_private(stack):
    for path in (stack.settings.state_dir / "secrets.json", stack.settings.state_dir / "registry" / "htpasswd"):
        assert path.stat().st_mode & 0o777 == 0o600


def test_mlflow_artifacts_land_in_object_storage(stack):
    """The MLflow server proxies artifacts into the object-storage stand-in's artifacts bucket."""
    from mlflow.tracking import MlflowClient

    stack.model_registry.by_alias("none", "champion")  # the adapter hands the credentials to MLflow's client
    client = MlflowClient(stack.endpoints()["mlflow"])
    experiment = client.create_experiment(f"artifacts-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment).info
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
    from harness.domain.records import Secret

    # The adapter hands credentials to MLflow's client through the environment; restore it afterwards.
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "unset")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "unset")
    wrong = MlflowModelRegistry(stack.endpoints()["mlflow"], "lastmile", Secret("not-the-password"))
    with pytest.raises(AuthError, match=r"refused the credentials of user 'lastmile' \(401\)"):
        wrong.by_alias("never", "champion")


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


def test_mlflow_s_databases_are_private(stack):
    """MLflow's auth database holds password hashes: 0600 like every other credential file."""
    home = stack.settings.state_dir / "mlflow"
    for name in ("basic_auth.db", "mlflow.db"):
        assert (home / name).stat().st_mode & 0o777 == 0o600, name


def test_the_deployer_admin_api_refuses_a_malformed_deploy_in_one_answer(stack):
    """A deploy with an unknown field (the old 'smoke' check, malformed) is refused with 422 at the door; it
    used to be stored and raise a KeyError in every reconcile pass."""
    url, name = stack.endpoints()["deployer"], stack.settings.project
    token = stack.secret("secret:deployer-token").reveal()
    body = {"serving_digest": "sha256:" + "0" * 64, "bundle_dir": "/nonexistent", "model_name": "m",
            "model_version": "1", "smoke": {"path": "/invocations"}}
    answer = httpx.put(f"{url}/deployments/{name}", json=body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 422 and "smoke" in answer.text
    assert httpx.get(f"{url}/deployments/{name}", headers={"Authorization": f"Bearer {token}"}).status_code == 200
