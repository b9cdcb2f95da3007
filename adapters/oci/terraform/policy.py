"""A small grammar of OCI IAM policy statements, enough to hold this project's policies to least privilege:

    Allow <subject> to <verb> <resource-type> in <compartment|tenancy> [where <conditions>]

``subject`` is ``group NAME``, ``group id OCID``, ``dynamic-group NAME``, ``dynamic-group id OCID``,
``service NAME`` or ``any-user``; ``verb`` one of inspect, read, use, manage; the location ``compartment NAME``,
``compartment id OCID`` or ``tenancy``. Terraform interpolations (``${...}``) are read as opaque words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VERBS = ("inspect", "read", "use", "manage")

_INTERPOLATION = re.compile(r"\$\{[^}]*\}")
_WORD = r"[^\s{}]+"
_STATEMENT = re.compile(
    rf"""^allow\s+
    (?P<subject>any-user|(?:group|dynamic-group)\s+(?:id\s+)?{_WORD}|service\s+{_WORD})\s+
    to\s+(?P<verb>{_WORD})\s+(?P<resource>{_WORD})\s+
    in\s+(?P<location>tenancy|compartment\s+(?:id\s+)?{_WORD})
    (?:\s+where\s+(?P<condition>.+))?$""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)


class PolicySyntaxError(ValueError):
    """A statement this grammar cannot read."""


@dataclass(frozen=True)
class Statement:
    """One parsed ``Allow`` statement; ``text`` is as written (interpolations kept)."""

    text: str
    subject: str
    verb: str
    resource: str
    location: str
    condition: str | None

    @property
    def in_compartment(self) -> bool:
        return self.location.lower().startswith("compartment")

    @property
    def subject_kind(self) -> str:
        return self.subject.split()[0].lower()


def parse(text: str) -> Statement:
    """Parse one statement; interpolations become the opaque word ``X`` for matching, the text keeps them."""
    flat = " ".join(_INTERPOLATION.sub("X", text).split())
    match = _STATEMENT.match(flat)
    if not match:
        raise PolicySyntaxError(f"not an 'Allow <subject> to <verb> <resource-type> in <location> [where ...]' "
                                f"statement: {text}")
    verb = match["verb"].lower()
    if verb not in VERBS:
        raise PolicySyntaxError(f"verb {match['verb']!r} is not one of {', '.join(VERBS)}: {text}")
    if match["condition"] is not None and match["condition"].count("{") != match["condition"].count("}"):
        raise PolicySyntaxError(f"unbalanced braces in the where clause: {text}")
    return Statement(text, match["subject"], verb, match["resource"].lower(), match["location"],
                     match["condition"])


def problems(statement: Statement) -> list[str]:
    """What breaks this project's least-privilege rules: a statement outside a compartment, ``manage
    all-resources``, ``any-user`` without a where clause that names the principal's type."""
    found = []
    if not statement.in_compartment:
        found.append("not scoped to a compartment")
    if statement.verb == "manage" and statement.resource == "all-resources":
        found.append("manage all-resources")
    if statement.subject_kind == "any-user" and "request.principal.type" not in (statement.condition or ""):
        found.append("any-user without a where clause naming request.principal.type")
    return found
