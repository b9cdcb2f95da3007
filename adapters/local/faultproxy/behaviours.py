"""What each toxic does to one direction of one connection, after Toxiproxy 2.x's ``toxics/*.go``.

Each behaviour is a coroutine over a stage (see :class:`.link.Stage`): it takes items from the stage's input,
emits them to the next stage, holds them, or drops them. A stage is cancelled when its toxic is removed or
updated; whatever it had taken and not emitted is then handed on by the link, so no byte is lost or reordered.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from .stream import CLOSE, RESET, Chunk, Marker

if TYPE_CHECKING:
    from .link import Stage

Behaviour = Callable[["Stage"], Coroutine[Any, Any, None]]


async def passthrough(stage: Stage) -> None:
    """``noop``, and any toxic its toxicity did not give this connection."""
    while True:
        item = await stage.take()
        stage.emit(item)
        if isinstance(item, Marker):
            return


async def latency(stage: Stage) -> None:
    """Each chunk leaves ``latency`` ± ``jitter`` ms after it was read; chunks behind it wait in parallel."""
    attributes = stage.toxic.attributes
    while True:
        item = await stage.take()
        if isinstance(item, Chunk):
            jitter = attributes["jitter"]
            delay = attributes["latency"] + (random.randrange(2 * jitter) - jitter if jitter > 0 else 0)
            due = item.at + delay / 1000
            await sleep_until(due)
            item.at = max(item.at, due)
        stage.emit(item)
        if isinstance(item, Marker):
            return


async def bandwidth(stage: Stage) -> None:
    """At most ``rate`` KB/s, sent in pieces of 100 ms' worth; a piece leaves once its share of time has passed."""
    rate = stage.toxic.attributes["rate"]
    if rate <= 0:
        return await passthrough(stage)
    per_second, piece = rate * 1000.0, rate * 100
    free_at = time.monotonic()
    while True:
        item = await stage.take()
        if isinstance(item, Marker):
            stage.emit(item)
            return
        view = memoryview(item.data)
        for start in range(0, len(view), piece):
            end = min(start + piece, len(view))
            free_at = max(free_at, time.monotonic()) + (end - start) / per_second
            await sleep_until(free_at)
            stage.emit(Chunk(bytes(view[start:end]), item.at), _rest(view, end, item.at))


async def slow_close(stage: Stage) -> None:
    """Data passes; the end of the direction waits ``delay`` ms."""
    while True:
        item = await stage.take()
        if isinstance(item, Marker):
            await sleep_until(time.monotonic() + stage.toxic.attributes["delay"] / 1000)
            stage.emit(item)
            return
        stage.emit(item)


async def timeout(stage: Stage) -> None:
    """Nothing passes; after ``timeout`` ms (never when 0) the connection closes. Data is dropped, as Toxiproxy
    does, unless the ``hold`` extension keeps it for delivery when the toxic is removed."""
    loop = asyncio.get_running_loop()
    limit = stage.toxic.attributes["timeout"]
    deadline = loop.time() + limit / 1000 if limit > 0 else None
    try:
        async with asyncio.timeout_at(deadline):
            if stage.toxic.attributes.get("hold"):
                await loop.create_future()  # items stay in the input until the toxic goes
            while True:
                item = await stage.take()
                if isinstance(item, Marker):
                    stage.emit(item)
                    return
                stage.drop(item)
    except TimeoutError:
        stage.emit(CLOSE)


async def reset_peer(stage: Stage) -> None:
    """The first data (or end) in this direction starts a ``timeout`` ms wait, then a TCP reset; the data is lost."""
    item = await stage.take()
    if isinstance(item, Chunk):
        stage.drop(item)
    else:
        stage.held = None
    await sleep_until(time.monotonic() + stage.toxic.attributes["timeout"] / 1000)
    stage.emit(RESET)


async def slicer(stage: Stage) -> None:
    """Each chunk leaves in pieces of about ``average_size`` ± ``size_variation`` bytes, ``delay`` µs apart."""
    attributes = stage.toxic.attributes
    while True:
        item = await stage.take()
        if isinstance(item, Marker):
            stage.emit(item)
            return
        view = memoryview(item.data)
        for start, end in slices(len(view), attributes["average_size"], attributes["size_variation"]):
            stage.emit(Chunk(bytes(view[start:end]), item.at), _rest(view, end, item.at))
            await asyncio.sleep(attributes["delay"] / 1_000_000)


def slices(size: int, average: int, variation: int) -> list[tuple[int, int]]:
    """Toxiproxy's split: halve (moved by up to ± ``variation``) until a piece is within ``variation`` of
    ``average``. Unlike Toxiproxy, an average below 1 counts as 1 and the cut stays inside the piece."""
    average, pieces, todo = max(average, 1), [], [(0, size)]
    while todo:
        start, end = todo.pop()
        if (end - start) - average <= variation:
            pieces.append((start, end))
            continue
        middle = start + (end - start) // 2
        if variation > 0:
            middle += random.randrange(2 * variation) - variation
        middle = min(max(middle, start + 1), end - 1)
        todo += [(middle, end), (start, middle)]
    return pieces


async def limit_data(stage: Stage) -> None:
    """The first ``bytes`` bytes pass (counted across updates of the toxic); the next data closes the connection
    once they have."""
    limit = stage.toxic.attributes["bytes"]
    while True:
        item = await stage.take()
        if isinstance(item, Marker):
            stage.emit(item)
            return
        room = max(limit - stage.state.get("sent", 0), 0)
        if len(item.data) > room:
            stage.release(len(item.data) - room)
            item = Chunk(item.data[:room], item.at)
        if item.data:
            stage.state["sent"] = stage.state.get("sent", 0) + len(item.data)
            stage.emit(item)
        if stage.state.get("sent", 0) >= limit:
            stage.emit(CLOSE)
            return


async def sleep_until(due: float) -> None:
    """Sleep until ``time.monotonic()`` reaches ``due``, never less (uvloop's timers have millisecond steps)."""
    while (left := due - time.monotonic()) > 0:
        await asyncio.sleep(left)


def _rest(view: memoryview, end: int, at: float) -> Chunk | None:
    """What a stage still holds of a chunk it sends in pieces (a view: no copy unless it is handed on)."""
    return Chunk(view[end:], at) if end < len(view) else None


BEHAVIOURS: dict[str, Behaviour] = {
    "noop": passthrough, "latency": latency, "bandwidth": bandwidth, "slow_close": slow_close,
    "timeout": timeout, "reset_peer": reset_peer, "slicer": slicer, "limit_data": limit_data,
}
