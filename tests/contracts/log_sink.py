"""The LogSink contract: events kept in order, readable back by subject."""

from __future__ import annotations

from harness.domain.records import LogEvent
from tests.contracts import unique


class LogSinkContract:
    """Fixtures: ``sink``."""

    def test_events_come_back_in_order_with_their_fields(self, sink):
        run = unique("run")
        sent = [LogEvent("stage.started", "info", {"stage": "build"}, run, 1.0),
                LogEvent("stage.failed", "error", {"stage": "build", "error": "no registry"}, run, 2.0)]
        for event in sent:
            sink.emit(event)
        assert list(sink.events(run)) == sent

    def test_events_are_read_back_by_subject(self, sink):
        one, two = unique("run"), unique("run")
        sink.emit(LogEvent("run.started", subject=one, time=1.0))
        sink.emit(LogEvent("run.started", subject=two, time=2.0))
        assert [e.subject for e in sink.events(one)] == [one]
        assert {e.subject for e in sink.events()} >= {one, two}
