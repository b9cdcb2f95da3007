"""The image pull of the local deployer's Kubernetes front door (the ``oke`` flavor with ``endpoint: standin``).

A cluster's nodes pull the serving image from OCIR themselves. The front door's "node" is this machine: it looks for
an image's bundle under its bundles dir by digest, so the deployer pulls it there before applying a revision.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.domain.records import DeploymentSpec
from harness.infra.bundle import pull_bundle


def bundle_stager(registry: Any, bundles_dir: Path) -> Callable[[DeploymentSpec], None]:
    """The image pull of the local deployer's front door, whose node shares this machine's disk: the serving bundle,
    pulled by digest into ``bundles_dir/<algorithm>-<hex>`` once (where the front door looks for an image)."""

    def stage(spec: DeploymentSpec) -> None:
        dest = bundles_dir / spec.serving.digest.replace(":", "-")
        if dest.is_dir():
            return
        bundles_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=bundles_dir))
        try:
            pull_bundle(registry, spec.serving, tmp)
            try:
                tmp.rename(dest)
            except OSError:
                if not dest.is_dir():  # another process got there first: theirs is as good
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    return stage
