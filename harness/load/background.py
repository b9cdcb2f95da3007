"""Load in the background, for drills and tests: Locust at a constant rate (or a scenario) on an endpoint, with its
figures readable while it runs and final once stopped.

    load = background.start(40, endpoint, state_dir / "loads", duration_s=120, rows=reference_rows)
    load.wait_started()
    ... change the deployment ...
    load.live()    # requests, failures, error_ratio, p50/p95/p99 over the run and the last seconds, rps
    result = load.stop()   # result.json's shape (totals, history, by_request, failures_seen, ...)

Bounded like every run: the duration, ``max_requests`` (by default twice the rate times the duration) and the
engine's deadline; ``kill`` (for an exit hook) stops its processes without waiting for figures.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.load import payloads
from harness.load.engine import LocustRun
from harness.load.runs import DeploymentView, finish, new_folder
from harness.load.scenario import Scenario, validate

START_TIMEOUT_S = 20.0


class BackgroundLoad:
    def __init__(self, run: LocustRun, run_id: str, view: DeploymentView):
        self.run, self.id, self.view = run, run_id, view
        self.result: dict[str, Any] | None = None

    @property
    def folder(self) -> Path:
        return self.run.folder

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.run.procs]

    def running(self) -> bool:
        return self.run.running()

    def wait_started(self, timeout_s: float = START_TIMEOUT_S) -> bool:
        """Until the first answers are counted (Locust takes a second or two to start); False at the timeout or
        when Locust ended."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.running():
            if self.live()["requests"] > 0:
                return True
            time.sleep(0.25)
        return False

    def live(self) -> dict[str, Any]:
        """The figures so far (see :meth:`LocustRun.live`); the final totals once stopped."""
        if self.result is not None:
            t = self.result["totals"]
            return {"elapsed_s": self.result["elapsed_s"], **{k: t[k] for k in (
                "requests", "failures", "error_ratio", "p50_ms", "p95_ms", "p99_ms", "rps")}}
        return self.run.live()

    def stop(self) -> dict[str, Any]:
        """Stop it (if still running), judge nothing, and return the run's result (also in result.json)."""
        if self.result is None:
            if self.running():
                self.run.stop("signal")
            else:
                self.run.wait(poll_s=0.1)
            self.result = finish(self.run, self.id, self.view)
        return self.result

    def kill(self) -> None:
        """Stop every process now, figures or not."""
        self.run.stop("signal")


def scenario_at(rate: float, duration_s: float, timeout_s: float = 5.0, max_requests: int | None = None,
                name: str = "background") -> Scenario:
    """Single ``dataframe_records`` rows at a constant ``rate``: the drills' load. Its users pace half a request a
    second each: a user waits on its own answer, so a request stuck on a paused replica (up to the Service's 2 s)
    costs the offered rate one request, not four as at 2 a second each, which once took a paused-replica drill's
    40 req/s to 35.96 answered a second with no request failed."""
    return validate({"name": name, "rate": rate, "per_user_rps": BACKGROUND_USER_RPS, "duration_s": duration_s,
                     "timeout_s": timeout_s,
                     "max_requests": max_requests or max(1, int(2 * rate * duration_s))}, "background load")


BACKGROUND_USER_RPS = 0.5


def start(load: Scenario | float, target: str, state_dir: Path, rows: Sequence[Mapping[str, float]], *,
          duration_s: float = 60.0, timeout_s: float = 5.0, view: DeploymentView | None = None,
          name: str = "background") -> BackgroundLoad:
    """Start ``load`` (a scenario, or a constant rate of single rows) on ``target`` with bodies drawn from
    ``rows``; its folder is under ``state_dir/loads``."""
    scenario = load if isinstance(load, Scenario) else scenario_at(load, duration_s, timeout_s, name=name)
    run_id, folder = new_folder(state_dir, scenario.name or name)
    view = view or DeploymentView(None)
    view.begin()
    kinds = payloads.kinds(scenario.payloads, list(rows))
    run = LocustRun(scenario, target.rstrip("/"), folder, kinds).start()
    (folder / "background.json").write_text(json.dumps({"target": target, "pids": [p.pid for p in run.procs]}))
    return BackgroundLoad(run, run_id, view)
