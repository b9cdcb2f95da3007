"""`make e2e`'s script, as a user runs it: stand-ins up, seven stages, a prediction, the smoke load, teardown."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import psutil
import pytest

from harness.infra.processes import free_port

ROOT = Path(__file__).resolve().parents[2]


def _run_e2e(state_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LASTMILE_STATE_DIR": str(state_dir)}
    for key in ("FAULTS", "OBJECT_STORE", "REGISTRY", "MLFLOW", "DEPLOYER"):
        env[f"LASTMILE_STANDINS__{key}__PORT"] = str(free_port())
    env["LASTMILE_STANDINS__DEPLOYER__SERVICE_PORT"] = str(free_port())
    return subprocess.run(["bash", "scripts/e2e.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.e2e
def test_e2e_twice_in_the_same_clone(tmp_path):
    state = tmp_path / ".lastmile"
    for attempt in (1, 2):
        result = _run_e2e(state)
        assert result.returncode == 0, f"attempt {attempt}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        assert re.search(r'-> \{"predictions": ?\[\d\]\}', result.stdout), result.stdout[-2000:]
        assert "seven stages, a deployed champion and its smoke load" in result.stdout
        assert "gate error_ratio" in result.stderr + result.stdout  # the smoke load judged its gates, and passed
    runs = sorted((state / "runs").glob("*/journal.json"))
    assert len(runs) == 2
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if str(state) in " ".join(p.info["cmdline"] or [])]
    assert leftovers == []
