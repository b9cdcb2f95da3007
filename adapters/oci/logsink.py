"""LogSink over OCI Logging: events go up with Logging Ingestion's PutLogs and come back through Logging Search."""

from __future__ import annotations

import atexit
import datetime as dt
import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from harness.domain.errors import LastmileError, UserError
from harness.domain.records import LogEvent

from .auth import Credentials
from .sdk import endpoint_of, make_client, service_errors

ENTRY_TYPE = "lastmile.event"
URGENT_LEVELS = frozenset({"error", "critical"})


@dataclass(frozen=True)
class _Pending:
    subject: str
    data: str
    at: dt.datetime


class OciLogSink:
    """One custom log (``log_id``). Each event becomes a log entry whose JSON ``data`` is the whole event, in a
    batch whose ``subject`` is the event's (the run id) and whose ``source`` is ``source``.

    Events are buffered and sent in one PutLogs (a batch per run of events with the same subject) when
    ``batch_size`` are waiting, when the oldest has waited ``max_delay_s`` (checked as events arrive), on an
    error-level event, before :meth:`events` reads, on :meth:`flush`/:meth:`close`, and at interpreter exit. A
    PutLogs that still fails after the SDK's bounded retries (429, 5xx) raises and keeps the events buffered for
    the next flush. Entry times strictly increase within a sink, so the search's ``sort by datetime`` keeps the
    order in which they were emitted."""

    service = "OCI Logging"

    def __init__(self, ingestion: Any, search: Any, log_id: str, *, log_group_id: str = "", compartment_id: str = "",
                 source: str = "lastmile", batch_size: int = 20, max_delay_s: float = 5.0,
                 search_window: dt.timedelta = dt.timedelta(days=14), signer_id: str = "?"):
        self._ingestion, self._search = ingestion, search
        self.log_id, self.log_group_id, self.compartment_id = log_id, log_group_id, compartment_id
        self.source, self.batch_size, self.max_delay_s = source, batch_size, max_delay_s
        self.search_window, self.signer_id = search_window, signer_id
        self.endpoint, self.search_endpoint = endpoint_of(ingestion), endpoint_of(search)
        self._pending: list[_Pending] = []
        self._oldest = 0.0
        self._last_at = dt.datetime.min.replace(tzinfo=dt.UTC)
        self._lock = threading.RLock()
        self._exit_hook = False

    def emit(self, event: LogEvent) -> None:
        data = json.dumps({"event": event.event, "level": event.level, "fields": dict(event.fields),
                           "subject": event.subject, "time": event.time or time.time()}, default=str)
        with self._lock:
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending.append(_Pending(event.subject, data, self._next_time()))
            if not self._exit_hook:
                atexit.register(self._flush_at_exit)
                self._exit_hook = True
            due = (len(self._pending) >= self.batch_size or event.level in URGENT_LEVELS
                   or time.monotonic() - self._oldest >= self.max_delay_s)
            if due:
                self.flush()

    def flush(self) -> None:
        """Send what is buffered, in one PutLogs; on failure the events stay buffered and the error is raised."""
        from oci.loggingingestion.models import LogEntry, LogEntryBatch, PutLogsDetails

        with self._lock:
            if not self._pending:
                return
            batches: list[Any] = []
            for item in self._pending:
                entry = LogEntry(data=item.data, id=str(uuid.uuid4()), time=item.at)
                if batches and batches[-1].subject == item.subject:
                    batches[-1].entries.append(entry)
                else:
                    batches.append(LogEntryBatch(entries=[entry], source=self.source, type=ENTRY_TYPE,
                                                 subject=item.subject, defaultlogentrytime=item.at))
            with service_errors(self.service, self.endpoint, f"PutLogs to log {self.log_id}", self.signer_id):
                self._ingestion.put_logs(self.log_id, PutLogsDetails(specversion="1.0", log_entry_batches=batches))
            self._pending.clear()

    def close(self) -> None:
        self.flush()

    def events(self, subject: str | None = None) -> Iterator[LogEvent]:
        """The log's events (``subject``'s only when given) from the search window, oldest first."""
        from oci.loggingsearch.models import SearchLogsDetails

        self.flush()
        now = dt.datetime.now(dt.UTC)
        details = SearchLogsDetails(time_start=now - self.search_window, time_end=now + dt.timedelta(minutes=5),
                                    search_query=self.query(subject), is_return_field_info=False)
        page: str | None = None
        found: list[tuple[float, LogEvent]] = []
        while True:
            with service_errors(self.service, self.search_endpoint, f"the search of log {self.log_id}",
                                self.signer_id):
                response = self._search.search_logs(details, limit=1000, page=page)
            for result in response.data.results or []:
                parsed = _event(result.data)
                if parsed is not None and (subject is None or parsed[1].subject == subject):
                    found.append(parsed)
            page = response.next_page
            if not page:
                break
        found.sort(key=lambda item: item[0])
        return iter([event for _, event in found])

    def query(self, subject: str | None) -> str:
        """The Logging Search query for this log's events, ``subject``'s only when given."""
        if not (self.compartment_id and self.log_group_id):
            raise UserError(f"log_sink: reading OCI Logging back needs log_group_id and compartment_id "
                            f"besides log_id {self.log_id}")
        query = f'search "{self.compartment_id}/{self.log_group_id}/{self.log_id}"'
        if subject is not None:
            query += " | where subject = '" + subject.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return query + " | sort by datetime asc"

    # internals -----------------------------------------------------------------------------------
    def _next_time(self) -> dt.datetime:
        """Now, or 1 ms after the previous entry (OCI keeps milliseconds), so entries never share a time."""
        now = dt.datetime.now(dt.UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self._last_at = max(now, self._last_at + dt.timedelta(milliseconds=1))
        return self._last_at

    def _flush_at_exit(self) -> None:
        try:
            self.flush()
        except LastmileError as exc:
            print(f"lastmile: {len(self._pending)} events not sent to OCI Logging: {exc}", file=sys.stderr)


def open_sink(credentials: Credentials, endpoint: str | None, log_id: str, *, search_endpoint: str | None = None,
              **options: Any) -> OciLogSink:
    """An :class:`OciLogSink` with its own ingestion and search clients (``options`` as the sink takes them)."""
    from oci.loggingingestion import LoggingClient
    from oci.loggingsearch import LogSearchClient

    ingestion = make_client(LoggingClient, credentials.config, credentials.signer, endpoint)
    search = make_client(LogSearchClient, credentials.config, credentials.signer, search_endpoint or endpoint)
    return OciLogSink(ingestion, search, log_id, signer_id=credentials.key_id, **options)


def _event(result: Any) -> tuple[float, LogEvent] | None:
    """(entry time, event) from one search result, None for an entry lastmile did not write."""
    if not isinstance(result, dict):
        return None
    content = result.get("logContent") or {}
    data = content.get("data")
    if isinstance(data, dict) and isinstance(data.get("message"), str) and "event" not in data:
        data = data["message"]
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    if not isinstance(data, dict) or "event" not in data:
        return None
    event = LogEvent(str(data["event"]), str(data.get("level", "info")), data.get("fields") or {},
                     str(data.get("subject", content.get("subject", ""))), float(data.get("time") or 0.0))
    return _when(result, content), event


def _when(result: dict, content: dict) -> float:
    """A search result's time in seconds: its ``datetime`` (epoch milliseconds), else its entry's RFC 3339 time."""
    if isinstance(result.get("datetime"), (int, float)):
        return float(result["datetime"]) / 1000
    try:
        return dt.datetime.fromisoformat(str(content.get("time", "")).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
