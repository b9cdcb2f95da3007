"""Drills from the two command lines, as subprocesses, on a real lastmile.yaml in a temporary project with no
stand-ins: Chaos Toolkit's own ``chaos run`` loads lastmile's extension and control, and ``lastmile drill``
lists, runs (JSON, JUnit, exit code) and reverts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from tests.support import git

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SECRET = "generated-s3cret-value"

# Needs no service: a pipeline run through stage 1 (git), probes that read files under the state dir.
DRILL = {
    "title": "A pipeline run through the trigger leaves nothing running and no secret behind",
    "description": "Probe-only hypothesis over file-based state; the method runs stage 1.",
    "tags": ["trigger", "smoke"],
    "runtime": {"rollbacks": {"strategy": "always"}},
    "controls": [{"name": "lastmile", "provider": {"type": "python", "module": "harness.drills.control"}}],
    "steady-state-hypothesis": {"title": "no run left running, no secret leaked", "probes": [
        {"type": "probe", "name": "invariants-runs-and-secrets", "tolerance": True,
         "provider": {"type": "python", "module": "harness.drills.probes", "func": "invariants_hold",
                      "arguments": {"names": ["runs", "secrets"]}}}]},
    "method": [
        {"type": "action", "name": "run-the-trigger",
         "provider": {"type": "python", "module": "harness.drills.actions", "func": "run_pipeline",
                      "arguments": {"until": "trigger"}}},
        {"type": "probe", "name": "run-finished-event",
         "provider": {"type": "python", "module": "harness.drills.probes", "func": "log_events",
                      "arguments": {"event": "run.finished"}}}],
    "rollbacks": [{"type": "action", "name": "revert-every-fault",
                   "provider": {"type": "python", "module": "harness.drills.actions", "func": "revert_all"}}],
}


@pytest.fixture
def project(tmp_path) -> Path:
    config = yaml.safe_load((ROOT / "lastmile.yaml").read_text())
    config["ports"]["fault_injector"] = {"flavor": "none"}  # injects nothing, needs nothing running
    (tmp_path / "lastmile.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "train.py").write_text("print('train')\n")
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "first")
    (tmp_path / ".lastmile").mkdir()
    (tmp_path / ".lastmile" / "secrets.json").write_text(json.dumps({"registry-password": SECRET}))
    drills = tmp_path / "scenarios" / "drills"
    drills.mkdir(parents=True)
    (drills / "trigger-smoke.yaml").write_text(yaml.safe_dump(DRILL, sort_keys=False))
    return tmp_path


def environment(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LASTMILE_", "MLFLOW_"))}
    return {**env, "LASTMILE_CONFIG": str(project / "lastmile.yaml")}


def test_chaos_run_uses_lastmiles_extension_and_control(project):
    journal_path = project / "journal.json"
    result = subprocess.run(
        [str(BIN / "chaos"), "--no-version-check", "--settings", str(project / "no-settings.yaml"),
         "--log-file", str(project / "chaos.log"), "run", "--journal-path", str(journal_path),
         "scenarios/drills/trigger-smoke.yaml"],
        cwd=project, env=environment(project), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    journal = json.loads(journal_path.read_text())
    assert (journal["status"], journal["deviated"]) == ("completed", False)
    assert journal["steady_states"]["after"]["steady_state_met"] is True
    run = journal["run"][0]["output"]
    assert run["status"] == "succeeded" and run["failed_stage"] is None
    assert json.loads((project / ".lastmile" / "runs" / run["run_id"] / "journal.json").read_text())["status"] == \
        "succeeded"
    assert journal["run"][1]["output"] == 1  # one run.finished event in the JSON-lines log sink
    assert journal["rollbacks"][0]["status"] == "succeeded"
    lastmile = journal["lastmile"]  # added by harness.drills.control
    assert lastmile["invariants"]["runs"] == [] and lastmile["invariants"]["secrets"] == []
    assert lastmile["invariants"]["champion"][0].startswith("could not be checked")  # no MLflow here
    assert SECRET not in journal_path.read_text()


def lastmile(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=project, env=environment(project),
                          capture_output=True, text=True, timeout=180)


def test_lastmile_drill_list_shows_name_stage_and_file(project):
    result = lastmile(project, "drill", "list", "--json")
    assert result.returncode == 0, result.stderr
    [drill] = json.loads(result.stdout)
    assert (drill["name"], drill["stage"], drill["tags"]) == ("trigger-smoke", "trigger", ["trigger", "smoke"])


def test_lastmile_drill_run_reports_json_junit_and_exits_1_when_an_invariant_cannot_hold(project):
    result = lastmile(project, "drill", "run", "--all", "--tags", "smoke", "--junit", "reports/drills.xml", "--json")
    assert result.returncode == 1, result.stderr
    [record] = json.loads(result.stdout)
    assert record["name"] == "trigger-smoke" and record["status"] == "completed"
    assert record["verdict"] == "invariant-violated"  # MLflow is not up: @champion cannot be checked
    assert record["invariants"]["champion"] == [
        "could not be checked: UserError: no mlflow endpoint: the stand-ins are not up"]
    assert record["invariants"]["runs"] == [] and record["invariants"]["secrets"] == []
    journal = json.loads(Path(record["journal"]).read_text())
    assert journal["experiment"]["configuration"]["lastmile_config"] == str(project / "lastmile.yaml")
    assert journal["lastmile"]["verdict"] == "invariant-violated"
    [case] = ET.parse(project / "reports" / "drills.xml").getroot().iter("testcase")
    failure = case.find("failure")
    assert case.get("name") == "trigger-smoke" and failure is not None
    assert failure.get("type") == "invariant-violated" and "invariant champion" in (failure.get("message") or "")
    assert "1 drill: 1 invariant-violated" in result.stderr


def test_lastmile_drill_revert_with_nothing_active(project):
    result = lastmile(project, "drill", "revert")
    assert result.returncode == 0, result.stderr
    assert "no fault is active" in result.stdout


def test_lastmile_drill_run_needs_names_or_all(project):
    result = lastmile(project, "drill", "run")
    assert result.returncode == 2 and "name the drills to run, or pass --all" in result.stderr
