"""What flows through a chain of toxics: chunks of bytes, and the markers that end a direction."""

from __future__ import annotations

import asyncio
from collections import deque


class Chunk:
    """Bytes read from one side, and when (``time.monotonic()``), so that latency counts from the read."""

    __slots__ = ("at", "data")

    def __init__(self, data: bytes | memoryview, at: float):
        self.data, self.at = data, at


class Marker:
    """The end of a direction: ``EOF`` half-closes the destination, ``CLOSE`` closes the connection,
    ``RESET`` closes it with a TCP reset."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


EOF, CLOSE, RESET = Marker("EOF"), Marker("CLOSE"), Marker("RESET")
Item = Chunk | Marker


class Channel:
    """An unbounded FIFO with one reader; the link bounds what is in it by pausing the socket it reads."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[Item] = deque()
        self._waiter: asyncio.Future | None = None

    def put(self, item: Item) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def put_front(self, items: list[Item]) -> None:
        self._items.extendleft(reversed(items))
        if items and self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> Item:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                if self._waiter is waiter:  # a cancelled reader must not unhook its successor's waiter
                    self._waiter = None
        return self._items.popleft()

    def drain(self) -> list[Item]:
        items = list(self._items)
        self._items.clear()
        return items
