"""The part of OCI Logging's query language a reader needs, parsed; anything else is refused, naming what is not
supported (the service answers 400 ``InvalidParameter``).

Supported: ``search "<compartment>[/<log group>[/<log>]]"[, "<...>"]`` followed by any of
``| where <field> = '<value>' [and <field> = '<value>' ...]`` (also ``!=``) and ``| sort by datetime [asc|desc]``.
A field is a log content field (``subject``, ``type``, ``source``, ``id``, ``time``, ``specversion``), a path into
the entry's data (``data.event``), or either with the ``logContent.`` prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SUPPORTED = ("search \"<compartment>[/<log group>[/<log>]]\"[, ...] [| where <field> = '<value>' [and ...]] "
             "[| sort by datetime [asc|desc]]")
_TOKEN = re.compile(r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op>!=|=|\||,)|(?P<word>[\w.$-]+)|(?P<other>\S))""")


class QueryError(ValueError):
    """A query outside the supported subset, or not a query at all."""


@dataclass(frozen=True)
class Condition:
    path: tuple[str, ...]  # inside logContent: ("subject",) or ("data", "event")
    value: str
    equal: bool = True

    def holds(self, content: dict) -> bool:
        found: object = content
        for part in self.path:
            found = found.get(part) if isinstance(found, dict) else None
        return (found is not None and str(found) == self.value) == self.equal


@dataclass
class Query:
    streams: list[tuple[str, ...]]  # each (compartment[, log group[, log]])
    conditions: list[Condition] = field(default_factory=list)
    descending: bool = False


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:  # only trailing blanks are left
            break
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def _field(name: str) -> tuple[str, ...]:
    parts = tuple(name.split("."))
    if parts[0].lower() == "logcontent":
        parts = parts[1:]
    if not parts or not (parts[0] in ("subject", "type", "source", "id", "time", "specversion", "oracle")
                         or (parts[0] == "data" and len(parts) > 1)):
        raise QueryError(f"the field {name!r} is not supported")
    return parts


def parse(text: str) -> Query:
    """The query ``text`` as a :class:`Query`; raises :class:`QueryError` naming what is not supported."""
    tokens = _tokens(text)
    if not tokens or tokens[0] != ("word", "search"):
        raise QueryError("a query starts with: search \"<compartment>/<log group>/<log>\"")
    position, streams = 1, []
    while True:
        if position >= len(tokens) or tokens[position][0] != "str":
            raise QueryError("search needs a quoted log stream: \"<compartment>/<log group>/<log>\"")
        parts = tuple(_unquote(tokens[position][1]).split("/"))
        if not 1 <= len(parts) <= 3 or not all(parts):
            raise QueryError(f"the log stream {tokens[position][1]} is not <compartment>[/<log group>[/<log>]]")
        streams.append(parts)
        position += 1
        if position < len(tokens) and tokens[position] == ("op", ","):
            position += 1
            continue
        break
    query = Query(streams)
    while position < len(tokens):
        if tokens[position] != ("op", "|") or position + 1 >= len(tokens):
            raise QueryError(f"expected '|' and a clause, found {tokens[position][1]!r}")
        position = _clause(tokens, position + 1, query)
    return query


def _clause(tokens: list[tuple[str, str]], position: int, query: Query) -> int:
    keyword = tokens[position][1].lower()
    if keyword == "where":
        position += 1
        while True:
            if position + 3 > len(tokens):
                raise QueryError("where needs <field> = '<value>'")
            name, operator, value = tokens[position:position + 3]
            if name[0] != "word" or operator not in (("op", "="), ("op", "!=")) or value[0] != "str":
                raise QueryError("only <field> = '<value>' and <field> != '<value>' conditions are supported")
            query.conditions.append(Condition(_field(name[1]), _unquote(value[1]), operator[1] == "="))
            position += 3
            if position < len(tokens) and tokens[position] == ("word", "and"):
                position += 1
                continue
            return position
    if keyword == "sort":
        words = [t[1].lower() for t in tokens[position:position + 4]]
        if words[:3] != ["sort", "by", "datetime"]:
            raise QueryError("only 'sort by datetime [asc|desc]' is supported")
        if len(words) == 4 and words[3] in ("asc", "desc"):
            query.descending = words[3] == "desc"
            return position + 4
        return position + 3
    raise QueryError(f"the clause {tokens[position][1]!r} is not supported")
