"""Secret faults on the local secret store: ``remove`` a secret or ``rotate`` it to a new random value.

The old value never leaves the secret store: it waits there under ``<name>.drill-backup`` until the revert moves
it back. What a change means depends on who checks the credential, and a stand-in that restarts during the fault
adopts whatever the store holds then:

- ``registry-password``: the registry checks its htpasswd, written from the store when it starts. Rotated, the
  registry still holds the old password and refuses clients that read the new one (401). The revert restarts the
  registry when it adopted another password meanwhile.
- ``mlflow-password``: MLflow's user store keeps the password the admin was created with; clients that read the
  new one get 401, restart or not.
- ``deployer-token``: the controller compares the digest written when it starts; clients that read the new token
  get 401. The revert restarts the controller when it adopted another token meanwhile.
- the S3 key pair: moto accepts any key pair, so a rotation changes nothing it checks (the evidence says so);
  removed, clients that resolve the keys cannot be built.
- ``mlflow-flask-key``: read only when MLflow starts; a rotation changes nothing until then.
- any other secret: whoever resolves it from now on gets the new value (or none).
"""

from __future__ import annotations

import hashlib
import secrets as _random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from adapters.local.secrets import FileSecretStore
from harness.domain.errors import LastmileError, NotFound, UserError
from harness.domain.records import FaultEvidence, FaultSpec, SecretRef

from . import processes, targets
from .base import Applied, Profile, Settled
from .ledger import Record

BACKUP = ".drill-backup"


class SecretFaults(Settled):
    def __init__(self, p: Profile):
        self.p = p

    def inject(self, fault_id: str, spec: FaultSpec) -> Applied:
        name, backup = _name(spec.target), _name(spec.target) + BACKUP
        store = self._store(name, backup)
        if spec.action == "remove" and isinstance(store, _PortEdits) and not store.deletes:
            raise UserError(f"{spec.target}: a secret is removed from a vault by scheduling its deletion, which the "
                            f"{self.p.h.settings.ports.secret_store.flavor} flavor does not do; rotate it instead")
        with store.edit() as values:
            if name not in values:
                held = ", ".join(sorted(n for n in values if not n.endswith(BACKUP))) or "nothing"
                raise UserError(f"{spec.target}: no such secret in the local secret store; it holds: {held}")
            if backup in values:
                raise UserError(f"{spec.target} already has a drill backup ({backup}): revert the fault that "
                                f"made it first")
            old = values[backup] = values[name]
            if spec.action == "remove":
                del values[name]
            else:
                values[name] = _random.token_urlsafe(max(16, len(old) * 3 // 4))
        return Applied(f"{'removed' if spec.action == 'remove' else 'rotated'} {spec.target} (the old value is kept "
                       f"in the secret store as {backup})", {"name": name, "backup": backup},
                       self._meaning(name, spec.action, old))


    def revert(self, record: Record) -> str:
        name, backup = record.state["name"], record.state["backup"]
        with self._store(name, backup).edit() as values:
            if backup not in values:
                return f"nothing to restore: {backup} is no longer in the secret store"
            value = values[name] = values.pop(backup)
        return f"secret:{name} restored{self._resync(name, value)}"

    # what a change means, per credential -----------------------------------------------------------
    def _owner(self, name: str) -> str:
        from adapters.local.standins import ACCESS_KEY, DEPLOYER_TOKEN, MLFLOW_FLASK_KEY, SECRET_KEY

        ports = self.p.h.settings.ports
        owners = {DEPLOYER_TOKEN.name: "deployer", MLFLOW_FLASK_KEY.name: "flask",
                  ACCESS_KEY.name: "s3", SECRET_KEY.name: "s3"}
        for port, owner in ((ports.artifact_registry, "registry"), (ports.model_registry, "mlflow"),
                            (ports.object_store, "s3")):
            for field in ("password", "access_key_id", "secret_access_key"):
                ref = getattr(port, field, None)
                if isinstance(ref, str) and ref.startswith("secret:"):
                    owners[ref.partition(":")[2]] = owner
        return owners.get(name, "")

    def _meaning(self, name: str, action: str, old: str) -> FaultEvidence:
        owner, ref = self._owner(name), f"secret:{name}"
        if action == "remove":
            return FaultEvidence(True, f"{ref} existed and was removed: whoever resolves it from now on fails"
                                       + (f" (a restart of the {owner} stand-in would generate a new one)"
                                          if owner in ("registry", "mlflow", "deployer", "s3") else ""))
        if owner == "registry":
            holds = bool(self._htpasswd_holds(old))
            return FaultEvidence(holds, "the registry's htpasswd still holds the old password, so clients that read "
                                        "the new one are refused (401)" if holds else
                                 "the registry's htpasswd does not hold the old password: nothing it checks changed")
        if owner == "deployer":
            holds = self._token_digest() == hashlib.sha256(old.encode()).hexdigest()
            return FaultEvidence(holds, "the controller still checks the old token's digest, so clients that read "
                                        "the new token get 401" if holds else
                                 "the controller does not check the old token: nothing it checks changed")
        if owner == "mlflow":
            return FaultEvidence(True, "MLflow's user store keeps the old password, so clients that read the new one "
                                       "get 401")
        if owner == "s3" and self._object_server() == "moto":
            return FaultEvidence(False, "the moto S3 server accepts any key pair: a rotated S3 key changes nothing "
                                        "it checks")
        if owner == "flask":
            return FaultEvidence(False, "MLflow reads its Flask key only when it starts: nothing changes until then")
        return FaultEvidence(True, f"{ref} was rotated: whoever resolves it from now on gets the new value")

    def _resync(self, name: str, value: str) -> str:
        """Restart the registry or the controller when it runs with another credential, adopted during the fault
        (one that is not running adopts the store's value when it starts)."""
        owner = self._owner(name)
        if owner == "registry":
            stale = self._htpasswd_holds(value) is False
        elif owner == "deployer":
            stale = self._token_digest() not in ("", hashlib.sha256(value.encode()).hexdigest())
        else:
            return ""
        if not stale or not targets.standin_running(self.p, owner):
            return ""
        return f"; the {owner} stand-in ran with another value, so: {processes.restart_standin(self.p, owner)}"

    def _home(self, standin: str) -> Path:
        return next(s.home for s in self.p.h.standins() if s.name == standin)

    def _htpasswd_holds(self, password: str) -> bool | None:
        """Whether the registry's htpasswd accepts ``password``; None when there is none yet."""
        import bcrypt

        try:
            hashed = (self._home("registry") / "htpasswd").read_text().strip().partition(":")[2]
        except FileNotFoundError:
            return None
        return bool(hashed) and bcrypt.checkpw(password.encode(), hashed.encode())

    def _token_digest(self) -> str:
        try:
            return (self._home("deployer") / "token.sha256").read_text().strip()
        except FileNotFoundError:
            return ""

    def _object_server(self) -> str:
        return next((getattr(s, "server", "") for s in self.p.h.standins() if s.name == "object_store"), "")

    def _store(self, *names: str) -> FileSecretStore | _PortEdits:
        from adapters.local.flavors import FileSecrets

        cfg = self.p.h.settings.ports.secret_store
        if not isinstance(cfg, FileSecrets):
            return _PortEdits(self.p.h.secret_store, names)
        return FileSecretStore(self.p.h.settings.state_dir / cfg.path)


class _PortEdits:
    """Another flavor's secret store (a vault) through the SecretStore port, as an editable mapping of the names a
    fault touches: a changed value is put (a new secret version, as a vault rotates); the backup is a secret of
    its own in the same vault, and a backup that is moved back stays there, spent, as ``<name>.drill-backup``
    (a vault removes nothing at once). A removed secret has its deletion scheduled, as OCI deletes one
    (inaccessible at once, restorable until the day comes), and a restored one has it canceled; that needs the
    store's ``schedule_deletion`` and ``cancel_deletion`` (the oci ``vault`` flavor's), which the port lacks."""

    def __init__(self, store, names: tuple[str, ...]):
        self.store, self.names = store, names
        self.deletes = callable(getattr(store, "schedule_deletion", None))

    @contextmanager
    def edit(self) -> Iterator[dict[str, str]]:
        before: dict[str, str] = {}
        for name in self.names:
            try:
                value = self.store.resolve(SecretRef("secret", name)).reveal()
            except NotFound:
                continue
            if value != SPENT:
                before[name] = value
        values = dict(before)
        yield values
        for name in self.names:
            ref = SecretRef("secret", name)
            if name in values and values[name] != before.get(name):
                if name not in before and self.deletes and self._undeleted(ref, values[name]):
                    continue
                self.store.put(ref, values[name])
            elif name in before and name not in values:
                if self.deletes and not name.endswith(BACKUP):
                    self.store.schedule_deletion(ref)
                else:
                    self.store.put(ref, SPENT)

    def _undeleted(self, ref: SecretRef, value: str) -> bool:
        """Cancel a scheduled deletion of ``ref``; True when that brought back ``value``."""
        try:
            self.store.cancel_deletion(ref)
            return self.store.resolve(ref).reveal() == value
        except LastmileError:  # not pending deletion, or not there at all: the value is put instead
            return False


SPENT = "lastmile-drill-backup-restored"
"""What a vault's backup secret holds once its value went back: a vault deletes a secret only after days."""


def _name(target: str) -> str:
    try:
        ref = SecretRef.parse(target)
    except ValueError:
        ref = None
    if ref is None or ref.scheme != "secret":
        raise UserError(f"{target!r}: a secret target is secret:<name> (the local secret store)")
    return ref.name
