"""What a drill leaves behind: its journal, the JUnit XML, and the example drills being valid experiments."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from chaoslib.experiment import ensure_experiment_is_valid
from chaoslib.loader import load_experiment

from harness.domain.errors import UserError
from harness.drills import journal as journal_mod
from harness.drills import library
from harness.drills.journal import DrillRecord
from harness.drills.junit import junit_xml, write_junit
from harness.pipeline.stages import NAMES

ROOT = Path(__file__).resolve().parents[2]
DRILLS = sorted(library.folder_of(ROOT).glob("*.yaml"))


def record(name: str, verdict: str, reason: str = "", seconds: float = 2.5, stage: str = "training") -> DrillRecord:
    r = DrillRecord(f"20261201-120000-{name}-abcd", name, f"title of {name}", f"scenarios/drills/{name}.yaml",
                    [stage, "mlflow"], stage, verdict, reason, "completed", verdict == "deviated",
                    started=1000.0, ended=1000.0 + seconds, journal=f".lastmile/drills/{name}/journal.json")
    r.invariants = {"secrets": [".lastmile/x.log holds the value of secret:a"]} if verdict == "invariant-violated" else {}
    return r


RECORDS = [record("passes", "passed", "completed; the steady state held"),
           record("deviates", "deviated", "probe 'champion' returned \"2\" <outside> & \x1b[31mred\x1b[0m"),
           record("leaks", "invariant-violated", "invariant secrets: .lastmile/x.log holds the value of secret:a",
                  stage="deployment")]


# JUnit ----------------------------------------------------------------------------------------------
def test_junit_is_valid_xml_with_one_testcase_per_drill():
    root = ET.fromstring(junit_xml(RECORDS))
    suite = root.find("testsuite")
    assert (root.tag, root.get("tests"), root.get("failures")) == ("testsuites", "3", "2")
    assert suite is not None and suite.get("tests") == "3" and suite.get("errors") == "0"
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name"), c.get("time")) for c in cases] == [
        ("drills.training", "passes", "2.500"), ("drills.training", "deviates", "2.500"),
        ("drills.deployment", "leaks", "2.500")]
    assert cases[0].get("file") == "scenarios/drills/passes.yaml"


def test_a_drill_that_does_not_pass_is_a_failure_carrying_verdict_and_reason():
    cases = {c.get("name"): c for c in ET.fromstring(junit_xml(RECORDS)).iter("testcase")}
    assert cases["passes"].find("failure") is None
    failure = cases["deviates"].find("failure")
    assert failure is not None and failure.get("type") == "deviated"
    assert failure.get("message") == "probe 'champion' returned \"2\" <outside> & [31mred[0m"  # no ESC in XML
    leak = cases["leaks"].find("failure")
    assert leak is not None and "invariant secrets: .lastmile/x.log holds the value of secret:a" in (leak.text or "")
    properties = {p.get("name"): p.get("value") for p in cases["leaks"].iter("property")}
    assert properties["verdict"] == "invariant-violated"
    assert properties["journal"] == ".lastmile/drills/leaks/journal.json"


def test_write_junit_creates_the_file_and_its_folder(tmp_path):
    path = write_junit(tmp_path / "reports" / "drills.xml", RECORDS[:1])
    assert ET.parse(path).getroot().get("tests") == "1"


# journal --------------------------------------------------------------------------------------------
def test_the_journal_is_chaos_toolkits_plus_lastmiles_record_with_secrets_masked(tmp_path):
    r = record("deviates", "deviated", "probe returned the-secret-value")
    chaos = {"chaoslib-version": "1.44.0", "status": "completed", "deviated": True,
             "run": [{"activity": {"name": "a"}, "output": "token the-secret-value"}]}
    path = journal_mod.write(tmp_path / "drills", r, chaos, [f"line {i}" for i in range(600)], ["the-secret-value"])
    assert path == tmp_path / "drills" / r.id / "journal.json"
    data = journal_mod.load(path)
    assert data["chaoslib-version"] == "1.44.0" and data["deviated"] is True
    assert data["run"][0]["output"] == "token ******"
    lastmile = data["lastmile"]
    assert (lastmile["verdict"], lastmile["name"], lastmile["seconds"]) == ("deviated", "deviates", 2.5)
    assert lastmile["reason"] == "probe returned ******"
    assert lastmile["journal"] == str(path) and r.journal == str(path)
    assert lastmile["output"][0] == "line 100" and len(lastmile["output"]) == journal_mod.OUTPUT_LINES
    assert "the-secret-value" not in path.read_text()


def test_a_drill_record_id_names_the_drill(tmp_path):
    drill = library.Drill("replica-killed", ROOT / "scenarios/drills/replica-killed.yaml", "t", ("deployment",))
    r = DrillRecord.start(drill, ROOT)
    assert r.id.split("-", 2)[2].startswith("replica-killed-")
    assert (r.file, r.stage, r.verdict) == ("scenarios/drills/replica-killed.yaml", "deployment", "running")


# the drills in scenarios/drills/ ---------------------------------------------------------------------
def test_there_are_example_drills():
    assert len(DRILLS) >= 2


@pytest.mark.parametrize("path", DRILLS, ids=lambda p: p.stem)
def test_every_drill_is_a_valid_chaos_toolkit_experiment(path):
    experiment = load_experiment(str(path), {})
    ensure_experiment_is_valid(experiment)  # raises on an invalid experiment, an unknown func or argument
    assert experiment["runtime"]["rollbacks"]["strategy"] == "always"
    assert any(tag in NAMES for tag in experiment["tags"]), "a tag must name the stage"
    assert experiment.get("rollbacks"), "a drill always says how to undo itself"


def test_select_by_name_and_tags():
    drills = library.discover(library.folder_of(ROOT))
    deployment = library.select(drills, tags=["deployment"])
    assert "replica-killed" in [d.name for d in deployment]
    assert all("deployment" in d.tags for d in deployment) and len(deployment) < len(drills)
    assert [d.name for d in library.select(drills, ["replica-killed"], tags=["training"])] == []
    with pytest.raises(UserError, match="no drill 'nope'"):
        library.select(drills, ["nope"])


def test_an_unreadable_drill_is_listed_with_its_problem(tmp_path):
    (tmp_path / "broken.yaml").write_text("title: [unclosed\n")
    (tmp_path / "notes.txt").write_text("not a drill")
    [drill] = library.discover(tmp_path)
    assert drill.name == "broken" and drill.problem.startswith("unreadable")


def test_json_of_a_record_is_plain_data():
    data = json.loads(json.dumps(RECORDS[2].to_json()))
    assert data["invariants"]["secrets"] and "phase" not in data
