"""Load scenarios: YAML files in ``scenarios/load/``, read into a typed :class:`Scenario`.

A scenario says how much load (``users``, or a constant arrival ``rate`` in requests a second), for how long
(``duration_s``) and at most how many requests (``max_requests``), what the requests carry (``payloads``: the
formats the endpoint speaks, single rows and batches, and a share of invalid requests that must get a 4xx), and the
SLO ``gates`` that decide the exit code. A bad file is one line naming the file and the field.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.config.settings import read_yaml
from harness.domain.errors import ConfigError

FORMATS = ("dataframe_split", "dataframe_records", "instances", "csv", "predict")
Format = Literal["dataframe_split", "dataframe_records", "instances", "csv", "predict"]
MAX_RATE = 20_000.0
MAX_USERS = 5_000
MAX_DURATION_S = 3_600.0
MAX_REQUESTS = 10_000_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Payloads(_Strict):
    """What the requests carry: rows of the training data set (``training``) or the champion's reference rows."""

    rows: Literal["training", "reference"] = "training"
    formats: dict[Format, float] = Field(default_factory=lambda: {"dataframe_records": 1.0})  # type: ignore[arg-type]
    batch_share: float = Field(0.0, ge=0.0, le=1.0)
    batch_size: int = Field(10, ge=2, le=1000)
    invalid_share: float = Field(0.0, ge=0.0, le=0.5)

    @model_validator(mode="after")
    def _some_format(self) -> Payloads:
        if not self.formats or any(w < 0 for w in self.formats.values()) or sum(self.formats.values()) <= 0:
            raise ValueError("formats needs at least one positive weight")
        return self


class Gates(_Strict):
    """SLO gates, each optional: latency percentiles in ms, the error ratio (intended 4xx excluded), the throughput."""

    p50_ms: float | None = Field(None, gt=0)
    p95_ms: float | None = Field(None, gt=0)
    p99_ms: float | None = Field(None, gt=0)
    error_ratio: float | None = Field(None, ge=0, le=1)
    min_rps: float | None = Field(None, ge=0)


class Scenario(_Strict):
    name: str = ""
    description: str = ""
    users: int | None = Field(None, ge=1, le=MAX_USERS)
    rate: float | None = Field(None, gt=0, le=MAX_RATE)
    per_user_rps: float | None = Field(None, gt=0, le=1000)
    spawn_rate: float | None = Field(None, gt=0)
    duration_s: float = Field(gt=0, le=MAX_DURATION_S)
    max_requests: int = Field(ge=1, le=MAX_REQUESTS)
    timeout_s: float = Field(5.0, gt=0, le=60)
    payloads: Payloads = Field(default_factory=Payloads)
    gates: Gates = Field(default_factory=Gates)
    file: str = ""

    @model_validator(mode="after")
    def _one_mode(self) -> Scenario:
        if (self.users is None) == (self.rate is None):
            raise ValueError("give exactly one of users (closed loop) or rate (requests a second)")
        return self

    @property
    def mode(self) -> str:
        return "rate" if self.rate is not None else "users"

    @property
    def user_count(self) -> int:
        """Users to start: given, or for a rate enough that each sends ``per_user_rps`` (2 by default), so a slow
        answer holds up only its own user's share of the rate."""
        if self.users is not None:
            return self.users
        assert self.rate is not None
        return max(1, min(MAX_USERS, math.ceil(self.rate / (self.per_user_rps or 2.0))))

    @property
    def user_rps(self) -> float | None:
        """Requests a second each user paces itself to (None: as fast as answers come)."""
        if self.rate is not None:
            return self.rate / self.user_count
        return self.per_user_rps

    @property
    def spawn(self) -> float:
        return self.spawn_rate or float(self.user_count)

    def with_bounds(self, duration_s: float | None = None, max_requests: int | None = None,
                    rate: float | None = None) -> Scenario:
        """This scenario with other bounds or rate (from the command line), validated again."""
        changes: dict[str, float | int | None] = {k: v for k, v in (("duration_s", duration_s), ("max_requests", max_requests), ("rate", rate))
                   if v is not None}
        if rate is not None:
            changes["users"] = None
        return validate({**self.model_dump(), **changes}, self.file or "the command line")

    def describe(self) -> dict:
        """The scenario as result.json records it."""
        return {"name": self.name, "file": self.file, "mode": self.mode, "users": self.user_count,
                "rate": self.rate, "spawn_rate": self.spawn, "duration_s": self.duration_s,
                "max_requests": self.max_requests, "timeout_s": self.timeout_s,
                "payloads": self.payloads.model_dump(), "gates": self.gates.model_dump(exclude_none=True)}


def validate(data: object, source: str) -> Scenario:
    """A :class:`Scenario` from parsed YAML; ``ConfigError`` (one line: source, field, problem) otherwise."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a load scenario must be a mapping, not {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{source}: {field}: {first['msg']}{more}") from None


def load(path: Path) -> Scenario:
    """Read one scenario file; its name defaults to the file's stem."""
    shown = _shown(path)
    data = read_yaml(path, shown)
    data = {"name": path.stem, **data, "file": shown}
    return validate(data, str(path))


def _shown(path: Path) -> str:
    """The file as results and reports show it: relative to the working directory when it lies under it (a report
    names ``scenarios/load/soak.yaml``, not where this checkout happens to live)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def folder_of(root: Path) -> Path:
    return root / "scenarios" / "load"


def discover(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


def find(name_or_path: str, folder: Path) -> Path:
    """A scenario by name (``smoke``) in ``folder``, or by path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    found = folder / f"{name_or_path}.yaml"
    if found.is_file():
        return found
    known = ", ".join(p.stem for p in discover(folder)) or "none"
    raise ConfigError(f"no load scenario {name_or_path!r} (in {folder.name}/: {known})",
                      hint="`lastmile load list` lists them")
