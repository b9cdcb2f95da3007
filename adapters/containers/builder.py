"""ImageBuilder ``docker``: a deployable's directory becomes a container image, pushed to the profile's registry and
referred to by the manifest digest the registry gave it, so ``docker pull``/``run <registry>/<repo>@sha256:...``
get exactly what was built.

The image is tagged ``<registry>/<prefix>/<name>:<12 hex of the source digest>`` and labelled with that digest
(:func:`harness.infra.bundle.source_digest`, the bundle flavor's, so both flavors agree on what "changed" means),
the deployable's name and the base image's id. An unchanged context is not built again: when the engine holds an
image with those labels and the registry holds the manifest it was pushed as, that ref is returned without a
build or a push (``pushed=False``); when only the push is missing, the image is pushed again without a build.
Each build or push is a run, ``build-<12 hex>``, whose log (the engine's build and push streams) is kept in
``<state_dir>/builds/<run_id>.log`` for :meth:`DockerImageBuilder.log_tail`.

The base image is chosen as ``scripts/build-images.sh`` chooses it: the configured one; else ``python:3.11-slim``
when the engine has it; else the local stand-in ``scripts/local-base-image.sh`` builds (which needs root and
debootstrap, so it is not run from here). The registry password goes to the engine as the push's
``auth_config``, never through ``docker login`` (which writes it to ``~/.docker/config.json``).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from harness.domain.errors import (
    AuthError,
    BuildFailed,
    CapacityError,
    LastmileError,
    NotFound,
    UnreachableError,
    UserError,
)
from harness.domain.records import ArtifactRef, BuildRef, Secret
from harness.infra.bundle import has_manifest, source_digest

from .engine import docker_client, engine_errors

log = logging.getLogger("lastmile.containers.builder")

OFFICIAL_BASE = "python:3.11-slim"
LOCAL_BASE = "lastmile/python:3.11-slim-local"
SOURCE_LABEL = "lastmile.source-digest"
NAME_LABEL = "lastmile.build"
BASE_LABEL = "lastmile.base-image"
TAIL_LINES = 25


@dataclass(frozen=True)
class RegistryLogin:
    """Who pushes and pulls: the registry's user and password (``password_ref`` names the secret, for errors)."""

    username: str
    password: Secret
    password_ref: str = ""

    def auth_config(self) -> dict[str, str]:
        """The SDK's ``auth_config``: the value is revealed here, at the point of use, and goes to the engine only."""
        return {"username": self.username, "password": self.password.reveal()}


class DockerImageBuilder:
    """Builds ``<context>`` (a directory with a Dockerfile that takes ``ARG BASE_IMAGE``) into
    ``<repository_prefix>/<name>`` of ``registry`` (the :class:`~harness.domain.ports.ArtifactRegistry` port, whose
    ``registry`` host the engine pushes to)."""

    def __init__(self, registry, login: RegistryLogin, state_dir: Path, repository_prefix: str = "lastmile",
                 base_image: str | None = None, local_base_image: str = LOCAL_BASE, no_cache: bool = False,
                 client: Any = None):
        """``no_cache``: build every time and every step again, ignoring both the images built before and Docker's
        layer cache (a cold build, for benchmarks)."""
        self.registry = registry
        self.login = login
        self.logs = Path(state_dir) / "builds"
        self.repository_prefix = repository_prefix.strip("/")
        self.base_image = base_image
        self.local_base_image = local_base_image
        self.no_cache = no_cache
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = docker_client()
        return self._client

    def repository(self, name: str) -> str:
        return f"{self.repository_prefix}/{name}" if self.repository_prefix else name

    # the port ------------------------------------------------------------------------------------
    def build(self, name: str, context: Path) -> BuildRef:
        context = Path(context)
        digest = source_digest(context)  # a UserError for a missing context
        if not (context / "Dockerfile").is_file():
            raise UserError(f"build context {context} has no Dockerfile; the docker image builder needs one")
        repository = self.repository(name)
        image, tag = f"{self.registry.registry}/{repository}", digest.split(":", 1)[1][:12]
        base, base_id = self._base()
        labels = {SOURCE_LABEL: digest, NAME_LABEL: name, BASE_LABEL: base_id}
        built = None if self.no_cache else self._built_before(labels)
        if built is not None:
            pushed = self._pushed_digest(built, image)
            if pushed and has_manifest(self.registry, repository, pushed):
                log.info("%s: unchanged (source %s), %s@%s is in the registry; not built", name, digest[:19],
                         image, pushed)
                return BuildRef(name, ArtifactRef(self.registry.registry, repository, pushed), digest, pushed=False)
        run_id = f"build-{uuid.uuid4().hex[:12]}"
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{run_id}.log", "a", encoding="utf-8") as out:
            _note(out, f"{run_id}: {name} from {context} (source {digest}) as {image}:{tag}, base {base}")
            if built is None:
                self._build_image(run_id, name, context, f"{image}:{tag}", base, labels, out)
            else:
                _note(out, f"image {built.short_id} was built from the same sources; pushing it again only")
                with engine_errors(f"tagging {built.short_id} as {image}:{tag}"):
                    built.tag(image, tag)
            manifest = self._push(run_id, image, tag, out)
        return BuildRef(name, ArtifactRef(self.registry.registry, repository, manifest), digest, pushed=True,
                        run_id=run_id)

    def log_tail(self, run_id: str, lines: int = 20) -> str:
        """The last ``lines`` lines of build run ``run_id``'s log; "" for a run this builder has no log of."""
        path = self.logs / f"{run_id}.log"
        if lines <= 0 or "/" in run_id or not path.is_file():
            return ""
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    # internals -----------------------------------------------------------------------------------
    def _base(self) -> tuple[str, str]:
        """The base image's name and id (its name again when the engine has yet to pull a configured one)."""
        if self.base_image:
            return self.base_image, self._image_id(self.base_image) or self.base_image
        for candidate in (OFFICIAL_BASE, self.local_base_image):
            found = self._image_id(candidate)
            if found:
                return candidate, found
        raise UserError(f"no base image for the docker build: the engine has neither {OFFICIAL_BASE} nor the local "
                        f"stand-in {self.local_base_image}",
                        hint=f"pull {OFFICIAL_BASE}, or build the stand-in with `sudo scripts/local-base-image.sh`, "
                             "or set ports.image_builder.base_image")

    def _image_id(self, name: str) -> str | None:
        try:
            with engine_errors(f"looking up image {name}"):
                return self.client.images.get(name).id
        except NotFound:
            return None

    def _built_before(self, labels: dict[str, str]) -> Any:
        """The newest image in the engine built from these sources, name and base; None when there is none."""
        with engine_errors("listing images by label"):
            found = self.client.images.list(filters={"label": [f"{k}={v}" for k, v in labels.items()]})
        return max(found, key=lambda image: image.attrs.get("Created", ""), default=None)

    @staticmethod
    def _pushed_digest(image: Any, name: str) -> str | None:
        """The manifest digest ``image`` was pushed to ``name`` as (the engine keeps it in ``RepoDigests``)."""
        for entry in image.attrs.get("RepoDigests") or ():
            repo, _, digest = entry.partition("@")
            if repo == name and digest:
                return digest
        return None

    def _build_image(self, run_id: str, name: str, context: Path, ref: str, base: str, labels: dict[str, str],
                     out: IO[str]) -> str:
        log.info("%s: building %s from %s (base %s), build run %s", name, ref, context, base, run_id)
        started, image_id, error = time.monotonic(), None, None
        try:
            with engine_errors(f"docker build of {context}"):
                for chunk in self.client.api.build(path=str(context), tag=ref, buildargs={"BASE_IMAGE": base},
                                                   labels=labels, rm=True, forcerm=True, pull=False,
                                                   nocache=self.no_cache, decode=True):
                    if "error" in chunk:
                        error = str(chunk["error"]).strip()
                        out.write(f"ERROR: {error}\n")
                    elif "stream" in chunk:
                        text = str(chunk["stream"])
                        out.write(text)
                        if text.startswith("Step "):
                            log.info("%s: %s", name, text.strip()[:160])
                    elif "ID" in (chunk.get("aux") or {}):
                        image_id = chunk["aux"]["ID"]
                    elif chunk.get("status"):
                        out.write(f"{chunk['status']}\n")
        except UnreachableError:
            raise
        except LastmileError as exc:  # the engine refused the build itself (no Dockerfile, a base it cannot get)
            error = error or str(exc)
        out.flush()
        if error or not image_id:
            _note(out, f"build failed: {error or 'the engine reported no image'}")
            raise BuildFailed(f"docker build of {name} ({context}) failed: {error or 'no image was produced'}\n"
                              + self.log_tail(run_id, TAIL_LINES))
        _note(out, f"built {image_id} in {time.monotonic() - started:.1f} s")
        log.info("%s: built %s in %.1f s", name, image_id[:19], time.monotonic() - started)
        return image_id

    def _push(self, run_id: str, image: str, tag: str, out: IO[str]) -> str:
        """Push ``image:tag`` with the registry login; returns the manifest digest the registry stored it as."""
        log.info("pushing %s:%s", image, tag)
        started, digest, error = time.monotonic(), None, None
        try:
            with engine_errors(f"docker push of {image}:{tag}"):
                for chunk in self.client.api.push(image, tag=tag, auth_config=self.login.auth_config(), stream=True,
                                                  decode=True):
                    if "error" in chunk:
                        error = str(chunk["error"]).strip()
                        out.write(f"ERROR: {error}\n")
                    elif "Digest" in (chunk.get("aux") or {}):
                        digest = chunk["aux"]["Digest"]
                    elif chunk.get("status") and not chunk.get("progressDetail"):
                        out.write(f"{chunk.get('id', '')}{': ' if chunk.get('id') else ''}{chunk['status']}\n")
        except UnreachableError:
            raise
        except LastmileError as exc:
            error = error or str(exc)
        out.flush()
        if error or not digest:
            _note(out, f"push failed: {error or 'the engine reported no digest'}")
            raise self._push_error(image, tag, error or "the engine reported no manifest digest", run_id)
        _note(out, f"pushed {image}@{digest} in {time.monotonic() - started:.1f} s")
        log.info("pushed %s@%s in %.1f s", image, digest, time.monotonic() - started)
        return digest

    def _push_error(self, image: str, tag: str, error: str, run_id: str) -> Exception:
        endpoint = getattr(self.registry, "endpoint", self.registry.registry)
        lowered = error.lower()
        if "unauthorized" in lowered or "authentication required" in lowered or "denied" in lowered:
            secret = f" (password {self.login.password_ref})" if self.login.password_ref else ""
            return AuthError(f"registry {self.registry.registry} refused the push of {image}:{tag} by "
                             f"'{self.login.username}'{secret}: {error}", secret_ref=self.login.password_ref or None,
                             url=endpoint)
        if "connection refused" in lowered or "no such host" in lowered or "i/o timeout" in lowered:
            return UnreachableError(f"registry {self.registry.registry} did not take the push of {image}:{tag}: "
                                    f"{error}", url=endpoint)
        if _SERVER_SIDE.search(lowered):  # the engine retried each layer already: the registry is failing
            return CapacityError(f"registry {self.registry.registry} failed the push of {image}:{tag} after the "
                                 f"engine's retries: {error}", url=endpoint)
        return BuildFailed(f"docker push of {image}:{tag} failed: {error}\n" + self.log_tail(run_id, TAIL_LINES))


_SERVER_SIDE = re.compile(r"http status: (5\d\d|429)|internal server error|service unavailable|too many requests|"
                          r"bad gateway|gateway time-?out")
"""What the engine says when the registry answered a push with a server error or throttling (Docker's ``received
unexpected HTTP status: 500 Internal Server Error``): the registry's capacity, not the build's."""


def _note(out: IO[str], line: str) -> None:
    out.write(f"[lastmile] {line}\n")
    out.flush()
