"""Toxics as the API sees them: their types, attributes, defaults and validation, in Toxiproxy 2.x's JSON shape.

A toxic is ``{"name", "type", "stream", "toxicity", "attributes"}``. ``stream`` is ``upstream`` (client to server) or
``downstream`` (server to client, the default); ``toxicity`` is the probability that a connection gets the toxic,
drawn once per connection and direction; ``name`` defaults to ``<type>_<stream>``. What each type does to the bytes
is in :mod:`.behaviours`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import errors

STREAMS = ("upstream", "downstream")

#: Every type and its attributes with their defaults (all integers, as in Toxiproxy).
ATTRIBUTES: dict[str, dict[str, int]] = {
    "noop": {},
    "latency": {"latency": 0, "jitter": 0},  # milliseconds
    "bandwidth": {"rate": 0},  # KB/s (1 KB = 1000 bytes); 0 = unlimited
    "slow_close": {"delay": 0},  # milliseconds
    "timeout": {"timeout": 0},  # milliseconds; 0 = never close
    "reset_peer": {"timeout": 0},  # milliseconds
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},  # bytes, bytes, microseconds
    "limit_data": {"bytes": 0},
}

#: lastmile's boolean extensions; shown only when true, so Toxiproxy's own shape is unchanged by default.
FLAGS: dict[str, tuple[str, ...]] = {
    "timeout": ("hold",),  # hold the data instead of dropping it; removing the toxic delivers it
}


@dataclass
class Toxic:
    """One toxic of one proxy; the same object drives every connection's copy of it."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, int | bool] = field(default_factory=dict)

    def to_json(self) -> dict:
        shown = {k: v for k, v in self.attributes.items() if k not in FLAGS.get(self.type, ()) or v}
        return {"attributes": shown, "name": self.name, "type": self.type, "stream": self.stream,
                "toxicity": self.toxicity}


def parse_toxic(payload: object) -> Toxic:
    """A new toxic from a ``POST /proxies/{proxy}/toxics`` body; checks in Toxiproxy's order."""
    if not isinstance(payload, dict):
        raise errors.bad_request_body("a toxic is a JSON object")
    stream = _string(payload, "stream", "downstream")
    if stream not in STREAMS:
        raise errors.invalid_stream()
    kind = _string(payload, "type", "")
    name = _string(payload, "name", "") or f"{kind}_{stream}"
    if kind not in ATTRIBUTES:
        raise errors.invalid_toxic_type()
    toxicity = _toxicity(payload.get("toxicity", 1.0))
    base: dict[str, int | bool] = {**ATTRIBUTES[kind], **dict.fromkeys(FLAGS.get(kind, ()), False)}
    return Toxic(name, kind, stream, toxicity, _attributes(kind, payload.get("attributes"), base))


def check_update(toxic: Toxic, payload: object) -> tuple[dict[str, int | bool], float]:
    """The attributes and toxicity a ``POST /proxies/{proxy}/toxics/{toxic}`` body asks for; fields it leaves out
    keep their values, and its name, type and stream are ignored (as Toxiproxy does)."""
    if not isinstance(payload, dict):
        raise errors.bad_request_body("a toxic is a JSON object")
    toxicity = _toxicity(payload.get("toxicity", toxic.toxicity))
    return _attributes(toxic.type, payload.get("attributes"), dict(toxic.attributes)), toxicity


def _attributes(kind: str, given: object, base: dict[str, int | bool]) -> dict[str, int | bool]:
    if given is None:
        return base
    if not isinstance(given, dict):
        raise errors.bad_request_body("attributes must be a JSON object")
    for key, value in given.items():
        if key in FLAGS.get(kind, ()):
            if not isinstance(value, bool):
                raise errors.bad_request_body(f"attribute {key} of {kind} must be true or false")
            base[key] = value
        elif key in ATTRIBUTES[kind]:  # other keys are ignored, as Go's JSON decoder ignores them
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise errors.bad_request_body(f"attribute {key} of {kind} must be a non-negative integer, "
                                              f"got {value!r}")
            base[key] = value
    return base


def _toxicity(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise errors.bad_request_body(f"toxicity must be a number from 0 to 1, got {value!r}")
    return float(value)


def _string(payload: dict, key: str, default: str) -> str:
    value = payload.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise errors.bad_request_body(f"{key} must be a string, got {value!r}")
    return value
