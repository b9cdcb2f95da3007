"""Loading ``lastmile.yaml``: base settings, then the chosen profile, then ``LASTMILE_*`` variables.

Every error names the file (or variable), the key and what is allowed, and exits with code 2.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, create_model

from harness.config.flavors import PortsConfig, StandIns, ports_model
from harness.domain.errors import ConfigError

CONFIG_NAME = "lastmile.yaml"
ENV_PREFIX = "LASTMILE_"
_ENV_RESERVED = {"LASTMILE_PROFILE", "LASTMILE_CONFIG"}


BucketName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]


class Buckets(BaseModel):
    """Bucket names follow S3's rules (3-63 lower-case letters, digits, dots and hyphens)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    data: BucketName = "lastmile-data"
    artifacts: BucketName = "lastmile-mlflow"
    predictions: BucketName = "lastmile-predictions"


class TrainingParams(BaseModel):
    """The training job's hyperparameters (``python -m training.train --max-depth ... --min-samples-leaf ...``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_depth: int = Field(4, ge=1, le=64)
    min_samples_leaf: int = Field(1, ge=1)

    def args(self) -> tuple[str, ...]:
        return ("--max-depth", str(self.max_depth), "--min-samples-leaf", str(self.min_samples_leaf))


class ModelSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = "lastmile-classifier"
    experiment: str = "lastmile"
    metric: str = "accuracy"
    tolerance: float = Field(0.01, ge=0)
    floor: float = Field(0.7, ge=0)
    params: TrainingParams = TrainingParams()


class Settings(BaseModel):
    """The resolved config of one profile."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    project: str = "lastmile"
    profile: str
    root: Path
    state_dir: Path
    buckets: Buckets = Buckets()
    model: ModelSettings = ModelSettings()
    ports: PortsConfig
    standins: StandIns = StandIns()

    def state_path(self, *parts: str) -> Path:
        return self.state_dir.joinpath(*parts)


def find_config(start: Path | None = None) -> Path:
    """The config file: ``$LASTMILE_CONFIG``, else ``lastmile.yaml`` here or in a parent directory."""
    if env := os.environ.get("LASTMILE_CONFIG"):
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"LASTMILE_CONFIG={env}: no such file")
        return path
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder / CONFIG_NAME
    raise ConfigError(f"no {CONFIG_NAME} in {here} or its parents", hint="run lastmile from the project, or pass --config")


def load_settings(path: Path | None = None, profile: str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    path = path or find_config()
    environ = os.environ if environ is None else environ
    raw = read_yaml(path)
    profiles = raw.pop("profiles", None) or {}
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path.name}: profiles: must be a mapping of profile name to settings")
    name = profile or environ.get("LASTMILE_PROFILE") or raw.pop("default_profile", None) or "local"
    raw.pop("default_profile", None)
    if name not in profiles:
        allowed = ", ".join(sorted(profiles)) or "none defined"
        raise ConfigError(f"{path.name}: profile '{name}' is not defined; allowed: {allowed}")
    overlay = profiles[name] or {}
    merged = deep_merge(raw, overlay)
    env_keys = env_overrides(environ)
    for dotted, value in env_keys.items():
        _set_dotted(merged, dotted, value)
    root = path.resolve().parent
    merged["profile"] = name
    merged["root"] = root
    merged["state_dir"] = root / merged.get("state_dir", ".lastmile")
    schema = settings_model()
    try:
        return schema.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, schema, path, name, overlay, env_keys)) from None


@functools.cache
def settings_model() -> type[Settings]:
    """:class:`Settings` whose ``ports`` accept exactly the flavors the installed adapter families declare."""
    return create_model("Settings", __base__=Settings, ports=(ports_model(), ...))


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Overlay wins key by key; a port block whose ``flavor`` changes replaces the base block whole."""
    out = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        current = out.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            if "flavor" in value and value.get("flavor") != current.get("flavor"):
                out[key] = copy.deepcopy(value)
            else:
                out[key] = deep_merge(current, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``LASTMILE_PORTS__MODEL_REGISTRY__TRACKING_URI=...`` becomes ``ports.model_registry.tracking_uri``."""
    out: dict[str, Any] = {}
    for var, text in environ.items():
        if not var.startswith(ENV_PREFIX) or var in _ENV_RESERVED:
            continue
        dotted = ".".join(part.lower() for part in var[len(ENV_PREFIX):].split("__"))
        out[dotted] = yaml.safe_load(text) if text else None
    return out


def redacted(settings: Settings) -> dict[str, Any]:
    """The config as plain data for display. Secret fields hold references only; anything else
    that looks like a credential is masked in case a value slipped through."""
    data = settings.model_dump(mode="json")
    return _mask(data)


_SENSITIVE = ("password", "token", "secret", "access_key", "database_url")


def _mask(node: Any, key: str = "") -> Any:
    if isinstance(node, dict):
        return {k: _mask(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_mask(v, key) for v in node]
    if isinstance(node, str) and any(s in key for s in _SENSITIVE):
        return node if node.split(":", 1)[0] in ("secret", "vault", "env") else "******"
    return node


def read_yaml(path: Path, shown: str | None = None) -> dict[str, Any]:
    """A YAML file that must hold a mapping, or a one-line :class:`ConfigError` naming it (as ``shown``, by default
    its file name) and what is wrong: unreadable, not UTF-8, not YAML (with the line), not a mapping."""
    name = shown or path.name
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{name}: not UTF-8 text (byte {exc.start} cannot be decoded); save it as UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{name}:{where} not valid YAML ({getattr(exc, 'problem', exc)})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: must be a mapping at the top level")
    return data


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = target
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{ENV_PREFIX}{dotted.upper().replace('.', '__')}: {part} is not a section")
    node[leaf] = value


def _describe(exc: ValidationError, schema: type[BaseModel], path: Path, profile: str, overlay: Mapping,
              env_keys: Mapping) -> str:
    err = exc.errors()[0]
    loc, parent = _walk(schema, err["loc"])
    dotted = ".".join(loc)
    source = _where(dotted, path, profile, overlay, env_keys)
    message = _allowed(err)
    if err["type"] == "extra_forbidden" and parent is not None:
        allowed = [k for k in parent.model_fields if k not in ("profile", "root")]
        message += f"; allowed: {', '.join(allowed)}"
    return f"{source}: {dotted}: {message}"


def _walk(schema: type[BaseModel], raw_loc: tuple) -> tuple[list[str], Any]:
    """Turn pydantic's error location into the user's key path, dropping union tags, and return
    the model that holds the last key."""
    model: Any = schema
    parent: Any = None
    loc: list[str] = []
    parts = [str(p) for p in raw_loc]
    i = 0
    while i < len(parts):
        part = parts[i]
        fields = getattr(model, "model_fields", None)
        if fields is None:
            loc.append(part)
            i += 1
            continue
        parent = model
        loc.append(part)
        field = fields.get(part)
        model = field.annotation if field else None
        members = [a for a in getattr(model, "__args__", ()) if getattr(a, "model_fields", None) is not None]
        if len(members) > 1 and i + 1 < len(parts):
            tag = parts[i + 1]
            model = next((m for m in members if m.model_fields["flavor"].annotation.__args__[0] == tag), None)
            i += 1
        elif len(members) == 1:
            model = members[0]
        i += 1
    return loc, parent


def _where(dotted: str, path: Path, profile: str, overlay: Mapping, env_keys: Mapping) -> str:
    for key in env_keys:
        if dotted == key or dotted.startswith(key + ".") or key.startswith(dotted + "."):
            return ENV_PREFIX + key.upper().replace(".", "__")
    node: Any = overlay
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return f"{path.name}"
        node = node[part]
    return f"{path.name} (profiles.{profile})"


def _allowed(err: Mapping[str, Any]) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "union_tag_invalid":
        return f"flavor '{ctx.get('tag')}' is not known; allowed: {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return "needs a 'flavor'"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required, but missing"
    if kind == "string_pattern_mismatch":
        return f"'{err.get('input')}' does not match {ctx.get('pattern')}"
    if kind == "literal_error":
        return f"'{err.get('input')}' is not allowed; allowed: {ctx.get('expected')}"
    return str(err["msg"]).removeprefix("Value error, ")
