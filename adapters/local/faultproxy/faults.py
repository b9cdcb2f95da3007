"""HTTP fault rules (lastmile's extension, after LocalStack's Chaos API): which requests a proxy answers itself.

A rule is ``{"name", "method", "path", "probability", "status", "body", "headers", "content_type", "preset"}``:

- ``method``: one method (``PUT``) or ``*``;
- ``path``: a glob matched against the request's path (``/bucket/*``), or, when it starts with ``^``, a regular
  expression searched in the whole request target, query included (``^/bucket/[^?]+\\?partNumber=``);
- ``probability``: 0 to 1 (default 1), drawn for each matching request;
- ``preset``: one of :data:`.presets.PRESETS`, whose status, body, content type and headers the rule's own
  fields override; without a preset, status 503 and an empty body;
- ``name``: unique on its proxy; defaults to ``<status>_<method>_<path>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from http import HTTPStatus

from . import errors
from .presets import PRESETS

FIELDS = {"name", "method", "path", "probability", "status", "body", "headers", "content_type", "preset"}
_TOKEN = re.compile(r"[A-Z][A-Z_-]*")
_BREAK = re.compile(r"[\r\n]")


@dataclass
class FaultRule:
    name: str
    method: str
    path: str
    probability: float
    status: int
    body: str
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    preset: str | None = None

    def __post_init__(self) -> None:
        self._regex = re.compile(self.path) if self.path.startswith("^") else None

    def matches(self, method: str, target: str) -> bool:
        if self.method != "*" and self.method != method:
            return False
        if self._regex is not None:
            return self._regex.search(target) is not None
        return fnmatchcase(target.split("?", 1)[0], self.path)

    def response(self, method: str) -> bytes:
        """The whole answer: status line, headers, ``Connection: close``, and the body (none for HEAD)."""
        body = self.body.encode()
        try:
            reason = HTTPStatus(self.status).phrase
        except ValueError:
            reason = "Fault"
        lines = [f"HTTP/1.1 {self.status} {reason}", f"Content-Type: {self.content_type}",
                 f"Content-Length: {len(body)}", "Connection: close", f"X-Lastmile-Fault: {self.name}"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()
                  if k.lower() not in ("content-type", "content-length", "connection")]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if method == "HEAD" else head + body

    def to_json(self) -> dict:
        return {"name": self.name, "method": self.method, "path": self.path, "probability": self.probability,
                "status": self.status, "body": self.body, "content_type": self.content_type,
                "headers": dict(self.headers), "preset": self.preset}


def parse_rule(payload: object) -> FaultRule:
    """A rule from a ``POST /proxies/{proxy}/faults`` body; unknown fields are refused, so a typo is not ignored."""
    if not isinstance(payload, dict):
        raise errors.bad_request_body("a fault rule is a JSON object")
    unknown = sorted(set(payload) - FIELDS)
    if unknown:
        raise errors.bad_request_body(f"unknown fault rule fields {unknown}; allowed: {sorted(FIELDS)}")
    preset_name = _typed(payload, "preset", str, None)
    if preset_name is not None and preset_name not in PRESETS:
        raise errors.bad_request_body(f"unknown preset {preset_name!r}; known: {sorted(PRESETS)}")
    preset = PRESETS[preset_name]() if preset_name else None
    method = _typed(payload, "method", str, "*").upper()
    if method != "*" and not _TOKEN.fullmatch(method):
        raise errors.bad_request_body(f"method must be an HTTP method or '*', got {method!r}")
    path = _typed(payload, "path", str, "*")
    if path.startswith("^"):
        try:
            re.compile(path)
        except re.error as exc:
            raise errors.bad_request_body(f"path {path!r} is not a regular expression: {exc}") from None
    probability = payload.get("probability", 1.0)
    if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0 <= probability <= 1:
        raise errors.bad_request_body(f"probability must be a number from 0 to 1, got {probability!r}")
    status = _typed(payload, "status", int, preset.status if preset else 503)
    if isinstance(status, bool) or not 100 <= status <= 599:
        raise errors.bad_request_body(f"status must be an HTTP status code, got {status!r}")
    headers = _typed(payload, "headers", dict, {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise errors.bad_request_body("headers must map names to string values")
    content_type = _typed(payload, "content_type", str,
                          preset.content_type if preset else "text/plain; charset=utf-8")
    if any(_BREAK.search(text) for text in [content_type, *headers, *headers.values()]):
        raise errors.bad_request_body("header names and values cannot hold line breaks")
    return FaultRule(
        name=_typed(payload, "name", str, "") or f"{status}_{method}_{path}",
        method=method, path=path, probability=float(probability), status=status,
        body=_typed(payload, "body", str, preset.body if preset else ""),
        content_type=content_type,
        headers={**(preset.headers if preset else {}), **headers}, preset=preset_name)


def _typed(payload: dict, key: str, kind: type, default):
    value = payload.get(key)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise errors.bad_request_body(f"{key} must be a {kind.__name__}, got {value!r}")
    return value
