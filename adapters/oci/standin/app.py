"""The stand-in's one application: every service on one port, by path prefix, as the SDK lets each client take any
``service_endpoint``.

=====================  ===================================================  ==========================
prefix                 service                                              client's service_endpoint
=====================  ===================================================  ==========================
``/n``                 Object Storage (native)                              ``http://HOST:PORT``
``/s3``                Object Storage's S3 compatibility API (SigV4)        ``http://HOST:PORT/s3``
``/20190301``          Vault secret retrieval (``SecretsClient``)           ``http://HOST:PORT``
``/20200831``          Logging Ingestion (``LoggingClient``)                ``http://HOST:PORT``
``/20190909``          Logging Search (``LogSearchClient``)                 ``http://HOST:PORT``
``/20210630``          DevOps build runs and triggers (``DevopsClient``)   ``http://HOST:PORT``
``/20190101``          Data Science jobs, job runs (``DataScienceClient``)  ``http://HOST:PORT``
``/20180222``          Container Engine: CreateKubeconfig                   ``http://HOST:PORT``
``/cluster_request``   OKE bearer tokens' signed request (the front door)   (replayed, not a client's)
=====================  ===================================================  ==========================

Every other path answers 404 ``NotAuthorizedOrNotFound`` once the request's signature is checked, as OCI does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from . import containerengine_api, datascience_api, errors, logging_api, objectstorage_api, s3_api, vault
from .datascience_runs import RunSettings
from .devops_api import routes as devops_routes
from .http import RequestIds, oci_route, render_oci_error, render_s3_error, render_unexpected
from .keys import DEFAULT_REGION, DEFAULT_TENANCY, DEFAULT_USER, KeyRegistry
from .objectstore import ObjectStore

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass(frozen=True)
class Settings:
    """``allow_unsigned`` is for the signing benchmark only: requests with no ``Authorization`` header at all are
    then served unchecked (those that carry one are still verified).

    Data Science job runs: ``jobs_dir`` is the lastmile state dir whose ``jobs/`` holds the runs (None: the
    stand-in's own ``state/datascience``); the OCIR stand-in is logged into as ``registry_username`` with the
    password in this stand-in's Vault secret ``registry_password_secret``; ``minute_s`` is how long a minute of
    ``maximumRuntimeInMinutes`` lasts (tests shorten it)."""

    state: Path
    namespace: str = "lastmile"
    region: str = DEFAULT_REGION
    s3_compartment_id: str = DEFAULT_TENANCY
    tenancy: str = DEFAULT_TENANCY
    user: str = DEFAULT_USER
    allow_unsigned: bool = False
    jobs_dir: Path | None = None
    registry_username: str = ""
    registry_password_secret: str = ""
    minute_s: float = 60.0


def create_app(settings: Settings):
    """The ASGI application over ``settings.state`` (read and created here, not at import)."""
    objects = ObjectStore(settings.state / "objectstorage", settings.namespace)

    async def unknown(_request: Request) -> Response:
        raise errors.not_found()

    routes = [
        *objectstorage_api.routes(objects),
        *s3_api.routes(objects, settings.s3_compartment_id),
        *vault.routes(settings.state),
        *logging_api.routes(settings.state),
        *devops_routes(settings.state),
        *datascience_api.routes(RunSettings(settings.state, settings.jobs_dir or settings.state / "datascience",
                                            settings.registry_username, settings.registry_password_secret,
                                            settings.minute_s), settings.region),
        *containerengine_api.routes(settings.state),
        oci_route("/{rest:path}", unknown, ALL_METHODS, body_signed=False),
    ]
    app = Starlette(routes=routes, exception_handlers={errors.OciError: render_oci_error,
                                                       errors.S3Error: render_s3_error,
                                                       Exception: render_unexpected})
    app.state.settings = settings
    app.state.keys = KeyRegistry(settings.state)
    app.state.objects = objects
    return RequestIds(app)
