"""The oci family's ObjectStore and SecretStore on the OCI API stand-in, driven by the real ``oci`` SDK: the port
contracts, then what OCI adds (multipart uploads, conditional writes, its errors, the secret cache), then the
``oci`` profile of lastmile.yaml built against the stand-in."""

from __future__ import annotations

import uuid

import pytest

from adapters.oci.auth import credentials
from adapters.oci.flavors import OciAuth
from adapters.oci.objectstore import OciObjectStore, open_store
from adapters.oci.sdk import PreconditionFailed
from adapters.oci.standin import put_secret, register_log, secret_ocid
from adapters.oci.standin.keys import ensure_api_key
from adapters.oci.standin.testing import StandInProcess
from adapters.oci.vault import VaultSecretStore
from adapters.oci.vault import open_store as open_vault
from harness.bootstrap import build
from harness.config.settings import load_settings
from harness.domain.errors import AuthError, IntegrityError, NotFound, UnreachableError, UserError
from harness.domain.records import LogEvent, SecretRef
from harness.infra.processes import free_port
from tests.contracts import unique
from tests.contracts.object_store import ObjectStoreContract
from tests.contracts.secret_store import SecretStoreContract
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration

COMPARTMENT = "ocid1.compartment.oc1..aaaaaaaalastmiletests"
VAULT = "ocid1.vault.oc1..aaaaaaaalastmiletests"
KIB, MIB = 1024, 1024 * 1024


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    with StandInProcess(free_port(), tmp_path_factory.mktemp("oci-standin")) as running:
        yield running


@pytest.fixture(scope="module")
def auth(standin) -> OciAuth:
    return OciAuth(config_file=str(standin.api_key.config_file), profile=standin.api_key.profile)


@pytest.fixture(scope="module")
def objects(standin, auth) -> OciObjectStore:
    store = open_store(credentials(auth), standin.url, "", COMPARTMENT, multipart_threshold=256 * KIB,
                       part_size=128 * KIB)
    store.ensure_bucket("lastmile-it")
    return store


class TestOciObjectStoreOnTheStandIn(ObjectStoreContract):
    @pytest.fixture
    def store(self, objects):
        return objects

    @pytest.fixture
    def bucket(self):
        return "lastmile-it"

    @pytest.fixture
    def missing_bucket(self):
        return f"absent-{uuid.uuid4().hex[:8]}"

    @pytest.fixture
    def tamper(self, objects):
        def rewrite(bucket, key, data):
            meta = {"sha256": objects.head(bucket, key).sha256}
            objects._client.put_object(objects.namespace, bucket, key, data, opc_meta=meta)
        return rewrite


class TestVaultSecretStoreOnTheStandIn(SecretStoreContract):
    """The retrieval API cannot write, so the contract's writes are seeded in the stand-in as Terraform would
    create them; what the adapter does with a write is tested below."""

    @pytest.fixture
    def store(self, standin, auth):
        return open_vault(credentials(auth), standin.url, VAULT)

    @pytest.fixture
    def scheme(self):
        return "vault"

    def test_a_put_secret_resolves(self, store, scheme, standin):
        ref = SecretRef(scheme, unique("s"))
        put_secret(standin.state, ref.name, VAULT, "hunter2-value")
        secret = store.resolve(ref)
        assert secret.reveal() == "hunter2-value"
        assert "hunter2" not in repr(secret) and "hunter2" not in str(secret)

    def test_ensure_creates_once_and_then_keeps_the_value(self, store, scheme, standin):
        ref = SecretRef(scheme, unique("generated"))
        with pytest.raises(UserError, match=f"{ref.name} .*managed in the tenancy"):
            store.ensure(ref, 16)
        put_secret(standin.state, ref.name, VAULT, "made-by-terraform")
        assert store.ensure(ref, 16).reveal() == "made-by-terraform" == store.resolve(ref).reveal()

    def test_ensure_keeps_a_value_that_was_put(self, store, scheme, standin):
        ref = SecretRef(scheme, unique("given"))
        put_secret(standin.state, ref.name, VAULT, "chosen")
        assert store.ensure(ref).reveal() == "chosen"


# object storage ----------------------------------------------------------------------------------
def test_an_object_over_the_threshold_goes_up_in_parts_and_keeps_its_sha256(objects):
    data = uuid.uuid4().bytes * (40 * KIB)  # 640 KiB: five parts of 128 KiB
    ref = objects.put("lastmile-it", unique("big"), data)
    head = objects._client.head_object(objects.namespace, "lastmile-it", ref.key).headers
    assert "opc-multipart-md5" in head and head["opc-meta-sha256"] == ref.sha256
    assert objects.get("lastmile-it", ref.key) == data


def test_an_object_under_the_threshold_goes_up_in_one_request(objects):
    ref = objects.put("lastmile-it", unique("small"), b"x" * (256 * KIB))
    head = objects._client.head_object(objects.namespace, "lastmile-it", ref.key).headers
    assert "opc-multipart-md5" not in head and "opc-content-md5" in head


@pytest.mark.parametrize("size", [1 * KIB, 300 * KIB], ids=["single", "multipart"])
def test_if_none_match_refuses_to_clobber_an_object(objects, size):
    ref = objects.put("lastmile-it", unique("first"), b"first")
    with pytest.raises(PreconditionFailed, match="412 IfNoneMatchFailed"):
        objects.put("lastmile-it", ref.key, b"s" * size, if_none_match=True)
    assert objects.get("lastmile-it", ref.key) == b"first"
    fresh = objects.put("lastmile-it", unique("new"), b"n" * size, if_none_match=True)
    assert objects.head("lastmile-it", fresh.key) == fresh


def test_if_match_replaces_only_the_version_it_names(objects):
    ref = objects.put("lastmile-it", unique("versioned"), b"v1")
    known = objects.etag("lastmile-it", ref.key)
    objects.put("lastmile-it", ref.key, b"v2", if_match=known)
    with pytest.raises(PreconditionFailed, match="412 IfMatchFailed"):
        objects.put("lastmile-it", ref.key, b"v3 from a stale reader", if_match=known)
    assert objects.get("lastmile-it", ref.key) == b"v2"
    assert objects.etag("lastmile-it", unique("absent")) is None


def test_a_tampered_multipart_object_is_refused(objects):
    ref = objects.put("lastmile-it", unique("big-tampered"), b"a" * (300 * KIB))
    objects._client.put_object(objects.namespace, "lastmile-it", ref.key, b"b" * (300 * KIB),
                               opc_meta={"sha256": ref.sha256})
    with pytest.raises(IntegrityError, match=ref.sha256[:12]):
        objects.get("lastmile-it", ref.key)


def test_a_key_oci_does_not_know_is_an_auth_error_naming_the_key_id(standin, tmp_path):
    stranger = ensure_api_key(tmp_path / "client", tmp_path / "another-standin")  # registered elsewhere only
    store = open_store(credentials(OciAuth(config_file=str(stranger.config_file))), standin.url, "", COMPARTMENT)
    with pytest.raises(AuthError, match="401 NotAuthenticated") as caught:
        store.head("lastmile-it", "anything")
    assert stranger.key_id in str(caught.value) and caught.value.url == standin.url
    assert "PRIVATE KEY" not in str(caught.value)


def test_an_endpoint_nothing_listens_on_is_unreachable_with_its_url(auth):
    url = f"http://127.0.0.1:{free_port()}"
    store = open_store(credentials(auth), url, "lastmile", COMPARTMENT)
    with pytest.raises(UnreachableError) as caught:
        store.get("lastmile-it", "anything")
    assert caught.value.url == url


# vault -------------------------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_resolved_secret_is_cached_for_its_ttl_then_read_again(standin, auth):
    clock, name = Clock(), unique("rotated")
    put_secret(standin.state, name, VAULT, "before")
    store = VaultSecretStore(open_vault(credentials(auth), standin.url, VAULT)._secrets, VAULT, ttl_s=60,
                             clock=clock)
    assert store.resolve(SecretRef("vault", name)).reveal() == "before"
    put_secret(standin.state, name, VAULT, "after")
    clock.now += 59
    assert store.resolve(SecretRef("vault", name)).reveal() == "before"
    clock.now += 2
    assert store.resolve(SecretRef("vault", name)).reveal() == "after"


def test_a_ttl_of_zero_reads_the_vault_every_time(standin, auth):
    name = unique("uncached")
    put_secret(standin.state, name, VAULT, "one")
    store = open_vault(credentials(auth), standin.url, VAULT, ttl_s=0)
    assert store.resolve(SecretRef("vault", name)).reveal() == "one"
    put_secret(standin.state, name, VAULT, "two")
    assert store.resolve(SecretRef("vault", name)).reveal() == "two"


def test_a_secret_is_found_by_ocid_and_a_secret_reference_by_name(standin, auth):
    name = unique("both")
    put_secret(standin.state, name, VAULT, "by either")
    store = open_vault(credentials(auth), standin.url, VAULT)
    assert store.resolve(SecretRef("vault", secret_ocid(VAULT, name))).reveal() == "by either"
    assert store.resolve(SecretRef("secret", name)).reveal() == "by either"


class TestVaultSecretStoreWithItsKeyOnTheStandIn(SecretStoreContract):
    """With the vault's master key, lastmile writes through the Vault management API (CreateSecret, UpdateSecret):
    the whole contract holds, writes included (how the oci-local profile keeps the stand-ins' credentials)."""

    @pytest.fixture
    def store(self, standin, auth):
        return open_vault(credentials(auth), standin.url, VAULT, ttl_s=0, management_endpoint=standin.url,
                          compartment_id=COMPARTMENT, key_id="ocid1.key.oc1..aaaaaaaalastmiletests")

    @pytest.fixture
    def scheme(self):
        return "vault"

    def test_a_put_makes_a_new_version_that_resolves(self, store):
        ref = SecretRef("vault", unique("rotated"))
        store.put(ref, "first")
        store.put(ref, "second")
        assert store.resolve(ref).reveal() == "second"


def test_put_is_refused_naming_the_reference_and_never_the_value(standin, auth):
    store = open_vault(credentials(auth), standin.url, VAULT)
    with pytest.raises(UserError, match=r"vault:registry-token .*Terraform") as caught:
        store.put(SecretRef("vault", "registry-token"), "hunter2")
    assert "hunter2" not in str(caught.value)


# the oci profile ---------------------------------------------------------------------------------
def test_the_oci_profile_pointed_at_the_stand_in_builds_working_adapters(standin, tmp_path):
    log_id, group = "ocid1.log.oc1..profile" + uuid.uuid4().hex[:8], "ocid1.loggroup.oc1..profile"
    register_log(standin.state, log_id, group, COMPARTMENT)
    put_secret(standin.state, "mlflow-password", "ocid1.vault.oc1..example", "from the vault")
    environ = {"LASTMILE_STATE_DIR": str(tmp_path / ".lastmile"), "LASTMILE_PORTS__OBJECT_STORE__NAMESPACE": "lastmile",
               "LASTMILE_PORTS__LOG_SINK__LOG_ID": log_id, "LASTMILE_PORTS__LOG_SINK__LOG_GROUP_ID": group,
               "LASTMILE_PORTS__LOG_SINK__COMPARTMENT_ID": COMPARTMENT, "LASTMILE_PORTS__LOG_SINK__BATCH_SIZE": "1"}
    for port in ("OBJECT_STORE", "SECRET_STORE", "LOG_SINK"):
        environ[f"LASTMILE_PORTS__{port}__ENDPOINT"] = standin.url
        environ[f"LASTMILE_PORTS__{port}__AUTH__CONFIG_FILE"] = str(standin.api_key.config_file)
    h = build(load_settings(ROOT / "lastmile.yaml", "oci", environ))
    assert h.settings.ports.object_store.where(h) == standin.url
    h.object_store.ensure_bucket("lastmile-profile")
    assert h.object_store.get("lastmile-profile", h.object_store.put("lastmile-profile", "k", b"v").key) == b"v"
    assert h.secret("secret:mlflow-password").reveal() == "from the vault"
    h.log_sink.emit(LogEvent("run.started", subject="run-1", time=1.0))
    assert [e.event for e in h.log_sink.events("run-1")] == ["run.started"]
    with pytest.raises(NotFound):
        h.object_store.get("lastmile-profile", "absent")
