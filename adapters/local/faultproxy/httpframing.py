"""Follows HTTP/1.1 request framing on a client's stream, so that a request head can be checked against the
proxy's fault rules before it is forwarded.

Every client stream that starts like an HTTP request is followed (heads are parsed, bodies are counted by
``Content-Length`` or chunk sizes, never scanned), so a keep-alive connection opened before a rule was added still
meets the rule at its next request. While the proxy has rules, each head is held until it is complete; a request
that no rule takes is then forwarded byte for byte. A taken request's body is read and dropped, the rule's answer
is written with ``Connection: close``, and the connection closes. A stream that is not HTTP/1.x (or upgrades, or
breaks the framing) is left alone from then on. Clients are assumed not to pipeline.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .faults import FaultRule
    from .link import Link
    from .proxy import Proxy

MAX_HEAD = 64 * 1024
MAX_LINE = 8 * 1024
HEAD, BODY, CHUNK_SIZE, CHUNK_DATA, CHUNK_END, TRAILER, OPAQUE, DROP = range(8)
CHUNKED = -1  # a body framed by chunk sizes
_REQUEST_LINE = re.compile(rb"([A-Z][A-Z_-]*) (\S+) HTTP/1\.[01]")


class HttpRequestFramer:
    """The framing state of the client-to-upstream stream of one connection."""

    def __init__(self, link: Link, proxy: Proxy):
        self.link, self.proxy = link, proxy
        self.state = HEAD
        self.head = bytearray()
        self.line = bytearray()
        self.holding = False
        self.remaining = 0
        self.fault: FaultRule | None = None  # the rule that took the current request
        self.method = ""
        self.answered = False

    def feed(self, data: bytes) -> None:
        pos, size = 0, len(data)
        while pos < size:
            state = self.state
            if state == HEAD:
                pos = self._head(data, pos)
            elif state in (BODY, CHUNK_DATA, CHUNK_END):
                step = min(self.remaining, size - pos)
                self._pass(data, pos, pos + step)
                pos += step
                self.remaining -= step
                if self.remaining == 0:
                    self._counted_part_done()
            elif state in (CHUNK_SIZE, TRAILER):
                pos = self._line(data, pos)
            elif state == OPAQUE:
                self._pass(data, pos, size)
                return
            else:  # DROP: the rest of a connection we answered ourselves
                return

    def feed_eof(self) -> None:
        if self.fault is not None:
            self._answer()
            self.link.conn.close()
            return
        if self.holding and self.head:
            self.link.forward(bytes(self.head))
        self.link.end()

    def _head(self, data: bytes, pos: int) -> int:
        if not self.head:
            first = data[pos]
            if not (65 <= first <= 90 or first in (10, 13)):  # a request line starts with a method in capitals
                self._opaque()
                return pos
            self.holding = bool(self.proxy.rules)
        end = self._head_end(data, pos)
        stop = len(data) if end == -1 else end
        piece = data if pos == 0 and stop == len(data) else data[pos:stop]
        self.head += piece
        if not self.holding:
            self.link.forward(piece)
        if end == -1:
            if len(self.head) > MAX_HEAD:
                self._opaque()
            return stop
        self._head_complete()
        return stop

    def _head_end(self, data: bytes, pos: int) -> int:
        """Where in ``data`` the blank line that ends the head finishes (-1: not in this read)."""
        if self.head:
            tail = bytes(self.head[-3:])
            found = (tail + data[pos:pos + 3]).find(b"\r\n\r\n")
            if found != -1:
                return pos + found + 4 - len(tail)
        found = data.find(b"\r\n\r\n", pos)
        return -1 if found == -1 else found + 4

    def _head_complete(self) -> None:
        request = parse_head(bytes(self.head))
        if request is None:
            self._opaque()
            return
        method, target, headers = request
        self.proxy.stats.http_requests += 1
        body = _body_framing(headers)
        rule = self.proxy.match(method, target) if self.holding else None
        if rule is None and self.holding:
            self.link.forward(bytes(self.head))
        self.head.clear()
        self.fault, self.method, self.answered = rule, method, False
        if body is None or (rule is None and (method == "CONNECT" or "upgrade" in headers)):
            self._opaque()
        elif body == CHUNKED:
            self.state = CHUNK_SIZE
        elif body > 0:
            self.state, self.remaining = BODY, body
        else:
            self._message_done()
            return
        if rule is not None and "100-continue" in headers.get("expect", "").lower():
            self._answer()  # the client waits for our word before it sends the body

    def _line(self, data: bytes, pos: int) -> int:
        newline = data.find(b"\n", pos)
        stop = len(data) if newline == -1 else newline + 1
        self.line += data[pos:stop]
        self._pass(data, pos, stop)
        if newline == -1:
            if len(self.line) > MAX_LINE:
                self._opaque()
            return stop
        line = bytes(self.line).strip()
        self.line.clear()
        if self.state == TRAILER:
            if not line:
                self._message_done()
            return stop
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            self._opaque()
            return stop
        if size == 0:
            self.state = TRAILER
        else:
            self.state, self.remaining = CHUNK_DATA, size
        return stop

    def _counted_part_done(self) -> None:
        if self.state == BODY:
            self._message_done()
        elif self.state == CHUNK_DATA:
            self.state, self.remaining = CHUNK_END, 2
        else:
            self.state = CHUNK_SIZE

    def _message_done(self) -> None:
        if self.fault is not None:
            self._answer()
            self.state = DROP
        else:
            self.state = HEAD

    def _pass(self, data: bytes, start: int, stop: int) -> None:
        if self.fault is None and stop > start:
            self.link.forward(data if start == 0 and stop == len(data) else data[start:stop])

    def _answer(self) -> None:
        assert self.fault is not None
        if not self.answered:
            self.answered = True
            self.proxy.stats.fault_injected(self.fault.name)
            self.link.conn.answer(self.fault.response(self.method))

    def _opaque(self) -> None:
        """Stop following this stream: forward whatever was held; from now on bytes pass untouched."""
        if self.fault is not None:
            self._answer()
            self.state = DROP
            return
        if self.holding and self.head:
            self.link.forward(bytes(self.head))
        self.head.clear()
        self.state = OPAQUE
        self.link.framer = None


def parse_head(raw: bytes) -> tuple[str, str, dict[str, str]] | None:
    """``(method, target, headers)`` of a request head (header names lower-cased, repeated ones joined with
    commas), or None when it is not an HTTP/1.x request."""
    lines = raw.lstrip(b"\r\n").split(b"\r\n")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            return None
        key, text = name.decode("latin-1").lower(), value.strip().decode("latin-1")
        headers[key] = f"{headers[key]},{text}" if key in headers else text
    return match.group(1).decode(), match.group(2).decode("latin-1"), headers


def _body_framing(headers: dict[str, str]) -> int | None:
    """The body's length, ``CHUNKED``, or None when the framing is not one we follow (RFC 9112 section 6)."""
    if "transfer-encoding" in headers:
        codings = [c.strip().lower() for c in headers["transfer-encoding"].split(",")]
        return CHUNKED if codings[-1] == "chunked" else None
    if "content-length" not in headers:
        return 0
    values = {v.strip() for v in headers["content-length"].split(",")}
    if len(values) != 1 or not next(iter(values)).isdigit():
        return None
    return int(values.pop())
