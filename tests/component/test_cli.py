"""The command line as a user meets it: help, config show, and one-line errors with exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def lastmile(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LASTMILE_")}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env={**environ, **env},
                          capture_output=True, text=True, timeout=60)


def test_help_lists_the_commands():
    result = lastmile("--help")
    assert result.returncode == 0
    for command in ("up", "status", "down", "doctor", "config"):
        assert command in result.stdout


def test_config_show_json_is_resolved_and_redacted():
    result = lastmile("config", "show", "--json", LASTMILE_PORTS__DEPLOYER__REPLICAS="3")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["profile"] == "local" and data["ports"]["deployer"]["replicas"] == 3
    assert data["ports"]["artifact_registry"]["password"] == "secret:registry-password"


def test_config_show_for_another_profile():
    data = json.loads(lastmile("--profile", "oci", "config", "show", "--json").stdout)
    assert data["ports"]["job_runner"]["flavor"] == "datascience"


def test_invalid_file_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "lastmile.yaml").write_text("profiles:\n  local:\n    ports: {object_store: {flavor: gcs}}\n")
    result = lastmile("config", "show", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "lastmile.yaml (profiles.local): ports.object_store: flavor 'gcs' is not known" in result.stderr


def test_unknown_profile_exit_2():
    result = lastmile("--profile", "staging", "status")
    assert result.returncode == 2
    assert "profile 'staging' is not defined; allowed: containers, local, oci" in result.stderr


def test_no_config_anywhere(tmp_path):
    result = lastmile("status", cwd=tmp_path)
    assert result.returncode == 2 and "no lastmile.yaml" in result.stderr


def test_unknown_command_is_a_usage_error():
    result = lastmile("launch")
    assert result.returncode == 2 and "No such command" in result.stderr


def test_status_when_nothing_runs(tmp_path):
    result = lastmile("status", "--json", LASTMILE_STATE_DIR=str(tmp_path))
    assert result.returncode == 1
    assert {s["state"] for s in json.loads(result.stdout)} == {"stopped"}


def test_doctor_reports_profiles():
    result = lastmile("doctor")
    assert result.returncode == 0, result.stderr
    assert "docker engine" in result.stdout and "local" in result.stdout and "oci" in result.stdout
