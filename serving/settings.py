"""The serving app's configuration, read from environment variables and validated before anything starts.

| variable | meaning | default |
|---|---|---|
| ``LASTMILE_SERVING_MODEL_URI`` | ``models:/<name>@<alias>`` or ``models:/<name>/<version>`` | required |
| ``MLFLOW_TRACKING_URI`` | the tracking server holding the registry | MLflow's own default |
| ``MLFLOW_TRACKING_USERNAME``, ``MLFLOW_TRACKING_PASSWORD`` | basic-auth credentials, read by MLflow's client | none |
| ``LASTMILE_SERVING_MODEL_DIR`` | that version, downloaded, with ``version.json``: load it without MLflow | off |
| ``LASTMILE_SERVING_BUILD_DIGEST`` | digest of the image or bundle this server runs from | ``unknown`` |
| ``LASTMILE_SERVING_REPLICA`` | this replica's name, in logs and metrics | the host name |
| ``LASTMILE_SERVING_MAX_BODY_BYTES`` | largest request body accepted (413 above it) | 1 MiB |
| ``LASTMILE_SERVING_PREDICTION_LOG`` | JSON-lines file receiving sampled predictions | off |
| ``LASTMILE_SERVING_PREDICTION_SAMPLE_RATE`` | share of requests written to that file, 0 to 1 | 1.0 |
| ``LASTMILE_SERVING_REJECT_UNKNOWN_COLUMNS`` | ``/invocations`` refuses columns the signature lacks | false (as MLflow) |
| ``LASTMILE_SERVING_COALESCE`` | merge concurrent requests into one model call | true |
| ``LASTMILE_SERVING_LOAD_RETRY_SECONDS`` | pause between load attempts after a failed start; 0 stops trying | 5 |
| ``LASTMILE_SERVING_LOG_LEVEL`` | level of the JSON logs on stdout | ``INFO`` |

With ``LASTMILE_SERVING_MODEL_DIR`` the registry is not contacted: the directory holds the files MLflow logged for
the version (``MLmodel``, ``model.skops``...) and the deployer's ``version.json``, and ``LASTMILE_SERVING_MODEL_URI``
must pin the same version (``models:/<name>/<version>``), which the loader checks against ``version.json``.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

MODEL_URI_PATTERN = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")
_ENV_PREFIX = "LASTMILE_SERVING_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """The environment does not describe a servable configuration; the message names the variable."""


class Settings(BaseModel):
    """Everything the app needs to start; build it with :meth:`from_env` or directly in tests."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    model_uri: str
    tracking_uri: str | None = None
    model_dir: Path | None = None
    build_digest: str = "unknown"
    replica: str = Field(default_factory=socket.gethostname)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    prediction_log: Path | None = None
    prediction_sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    reject_unknown_columns: bool = False
    coalesce: bool = True
    load_retry_seconds: float = Field(default=5.0, ge=0.0)
    log_level: str = "INFO"

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
        if value is not None and uri is not None and MODEL_URI_PATTERN.match(uri)["version"] is None:
            raise ValueError(f"needs {_ENV_PREFIX}MODEL_URI to pin the version it holds (models:/<name>/<version>), "
                             f"got {uri!r}")
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
        return MODEL_URI_PATTERN.match(self.model_uri)["name"]

    @property
    def model_alias(self) -> str | None:
        return MODEL_URI_PATTERN.match(self.model_uri)["alias"]

    @property
    def model_version(self) -> str | None:
        return MODEL_URI_PATTERN.match(self.model_uri)["version"]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``LASTMILE_SERVING_*`` and ``MLFLOW_TRACKING_URI``; raise :class:`SettingsError` naming the variable."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in cls.model_fields:
            name = "MLFLOW_TRACKING_URI" if field == "tracking_uri" else _ENV_PREFIX + field.upper()
            if name in env:
                values[field] = _parse_bool(name, env[name]) if field in _BOOL_FIELDS else env[name]
        if "model_uri" not in values:
            raise SettingsError(f"{_ENV_PREFIX}MODEL_URI is not set (models:/<name>@<alias> or models:/<name>/<version>)")
        for optional_path in ("prediction_log", "model_dir"):
            if values.get(optional_path) == "":
                values.pop(optional_path)
        try:
            return cls(**values)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = str(first["loc"][0])
            name = "MLFLOW_TRACKING_URI" if field == "tracking_uri" else _ENV_PREFIX + field.upper()
            raise SettingsError(f"{name}: {first['msg']}") from None


_BOOL_FIELDS = {"reject_unknown_columns", "coalesce"}


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name}: {raw!r} is not a boolean (true/false)")
