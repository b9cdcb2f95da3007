"""The training job's dealings with MLflow's tracking server besides logging: is it up, what a dead one looks like,
and the digests of the files it stored for a version.

MLflow's own client retries a server that does not answer for minutes and then fails with a long traceback; the
job instead asks ``<MLFLOW_TRACKING_URI>/health`` first (:func:`check_tracking_server`) and turns a connection
failure in any MLflow call (:func:`mlflow_calls`) into :class:`TrackingUnreachable`, one line and exit code 4.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

EXIT_TRACKING_DOWN = 4
HEALTH_TIMEOUT_S = 5.0
FILES_TAG = "lastmile.files"
"""The version tag recording ``{relative path: sha256 hex}`` of every stored model file (JSON, sorted keys)."""
_CONNECTION_FAILURES = (ConnectionError, TimeoutError, socket.gaierror)
"""What requests' and urllib3's connection errors wrap, whichever of their classes is on top."""


class TrackingUnreachable(Exception):
    """MLflow's tracking server did not answer; the message is the one line the job prints."""

    exit_code = EXIT_TRACKING_DOWN

    def __init__(self, url: str, error: str):
        super().__init__(f"MLflow at {url} did not answer ({error}); is it up? run `lastmile up`")


def tracking_url() -> str | None:
    """``MLFLOW_TRACKING_URI`` without credentials, when it is an HTTP server (a file or database store has none)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return None
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])).rstrip("/")


def check_tracking_server(url: str, timeout: float = HEALTH_TIMEOUT_S) -> None:
    """Raise :class:`TrackingUnreachable` unless ``url/health`` answers 200 within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as answer:
            answer.read()
    except urllib.error.HTTPError as exc:
        raise TrackingUnreachable(url, f"HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise TrackingUnreachable(url, connection_failure(exc) or type(exc).__name__) from None


def connection_failure(exc: BaseException) -> str | None:
    """The name of the connection error behind ``exc`` (an MlflowException, a requests or urllib3 error...),
    or None when ``exc`` is not a failure to reach a server."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        # urllib's URLError and urllib3's MaxRetryError keep the error in ``reason``; urllib3's ProtocolError in args.
        for candidate in (link, getattr(link, "reason", None), *link.args):
            if isinstance(candidate, _CONNECTION_FAILURES):
                return type(candidate).__name__
        link = link.__cause__ or link.__context__
    return None


@contextmanager
def mlflow_calls(url: str | None) -> Iterator[None]:
    """Around MLflow calls: a connection failure becomes :class:`TrackingUnreachable`; anything else is raised
    as it is (a bug of ours keeps its traceback)."""
    try:
        yield
    except Exception as exc:
        failure = connection_failure(exc)
        if url is None or failure is None:
            raise
        raise TrackingUnreachable(url, failure) from None


def stored_file_digests(client, name: str, version: str) -> dict[str, str]:
    """``{relative path: sha256 hex}`` of the version's files as the registry serves them: downloaded back through
    MLflow the way the deployer and serving download them, so the record proves the stored bytes."""
    from mlflow.artifacts import download_artifacts

    location = client.get_model_version_download_uri(name, version)
    with tempfile.TemporaryDirectory(prefix="lastmile-training-") as scratch:
        root = Path(download_artifacts(artifact_uri=location, dst_path=scratch))
        digests = {}
        for folder, _dirs, files in os.walk(root):
            for file in files:
                path = Path(folder, file)
                with path.open("rb") as stream:
                    digests[path.relative_to(root).as_posix()] = hashlib.file_digest(stream, "sha256").hexdigest()
    return dict(sorted(digests.items()))


def files_tag(digests: dict[str, str]) -> str:
    """The ``lastmile.files`` tag's value: compact JSON with sorted keys."""
    return json.dumps(digests, sort_keys=True, separators=(",", ":"))
