"""Locust in processes of its own: a lone headless runner, or a master and ``workers`` local workers.

lastmile never imports Locust (it patches the standard library for gevent when imported): :class:`LocustRun`
writes the plan, starts ``python -m locust -f harness/load/locustfile.py --headless`` with ``--csv``,
``--csv-full-history`` and ``--html`` into the run's folder, each process in a process group of its own, reads
the CSV files Locust rewrites every second for live figures, and stops every process by its group however the run
ends. A run is bounded three times: Locust's ``--run-time``, the plan's ``max_requests`` (the locustfile stops the
runner), and a deadline here past which the processes are interrupted and then killed.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.domain.errors import UserError
from harness.infra.processes import free_port, stop_group
from harness.load import results
from harness.load.payloads import RequestKind
from harness.load.scenario import Scenario

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
CSV_PREFIX = "locust"
HTML = "locust.html"
START_ALLOWANCE_S = 30.0  # Locust's start, and in distributed mode the workers' connecting
STOP_GRACE_S = 15.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_target(target: str, allow_remote: bool = False) -> str:
    """``target`` without a trailing slash; a ``UserError`` (exit 2) for a non-http(s) URL, or a host not on
    loopback unless ``allow_remote``."""
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"--target must be an http:// or https:// URL, not {target!r}", exit_code=2)
    if not allow_remote and not (parts.hostname in LOOPBACK or parts.hostname.startswith("127.")):
        raise UserError(f"--target {target} is not on loopback: load goes to 127.0.0.1 only unless you mean it",
                        hint="pass --allow-remote to load a remote endpoint", exit_code=2)
    return target.rstrip("/")


class LocustRun:
    """One load run in ``folder``: :meth:`start`, then :meth:`live` while it runs, :meth:`wait` or :meth:`stop`,
    then :meth:`result` (figures, without the deployment's view: the caller adds that)."""

    def __init__(self, scenario: Scenario, target: str, folder: Path, kinds: list[RequestKind], workers: int = 0):
        self.scenario, self.target, self.folder, self.kinds, self.workers = scenario, target, folder, kinds, workers
        self.procs: list[subprocess.Popen] = []
        self.started_at = 0.0
        self.ended_at: float | None = None
        self.stopped_by: str | None = None
        self.exit_code: int | None = None

    @property
    def prefix(self) -> Path:
        return self.folder / CSV_PREFIX

    def _plan(self) -> Path:
        plan = self.folder / "plan.json"
        plan.write_text(json.dumps({"kinds": [k.to_json() for k in self.kinds], "user_rps": self.scenario.user_rps,
                                    "timeout_s": self.scenario.timeout_s,
                                    "max_requests": self.scenario.max_requests}))
        return plan

    def commands(self, plan: Path) -> list[list[str]]:
        """The master's (or lone runner's) command first, then each worker's."""
        s = self.scenario
        base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", self.target,
                "--lastmile-plan", str(plan), "--loglevel", "WARNING"]
        lead = [*base, "--headless", "--users", str(s.user_count), "--spawn-rate", f"{s.spawn:g}",
                "--run-time", f"{math.ceil(s.duration_s)}s", "--stop-timeout", "0", "--csv", str(self.prefix),
                "--csv-full-history", "--html", str(self.folder / HTML), "--json-file", f"{self.prefix}-final", "--exit-code-on-error", "0",
                "--only-summary"]
        if not self.workers:
            return [lead]
        port = free_port()
        lead += ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                 "--expect-workers", str(self.workers), "--expect-workers-max-wait", str(int(START_ALLOWANCE_S))]
        worker = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
        return [lead] + [worker] * self.workers

    def start(self) -> LocustRun:
        self.folder.mkdir(parents=True, exist_ok=True)
        plan = self._plan()
        self.started_at = time.time()
        try:
            for i, argv in enumerate(self.commands(plan)):
                log = self.folder / ("locust.log" if i == 0 else f"worker-{i}.log")
                with open(log, "wb") as out:
                    self.procs.append(subprocess.Popen(argv, cwd=self.folder, stdin=subprocess.DEVNULL, stdout=out,
                                                       stderr=subprocess.STDOUT, start_new_session=True))
        except BaseException:
            self.stop("error")
            raise
        return self

    @property
    def deadline(self) -> float:
        return self.started_at + self.scenario.duration_s + START_ALLOWANCE_S

    def running(self) -> bool:
        return bool(self.procs) and self.procs[0].poll() is None

    def wait(self, poll_s: float = 1.0, on_tick=None) -> None:
        """Until Locust ends the run (or the deadline passes: then it is stopped); ``on_tick(live)`` each poll."""
        while self.running():
            if time.time() >= self.deadline:
                self.stop("error")
                return
            time.sleep(poll_s)
            if on_tick is not None:
                on_tick(self.live())
        self._ended()

    def stop(self, why: str = "signal") -> None:
        """Interrupt the master (SIGINT: Locust then writes its HTML and CSV files), wait, then stop every group."""
        if self.stopped_by is None and self.running():
            self.stopped_by = why
        if self.procs and self.procs[0].poll() is None:
            self.procs[0].send_signal(signal.SIGINT)
            try:
                self.procs[0].wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        self._ended()

    def _ended(self) -> None:
        for proc in self.procs:
            stop_group(proc.pid, grace_s=5.0, reap=proc.poll)
            if proc.poll() is None:
                proc.wait(5.0)
        if self.ended_at is None:
            self.ended_at = time.time()
        if self.procs:
            self.exit_code = self.procs[0].returncode

    def live(self) -> dict[str, Any]:
        """The figures so far: totals and over-the-run percentiles, the last seconds' rate and percentiles."""
        now = time.time()
        stats = results.read(self.prefix, self.started_at, max(now - self.started_at, 1e-9))
        recent = stats["history"][-3:]
        span = sum(1 for _ in recent)
        totals = stats["totals"]
        last = next((p for p in reversed(stats["history"][-5:]) if p["p99_ms"] is not None), recent[-1] if recent else {})
        return {"elapsed_s": round(now - self.started_at, 1), "requests": totals["requests"],
                "failures": totals["failures"], "error_ratio": totals["error_ratio"],
                "p50_ms": totals["p50_ms"], "p95_ms": totals["p95_ms"], "p99_ms": totals["p99_ms"],
                "rps": round(sum(p["rps"] for p in recent) / span, 2) if span else 0.0,
                "recent_error_ratio": round(sum(p["error_ratio"] for p in recent) / span, 5) if span else 0.0,
                "recent_p50_ms": last.get("p50_ms"), "recent_p95_ms": last.get("p95_ms"),
                "recent_p99_ms": last.get("p99_ms"), "users": last.get("users", 0)}

    def result(self, run_id: str) -> dict[str, Any]:
        """The run as result.json records it, but for ``gates``, ``passed``, ``served_by`` and ``replicas``."""
        ended = self.ended_at or time.time()
        history = results.read(self.prefix, self.started_at, 1.0)["history"]
        elapsed = results.final_span(self.prefix) or sending_span(history) or max(ended - self.started_at, 0.0)
        stats = results.read(self.prefix, self.started_at, elapsed)
        stopped_by = self.stopped_by or ("max_requests" if (self.folder / "max_requests.reached").exists()
                                         else "duration" if self.exit_code == 0 else "error")
        return {"id": run_id, "scenario": self.scenario.describe(), "target": self.target, "workers": self.workers,
                "started_at": self.started_at, "elapsed_s": round(elapsed, 2), "stopped_by": stopped_by,
                "locust_exit_code": self.exit_code, **stats, "failures_seen": self.failures_seen(),
                "percentile_window_s": results.PERCENTILE_WINDOW_S,
                "artifacts": {"locust_html": HTML, "locust_csv_prefix": CSV_PREFIX, "report_html": "report.html",
                              "locust_log": "locust.log"}}

    def failures_seen(self, limit: int = 50) -> list[dict[str, Any]]:
        """The first failures the processes logged, earliest first, with their time since the start."""
        seen = []
        for path in self.folder.glob("failures-*.jsonl"):
            for line in path.read_text().splitlines():
                try:
                    seen.append(json.loads(line))
                except ValueError:
                    continue
        seen.sort(key=lambda f: f.get("at", 0))
        return [{**f, "t": round(f.get("at", 0) - self.started_at, 3)} for f in seen[:limit]]


def sending_span(history: list[dict[str, Any]]) -> float:
    """Seconds from the history point before the first answer to the point of the last new one: the time load was
    sent, without Locust's start and stop around it (0 when the history is too short to tell)."""
    sending = [i for i, p in enumerate(history) if p["rps"] > 0]
    if not sending:
        return 0.0
    first, last = max(sending[0] - 1, 0), sending[-1]
    return history[last]["t"] - history[first]["t"] if last > first else 0.0
