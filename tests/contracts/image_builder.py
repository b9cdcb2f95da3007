"""The ImageBuilder contract: what it pushes is in the registry by digest and starts the context's package."""

from __future__ import annotations

import pytest

from harness.domain.errors import UserError
from harness.infra.bundle import fetch_bundle


class ImageBuilderContract:
    """Fixtures: ``builder``; ``registry`` (where it pushes); ``context`` (a fresh source directory holding a
    ``pkg`` package with a ``__main__.py``, and whatever else the builder needs, a Dockerfile for instance);
    ``entrypoint(ref)`` -> the module the build pushed as ``ref.artifact`` starts, read back from the registry
    with the loader of that kind of build (by default the real bundle loader; an image builder reads the image's
    config)."""

    @pytest.fixture
    def entrypoint(self, registry):
        def from_bundle(ref):
            bundle = fetch_bundle(registry, ref.artifact)
            assert bundle.archive
            return bundle.entrypoint
        return from_bundle

    def test_a_build_is_pushed_by_digest_and_loads(self, builder, registry, context, entrypoint):
        ref = builder.build("pkg", context)
        assert ref.artifact.digest.startswith("sha256:") and ref.pushed
        assert ref.artifact.registry == registry.registry
        assert entrypoint(ref) == "pkg"

    def test_an_unchanged_context_gives_the_same_digest_without_a_push(self, builder, context):
        first, second = builder.build("pkg", context), builder.build("pkg", context)
        assert second.artifact == first.artifact and not second.pushed

    def test_a_changed_file_changes_the_digest(self, builder, context):
        first = builder.build("pkg", context)
        (context / "__main__.py").write_text("print('changed')\n")
        assert builder.build("pkg", context).artifact.digest != first.artifact.digest

    def test_a_missing_context_is_a_user_error(self, builder, tmp_path):
        with pytest.raises(UserError):
            builder.build("pkg", tmp_path / "nowhere")
