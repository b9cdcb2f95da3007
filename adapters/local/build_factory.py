"""Factory the wiring calls for ``("image_builder", "bundle")``."""

from __future__ import annotations

from typing import Any

from harness import flavors


def bundle_image_builder(cfg: flavors.BundleBuilder, h: Any):
    from adapters.local.bundle_builder import BundleImageBuilder

    return BundleImageBuilder(h.port("artifact_registry"), h.settings.ports.artifact_registry.repository_prefix)
