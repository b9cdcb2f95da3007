"""The serving app's configuration, read from environment variables and validated before anything starts.

| variable | meaning | default |
|---|---|---|
| ``LASTMILE_SERVING_MODEL_URI`` | ``models:/<name>@<alias>`` or ``models:/<name>/<version>`` | required |
| ``MLFLOW_TRACKING_URI`` | the tracking server holding the registry | MLflow's own default |
| ``MLFLOW_TRACKING_USERNAME``, ``MLFLOW_TRACKING_PASSWORD`` | basic-auth credentials, read by MLflow's client | none |
| ``LASTMILE_SERVING_MODEL_DIR`` | that version, downloaded, with ``version.json``: load it without MLflow | off |
| ``LASTMILE_SERVING_REFERENCE`` | JSON ``{"rows": [{...}], "predictions": [...]}`` the version must reproduce | off |
| ``LASTMILE_SERVING_BUILD_DIGEST`` | digest of the image or bundle this server runs from | ``unknown`` |
| ``LASTMILE_SERVING_REPLICA`` | this replica's name, in logs and metrics | the host name |
| ``LASTMILE_SERVING_MAX_BODY_BYTES`` | largest request body accepted (413 above it) | 1 MiB |
| ``LASTMILE_SERVING_PREDICTION_LOG`` | JSON-lines file receiving sampled predictions | off |
| ``LASTMILE_SERVING_PREDICTION_SAMPLE_RATE`` | share of requests sampled (file and object storage), 0 to 1 | 1.0 |
| ``LASTMILE_SERVING_SAMPLES_URI`` | ``s3://<bucket>/<prefix>/`` receiving sampled predictions as objects | off |
| ``LASTMILE_SERVING_S3_ENDPOINT`` | S3 API endpoint of those objects (credentials: standard ``AWS_*``) | AWS's |
| ``LASTMILE_SERVING_SAMPLES_FLUSH_SECONDS`` | longest wait before sampled lines are uploaded, > 0 | 1.0 |
| ``LASTMILE_SERVING_REJECT_UNKNOWN_COLUMNS`` | ``/invocations`` refuses columns the signature lacks | false (as MLflow) |
| ``LASTMILE_SERVING_COALESCE`` | merge concurrent requests into one model call | true |
| ``LASTMILE_SERVING_LOAD_RETRY_SECONDS`` | pause between load attempts after a failed start; 0 stops trying | 5 |
| ``LASTMILE_SERVING_LOG_LEVEL`` | level of the JSON logs on stdout (``DEBUG`` adds a line per answered request) | ``INFO`` |

With ``LASTMILE_SERVING_MODEL_DIR`` the registry is not contacted: the directory holds the files MLflow logged for
the version (``MLmodel``, ``model.skops``...) and the deployer's ``version.json``, and ``LASTMILE_SERVING_MODEL_URI``
must pin the same version (``models:/<name>/<version>``), which the loader checks against ``version.json``. A
failed load cannot heal in that mode: the process exits (see :mod:`serving.__main__`), and
``LASTMILE_SERVING_LOAD_RETRY_SECONDS`` applies to the registry only.

Booleans read true/false, 1/0, yes/no, on/off in any case (empty is false). An empty optional path, URI or
reference is the same as an unset one. Other ``LASTMILE_SERVING_*`` variables are ignored.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

MODEL_URI_PATTERN = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")
SAMPLES_URI_PATTERN = re.compile(r"^s3://(?P<bucket>[^/\s]+)(?:/(?P<prefix>\S*))?$")
ENV_PREFIX = "LASTMILE_SERVING_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """The environment does not describe a servable configuration; the message names the variable."""


def _boolean(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    word = value.strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise ValueError(f"{value!r} is not a boolean (true/false, 1/0, yes/no, on/off)")


def _empty_is_unset(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _json_text(value: Any) -> Any:
    value = _empty_is_unset(value)
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None


EnvBool = Annotated[bool, BeforeValidator(_boolean)]
OptionalPath = Annotated[Path | None, BeforeValidator(_empty_is_unset)]
OptionalText = Annotated[str | None, BeforeValidator(_empty_is_unset)]


class Reference(BaseModel):
    """Rows in ``dataframe_records`` form and the predictions the registry recorded for them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: list[dict[str, Any]] = Field(min_length=1)
    predictions: list[Any]

    @model_validator(mode="after")
    def _one_prediction_per_row(self) -> Reference:
        if len(self.rows) != len(self.predictions):
            raise ValueError(f"{len(self.rows)} rows but {len(self.predictions)} predictions")
        return self


class Settings(BaseSettings):
    """Everything the app needs to start.

    :meth:`from_env` reads the environment; constructing it directly (tests) takes the given values and defaults
    only, never the process environment.
    """

    model_config = SettingsConfigDict(frozen=True, extra="forbid", protected_namespaces=(), env_prefix=ENV_PREFIX,
                                      case_sensitive=False, validate_by_name=True, validate_by_alias=True)

    model_uri: str
    tracking_uri: OptionalText = Field(default=None, validation_alias="MLFLOW_TRACKING_URI")
    model_dir: OptionalPath = None
    reference: Annotated[Reference | None, NoDecode, BeforeValidator(_json_text)] = None
    build_digest: str = "unknown"
    replica: str = Field(default_factory=socket.gethostname)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    prediction_log: OptionalPath = None
    prediction_sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    samples_uri: OptionalText = None
    s3_endpoint: OptionalText = None
    samples_flush_seconds: float = Field(default=1.0, gt=0.0)
    reject_unknown_columns: EnvBool = False
    coalesce: EnvBool = True
    load_retry_seconds: float = Field(default=5.0, ge=0.0)
    log_level: str = "INFO"

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the constructor's arguments: :meth:`from_env` is the one place that reads the environment."""
        return (init_settings,)

    @field_validator("model_uri")
    @classmethod
    def _model_uri_names_one_model(cls, value: str) -> str:
        if not MODEL_URI_PATTERN.match(value):
            raise ValueError(f"{value!r} is not models:/<name>@<alias> or models:/<name>/<version>")
        return value

    @field_validator("model_dir")
    @classmethod
    def _model_dir_needs_a_pinned_version(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        uri = info.data.get("model_uri")
        if value is not None and uri is not None and _group(MODEL_URI_PATTERN, uri, "version") is None:
            raise ValueError(f"needs {ENV_PREFIX}MODEL_URI to pin the version it holds (models:/<name>/<version>), "
                             f"got {uri!r}")
        return value

    @field_validator("samples_uri")
    @classmethod
    def _samples_uri_names_a_bucket(cls, value: str | None) -> str | None:
        if value is not None and not SAMPLES_URI_PATTERN.match(value):
            raise ValueError(f"{value!r} is not s3://<bucket>/<prefix>/")
        return value

    @field_validator("s3_endpoint")
    @classmethod
    def _s3_endpoint_is_a_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError(f"{value!r} is not one of DEBUG, INFO, WARNING, ERROR")
        return level

    @property
    def model_name(self) -> str:
        return _group(MODEL_URI_PATTERN, self.model_uri, "name") or ""

    @property
    def model_alias(self) -> str | None:
        return _group(MODEL_URI_PATTERN, self.model_uri, "alias")

    @property
    def model_version(self) -> str | None:
        return _group(MODEL_URI_PATTERN, self.model_uri, "version")

    @property
    def samples_bucket(self) -> str | None:
        """The bucket of ``samples_uri``; None when shipping samples is off."""
        return _group(SAMPLES_URI_PATTERN, self.samples_uri, "bucket") if self.samples_uri else None

    @property
    def samples_prefix(self) -> str:
        """The key prefix of ``samples_uri``, ending in ``/`` unless it is empty."""
        if not self.samples_uri:
            return ""
        prefix = (_group(SAMPLES_URI_PATTERN, self.samples_uri, "prefix") or "").strip("/")
        return f"{prefix}/" if prefix else ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``LASTMILE_SERVING_*`` and ``MLFLOW_TRACKING_URI``; raise :class:`SettingsError` naming the variable."""
        values = _EnvironSource(cls, os.environ if environ is None else environ)()
        if "model_uri" not in values:
            raise SettingsError(f"{ENV_PREFIX}MODEL_URI is not set "
                                "(models:/<name>@<alias> or models:/<name>/<version>)")
        try:
            return cls(**values)
        except ValidationError as exc:
            first = exc.errors()[0]
            field, *inside = map(str, first["loc"])
            where = "".join(f"{part}: " for part in inside)
            raise SettingsError(f"{variable(field)}: {where}{first['msg']}") from None


def _group(pattern: re.Pattern[str], text: str, name: str) -> str | None:
    """One named part of ``text`` (None when that part, or the whole match, is missing)."""
    match = pattern.match(text)
    return match[name] if match else None


def variable(field: str) -> str:
    """The environment variable that sets ``field`` (a field name or its alias)."""
    if field in ("tracking_uri", "MLFLOW_TRACKING_URI"):
        return "MLFLOW_TRACKING_URI"
    return ENV_PREFIX + field.upper()


class _EnvironSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self._environ.items()}
