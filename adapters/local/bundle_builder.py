"""ImageBuilder without Docker: a source directory becomes an OCI artifact bundle, pushed by digest."""

from __future__ import annotations

from pathlib import Path

from harness.domain.records import BuildRef
from harness.infra.bundle import build_bundle


class BundleImageBuilder:
    """Builds ``<context>`` into ``<repository_prefix>/<name>`` of any :class:`~harness.domain.ports.ArtifactRegistry`."""

    def __init__(self, registry, repository_prefix: str = "lastmile"):
        self.registry = registry
        self.repository_prefix = repository_prefix

    def repository(self, name: str) -> str:
        return f"{self.repository_prefix}/{name}" if self.repository_prefix else name

    def build(self, name: str, context: Path) -> BuildRef:
        return build_bundle(self.registry, name, Path(context), self.repository(name))

    def log_tail(self, run_id: str, lines: int = 20) -> str:
        """Nothing: a bundle is built in-process, its only log the stage's own error."""
        return ""
