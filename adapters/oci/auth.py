"""How the oci adapters sign: the SDK ``config`` and ``signer`` pair for a client, and what ``doctor`` checks first.

Four methods, chosen by :class:`~adapters.oci.flavors.OciAuth` in ``lastmile.yaml``:

- ``api_key``: a profile of an SDK config file (``user``, ``tenancy``, ``fingerprint``, ``key_file``, ``region``);
- ``session_token``: a profile written by ``oci session authenticate`` (``security_token_file``, ``key_file``);
- ``instance_principal``: the compute instance's identity, from its metadata service;
- ``resource_principal``: the identity OCI hands a Data Science job or a Function through environment variables.

:func:`auth_problems` judges a method without sending any request; :func:`credentials` builds the pair (the two
principals contact OCI's token services then, as the SDK does).
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.domain.errors import UserError

if TYPE_CHECKING:
    from adapters.oci.flavors import OciAuth

CHASSIS_ASSET_TAG = Path("/sys/class/dmi/id/chassis_asset_tag")
"""OCI compute instances carry ``OracleCloud.com`` here; instance principals need such an instance."""

RESOURCE_PRINCIPAL_VARIABLES = {
    "1.1": ("OCI_RESOURCE_PRINCIPAL_RPT_ENDPOINT", "OCI_RESOURCE_PRINCIPAL_RPST_ENDPOINT"),
    "2.1": ("OCI_RESOURCE_PRINCIPAL_RPT_ENDPOINT", "OCI_RESOURCE_PRINCIPAL_RPST_ENDPOINT",
            "OCI_RESOURCE_PRINCIPAL_RESOURCE_ID", "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM", "OCI_RESOURCE_PRINCIPAL_REGION"),
    "2.2": ("OCI_RESOURCE_PRINCIPAL_RPST", "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM", "OCI_RESOURCE_PRINCIPAL_REGION"),
    "3.0": ("OCI_RESOURCE_PRINCIPAL_VERSION_FOR_LEAF_RESOURCE", "OCI_RESOURCE_PRINCIPAL_RPT_URL_FOR_PARENT_RESOURCE",
            "OCI_RESOURCE_PRINCIPAL_RPST_ENDPOINT_FOR_PARENT_RESOURCE"),
}
"""The environment OCI sets for each resource principal version (``OCI_RESOURCE_PRINCIPAL_VERSION``)."""
RESOURCE_PRINCIPAL_VARIABLES["2.1.1"] = (*RESOURCE_PRINCIPAL_VARIABLES["2.1"], "OCI_RESOURCE_PRINCIPAL_TENANCY_ID")
RESOURCE_PRINCIPAL_VARIABLES["2.1.2"] = RESOURCE_PRINCIPAL_VARIABLES["2.1.1"]

_PROFILE_KEYS = {"api_key": ("user", "tenancy", "fingerprint", "key_file"),
                 "session_token": ("security_token_file", "key_file")}


@dataclass(frozen=True)
class Credentials:
    """What an SDK client is built with, plus the names an error may show: never a key or a token."""

    config: dict = field(repr=False)
    signer: Any = field(repr=False)
    key_id: str
    region: str


def credentials(auth: OciAuth, region: str = "") -> Credentials:
    """The SDK ``config``/``signer`` pair for ``auth``; ``region`` (a flavor's own) wins over the auth's and the
    profile's. A :class:`UserError` lists what :func:`auth_problems` finds when the pair cannot be made."""
    import oci

    region = region or auth.region
    try:
        if auth.method in _PROFILE_KEYS:
            config = oci.config.from_file(str(Path(auth.config_file).expanduser()), auth.profile)
            if region:
                config["region"] = region
            signer, key_id = _profile_signer(auth, config)
            return Credentials(config, signer, key_id, config.get("region", ""))
        if auth.method == "instance_principal":
            signer = oci.auth.signers.InstancePrincipalsSecurityTokenSigner()
        else:
            signer = oci.auth.signers.get_resource_principals_signer()
    except (oci.exceptions.ClientError, OSError, ValueError, KeyError) as exc:
        problems = auth_problems(auth) or [f"{type(exc).__name__}: {exc}"]
        raise UserError(f"OCI auth ({auth.method}) cannot sign: " + "; ".join(problems)) from None
    region = region or getattr(signer, "region", "") or ""
    return Credentials({"region": region}, signer, auth.method.replace("_", " "), region)


def _profile_signer(auth: OciAuth, config: dict) -> tuple[Any, str]:
    import oci

    if auth.method == "api_key":
        signer = oci.signer.Signer(config["tenancy"], config["user"], config["fingerprint"],
                                   str(Path(config["key_file"]).expanduser()), config.get("pass_phrase"))
        return signer, signer.api_key
    token = Path(config["security_token_file"]).expanduser().read_text().strip()
    key = oci.signer.load_private_key_from_file(str(Path(config["key_file"]).expanduser()), config.get("pass_phrase"))
    subject = _token_claims(token).get("sub", "?")
    return oci.auth.signers.SecurityTokenSigner(token, key), f"session token of {subject} (profile {auth.profile})"


# doctor -----------------------------------------------------------------------------------------
def auth_problems(auth: OciAuth) -> list[str]:
    """What stops ``auth`` from signing, one line each, found without sending a request; empty when nothing does.

    ``api_key``/``session_token``: the config file exists, the profile is in it with its keys, the key file is
    readable, of mode 0600 (or tighter) and a PEM private key, the profile's fingerprint is the key's, a region is
    set; for a session token, the token file is there and not expired. ``resource_principal``: the variables
    OCI sets for the version in ``OCI_RESOURCE_PRINCIPAL_VERSION`` (see :data:`RESOURCE_PRINCIPAL_VARIABLES`).
    ``instance_principal``: the machine is an OCI instance (its DMI chassis asset tag says ``OracleCloud.com``)."""
    if auth.method == "instance_principal":
        return _instance_problems()
    if auth.method == "resource_principal":
        return _resource_problems(auth)
    return _profile_problems(auth)


def settings_problems(configs: Iterable[tuple[str, Any]]) -> list[str]:
    """:func:`auth_problems` of every port config that has an ``auth`` (each distinct auth once), prefixed by
    the ports that use it: what ``lastmile doctor --profile oci`` shows for the profile's ``ports``."""
    users: dict[Any, list[str]] = {}
    for port, config in configs:
        if getattr(config, "auth", None) is not None:
            users.setdefault(config.auth, []).append(port)
    return [f"{', '.join(ports)}: {problem}" for auth, ports in users.items() for problem in auth_problems(auth)]


def _profile_problems(auth: OciAuth) -> list[str]:
    path = Path(auth.config_file).expanduser()
    if not path.is_file():
        return [f"OCI config file {path} does not exist (`oci setup config` writes one)"]
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path)
    except configparser.Error as exc:
        return [f"OCI config file {path} cannot be parsed: {type(exc).__name__}"]
    if auth.profile != "DEFAULT" and auth.profile not in parser:
        return [f"profile [{auth.profile}] is not in {path} (it has: {', '.join(parser.sections()) or 'none'})"]
    profile = parser[auth.profile]
    where = f"profile [{auth.profile}] of {path}"
    missing = [key for key in _PROFILE_KEYS[auth.method] if not profile.get(key)]
    problems = [f"{where} lacks {', '.join(missing)}"] if missing else []
    if not (auth.region or profile.get("region") or os.environ.get("OCI_REGION")):
        problems.append(f"no region: set auth.region in lastmile.yaml or region in {where}")
    if profile.get("key_file"):
        problems += _key_problems(Path(profile["key_file"]).expanduser(), profile.get("pass_phrase"),
                                  profile.get("fingerprint"), where)
    if auth.method == "session_token" and profile.get("security_token_file"):
        problems += _token_problems(Path(profile["security_token_file"]).expanduser(), auth.profile)
    return problems


def _key_problems(key_file: Path, pass_phrase: str | None, expected: str | None, where: str) -> list[str]:
    from cryptography.hazmat.primitives import serialization

    if not key_file.is_file():
        return [f"key file {key_file} ({where}) does not exist"]
    if not os.access(key_file, os.R_OK):
        return [f"key file {key_file} is not readable by this user"]
    problems = []
    mode = key_file.stat().st_mode & 0o777
    if mode & 0o077:
        problems.append(f"key file {key_file} has mode {mode:04o}: others may read it (chmod 600 {key_file})")
    try:
        key = serialization.load_pem_private_key(key_file.read_bytes(), pass_phrase.encode() if pass_phrase else None)
    except (ValueError, TypeError):
        return [*problems, f"key file {key_file} is not a PEM private key (or its pass_phrase is wrong or missing)"]
    actual = fingerprint(key.public_key())
    if expected and expected.strip().lower() != actual:
        problems.append(f"the fingerprint in {where} ({expected}) is not key file {key_file}'s ({actual})")
    return problems


def _token_problems(token_file: Path, profile: str) -> list[str]:
    if not token_file.is_file():
        return [f"session token file {token_file} does not exist (`oci session authenticate`)"]
    expires = _token_claims(token_file.read_text().strip()).get("exp")
    if isinstance(expires, (int, float)) and expires < time.time():
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expires))
        return [f"the session token of profile [{profile}] expired at {when} "
                f"(`oci session refresh --profile {profile}`, or authenticate again)"]
    return []


def _resource_problems(auth: OciAuth) -> list[str]:
    version = os.environ.get("OCI_RESOURCE_PRINCIPAL_VERSION", "")
    if not version:
        return ["OCI_RESOURCE_PRINCIPAL_VERSION is not set: this process is not an OCI resource "
                "(a Data Science job run, a Function) that resource principals can sign for"]
    needed = RESOURCE_PRINCIPAL_VARIABLES.get(version)
    if needed is None:
        return [f"OCI_RESOURCE_PRINCIPAL_VERSION={version} is not one the oci SDK knows "
                f"({', '.join(sorted(RESOURCE_PRINCIPAL_VARIABLES))})"]
    problems = [f"resource principal {version}: {name} is not set" for name in needed if not os.environ.get(name)]
    for name in ("OCI_RESOURCE_PRINCIPAL_RPST", "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM"):
        value = os.environ.get(name, "")
        if value.startswith("/") and not Path(value).is_file():
            problems.append(f"{name} names {value}, which does not exist")
    return problems


def _instance_problems() -> list[str]:
    try:
        tag = CHASSIS_ASSET_TAG.read_text().strip()
    except OSError:
        tag = ""
    if tag != "OracleCloud.com":
        return [f"this machine is not an OCI instance ({CHASSIS_ASSET_TAG} says {tag or 'nothing'!r}): "
                "instance principals need the instance metadata service"]
    return []


# keys and tokens --------------------------------------------------------------------------------
def fingerprint(public_key: Any) -> str:
    """OCI's fingerprint of an API signing key: the MD5 of its DER SubjectPublicKeyInfo, as colon-separated hex."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.md5(der, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def _token_claims(token: str) -> dict:
    """The claims of a JWT, read without checking its signature (OCI checks it); {} for anything else."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}
