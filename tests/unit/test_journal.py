import json

import pytest

from harness.pipeline.journal import Journal, history, last_good, load


def test_stages_record_status_times_and_outputs(tmp_path):
    seen = []
    journal = Journal(tmp_path, "local", on_change=lambda r: seen.append(r.status))
    with journal.stage("trigger", since=None) as rec:
        rec.outputs["commit"] = "abc"
    journal.finish("succeeded")
    data = json.loads(journal.path.read_text())
    trigger = data["stages"]["trigger"]
    assert (trigger["status"], trigger["inputs"], trigger["outputs"]) == ("succeeded", {"since": None}, {"commit": "abc"})
    assert trigger["ended"] >= trigger["started"]
    assert data["stages"]["build"]["status"] == "pending"
    assert seen[-1] == "succeeded"


def test_failed_stage_keeps_the_error(tmp_path):
    journal = Journal(tmp_path, "local")
    with pytest.raises(RuntimeError), journal.stage("training"):
        raise RuntimeError("job FAILED: exit code 1")
    assert load(tmp_path, journal.record.run_id).stages["training"].error == "job FAILED: exit code 1"


def test_interrupt_is_recorded(tmp_path):
    journal = Journal(tmp_path, "local")
    with pytest.raises(KeyboardInterrupt), journal.stage("training"):
        raise KeyboardInterrupt
    assert load(tmp_path, journal.record.run_id).stages["training"].status == "interrupted"


def test_history_newest_first_and_last_good(tmp_path):
    first = Journal(tmp_path, "local")
    first.finish("succeeded", commit="c1")
    second = Journal(tmp_path, "local")
    second.record.started += 1
    second.finish("failed")
    assert [r.run_id for r in history(tmp_path)] == [second.record.run_id, first.record.run_id]
    assert last_good(tmp_path).summary == {"commit": "c1"}
    assert len(first.record.stages) == 7


def test_no_history(tmp_path):
    assert history(tmp_path / "none") == [] and last_good(tmp_path / "none") is None
