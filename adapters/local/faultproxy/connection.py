"""A proxied TCP connection: the client's socket, a socket to the upstream, and a :class:`.link.Link` each way.

Like Toxiproxy, the upstream is dialled when a client connects; the client is closed when that fails. Unlike
Toxiproxy, the end of one direction half-closes the other side (``shutdown(SHUT_WR)``) instead of closing the
whole connection; the connection closes once both directions have ended, or either side is gone.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from typing import TYPE_CHECKING, cast

from .httpframing import HttpRequestFramer
from .link import Link
from .stream import CLOSE, EOF, RESET, Marker

if TYPE_CHECKING:
    from .proxy import Proxy

DIAL_TIMEOUT_S = 10.0
LINGER_AFTER_FAULT_S = 2.0
logger = logging.getLogger("lastmile.faultproxy")


class Side(asyncio.Protocol):
    """One socket of a proxied connection; it pauses reading while any reason to (``dial``, ``link``, ``dest``)
    stands."""

    transport: asyncio.Transport  # from connection_made on
    link_out: Link  # what this side reads feeds this link; from wire on
    link_in: Link  # this link writes to this side; from wire on

    def __init__(self, conn: Connection, role: str):
        self.conn, self.role = conn, role
        self.made = self.wired = self.lost = False
        self.reasons: set[str] = set()
        self.early: list[bytes | None] = []  # what arrived before the links were wired (None: the end)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport, self.made = cast(asyncio.Transport, transport), True  # uvloop's are not subclasses
        self.conn.side_made(self)

    def wire(self, link_out: Link, link_in: Link) -> None:
        self.link_out, self.link_in, self.wired = link_out, link_in, True

    def data_received(self, data: bytes) -> None:
        if self.wired:
            self.link_out.receive(data)
        else:
            self.early.append(data)

    def eof_received(self) -> bool:
        if self.wired:
            self.link_out.receive_eof()
        else:
            self.early.append(None)
        return True  # keep writing to a peer that only shut down its sending half

    def replay_early(self) -> None:
        early, self.early = self.early, []
        for data in early:
            if data is None:
                self.link_out.receive_eof()
            else:
                self.link_out.receive(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.conn.side_lost(self)

    def pause_writing(self) -> None:
        if self.wired:
            self.link_in.source.pause("dest")

    def resume_writing(self) -> None:
        if self.wired:
            self.link_in.source.resume("dest")

    def pause(self, reason: str) -> None:
        if not self.reasons and not self.transport.is_closing():
            self.transport.pause_reading()
        self.reasons.add(reason)

    def repause(self) -> None:
        if self.reasons and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume(self, reason: str) -> None:
        if reason not in self.reasons:
            return
        self.reasons.discard(reason)
        if not self.reasons and not self.transport.is_closing():
            self.transport.resume_reading()

    def write(self, data: bytes | memoryview) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)

    def write_eof(self) -> None:
        if not self.transport.is_closing() and self.transport.can_write_eof():
            self.transport.write_eof()

    def close(self, reset: bool = False) -> None:
        if not self.made or self.transport.is_closing():
            return
        if reset:
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
        else:
            self.transport.close()


class Connection:
    """Both sides and both links of one client connection to a proxy."""

    def __init__(self, proxy: Proxy):
        self.proxy = proxy
        self.client = Side(self, "client")
        self.upstream: Side | None = None
        self.links: dict[str, Link] = {}
        self.ended: set[str] = set()
        self.closed = self.answering = False
        self.dialing: asyncio.Task | None = None
        self.linger: asyncio.TimerHandle | None = None

    def side_made(self, side: Side) -> None:
        if side is self.client:
            self.proxy.connection_opened(self)
            side.pause("dial")
            asyncio.get_running_loop().call_soon(side.repause)  # uvloop may start reading after connection_made
            self.dialing = asyncio.get_running_loop().create_task(self._dial())
        elif self.closed:
            side.close()
        else:
            self._wire(side)

    def _upstream_side(self) -> Side:
        self.upstream = Side(self, "upstream")
        return self.upstream

    async def _dial(self) -> None:
        host, _, port = self.proxy.upstream.rpartition(":")
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.create_connection(self._upstream_side, host.strip("[]"), int(port)),
                                   DIAL_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as exc:
            if not self.closed:
                self.proxy.stats.upstream_connect_failures += 1
                logger.warning("upstream refused", extra={"fields": {"proxy": self.proxy.name,
                                                                     "upstream": self.proxy.upstream,
                                                                     "error": str(exc)}})
                self.close()

    def _wire(self, upstream: Side) -> None:
        client, stats = self.client, self.proxy.stats
        up = Link(self, "upstream", client, upstream, stats)
        down = Link(self, "downstream", upstream, client, stats)
        self.links = {"upstream": up, "downstream": down}
        client.wire(up, down)
        upstream.wire(down, up)
        for toxic in self.proxy.toxic_list():
            self.links[toxic.stream].add_stage(toxic)
        up.framer = HttpRequestFramer(up, self.proxy)
        client.replay_early()
        client.resume("dial")

    def direction_ended(self, link: Link, marker: Marker) -> None:
        """A marker reached the end of ``link``'s chain."""
        if marker is CLOSE or marker is RESET:
            self.close(reset=marker is RESET)
            return
        assert marker is EOF
        self.ended.add(link.direction)
        if len(self.ended) == 2 or link.dest.lost:
            self.close()
        else:
            link.dest.write_eof()

    def side_lost(self, side: Side) -> None:
        """One socket is gone: what it sent still goes on; nothing more can reach it."""
        if self.closed:
            return
        if self.answering:
            if side is self.client:
                self.close()
            return
        if not side.wired:
            self.close()
            return
        toward = side.link_in
        toward.cancel()
        self.ended.add(toward.direction)
        side.link_out.receive_eof()
        if len(self.ended) == 2:
            self.close()

    def answer(self, response: bytes) -> None:
        """Answer the client ourselves (an HTTP fault): drop the upstream, send ``response``, shut down sending,
        and close once the client closes or after a short linger (closing at once could reset the client before
        it reads the answer)."""
        if self.closed or self.answering:
            return
        self.answering = True
        for link in self.links.values():
            link.cancel()
        if self.upstream is not None:
            self.upstream.close()
        self.client.write(response)
        self.client.write_eof()
        self.linger = asyncio.get_running_loop().call_later(LINGER_AFTER_FAULT_S, self.close)

    def close(self, reset: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        for link in self.links.values():
            link.cancel()
        if self.dialing is not None and not self.dialing.done():
            self.dialing.cancel()
        if self.linger is not None:
            self.linger.cancel()
        self.client.close(reset)
        if self.upstream is not None:
            self.upstream.close(reset)
        self.proxy.connection_closed(self)
