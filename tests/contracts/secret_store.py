"""The SecretStore contract: references in, values out, never a value in an error."""

from __future__ import annotations

import pytest

from harness.domain.errors import LastmileError, NotFound
from harness.domain.records import SecretRef
from tests.contracts import unique


class SecretStoreContract:
    """Fixtures: ``store``; ``scheme`` (the scheme its own secrets use: ``secret`` locally)."""

    def test_a_put_secret_resolves(self, store, scheme):
        ref = SecretRef(scheme, unique("s"))
        store.put(ref, "hunter2-value")
        secret = store.resolve(ref)
        assert secret.reveal() == "hunter2-value"
        assert "hunter2" not in repr(secret) and "hunter2" not in str(secret)

    def test_a_missing_secret_names_the_reference(self, store, scheme):
        ref = SecretRef(scheme, unique("absent"))
        with pytest.raises(NotFound, match=ref.name):
            store.resolve(ref)

    def test_ensure_creates_once_and_then_keeps_the_value(self, store, scheme):
        ref = SecretRef(scheme, unique("generated"))
        first = store.ensure(ref, 16).reveal()
        assert len(first) >= 16
        assert store.ensure(ref, 16).reveal() == first == store.resolve(ref).reveal()

    def test_ensure_keeps_a_value_that_was_put(self, store, scheme):
        ref = SecretRef(scheme, unique("given"))
        store.put(ref, "chosen")
        assert store.ensure(ref).reveal() == "chosen"

    def test_an_env_reference_reads_the_environment(self, store, monkeypatch):
        name = unique("VAR").replace("-", "_").upper()
        monkeypatch.setenv(name, "from-the-env")
        assert store.resolve(SecretRef("env", name)).reveal() == "from-the-env"
        monkeypatch.delenv(name)
        with pytest.raises(NotFound, match=name):
            store.resolve(SecretRef("env", name))

    def test_ensure_cannot_invent_an_environment_variable(self, store):
        with pytest.raises(LastmileError):
            store.ensure(SecretRef("env", unique("NOPE").replace("-", "_").upper()))
