"""The OCI stand-in driven by the real ``oci`` CLI (oci-cli from PyPI, in its own tool venv through
``scripts/oci-cli.sh``) with ``--endpoint``: each emulated operation, and the refusals a user meets, as the CLI
prints them. Skipped only when PyPI cannot be reached to install the CLI."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.oci.standin import put_secret, register_log
from adapters.oci.standin.testing import CliUnavailable, StandInProcess, ensure_oci_cli, oci_cli
from harness.infra.processes import free_port

pytestmark = pytest.mark.timeout(600)
COMPARTMENT = "ocid1.compartment.oc1..aaaaaaaaclitests"
VAULT = "ocid1.vault.oc1.iad.aaaaaaaaclivault"
GROUP = "ocid1.loggroup.oc1.iad.aaaaaaaacli"
LOG = "ocid1.log.oc1.iad.aaaaaaaaclievents"


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    try:
        ensure_oci_cli()
    except CliUnavailable as exc:
        pytest.skip(f"the oci CLI cannot be installed: {exc}")
    state = tmp_path_factory.mktemp("oci-standin")
    put_secret(state, "db-password", VAULT, "s3cr3t")
    register_log(state, LOG, GROUP, COMPARTMENT)
    with StandInProcess(free_port(), state) as process:
        assert oci_cli(process, "os", "bucket", "create", "--name", "cli", "--compartment-id", COMPARTMENT).code == 0
        yield process


def ok(standin, *args: str):
    result = oci_cli(standin, *args)
    assert result.code == 0, result.stderr[-2000:]
    return result.json() if result.stdout.strip() else None


def refused(standin, *args: str, **kwargs) -> dict:
    result = oci_cli(standin, *args, **kwargs)
    assert result.code != 0, result.stdout
    return result.service_error()


def test_os_ns_get(standin):
    assert ok(standin, "os", "ns", "get") == {"data": "lastmile"}


def test_os_bucket_create_get_list(standin):
    created = ok(standin, "os", "bucket", "create", "--name", "cli-made", "--compartment-id", COMPARTMENT)
    got = ok(standin, "os", "bucket", "get", "--bucket-name", "cli-made")
    listed = ok(standin, "os", "bucket", "list", "--compartment-id", COMPARTMENT)

    assert created["data"]["name"] == got["data"]["name"] == "cli-made" and got["etag"] == created["etag"]
    assert {"cli", "cli-made"} <= {b["name"] for b in listed["data"]}


def test_os_bucket_create_existing_is_409(standin):
    error = refused(standin, "os", "bucket", "create", "--name", "cli", "--compartment-id", COMPARTMENT)

    assert (error["status"], error["code"]) == (409, "BucketAlreadyExists")


def test_os_bucket_delete(standin):
    ok(standin, "os", "bucket", "create", "--name", "cli-doomed", "--compartment-id", COMPARTMENT)
    ok(standin, "os", "bucket", "delete", "--bucket-name", "cli-doomed", "--force")

    assert refused(standin, "os", "bucket", "get", "--bucket-name", "cli-doomed")["code"] == "BucketNotFound"


def test_os_object_put_head_get_with_metadata(standin, tmp_path):
    source, copy = tmp_path / "in.txt", tmp_path / "out.txt"
    source.write_bytes(b"through the cli")
    put = ok(standin, "os", "object", "put", "-bn", "cli", "--name", "dir/obj", "--file", str(source),
             "--metadata", json.dumps({"sha256": "abc"}), "--force")
    head = ok(standin, "os", "object", "head", "-bn", "cli", "--name", "dir/obj")
    ok(standin, "os", "object", "get", "-bn", "cli", "--name", "dir/obj", "--file", str(copy))

    assert copy.read_bytes() == b"through the cli" and head["etag"] == put["etag"]
    assert head["opc-meta-sha256"] == "abc"
    assert head["opc-content-md5"] == base64.b64encode(hashlib.md5(b"through the cli").digest()).decode()


def test_os_object_put_no_overwrite_keeps_an_existing_object(standin, tmp_path):
    """The CLI heads the object first and sends If-None-Match: * only when it found none (the 412 itself is
    exercised through the SDK)."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"first")
    second.write_bytes(b"second")
    ok(standin, "os", "object", "put", "-bn", "cli", "--name", "once", "--file", str(first), "--no-overwrite")
    again = oci_cli(standin, "os", "object", "put", "-bn", "cli", "--name", "once", "--file", str(second),
                    "--no-overwrite")
    ok(standin, "os", "object", "get", "-bn", "cli", "--name", "once", "--file", str(tmp_path / "out"))

    assert "already exists and was not overwritten" in again.stderr
    assert (tmp_path / "out").read_bytes() == b"first"


def test_os_object_put_with_a_stale_if_match_is_412(standin, tmp_path):
    source = tmp_path / "x"
    source.write_bytes(b"x")
    stale = ok(standin, "os", "object", "put", "-bn", "cli", "--name", "cas", "--file", str(source), "--force")
    ok(standin, "os", "object", "put", "-bn", "cli", "--name", "cas", "--file", str(source), "--force")
    error = refused(standin, "os", "object", "put", "-bn", "cli", "--name", "cas", "--file", str(source),
                    "--if-match", stale["etag"], "--force")

    assert (error["status"], error["code"]) == (412, "IfMatchFailed")


def test_os_object_put_with_a_wrong_content_md5_is_400(standin, tmp_path):
    source = tmp_path / "x"
    source.write_bytes(b"x")
    wrong = base64.b64encode(hashlib.md5(b"y").digest()).decode()
    error = refused(standin, "os", "object", "put", "-bn", "cli", "--name", "md5", "--file", str(source),
                    "--content-md5", wrong, "--force")

    assert (error["status"], error["code"]) == (400, "UnmatchedContentMD5")


def test_os_object_put_in_parts(standin, tmp_path):
    body = hashlib.sha256(b"seed").digest() * (1024 * 1024 * 2 // 32 + 7)  # just over 2 MiB: three 1 MiB parts
    source, copy = tmp_path / "big.bin", tmp_path / "big.out"
    source.write_bytes(body)
    put = ok(standin, "os", "object", "put", "-bn", "cli", "--name", "big", "--file", str(source),
             "--part-size", "1", "--parallel-upload-count", "2", "--force")
    head = ok(standin, "os", "object", "head", "-bn", "cli", "--name", "big")
    ok(standin, "os", "object", "get", "-bn", "cli", "--name", "big", "--file", str(copy))

    assert copy.read_bytes() == body
    assert put["opc-multipart-md5"] == head["opc-multipart-md5"] and put["opc-multipart-md5"].endswith("-3")


def test_os_multipart_abort(standin):
    import oci

    client = oci.object_storage.ObjectStorageClient(standin.sdk_config(), service_endpoint=standin.url)
    upload = client.create_multipart_upload("lastmile", "cli", oci.object_storage.models.CreateMultipartUploadDetails(
        object="aborted")).data
    ok(standin, "os", "multipart", "abort", "-bn", "cli", "--object-name", "aborted", "--upload-id",
       upload.upload_id, "--force")

    assert not (standin.state / "objectstorage" / "uploads" / upload.upload_id).exists()


def test_os_object_list_with_prefix_limit_and_fields(standin, tmp_path):
    source = tmp_path / "x"
    source.write_bytes(b"xy")
    for name in ("list/a", "list/b", "list/c"):
        ok(standin, "os", "object", "put", "-bn", "cli", "--name", name, "--file", str(source), "--force")
    listed = ok(standin, "os", "object", "list", "-bn", "cli", "--prefix", "list/", "--limit", "2",
                "--fields", "name,size")

    assert [(o["name"], o["size"]) for o in listed["data"]] == [("list/a", 2), ("list/b", 2)]
    assert listed["next-start-with"] == "list/c"


def test_os_object_delete_then_get_is_404_object_not_found(standin, tmp_path):
    source = tmp_path / "x"
    source.write_bytes(b"x")
    ok(standin, "os", "object", "put", "-bn", "cli", "--name", "gone", "--file", str(source), "--force")
    ok(standin, "os", "object", "delete", "-bn", "cli", "--name", "gone", "--force")
    error = refused(standin, "os", "object", "get", "-bn", "cli", "--name", "gone", "--file", str(tmp_path / "o"))

    assert error["status"] == 404


def test_os_bucket_get_missing_is_404_bucket_not_found(standin):
    error = refused(standin, "os", "bucket", "get", "--bucket-name", "no-such")

    assert (error["status"], error["code"]) == (404, "BucketNotFound")


def test_a_wrong_key_is_401_not_authenticated(standin, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "wrong.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    config = tmp_path / "config"
    config.write_text(standin.api_key.config_file.read_text().replace(str(standin.api_key.key_file), str(key_file)))
    config.chmod(0o600)
    error = refused(standin, "os", "ns", "get", config=config)

    assert (error["status"], error["code"]) == (401, "NotAuthenticated")
    assert error["message"] == "Failed to verify the HTTP(S) Signature"


def test_secrets_get_by_name_and_by_ocid(standin):
    by_name = ok(standin, "secrets", "secret-bundle", "get-secret-bundle-by-name", "--secret-name", "db-password",
                 "--vault-id", VAULT)["data"]
    by_id = ok(standin, "secrets", "secret-bundle", "get", "--secret-id", by_name["secret-id"])["data"]

    assert by_name["secret-bundle-content"] == {"content": base64.b64encode(b"s3cr3t").decode(),
                                                "content-type": "BASE64"}
    assert by_id["secret-bundle-content"] == by_name["secret-bundle-content"]


def test_secrets_unknown_is_404(standin):
    error = refused(standin, "secrets", "secret-bundle", "get-secret-bundle-by-name", "--secret-name", "nope",
                    "--vault-id", VAULT)

    assert (error["status"], error["code"]) == (404, "NotAuthorizedOrNotFound")


def test_logging_put_logs_then_search_by_subject(standin):
    now = datetime.now(UTC)
    batches = [{"entries": [{"data": json.dumps({"event": "stage.started"}), "id": "e1",
                             "time": now.isoformat()}],
                "source": "lastmile", "type": "lastmile.stage", "subject": "cli-run"}]
    ok(standin, "logging-ingestion", "put-logs", "--log-id", LOG, "--specversion", "1.0",
       "--log-entry-batches", json.dumps(batches))
    found = ok(standin, "logging-search", "search-logs", "--search-query",
               f"search \"{COMPARTMENT}/{GROUP}/{LOG}\" | where subject = 'cli-run'",
               "--time-start", (now - timedelta(minutes=5)).isoformat(),
               "--time-end", (now + timedelta(minutes=5)).isoformat())["data"]

    assert found["summary"]["result-count"] == 1
    assert found["results"][0]["data"]["logContent"]["data"] == {"event": "stage.started"}


def test_os_object_resume_put_lists_the_uploaded_parts_and_sends_the_rest(standin, tmp_path):
    import oci

    body = hashlib.sha256(b"resume").digest() * (1024 * 1024 * 2 // 32 + 3)  # three parts of at most 1 MiB
    source, copy = tmp_path / "resumed.bin", tmp_path / "resumed.out"
    source.write_bytes(body)
    client = oci.object_storage.ObjectStorageClient(standin.sdk_config(), service_endpoint=standin.url)
    upload = client.create_multipart_upload("lastmile", "cli", oci.object_storage.models.CreateMultipartUploadDetails(
        object="resumed")).data
    client.upload_part("lastmile", "cli", "resumed", upload.upload_id, 1, body[:1024 * 1024])
    ok(standin, "os", "object", "resume-put", "-bn", "cli", "--name", "resumed", "--file", str(source),
       "--upload-id", upload.upload_id, "--part-size", "1")
    ok(standin, "os", "object", "get", "-bn", "cli", "--name", "resumed", "--file", str(copy))

    assert copy.read_bytes() == body
    assert ok(standin, "os", "object", "head", "-bn", "cli", "--name", "resumed")["opc-multipart-md5"].endswith("-3")


def test_vault_secret_schedule_then_cancel_deletion(standin):
    put_secret(standin.state, "short-lived", VAULT, "value")
    ocid = ok(standin, "secrets", "secret-bundle", "get-secret-bundle-by-name", "--secret-name", "short-lived",
              "--vault-id", VAULT)["data"]["secret-id"]

    ok(standin, "vault", "secret", "schedule-secret-deletion", "--secret-id", ocid, "--time-of-deletion",
       "2030-01-01T00:00:00Z")
    pending = ok(standin, "vault", "secret", "get", "--secret-id", ocid)["data"]
    gone = refused(standin, "secrets", "secret-bundle", "get", "--secret-id", ocid)
    ok(standin, "vault", "secret", "cancel-secret-deletion", "--secret-id", ocid)

    assert pending["lifecycle-state"] == "PENDING_DELETION" and pending["time-of-deletion"].startswith("2030-01-01")
    assert (gone["status"], gone["code"]) == (404, "NotAuthorizedOrNotFound")
    assert ok(standin, "vault", "secret", "get", "--secret-id", ocid)["data"]["lifecycle-state"] == "ACTIVE"
