"""The credentials the stand-in accepts: API signing keys (native APIs) and customer secret keys (S3 compatibility).

- API keys: ``<state>/keys/keys.json`` maps each key's fingerprint to the tenancy and user it belongs to; the public
  key itself is ``<state>/keys/<fingerprint>.pem``. A request's ``keyId`` (``tenancy/user/fingerprint``) must name
  a registered key of that tenancy and user, as in OCI where a user uploads the public half of an API key.
- Customer secret keys: ``<state>/keys/customer_secret_keys.json`` (mode 0600) maps an access key id to its
  secret, as OCI keeps them for the S3 compatibility API's SigV4.

:func:`ensure_api_key` generates a key pair and an SDK config file into a directory (mode 0600) and registers the
public half; :func:`ensure_customer_secret_key` does the same for an S3 key pair. Both reuse what is already there.
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .files import WatchedJson, read_json, write_atomic, write_json

DEFAULT_TENANCY = "ocid1.tenancy.oc1..aaaaaaaalastmilestandin"
DEFAULT_USER = "ocid1.user.oc1..aaaaaaaalastmilestandin"
DEFAULT_REGION = "us-ashburn-1"


@dataclass(frozen=True)
class ApiKey:
    """An API signing key as the SDK's config file names it."""

    config_file: Path
    profile: str
    tenancy: str
    user: str
    fingerprint: str
    key_file: Path
    region: str

    @property
    def key_id(self) -> str:
        return f"{self.tenancy}/{self.user}/{self.fingerprint}"


@dataclass(frozen=True)
class CustomerSecretKey:
    access_key_id: str
    secret_key: str


def keys_dir(state: Path) -> Path:
    return state / "keys"


def fingerprint(public_key_pem: bytes) -> str:
    """OCI's fingerprint of a public key: the MD5 of its DER SubjectPublicKeyInfo, as colon-separated hex."""
    key = serialization.load_pem_public_key(public_key_pem)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.md5(der).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def register_key(state: Path, public_key_pem: bytes, tenancy: str, user: str) -> str:
    """Accept requests signed with the private half of ``public_key_pem`` for ``tenancy``/``user``; its fingerprint.

    Registering the same key again moves it to the given tenancy and user."""
    fp = fingerprint(public_key_pem)
    directory = keys_dir(state)
    write_atomic(directory / f"{fp}.pem", public_key_pem)
    registry = read_json(directory / "keys.json", {})
    registry[fp] = {"tenancy": tenancy, "user": user}
    write_json(directory / "keys.json", registry)
    return fp


def ensure_api_key(directory: Path, state: Path, tenancy: str = DEFAULT_TENANCY, user: str = DEFAULT_USER,
                   region: str = DEFAULT_REGION, profile: str = "DEFAULT") -> ApiKey:
    """An API key pair and an SDK config file in ``directory`` (``oci_api_key.pem`` and ``config``, both 0600),
    generated on first use and reused after; its public half registered with the stand-in in ``state`` every time
    (the state may be newer than the key)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    key_file, config_file = directory / "oci_api_key.pem", directory / "config"
    private_key = _load_private_key(key_file)
    if private_key is None:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        write_atomic(key_file, private_key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()), private=True)
    public_pem = private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    write_atomic(directory / "oci_api_key_public.pem", public_pem)
    fp = register_key(state, public_pem, tenancy, user)
    config = configparser.ConfigParser(default_section="lastmile-no-default", interpolation=None)
    config.read(config_file)
    config[profile] = {"user": user, "fingerprint": fp, "key_file": str(key_file.resolve()), "tenancy": tenancy,
                       "region": region}
    lines: list[str] = []
    for section in config.sections():
        lines.append(f"[{section}]")
        lines += [f"{name}={value}" for name, value in config[section].items()]
        lines.append("")
    write_atomic(config_file, "\n".join(lines).encode(), private=True)
    return ApiKey(config_file, profile, tenancy, user, fp, key_file.resolve(), region)


def _load_private_key(path: Path) -> rsa.RSAPrivateKey | None:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (FileNotFoundError, ValueError):
        return None
    return key if isinstance(key, rsa.RSAPrivateKey) else None


def register_customer_secret_key(state: Path, access_key_id: str, secret_key: str, tenancy: str = DEFAULT_TENANCY,
                                 user: str = DEFAULT_USER) -> None:
    """Accept S3 requests signed (SigV4) with this access key id and secret."""
    path = keys_dir(state) / "customer_secret_keys.json"
    registry = read_json(path, {})
    registry[access_key_id] = {"secret": secret_key, "tenancy": tenancy, "user": user}
    write_json(path, registry, private=True)


def ensure_customer_secret_key(state: Path, tenancy: str = DEFAULT_TENANCY,
                               user: str = DEFAULT_USER) -> CustomerSecretKey:
    """The first customer secret key registered for ``user``, or a new one (OCI's shapes: a 40-hex access key id and
    a 44-character secret)."""
    for access_key_id, entry in read_json(keys_dir(state) / "customer_secret_keys.json", {}).items():
        if entry.get("user") == user and entry.get("tenancy") == tenancy:
            return CustomerSecretKey(access_key_id, entry["secret"])
    key = CustomerSecretKey(secrets.token_hex(20), base64.b64encode(secrets.token_bytes(33)).decode())
    register_customer_secret_key(state, key.access_key_id, key.secret_key, tenancy, user)
    return key


@dataclass(frozen=True)
class RegisteredKey:
    tenancy: str
    user: str
    public_key: rsa.RSAPublicKey


class KeyRegistry:
    """The server's view of the registered keys, read again when another process registers one."""

    def __init__(self, state: Path):
        self.directory = keys_dir(state)
        self._api = WatchedJson(self.directory / "keys.json", {})
        self._s3 = WatchedJson(self.directory / "customer_secret_keys.json", {})
        self._loaded: dict[str, tuple[dict, RegisteredKey]] = {}

    def api_key(self, fp: str) -> RegisteredKey | None:
        entry = self._api.get().get(fp)
        if not isinstance(entry, dict):
            return None
        cached = self._loaded.get(fp)
        if cached and cached[0] == entry:
            return cached[1]
        try:
            public_key = serialization.load_pem_public_key((self.directory / f"{fp}.pem").read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(public_key, rsa.RSAPublicKey):
            return None
        key = RegisteredKey(entry.get("tenancy", ""), entry.get("user", ""), public_key)
        self._loaded[fp] = (dict(entry), key)
        return key

    def s3_secret(self, access_key_id: str) -> str | None:
        entry = self._s3.get().get(access_key_id)
        return entry.get("secret") if isinstance(entry, dict) else None
