"""Merge the rows of requests that arrive together into one model call, without waiting for anyone.

A scikit-learn ``predict`` costs about the same for one row as for a hundred: most of its time goes to input
validation. Requests parsed in the same event-loop turn are queued; the next turn runs the model once on all
their rows and hands each request its slice. A lone request pays one extra loop turn, never a timer. The model
runs on the event loop thread, so no thread hop is paid either. When the merged call fails, each request is
retried alone, so a bad request cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

Output = TypeVar("Output")


class Coalescer(Generic[Output]):
    """Calls ``run(rows) -> one output per row`` once per loop turn for all the rows submitted in that turn."""

    def __init__(self, run: Callable[[list[list]], list[Output]], max_rows: int = 4096):
        self._run = run
        self._max_rows = max_rows
        self._pending: list[tuple[list[list], asyncio.Future]] = []
        self._pending_rows = 0
        self.calls = 0
        """How many times the model ran (tests and metrics read it)."""

    async def __call__(self, rows: list[list]) -> list[Output]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        elif self._pending_rows + len(rows) > self._max_rows:
            self._flush()
            loop.call_soon(self._flush)
        self._pending.append((rows, future))
        self._pending_rows += len(rows)
        return await future

    def _flush(self) -> None:
        pending, self._pending, self._pending_rows = self._pending, [], 0
        if not pending:
            return
        if len(pending) == 1:
            self._settle(*pending[0])
            return
        merged = [row for rows, _ in pending for row in rows]
        try:
            self.calls += 1
            outputs = self._run(merged)
        except Exception:
            for rows, future in pending:
                self._settle(rows, future)
            return
        start = 0
        for rows, future in pending:
            end = start + len(rows)
            if not future.done():
                future.set_result(outputs[start:end])
            start = end

    def _settle(self, rows: list[list], future: asyncio.Future) -> None:
        try:
            self.calls += 1
            result = self._run(rows)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(result)
