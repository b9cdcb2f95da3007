"""``python -m serving --workers N``: N uvicorn worker processes answer on one port, and a model that cannot load
still ends the server with exit code 3."""

from __future__ import annotations

import json

import httpx
import psutil

from harness.infra.processes import free_port
from tests.component.serving_support import run_to_exit, serving, serving_env, wait_until_ready

EXIT_BAD_CONFIG = 2
EXIT_LOAD_FAILED = 3


def test_two_workers_answer_on_one_port(registered, tmp_path):
    port, log = free_port(), tmp_path / "serving.log"
    env = serving_env(registered, LASTMILE_SERVING_MODEL_DIR=registered.model_dir)
    with serving(env, port, log, "--workers", "2") as proc:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(url, proc, log, timeout=120)
        with httpx.Client(base_url=url, timeout=10) as client:
            answers = [client.post("/invocations", json={"dataframe_records": registered.records()}) for _ in range(4)]
        workers = [child for child in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(
            child.cmdline())]
    assert all(answer.json() == {"predictions": registered.predictions} for answer in answers)
    assert len(workers) == 2, log.read_text()


def test_a_model_that_cannot_load_ends_all_workers_with_exit_3(registered, tmp_path):
    (tmp_path / "version.json").write_text("{not json")
    env = serving_env(registered, LASTMILE_SERVING_MODEL_DIR=str(tmp_path))
    done = run_to_exit(env, "--port", str(free_port()), "--workers", "2")
    assert done.returncode == EXIT_LOAD_FAILED, done.stderr[-2000:]
    errors = [line for line in done.json_lines() if line["logger"] == "lastmile.serving" and line["level"] == "error"]
    assert errors and "version.json" in json.dumps(errors[0])


def test_a_standby_takes_one_worker_only(registered):
    done = run_to_exit(serving_env(registered), "--standby", "--workers", "2")
    assert done.returncode == EXIT_BAD_CONFIG
    assert "--workers" in done.stderr
