"""One direction of one proxied connection: bytes read from a source side, through a chain of toxic stages, written
to a destination side.

With no toxic the chain is empty and a read is written straight to the destination (one call, no copy, no task).
Each toxic adds a :class:`Stage` (a task running its behaviour) at the end of the chain, as Toxiproxy's links do;
adding, updating or removing a toxic changes the chains of live connections too. Bytes inside the chain are
bounded: past ``HIGH_WATER`` the source is paused until the chain has drained below ``LOW_WATER``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING, Protocol

from .behaviours import BEHAVIOURS, passthrough
from .stream import EOF, Channel, Chunk, Item, Marker
from .toxics import Toxic

if TYPE_CHECKING:
    from .connection import Connection, Side
    from .httpframing import HttpRequestFramer

HIGH_WATER = 4 * 1024 * 1024
LOW_WATER = 1024 * 1024
logger = logging.getLogger("lastmile.faultproxy")


class Counters(Protocol):
    """Where a link reports what it moved (the proxy's statistics)."""

    def count(self, direction: str, received: int = 0, sent: int = 0) -> None: ...
    def toxic_offered(self, name: str) -> None: ...
    def toxic_applied(self, name: str) -> None: ...


class Stage:
    """A toxic on one link: the behaviour's task, its input, what it has taken and not yet handed on, and its
    per-connection state. Whether the toxic applies is drawn from its toxicity each time the stage starts."""

    def __init__(self, link: Link, toxic: Toxic):
        self.link, self.toxic = link, toxic
        self.input = Channel()
        self.output: Stage | Sink = link.sink
        self.held: Item | None = None
        self.state: dict = {}
        self.task: asyncio.Task | None = None
        self.applied = self.counted = False
        link.counters.toxic_offered(toxic.name)

    def put(self, item: Item) -> None:
        self.input.put(item)

    def start(self) -> None:
        self.applied = random.random() < self.toxic.toxicity
        if self.applied and not self.counted:
            self.counted = True
            self.link.counters.toxic_applied(self.toxic.name)
        behaviour = BEHAVIOURS[self.toxic.type] if self.applied else passthrough
        self.task = asyncio.get_running_loop().create_task(behaviour(self))
        self.task.add_done_callback(self._ended)

    async def take(self) -> Item:
        item = await self.input.get()
        self.held = item
        return item

    def emit(self, item: Item, rest: Item | None = None) -> None:
        self.held = rest
        self.output.put(item)

    def drop(self, item: Chunk) -> None:
        self.held = None
        self.link.release(len(item.data))

    def release(self, size: int) -> None:
        self.link.release(size)

    def stop(self) -> list[Item]:
        """Cancel the behaviour; what it held and what waited for it, in order."""
        if self.task is not None:
            self.task.cancel()
            self.task = None
        held, self.held = self.held, None
        items: list[Item] = []
        if held is not None:
            items.append(_solid(held) if isinstance(held, Chunk) else held)
        return items + self.input.drain()

    def _ended(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("toxic failed; closing the connection", exc_info=task.exception(),
                         extra={"fields": {"toxic": self.toxic.name}})
            self.link.conn.close()


class Sink:
    """The end of a chain: writes chunks to the destination; passes markers to the connection."""

    def __init__(self, link: Link):
        self.link = link

    def put(self, item: Item) -> None:
        if isinstance(item, Chunk):
            self.link.write(item.data)
            self.link.release(len(item.data))
        else:
            self.link.conn.direction_ended(self.link, item)


class Link:
    """One direction (``upstream``: client to server, ``downstream``: server to client) of one connection."""

    def __init__(self, conn: Connection, direction: str, source: Side, dest: Side, counters: Counters):
        self.conn, self.direction, self.source, self.dest, self.counters = conn, direction, source, dest, counters
        self.sink = Sink(self)
        self.stages: list[Stage] = []
        self.inflight = 0
        self.input_ended = False
        self.framer: HttpRequestFramer | None = None  # on the client's link, until the stream proves not HTTP

    def receive(self, data: bytes) -> None:
        self.counters.count(self.direction, received=len(data))
        if self.framer is not None:
            self.framer.feed(data)
        else:
            self.forward(data)

    def receive_eof(self) -> None:
        if self.input_ended:
            return
        self.input_ended = True
        if self.framer is not None:
            self.framer.feed_eof()
        else:
            self.end()

    def forward(self, data: bytes) -> None:
        if not self.stages:
            self.write(data)
            return
        self.inflight += len(data)
        self.stages[0].put(Chunk(data, time.monotonic()))
        if self.inflight > HIGH_WATER:
            self.source.pause("link")

    def end(self, marker: Marker = EOF) -> None:
        (self.stages[0] if self.stages else self.sink).put(marker)

    def write(self, data: bytes | memoryview) -> None:
        self.dest.write(data)
        self.counters.count(self.direction, sent=len(data))

    def release(self, size: int) -> None:
        self.inflight -= size
        if self.inflight < LOW_WATER:
            self.source.resume("link")

    def add_stage(self, toxic: Toxic) -> None:
        stage = Stage(self, toxic)
        if self.stages:
            self.stages[-1].output = stage
        self.stages.append(stage)
        stage.start()

    def restart_stage(self, name: str) -> None:
        for stage in self.stages:
            if stage.toxic.name == name:
                stage.input.put_front(stage.stop())
                stage.start()

    def remove_stage(self, name: str) -> None:
        """Take a toxic out of the chain and hand on what it held. A ``timeout`` that applied closes the connection
        instead (Toxiproxy's cleanup), unless it holds its data (lastmile's ``hold``)."""
        for index, stage in enumerate(self.stages):
            if stage.toxic.name != name:
                continue
            leftovers = stage.stop()
            del self.stages[index]
            if index > 0:
                self.stages[index - 1].output = stage.output
            if stage.toxic.type == "timeout" and stage.applied and not stage.toxic.attributes.get("hold"):
                self.conn.close()
                return
            for item in leftovers:
                stage.output.put(item)
            if not self.stages:
                self.inflight = 0
                self.source.resume("link")
            return

    def cancel(self) -> None:
        for stage in self.stages:
            stage.stop()
        self.stages.clear()


def _solid(chunk: Chunk) -> Chunk:
    """A chunk that owns its bytes (a stage holds the rest of a chunk it sends in pieces as a view of it)."""
    return Chunk(bytes(chunk.data), chunk.at) if isinstance(chunk.data, memoryview) else chunk
