"""LocalFaultInjector's secret faults: the old value never leaves the secret store, and comes back on revert."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import bcrypt
import pytest

from adapters.local.faults import LocalFaultInjector
from harness.bootstrap import build
from harness.config.settings import load_settings
from harness.domain.errors import NotFound, UserError
from harness.domain.records import FaultSpec, SecretRef

ROOT = Path(__file__).resolve().parents[2]
TOKEN = SecretRef.parse("secret:app-token")
VALUE = "app-token-value-7f3a9c"

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def h(tmp_path):
    h = build(load_settings(ROOT / "lastmile.yaml", "local", {"LASTMILE_STATE_DIR": str(tmp_path / ".lastmile")}))
    h.secret_store.put(TOKEN, VALUE)
    return h


@pytest.fixture
def injector(h) -> LocalFaultInjector:
    return LocalFaultInjector(h)


def files_holding(state_dir: Path, value: str) -> list[str]:
    """Every file under the state dir but the secret store that holds ``value`` (the drills' leak invariant)."""
    return [str(p.relative_to(state_dir)) for p in state_dir.rglob("*")
            if p.is_file() and p.name != "secrets.json" and value.encode() in p.read_bytes()]


def test_a_rotated_secret_gets_a_new_value_and_revert_brings_the_old_one_back(h, injector):
    handle = injector.inject(FaultSpec("data", "secret:app-token", "rotate"))
    rotated = h.secret_store.resolve(TOKEN).reveal()
    stored = json.loads((h.settings.state_dir / "secrets.json").read_text())
    leaks = files_holding(h.settings.state_dir, VALUE) + files_holding(h.settings.state_dir, rotated)
    evidence = injector.revert(handle.id)

    assert rotated != VALUE and stored["app-token.drill-backup"] == VALUE
    assert leaks == []
    assert h.secret_store.resolve(TOKEN).reveal() == VALUE
    assert "app-token.drill-backup" not in json.loads((h.settings.state_dir / "secrets.json").read_text())
    assert evidence.took_effect and "secret:app-token restored" in evidence.detail


def test_a_removed_secret_cannot_be_resolved_until_reverted(h, injector):
    handle = injector.inject(FaultSpec("data", "secret:app-token", "remove"))
    with pytest.raises(NotFound):
        h.secret_store.resolve(TOKEN)
    injector.revert(handle.id)
    assert h.secret_store.resolve(TOKEN).reveal() == VALUE
    assert (h.settings.state_dir / "secrets.json").stat().st_mode & 0o777 == 0o600


def test_a_rotated_registry_password_is_a_fault_while_the_registry_holds_the_old_one(h, injector):
    password = h.secret_store.ensure(SecretRef.parse("secret:registry-password")).reveal()
    htpasswd = h.settings.state_dir / "registry" / "htpasswd"
    htpasswd.parent.mkdir(parents=True)
    htpasswd.write_text(f"lastmile:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()}\n")

    handle = injector.inject(FaultSpec("data", "secret:registry-password", "rotate"))
    evidence = injector.revert(handle.id)

    assert evidence.took_effect and "htpasswd still holds the old password" in evidence.detail
    assert evidence.detail.endswith("secret:registry-password restored")  # the registry needs no restart


def test_a_rotated_registry_password_the_registry_never_held_changes_nothing(h, injector):
    h.secret_store.ensure(SecretRef.parse("secret:registry-password"))
    handle = injector.inject(FaultSpec("data", "secret:registry-password", "rotate"))
    assert not injector.evidence(handle.id).took_effect
    injector.revert(handle.id)


@pytest.mark.skipif(bool(shutil.which("minio")), reason="with minio on PATH the object store checks its keys")
def test_a_rotated_s3_key_changes_nothing_moto_checks(h, injector):
    h.secret_store.ensure(SecretRef.parse("secret:s3-secret-access-key"))
    handle = injector.inject(FaultSpec("data", "secret:s3-secret-access-key", "rotate"))
    evidence = injector.revert(handle.id)
    assert not evidence.took_effect and "moto S3 server accepts any key pair" in evidence.detail


def test_a_missing_secret_is_refused_naming_the_ones_there_are_never_values(injector):
    with pytest.raises(UserError, match=r"^secret:nope: no such secret in the local secret store; it holds: "
                                        r"app-token$") as refused:
        injector.inject(FaultSpec("data", "secret:nope", "remove"))
    assert VALUE not in str(refused.value)


def test_a_second_fault_on_the_same_secret_waits_for_the_first_to_be_reverted(injector):
    first = injector.inject(FaultSpec("data", "secret:app-token", "rotate"))
    with pytest.raises(UserError, match="secret:app-token already has an active data fault"):
        injector.inject(FaultSpec("data", "secret:app-token", "remove"))
    injector.revert(first.id)
    injector.revert(injector.inject(FaultSpec("data", "secret:app-token", "remove")).id)


@pytest.mark.parametrize("spec, message", [
    (FaultSpec("data", "secret:app-token", "corrupt"), "a data fault on secret:app-token is one of remove, rotate"),
    (FaultSpec("data", "object:lastmile-data/x", "rotate"), "is one of corrupt, delete, not rotate"),
    (FaultSpec("data", "mlflow", "delete"), "a data fault cannot target 'mlflow'; it takes object:<bucket>/<key>"),
    (FaultSpec("data", "blob:lastmile/training@latest", "delete"), "a blob target is blob:<repository>@sha256:"),
])
def test_a_data_fault_on_the_wrong_target_is_refused(injector, spec, message):
    with pytest.raises(UserError, match=message):
        injector.inject(spec)


class VaultLikeStore:
    """A vault's behaviour as the oci ``vault`` flavor gives it: a secret whose deletion is scheduled cannot be
    read until the deletion is canceled."""

    def __init__(self, values: dict[str, str]):
        from tests.fakes import MemorySecretStore

        self.memory = MemorySecretStore({SecretRef("secret", k): v for k, v in values.items()})
        self.pending: set[str] = set()

    def resolve(self, ref: SecretRef):
        if ref.name in self.pending:
            raise NotFound(f"secret {ref}: pending deletion")
        return self.memory.resolve(ref)

    def put(self, ref: SecretRef, value: str) -> None:
        assert ref.name not in self.pending, "a vault refuses to update a secret pending deletion"
        self.memory.put(ref, value)

    def ensure(self, ref: SecretRef, length: int = 24):
        return self.memory.ensure(ref, length)

    def schedule_deletion(self, ref: SecretRef, days: int = 1) -> None:
        self.pending.add(ref.name)

    def cancel_deletion(self, ref: SecretRef) -> None:
        if ref.name not in self.pending:
            raise NotFound(f"secret {ref}: not pending deletion")
        self.pending.discard(ref.name)


@pytest.fixture
def on_a_vault(tmp_path):
    from harness.bootstrap import Given

    store = VaultLikeStore({TOKEN.name: VALUE})
    settings = load_settings(ROOT / "lastmile.yaml", "oci-local", {"LASTMILE_STATE_DIR": str(tmp_path / ".lastmile")})
    return LocalFaultInjector(build(settings, Given(secret_store=store))), store


def test_on_a_vault_a_removed_secret_is_scheduled_for_deletion_and_the_revert_cancels_it(on_a_vault):
    injector, store = on_a_vault
    handle = injector.inject(FaultSpec("data", str(TOKEN), "remove"))

    with pytest.raises(NotFound):
        store.resolve(TOKEN)
    assert TOKEN.name in store.pending
    injector.revert(handle.id)
    assert store.resolve(TOKEN).reveal() == VALUE and not store.pending


def test_on_a_vault_a_rotation_is_a_new_version_and_the_revert_puts_the_old_value_back(on_a_vault):
    injector, store = on_a_vault
    handle = injector.inject(FaultSpec("data", str(TOKEN), "rotate"))
    rotated = store.resolve(TOKEN).reveal()

    injector.revert(handle.id)
    assert rotated != VALUE and store.resolve(TOKEN).reveal() == VALUE
    assert store.resolve(SecretRef("secret", TOKEN.name + ".drill-backup")).reveal() != VALUE
