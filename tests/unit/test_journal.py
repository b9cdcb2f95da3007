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


def test_a_run_stopped_early_is_no_base_for_one_that_goes_further(tmp_path):
    full = Journal(tmp_path, "local")
    full.finish("succeeded", commit="c1")
    partial = Journal(tmp_path, "local")
    partial.record.started += 1
    partial.finish("succeeded", commit="c2", until="build")
    assert last_good(tmp_path).summary["commit"] == "c1"
    assert last_good(tmp_path, "build").summary["commit"] == "c2"
    assert last_good(tmp_path, "trigger").summary["commit"] == "c2"


def test_no_history(tmp_path):
    assert history(tmp_path / "none") == [] and last_good(tmp_path / "none") is None


def test_a_failed_stage_records_its_diagnosis_in_the_stage_the_summary_and_the_event(tmp_path):
    from harness.domain.errors import UnreachableError

    events = []
    journal = Journal(tmp_path, "local", emit=events.append)
    with pytest.raises(UnreachableError), journal.stage("training"):
        raise UnreachableError("MLflow at http://127.0.0.1:5000 did not answer (ConnectError)")
    record = load(tmp_path, journal.record.run_id)
    expected = {"cause": "network reachability", "evidence": "http://127.0.0.1:5000"}
    assert record.stages["training"].diagnosis == expected
    assert record.summary["diagnosis"] == {"stage": "training", **expected}
    [failed] = [e for e in events if e.event == "stage.failed"]
    assert failed.level == "error" and failed.fields["diagnosis"] == expected


def test_a_succeeded_stage_has_no_diagnosis(tmp_path):
    journal = Journal(tmp_path, "local")
    with journal.stage("trigger"):
        pass
    assert load(tmp_path, journal.record.run_id).stages["trigger"].diagnosis is None


def test_a_journal_written_before_diagnoses_still_loads(tmp_path):
    old = {"run_id": "20260101-000000-abcd", "profile": "local", "status": "failed", "started": 1.0, "ended": 2.0,
           "summary": {}, "stages": {"training": {"name": "training", "status": "failed", "started": 1.0,
                                                  "ended": 2.0, "inputs": {}, "outputs": {}, "error": "boom"}}}
    (tmp_path / old["run_id"]).mkdir()
    (tmp_path / old["run_id"] / "journal.json").write_text(json.dumps(old))
    record = load(tmp_path, old["run_id"])
    assert (record.stages["training"].error, record.stages["training"].diagnosis) == ("boom", None)
    assert [r.run_id for r in history(tmp_path)] == [old["run_id"]]


def test_a_given_run_id_names_the_journal(tmp_path):
    journal = Journal(tmp_path, "local", run_id="20260101-000000-beef")
    assert journal.path == tmp_path / "20260101-000000-beef" / "journal.json" and journal.path.is_file()
