"""Ship sampled prediction lines to object storage, so that a pipeline reads them without reaching the replicas.

Lines are appended to an in-memory buffer on the request path (no I/O there) and uploaded by one background
thread every ``flush_seconds``, or as soon as ``batch_lines`` are waiting: one object per batch of at most
``batch_lines`` lines, at ``<key prefix><13-digit epoch ms>-<6-digit sequence>.jsonl``, with user metadata
``sha256``, the hex digest of the body (what lastmile's object store checks on read). A failed upload keeps its
lines for the next attempt; beyond ``max_lines`` waiting, the oldest are dropped. A failure is logged once per
streak, and so is the recovery.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from serving.logs import LOGGER_NAME
from serving.metrics import ServingMetrics

BATCH_LINES = 1000
MAX_LINES = 10_000
CLOSE_SECONDS = 5.0
logger = logging.getLogger(LOGGER_NAME)


def s3_client(endpoint: str | None) -> Any:
    """A boto3 S3 client for ``endpoint`` (None: AWS's own); credentials and region from the standard ``AWS_*``."""
    import boto3
    from botocore.config import Config

    config = Config(
        # OCI's S3 compatibility API rejects boto3's default checksum headers.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": "path"},
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=3,
        read_timeout=10,
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)


class SampleShipper:
    """A :class:`serving.prediction_log.LineSink` that uploads the lines as objects under ``key_prefix``."""

    def __init__(self, client: Any, bucket: str, key_prefix: str, metrics: ServingMetrics,
                 flush_seconds: float = 1.0, batch_lines: int = BATCH_LINES, max_lines: int = MAX_LINES,
                 clock: Callable[[], float] = time.time):
        self.bucket, self.key_prefix = bucket, key_prefix
        self.flush_seconds, self.batch_lines, self.max_lines = flush_seconds, batch_lines, max_lines
        self._client, self._metrics, self._clock = client, metrics, clock
        self._waiting: deque[str] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sequence = 0
        self._failures = 0
        self._dropped_in_streak = 0

    @property
    def waiting(self) -> int:
        """Lines buffered and not uploaded yet (those of an upload in progress excluded)."""
        return len(self._waiting)

    def start(self) -> None:
        """Start the uploading thread."""
        self._thread = threading.Thread(target=self._run, name="lastmile-samples", daemon=True)
        self._thread.start()

    def write(self, lines: list[str]) -> None:
        """Buffer ``lines``; wake the uploader when a batch is full. Never blocks on I/O."""
        with self._lock:
            self._waiting.extend(lines)
            self._drop_oldest()
            full = len(self._waiting) >= self.batch_lines
        if full:
            self._wake.set()

    def close(self, timeout: float = CLOSE_SECONDS) -> None:
        """Upload what is left, waiting at most ``timeout`` seconds; lines still waiting then count as dropped."""
        if self._thread is None:
            return
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)
        with self._lock:
            left = len(self._waiting)
            self._waiting.clear()
            self._count_dropped(left)
        if left:
            logger.warning("prediction samples left unshipped at shutdown", extra={"fields": {
                "samples_uri": f"s3://{self.bucket}/{self.key_prefix}", "lines": left}})

    def ship_waiting(self) -> bool:
        """Upload every waiting line, a batch per object; stop at the first failure. True when nothing is left."""
        while True:
            with self._lock:
                batch = [self._waiting.popleft() for _ in range(min(self.batch_lines, len(self._waiting)))]
            if not batch:
                return True
            if not self._upload(batch):
                with self._lock:
                    self._waiting.extendleft(reversed(batch))
                    self._drop_oldest()
                return False

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.ship_waiting()
        self.ship_waiting()

    def _upload(self, batch: list[str]) -> bool:
        body = ("\n".join(batch) + "\n").encode()
        key = self._next_key()
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=body,
                                    Metadata={"sha256": hashlib.sha256(body).hexdigest()})
        except Exception as exc:
            self._failed(key, exc)
            return False
        self._metrics.samples_shipped.inc(len(batch))
        if self._failures:
            with self._lock:
                dropped, self._dropped_in_streak = self._dropped_in_streak, 0
            logger.info("prediction samples shipped again", extra={"fields": {
                "samples_uri": f"s3://{self.bucket}/{self.key_prefix}", "failed_attempts": self._failures,
                "dropped": dropped}})
            self._failures = 0
        return True

    def _failed(self, key: str, exc: Exception) -> None:
        self._failures += 1
        if self._failures == 1:
            logger.warning("prediction samples not shipped; keeping them for the next attempt", extra={"fields": {
                "object": f"s3://{self.bucket}/{key}", "error": f"{type(exc).__name__}: {exc}",
                "waiting": len(self._waiting)}})

    def _next_key(self) -> str:
        self._sequence = (self._sequence + 1) % 1_000_000
        return f"{self.key_prefix}{int(self._clock() * 1000):013d}-{self._sequence:06d}.jsonl"

    def _drop_oldest(self) -> None:
        """Trim the buffer to ``max_lines``, counting what goes (the caller holds the lock)."""
        over = len(self._waiting) - self.max_lines
        for _ in range(over):
            self._waiting.popleft()
        self._count_dropped(over)

    def _count_dropped(self, count: int) -> None:
        """Count lines given up (the caller holds the lock)."""
        if count > 0:
            self._metrics.samples_dropped.inc(count)
            self._dropped_in_streak += count
