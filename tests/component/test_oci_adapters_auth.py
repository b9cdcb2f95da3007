"""The oci family's auth: the SDK config/signer pair from lastmile.yaml, and what `doctor` finds without a request."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.oci import auth as oci_auth
from adapters.oci.auth import auth_problems, credentials, fingerprint, settings_problems
from adapters.oci.flavors import OciAuth
from harness.domain.errors import UserError

TENANCY = "ocid1.tenancy.oc1..aaaatenancy"
USER = "ocid1.user.oc1..aaaauser"


def _key(path: Path, mode: int = 0o600):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(mode)
    return key


def _config(tmp_path: Path, profile: str = "DEFAULT", mode: int = 0o600, **overrides: str) -> tuple[Path, str]:
    key = _key(tmp_path / "key.pem", mode)
    entries = {"user": USER, "tenancy": TENANCY, "fingerprint": fingerprint(key.public_key()),
               "key_file": str(tmp_path / "key.pem"), "region": "eu-frankfurt-1", **overrides}
    path = tmp_path / "config"
    path.write_text(f"[{profile}]\n" + "".join(f"{k}={v}\n" for k, v in entries.items() if v))
    return path, entries["fingerprint"]


def _token(expires: float) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{part({'alg': 'RS256'})}.{part({'sub': USER, 'exp': int(expires)})}.signature"


def test_a_complete_api_key_profile_has_no_problem_and_signs_as_its_key(tmp_path):
    path, print_ = _config(tmp_path, "CI")
    auth = OciAuth(config_file=str(path), profile="CI")
    assert auth_problems(auth) == []
    made = credentials(auth)
    assert made.key_id == f"{TENANCY}/{USER}/{print_}"
    assert made.region == "eu-frankfurt-1" and made.config["region"] == "eu-frankfurt-1"


def test_the_flavors_region_wins_over_the_profiles(tmp_path):
    path, _ = _config(tmp_path)
    assert credentials(OciAuth(config_file=str(path)), "us-ashburn-1").region == "us-ashburn-1"


def test_a_missing_config_file_is_named(tmp_path):
    [problem] = auth_problems(OciAuth(config_file=str(tmp_path / "nope")))
    assert "nope does not exist" in problem


def test_a_missing_profile_is_named_with_the_ones_there(tmp_path):
    path, _ = _config(tmp_path, "CI")
    [problem] = auth_problems(OciAuth(config_file=str(path), profile="PROD"))
    assert "[PROD] is not in" in problem and "CI" in problem


def test_a_key_others_may_read_is_refused_with_its_mode(tmp_path):
    path, _ = _config(tmp_path, mode=0o644)
    [problem] = auth_problems(OciAuth(config_file=str(path)))
    assert "mode 0644" in problem and "chmod 600" in problem


def test_a_fingerprint_that_is_not_the_keys_is_found(tmp_path):
    path, actual = _config(tmp_path, fingerprint="aa:" * 15 + "aa")
    [problem] = auth_problems(OciAuth(config_file=str(path)))
    assert "fingerprint" in problem and actual in problem


def test_a_profile_without_a_region_or_keys_says_which(tmp_path, monkeypatch):
    monkeypatch.delenv("OCI_REGION", raising=False)
    path, _ = _config(tmp_path, region="", user="")
    problems = auth_problems(OciAuth(config_file=str(path)))
    assert any("lacks user" in p for p in problems) and any("no region" in p for p in problems)
    assert auth_problems(OciAuth(config_file=str(path), region="eu-frankfurt-1")) == problems[:1]


def test_a_key_file_that_is_not_a_key_is_named(tmp_path):
    path, _ = _config(tmp_path)
    (tmp_path / "key.pem").write_text("not a key")
    [problem] = auth_problems(OciAuth(config_file=str(path)))
    assert "is not a PEM private key" in problem


def test_credentials_that_cannot_sign_list_the_problems_and_no_key_material(tmp_path):
    path, _ = _config(tmp_path, mode=0o644)
    pem = (tmp_path / "key.pem").read_text()
    (tmp_path / "key.pem").unlink()
    with pytest.raises(UserError, match=r"key\.pem .* does not exist") as caught:
        credentials(OciAuth(config_file=str(path)))
    assert pem.splitlines()[1] not in str(caught.value)


def test_an_expired_session_token_is_found_and_a_fresh_one_signs(tmp_path):
    token = tmp_path / "token"
    path, _ = _config(tmp_path, "SESSION", fingerprint="", user="", security_token_file=str(token))
    auth = OciAuth(method="session_token", config_file=str(path), profile="SESSION")
    token.write_text(_token(time.time() - 60))
    [problem] = auth_problems(auth)
    assert "expired" in problem and "oci session refresh --profile SESSION" in problem
    token.write_text(_token(time.time() + 3600))
    assert auth_problems(auth) == []
    assert credentials(auth).key_id == f"session token of {USER} (profile SESSION)"


def test_resource_principal_names_the_variables_oci_sets(monkeypatch):
    for name in ("OCI_RESOURCE_PRINCIPAL_VERSION", "OCI_RESOURCE_PRINCIPAL_RPST", "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM",
                 "OCI_RESOURCE_PRINCIPAL_REGION"):
        monkeypatch.delenv(name, raising=False)
    auth = OciAuth(method="resource_principal")
    [problem] = auth_problems(auth)
    assert "OCI_RESOURCE_PRINCIPAL_VERSION is not set" in problem
    monkeypatch.setenv("OCI_RESOURCE_PRINCIPAL_VERSION", "2.2")
    monkeypatch.setenv("OCI_RESOURCE_PRINCIPAL_RPST", "/no/such/token")
    problems = auth_problems(auth)
    assert {p.split(": ")[1].split()[0] for p in problems if "is not set" in p} == {
        "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM", "OCI_RESOURCE_PRINCIPAL_REGION"}
    assert any("/no/such/token, which does not exist" in p for p in problems)


def test_instance_principal_needs_an_oci_instance(tmp_path, monkeypatch):
    tag = tmp_path / "chassis_asset_tag"
    monkeypatch.setattr(oci_auth, "CHASSIS_ASSET_TAG", tag)
    tag.write_text("To Be Filled By O.E.M.\n")
    [problem] = auth_problems(OciAuth(method="instance_principal"))
    assert "not an OCI instance" in problem
    tag.write_text("OracleCloud.com\n")
    assert auth_problems(OciAuth(method="instance_principal")) == []


def test_settings_problems_judge_each_auth_once_naming_its_ports(tmp_path):
    class Port:
        def __init__(self, auth):
            self.auth = auth

    broken = OciAuth(config_file=str(tmp_path / "absent"))
    problems = settings_problems([("object_store", Port(broken)), ("log_sink", Port(broken)),
                                  ("model_registry", object())])
    assert problems == [f"object_store, log_sink: OCI config file {tmp_path / 'absent'} does not exist "
                        "(`oci setup config` writes one)"]
