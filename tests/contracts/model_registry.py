"""The ModelRegistry contract: versions, tags and aliases as MLflow's registry keeps them."""

from __future__ import annotations

import pytest

from harness.domain.errors import NotFound, UserError
from tests.contracts import unique


class ModelRegistryContract:
    """Fixtures: ``registry``; ``add_version(name, tags=None)`` -> ModelVersion, which registers a version the
    way training does (outside the port)."""

    def test_a_version_reads_back_with_its_tags(self, registry, add_version):
        name = unique("model")
        one = add_version(name, {"lastmile.reference": '{"rows": []}'})
        got = registry.get_version(name, one.version)
        assert (got.name, got.version, got.tags["lastmile.reference"]) == (name, "1", '{"rows": []}')
        assert add_version(name).version == "2"

    def test_a_missing_version_is_not_found(self, registry, add_version):
        name = unique("model")
        add_version(name)
        with pytest.raises(NotFound):
            registry.get_version(name, "99")

    def test_an_alias_moves_from_version_to_version(self, registry, add_version):
        name = unique("model")
        one, two = add_version(name).version, add_version(name).version
        assert registry.by_alias(name, "champion") is None
        registry.set_alias(name, "champion", one)
        assert registry.by_alias(name, "champion").version == one
        registry.set_alias(name, "champion", two)
        assert registry.by_alias(name, "champion").version == two
        assert "champion" in registry.get_version(name, two).aliases
        assert "champion" not in registry.get_version(name, one).aliases
        registry.delete_alias(name, "champion")
        assert registry.by_alias(name, "champion") is None

    def test_an_alias_to_a_missing_version_is_not_found_and_moves_nothing(self, registry, add_version):
        name = unique("model")
        add_version(name)
        with pytest.raises(NotFound):
            registry.set_alias(name, "champion", "99")
        assert registry.by_alias(name, "champion") is None

    def test_an_alias_of_an_unknown_model_is_none(self, registry):
        assert registry.by_alias(unique("no-model"), "champion") is None

    def test_a_reserved_alias_is_refused(self, registry, add_version):
        name = unique("model")
        version = add_version(name).version
        with pytest.raises(UserError):
            registry.set_alias(name, "latest", version)

    def test_a_tag_is_set_on_one_version(self, registry, add_version):
        name = unique("model")
        one, two = add_version(name).version, add_version(name).version
        registry.tag_version(name, one, "lastmile.gate", "promoted")
        assert registry.get_version(name, one).tags["lastmile.gate"] == "promoted"
        assert "lastmile.gate" not in registry.get_version(name, two).tags

    def test_tagging_a_missing_version_is_not_found(self, registry, add_version):
        name = unique("model")
        add_version(name)
        with pytest.raises(NotFound):
            registry.tag_version(name, "99", "k", "v")
