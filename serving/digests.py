"""The model files' integrity check: every file a replica loads must be the one training stored and recorded.

When training registers a version it downloads the version's files back from the registry and records their
sha256 in the version tag ``lastmile.files``: a JSON object ``{relative path: sha256 hex}`` (POSIX paths, sorted
keys). A file replaced in object storage behind MLflow's back (any client of the S3 stand-in can write it) is
then refused before it is deserialized: :func:`check_model_files` raises :class:`ModelRejected` naming each
missing, unrecorded or changed file with both digests. Both loaders call it, on the deployer's directory and on
the registry's download alike. A version registered without the tag still loads, with one warning line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from serving.logs import LOGGER_NAME
from serving.served import ModelLoadError, ModelRejected

FILES_TAG = "lastmile.files"
NOT_MODEL_FILES = frozenset({"version.json"})
"""Files in a model directory that are not the version's: the deployer's record of the version."""


def file_digests(directory: Path) -> dict[str, str]:
    """``{relative POSIX path: sha256 hex}`` of every file under ``directory`` but :data:`NOT_MODEL_FILES`."""
    digests = {}
    for folder, _dirs, files in os.walk(directory):
        for file in files:
            path = Path(folder, file)
            relative = path.relative_to(directory).as_posix()
            if relative not in NOT_MODEL_FILES:
                with path.open("rb") as stream:
                    digests[relative] = hashlib.file_digest(stream, "sha256").hexdigest()
    return dict(sorted(digests.items()))


def file_problems(recorded: Mapping[str, str], found: Mapping[str, str]) -> list[str]:
    """One line per file that is missing, not recorded, or not the recorded bytes; empty when all match."""
    problems = []
    for path in sorted(recorded.keys() | found.keys()):
        expected, actual = recorded.get(path), found.get(path)
        if actual is None:
            problems.append(f"{path} is missing (recorded sha256 {expected})")
        elif expected is None:
            problems.append(f"{path} is not among the recorded files (sha256 {actual})")
        elif actual != expected:
            problems.append(f"{path} has sha256 {actual}, not the recorded {expected}")
    return problems


def check_model_files(directory: Path, tags: Mapping[str, str], uri: str) -> None:
    """Raise :class:`ModelRejected` unless the files under ``directory`` are the ones ``tags[FILES_TAG]`` records.

    Without the tag (a version registered before training recorded digests, or by another tool) the files are
    loaded unchecked and the serving logger says so in one warning line.
    """
    raw = tags.get(FILES_TAG)
    if raw is None:
        logging.getLogger(LOGGER_NAME).warning("model files not verified", extra={"fields": {
            "model_uri": uri, "reason": f"the version has no {FILES_TAG} tag recording their sha256"}})
        return
    recorded = _recorded_digests(raw, uri)
    try:
        found = file_digests(directory)
    except OSError as exc:
        raise ModelLoadError(f"{uri}: cannot read the model files to check their digests: {exc}") from None
    problems = file_problems(recorded, found)
    if problems:
        raise ModelRejected(f"{uri}: the model files differ from the digests recorded at registration "
                             f"({FILES_TAG}): {'; '.join(problems)}; refusing to load them")


def _recorded_digests(raw: str, uri: str) -> dict[str, str]:
    try:
        recorded = json.loads(raw)
    except ValueError:
        recorded = None
    if type(recorded) is not dict or not all(type(k) is str and type(v) is str for k, v in recorded.items()):
        raise ModelRejected(f"{uri}: the version tag {FILES_TAG} must be a JSON object of path: sha256 hex, "
                             f"got {raw[:80]!r}")
    return recorded
