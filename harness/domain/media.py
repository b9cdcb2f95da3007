"""The OCI media types lastmile writes, and the one canonical JSON form manifests are digested as."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
OCI_LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
BUNDLE_ARTIFACT_TYPE = "application/vnd.lastmile.bundle.v1"
BUNDLE_CONFIG = "application/vnd.lastmile.bundle.config.v1+json"
TITLE = "org.opencontainers.image.title"
SOURCE_DIGEST = "dev.lastmile.source-digest"


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """The bytes a manifest or config is stored and digested as, by every registry adapter and fake."""
    return json.dumps(dict(value), sort_keys=True, separators=(",", ":")).encode()
