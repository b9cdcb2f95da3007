"""The ``ocir`` ArtifactRegistry on the Distribution registry standing in for OCIR (the OCI API stand-in serves no
registry): OCIR's login ``<namespace>/<user>`` with an auth token from the secret store, repositories under the
namespace, and the registry contract."""

from __future__ import annotations

import shutil

import pytest

from adapters.local.bundle_builder import BundleImageBuilder
from adapters.local.secrets import FileSecretStore
from adapters.local.standins import RegistryStandIn
from adapters.oci.flavors import Ocir
from adapters.oci.ocir import open_registry
from adapters.shared.distribution import DistributionRegistry
from harness.bootstrap import Given, build
from harness.config.settings import load_settings
from harness.domain.errors import AuthError
from harness.domain.records import Secret, SecretRef
from harness.infra.processes import free_port
from harness.infra.supervisor import Supervisor
from tests.contracts import unique
from tests.contracts.artifact_registry import ArtifactRegistryContract
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration

NAMESPACE, USER, TOKEN_REF = "lastmiletenancy", "lastmile-ci", "secret:ocir-auth-token"


@pytest.fixture(scope="module")
def secrets(tmp_path_factory) -> FileSecretStore:
    return FileSecretStore(tmp_path_factory.mktemp("secrets") / "secrets.json")


@pytest.fixture(scope="module")
def registry_url(tmp_path_factory, secrets):
    if not shutil.which("docker-registry"):
        pytest.fail("docker-registry is not on PATH: `make test` installs it (apt-get install docker-registry)")
    state = tmp_path_factory.mktemp("ocir") / ".lastmile"
    supervisor = Supervisor(state)
    [running] = supervisor.up([RegistryStandIn(free_port(), state, f"{NAMESPACE}/{USER}", TOKEN_REF, secrets)])
    try:
        yield running.url
    finally:
        supervisor.down()


class TestOcirOnTheRegistryStandIn(ArtifactRegistryContract):
    @pytest.fixture
    def registry(self, registry_url, secrets):
        return open_registry("eu-frankfurt-1", NAMESPACE, USER, secrets.resolve(SecretRef.parse(TOKEN_REF)),
                             TOKEN_REF, registry_url)

    @pytest.fixture
    def repo(self):
        return f"{NAMESPACE}/lastmile/{unique('repo')}"


def test_the_bundle_builder_pushes_under_the_namespace_for_full_ocir_paths(registry_url, secrets, tmp_path):
    config = Ocir(flavor="ocir", region="eu-frankfurt-1", namespace=NAMESPACE, username=USER, auth_token=TOKEN_REF,
                  repository_prefix="lastmile", endpoint=registry_url)
    assert config.repository_prefix == f"{NAMESPACE}/lastmile"
    assert config.model_copy(update={"repository_prefix": f"{NAMESPACE}/x"}).repository_prefix == f"{NAMESPACE}/x"
    registry = open_registry("eu-frankfurt-1", NAMESPACE, USER, secrets.resolve(SecretRef.parse(TOKEN_REF)),
                             TOKEN_REF, registry_url)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__main__.py").write_text(f"print('{unique('bundle')}')\n")
    built = BundleImageBuilder(registry, config.repository_prefix).build("training", tmp_path / "pkg")
    assert str(built.artifact).startswith(f"{registry.registry}/{NAMESPACE}/lastmile/training@sha256:")


def test_a_wrong_auth_token_names_the_login_and_the_reference_never_the_token(registry_url):
    registry = open_registry("eu-frankfurt-1", NAMESPACE, USER, Secret("not-the-token"), TOKEN_REF, registry_url)
    with pytest.raises(AuthError) as caught:
        registry.has_blob(f"{NAMESPACE}/lastmile/any", "sha256:" + "0" * 64)
    assert f"'{NAMESPACE}/{USER}'" in str(caught.value) and caught.value.secret_ref == TOKEN_REF
    assert "not-the-token" not in str(caught.value)


def test_the_flavor_takes_its_token_from_the_secret_store_and_defaults_to_the_regions_host(registry_url, secrets,
                                                                                          tmp_path):
    settings = load_settings(ROOT / "lastmile.yaml", "oci", {"LASTMILE_STATE_DIR": str(tmp_path)})
    config = Ocir(flavor="ocir", region="eu-frankfurt-1", namespace=NAMESPACE, username=USER, auth_token=TOKEN_REF,
                  endpoint=registry_url)
    h = build(settings, Given(secret_store=secrets))
    adapter = config.build(h)
    assert isinstance(adapter, DistributionRegistry) and adapter.endpoint == registry_url
    assert adapter.push_blob(f"{config.repository_prefix}/flavor", b"x").startswith("sha256:")
    assert config.model_copy(update={"endpoint": None}).where(h) == "https://fra.ocir.io"
