"""The ModelRegistry contract: versions, tags and aliases as MLflow's registry keeps them, and the check of a
version's stored files against the digests training recorded."""

from __future__ import annotations

import hashlib
import json

import pytest

from harness.domain.errors import NotFound, UserError
from tests.contracts import unique

FILES = {"MLmodel": b"flavors:\n  sklearn:\n    pickled_model: model.skops\n", "model.skops": b"PK\x03\x04 a model"}
"""The files of a version in the tests below; ``lastmile.files`` records them as :func:`files_tag` does."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_tag(files: dict[str, bytes]) -> dict[str, str]:
    """The tags training writes for these files: ``lastmile.files`` = JSON ``{relative path: sha256 hex}``."""
    return {"lastmile.files": json.dumps({path: sha256(data) for path, data in files.items()}, sort_keys=True)}


class ModelRegistryContract:
    """Fixtures: ``registry``; ``add_version(name, tags=None)`` -> ModelVersion, which registers a version the
    way training does (outside the port); ``add_version_with_files(name, files, tags)`` -> ModelVersion, the same
    with ``files`` ({relative path: bytes}) stored as the version's artifacts; ``corrupt(name, version, path,
    data)``, which replaces one stored file with ``data`` behind the registry's back (in its object storage)."""

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

    def test_stored_files_that_match_their_recorded_digests_have_no_problem(self, registry, add_version_with_files):
        name = unique("model")
        version = add_version_with_files(name, FILES, files_tag(FILES)).version
        assert registry.verify(name, version) == []

    def test_a_file_replaced_behind_the_registrys_back_is_named_with_both_digests(self, registry,
                                                                                  add_version_with_files, corrupt):
        name = unique("model")
        version = add_version_with_files(name, FILES, files_tag(FILES)).version
        corrupt(name, version, "model.skops", b"PK\x03\x04 another model")
        [problem] = registry.verify(name, version)
        assert "model.skops" in problem
        assert sha256(FILES["model.skops"]) in problem and sha256(b"PK\x03\x04 another model") in problem

    def test_a_recorded_file_that_is_not_stored_is_missing(self, registry, add_version_with_files):
        name = unique("model")
        version = add_version_with_files(name, FILES, files_tag({**FILES, "conda.yaml": b"name: x\n"})).version
        [problem] = registry.verify(name, version)
        assert "conda.yaml is missing" in problem and sha256(b"name: x\n") in problem

    def test_a_stored_file_that_was_not_recorded_is_a_problem(self, registry, add_version_with_files):
        name = unique("model")
        version = add_version_with_files(name, {**FILES, "code/extra.py": b"import os\n"}, files_tag(FILES)).version
        [problem] = registry.verify(name, version)
        assert "code/extra.py is not among the recorded files" in problem

    def test_a_version_without_the_files_tag_has_one_problem_saying_so(self, registry, add_version):
        name = unique("model")
        [problem] = registry.verify(name, add_version(name).version)
        assert "no lastmile.files tag" in problem

    def test_verifying_a_missing_version_is_not_found(self, registry, add_version):
        name = unique("model")
        add_version(name)
        with pytest.raises(NotFound):
            registry.verify(name, "99")
