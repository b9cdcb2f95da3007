"""One pipeline run at a time per state directory: an advisory ``flock`` on ``<state_dir>/run.lock``.

The kernel releases a ``flock`` when its holder's process ends, however it ends, so a crashed run never
leaves a stale lock behind; the pid and run id written into the file only say who holds it. The file itself
is never deleted: a process waiting on the old inode would otherwise lock a file nobody else sees.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.domain.errors import UserError

__all__ = ["Holder", "RunLock", "RunLocked"]


@dataclass(frozen=True)
class Holder:
    """Who holds the lock: its process, its run and since when (``time.time()``)."""

    pid: int
    run_id: str
    since: float

    def describe(self) -> str:
        started = time.strftime("%H:%M:%S", time.localtime(self.since))
        return f"run {self.run_id} (pid {self.pid}, since {started})"


class RunLocked(UserError):
    """Another run holds the lock and the caller chose not to wait (exit code 1)."""

    def __init__(self, path: Path, holder: Holder | None):
        who = holder.describe() if holder else "another process"
        super().__init__(f"{who} holds {path}; one run at a time per state directory",
                         hint="wait for it, or run without --no-wait to queue behind it")
        self.holder = holder


class RunLock:
    """The run lock of one state directory. Not reentrant; one instance per attempt."""

    def __init__(self, path: Path, poll_s: float = 0.2):
        self.path = Path(path)
        self.poll_s = poll_s
        self._fd: int | None = None

    def acquire(self, run_id: str, *, wait: bool = True,
                on_wait: Callable[[Holder | None], None] = lambda _: None) -> None:
        """Take the lock for ``run_id``. When it is held: raise :class:`RunLocked` unless ``wait``, else call
        ``on_wait(holder)`` once and poll until it is free (Ctrl-C stops the wait)."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this RunLock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            told = False
            while not _try_lock(fd):
                holder = self.holder()
                if not wait:
                    raise RunLocked(self.path, holder)
                if not told:
                    on_wait(holder)
                    told = True
                time.sleep(self.poll_s)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "run_id": run_id, "since": time.time()}).encode(), 0)
        except BaseException:
            os.close(fd)  # closing drops the lock too, if it was taken
            raise
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (a no-op when not held); the holder's record is cleared first."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    def holder(self) -> Holder | None:
        """Who the file says holds the lock; None when nobody wrote it (yet) or it is unreadable."""
        try:
            data = json.loads(self.path.read_text() or "null")
            return Holder(int(data["pid"]), str(data["run_id"]), float(data["since"]))
        except (OSError, ValueError, TypeError, KeyError):
            return None

    @contextmanager
    def held(self, run_id: str, *, wait: bool = True,
             on_wait: Callable[[Holder | None], None] = lambda _: None) -> Iterator[RunLock]:
        """``acquire`` then ``release``, whatever happens in between."""
        self.acquire(run_id, wait=wait, on_wait=on_wait)
        try:
            yield self
        finally:
            self.release()


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
