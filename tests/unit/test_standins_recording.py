"""The S3 stand-in's recording, compacted before each start: moto's recorder appends from several threads without
a lock, so a busy server leaves lines with two entries, or an entry cut by another. The next `lastmile up` once
stopped on such a file with a traceback; now it keeps every whole entry and says how many were lost."""

from __future__ import annotations

import json
import logging

from adapters.local.standins import _compact_recording


def entry(method: str, key: str) -> str:
    return json.dumps({"method": method, "url": f"http://127.0.0.1:1234/bucket/{key}", "body": "x"})


def test_entries_glued_or_cut_by_concurrent_writes_are_kept_or_counted(tmp_path, caplog):
    recording = tmp_path / "recording.jsonl"
    recording.write_text("\n".join([
        entry("PUT", "a"),
        entry("PUT", "b") + entry("PUT", "c"),             # two on one line: both whole
        entry("PUT", "d")[:30] + entry("DELETE", "e"),     # one cut by the next: the second is whole
        entry("GET", "f"),                                  # a read: not replayed
        entry("POST", "g")[:25],                            # cut at the end of the file
    ]) + "\n")
    with caplog.at_level(logging.WARNING, logger="lastmile.standins"):
        _compact_recording(recording, 9999)
    kept = [json.loads(line) for line in recording.read_text().splitlines()]
    assert [(e["method"], e["url"]) for e in kept] == [
        ("PUT", "http://127.0.0.1:9999/bucket/a"), ("PUT", "http://127.0.0.1:9999/bucket/b"),
        ("PUT", "http://127.0.0.1:9999/bucket/c"), ("DELETE", "http://127.0.0.1:9999/bucket/e")]
    assert "2 damaged lines" in caplog.text


def test_a_whole_recording_compacts_without_a_warning(tmp_path, caplog):
    recording = tmp_path / "recording.jsonl"
    recording.write_text(entry("PUT", "a") + "\n" + entry("GET", "a") + "\n")
    with caplog.at_level(logging.WARNING, logger="lastmile.standins"):
        _compact_recording(recording, 9999)
    assert len(recording.read_text().splitlines()) == 1
    assert "damaged" not in caplog.text
