"""The OCI stand-in checks request signatures as OCI does: requests signed by the SDK's own ``oci.signer.Signer`` are
accepted; a missing, malformed, unknown-key, wrong-key, stale, body-tampered or under-signed request is 401
``NotAuthenticated`` with OCI's message; unknown routes are 404 ``NotAuthorizedOrNotFound``; every answer carries
an ``opc-request-id``."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import oci
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.oci.standin import DEFAULT_TENANCY, DEFAULT_USER, fingerprint
from adapters.oci.standin.testing import REPO, StandInProcess
from harness.infra.processes import free_port

pytestmark = pytest.mark.timeout(60)
BODY = json.dumps({"name": "signed-bucket", "compartmentId": "ocid1.compartment.oc1..aaaaaaaasig"})


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    with StandInProcess(free_port(), tmp_path_factory.mktemp("oci-standin")) as process:
        yield process


def new_key(folder: Path, name: str) -> tuple[Path, str]:
    """A fresh RSA key pair written to ``folder``: the private key's path and the public key's fingerprint."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / f"{name}.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (folder / f"{name}.pub.pem").write_bytes(public)
    return path, fingerprint(public)


def signed(standin: StandInProcess, method: str, path: str, body: str | None = None, *, key_file: Path | None = None,
           fp: str | None = None, tenancy: str = DEFAULT_TENANCY, user: str = DEFAULT_USER,
           date: datetime | None = None, body_signed: bool = True) -> requests.PreparedRequest:
    """A request signed by the SDK's ``Signer`` (optionally with another key, key id or date)."""
    key = standin.api_key
    prepared = requests.Request(method, standin.url + path, data=body,
                                headers={"content-type": "application/json"} if body is not None else {}).prepare()
    if date is not None:
        prepared.headers["date"] = format_datetime(date, usegmt=True)
    signer = oci.signer.Signer(tenancy, user, fp or key.fingerprint, str(key_file or key.key_file))
    return signer(prepared, enforce_content_headers=body_signed)


def send(prepared: requests.PreparedRequest) -> requests.Response:
    with requests.Session() as session:
        return session.send(prepared, timeout=10)


def assert_not_authenticated(answer, message: str | None = None) -> None:
    assert answer.status_code == 401 and answer.headers["opc-request-id"]
    assert answer.json()["code"] == "NotAuthenticated"
    if message is not None:
        assert answer.json()["message"] == message


def test_a_request_signed_by_the_sdk_signer_is_accepted(standin):
    answer = send(signed(standin, "GET", "/n/"))

    assert (answer.status_code, answer.json()) == (200, "lastmile")


def test_an_unsigned_request_is_401_not_authenticated(standin):
    answer = httpx.get(f"{standin.url}/n/")

    assert_not_authenticated(answer, "The required information to complete authentication was not provided.")


def test_a_malformed_authorization_header_is_401(standin):
    assert_not_authenticated(httpx.get(f"{standin.url}/n/", headers={"authorization": "Bearer token"}))


def test_a_key_that_is_not_the_registered_one_is_401_failed_to_verify(standin, tmp_path):
    other_key, _ = new_key(tmp_path, "other")
    answer = send(signed(standin, "GET", "/n/", key_file=other_key))

    assert_not_authenticated(answer, "Failed to verify the HTTP(S) Signature")


def test_an_unknown_key_id_is_401(standin, tmp_path):
    other_key, other_fp = new_key(tmp_path, "unknown")

    assert_not_authenticated(send(signed(standin, "GET", "/n/", key_file=other_key, fp=other_fp)))


def test_a_registered_key_used_for_another_user_is_401(standin):
    answer = send(signed(standin, "GET", "/n/", user="ocid1.user.oc1..aaaaaaaasomeoneelse"))

    assert_not_authenticated(answer)


@pytest.mark.parametrize("skew", [timedelta(minutes=-6), timedelta(minutes=6)], ids=["stale", "future"])
def test_a_date_more_than_five_minutes_off_is_401_clock_skew(standin, skew):
    answer = send(signed(standin, "GET", "/n/", date=datetime.now(UTC) + skew))

    assert_not_authenticated(answer)
    assert "is not within allowed clock skew" in answer.json()["message"]


def test_a_date_four_minutes_off_is_accepted(standin):
    assert send(signed(standin, "GET", "/n/", date=datetime.now(UTC) - timedelta(minutes=4))).status_code == 200


def test_a_tampered_body_is_401(standin):
    prepared = signed(standin, "POST", "/n/lastmile/b", BODY)
    prepared.body = BODY.replace("signed-bucket", "forged-bucket")
    answer = send(prepared)

    assert_not_authenticated(answer, "The x-content-sha256 header does not match the request body.")


def test_a_tampered_body_with_its_hash_changed_too_is_401_failed_to_verify(standin):
    forged = BODY.replace("signed-bucket", "forged-bucket")
    prepared = signed(standin, "POST", "/n/lastmile/b", BODY)
    prepared.body = forged
    prepared.headers["x-content-sha256"] = signed(standin, "POST", "/n/lastmile/b", forged).headers["x-content-sha256"]

    assert_not_authenticated(send(prepared), "Failed to verify the HTTP(S) Signature")


def test_a_post_whose_body_headers_are_not_signed_is_401(standin):
    answer = send(signed(standin, "POST", "/n/lastmile/b", BODY, body_signed=False))

    assert_not_authenticated(answer)
    assert "content-length, content-type, x-content-sha256" in answer.json()["message"]


def test_put_object_needs_no_body_signature_as_the_sdk_sends_it(standin):
    send(signed(standin, "POST", "/n/lastmile/b", json.dumps({"name": "putbucket", "compartmentId": "c.c.c.c"})))
    prepared = signed(standin, "PUT", "/n/lastmile/b/putbucket/o/k", "bytes", body_signed=False)

    assert send(prepared).status_code == 200


def test_a_request_target_changed_after_signing_is_401(standin):
    prepared = signed(standin, "GET", "/n/lastmile/b?compartmentId=c.c.c.c")
    prepared.url = prepared.url.replace("c.c.c.c", "d.d.d.d")

    assert_not_authenticated(send(prepared), "Failed to verify the HTTP(S) Signature")


def test_an_unknown_route_is_404_not_authorized_or_not_found_once_signed(standin):
    answer = send(signed(standin, "GET", "/20160918/instances"))
    unsigned = httpx.get(f"{standin.url}/20160918/instances")

    assert answer.status_code == 404 and answer.json()["code"] == "NotAuthorizedOrNotFound"
    assert unsigned.status_code == 401


def test_every_answer_has_an_opc_request_id_and_echoes_the_client_one(standin):
    prepared = signed(standin, "GET", "/n/lastmile/b/none")
    prepared.headers["opc-client-request-id"] = "mine-123"
    answers = [send(prepared), httpx.get(f"{standin.url}/n/")]

    assert all(a.headers["opc-request-id"] for a in answers)
    assert answers[0].headers["opc-client-request-id"] == "mine-123"
    assert len({a.headers["opc-request-id"] for a in answers}) == 2


def test_the_sdk_with_a_wrong_key_gets_service_error_not_authenticated(standin, tmp_path):
    other_key, _ = new_key(tmp_path, "sdk-other")
    config = {**standin.sdk_config(), "key_file": str(other_key)}
    client = oci.object_storage.ObjectStorageClient(config, service_endpoint=standin.url)
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        client.get_namespace()

    assert (caught.value.status, caught.value.code) == (401, "NotAuthenticated")


def test_a_key_registered_while_running_is_accepted_without_a_restart(standin, tmp_path):
    key_file, fp = new_key(tmp_path, "late")
    user = "ocid1.user.oc1..aaaaaaaalateuser"
    before = send(signed(standin, "GET", "/n/", key_file=key_file, fp=fp, user=user))
    done = subprocess.run([sys.executable, "-m", "adapters.oci.standin", "keys", "register", "--state",
                           str(standin.state), "--public-key", str(tmp_path / "late.pub.pem"),
                           "--tenancy", DEFAULT_TENANCY, "--user", user],
                          cwd=REPO, capture_output=True, text=True, timeout=30)
    after = send(signed(standin, "GET", "/n/", key_file=key_file, fp=fp, user=user))

    assert before.status_code == 401 and done.returncode == 0 and json.loads(done.stdout) == {"fingerprint": fp}
    assert after.status_code == 200


def test_the_generated_config_and_private_key_are_private(standin):
    key = standin.api_key

    assert key.config_file.stat().st_mode & 0o777 == 0o600 and key.key_file.stat().st_mode & 0o777 == 0o600
    assert f"fingerprint={key.fingerprint}" in key.config_file.read_text()
