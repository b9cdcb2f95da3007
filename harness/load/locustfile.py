"""The locustfile of ``lastmile load run``: Locust imports it in its own processes (master, workers, or a lone
local runner), never lastmile's CLI process, since importing Locust monkey-patches the standard library for gevent.

The plan (``--lastmile-plan FILE``, written by :mod:`harness.load.engine`) gives the request kinds with their
weights and bodies, each user's pace, the request timeout and ``max_requests``. A request that expects a 4xx (an
intended invalid one) succeeds on a 4xx and fails otherwise; any other request succeeds on a 2xx only. The master
(or the lone runner) stops the run once ``max_requests`` were answered and leaves ``max_requests.reached`` beside the
plan. Each process appends its first failures, with their time, to ``failures-<pid>.jsonl`` there.

Run it by hand, for instance a worker on another machine (see scenarios/README.md)::

    locust -f harness/load/locustfile.py --worker --master-host MASTER --lastmile-plan plan.json
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import gevent
from locust import FastHttpUser, constant, constant_throughput, events, task
from locust.runners import WorkerRunner

MAX_FAILURES_LOGGED = 200
_plan: dict = {}


@events.init_command_line_parser.add_listener
def _arguments(parser) -> None:
    parser.add_argument("--lastmile-plan", default=os.environ.get("LASTMILE_LOAD_PLAN", ""),
                        help="lastmile's load plan (JSON): request kinds, pace, timeout, max_requests")


@events.init.add_listener
def _init(environment, **_kwargs) -> None:
    path = Path(getattr(environment.parsed_options, "lastmile_plan", "") or "")
    if not path.is_file():
        raise SystemExit(f"lastmile locustfile: no plan file {str(path)!r} (--lastmile-plan)")
    _plan.update(json.loads(path.read_text()))
    _plan["folder"] = path.parent
    kinds = _plan["kinds"]
    _plan["weights"] = [k["weight"] for k in kinds]
    pace = _plan.get("user_rps")
    LoadUser.wait_time = constant_throughput(pace) if pace else constant(0)
    LoadUser.network_timeout = LoadUser.connection_timeout = float(_plan["timeout_s"])
    if not isinstance(environment.runner, WorkerRunner):
        gevent.spawn(_stop_at_max_requests, environment, int(_plan["max_requests"]))


def _stop_at_max_requests(environment, limit: int) -> None:
    while True:
        gevent.sleep(0.2)
        runner = environment.runner
        if runner is not None and runner.stats.total.num_requests >= limit:
            try:
                (_plan["folder"] / "max_requests.reached").write_text(str(runner.stats.total.num_requests))
            except OSError:
                pass
            runner.quit()
            return


_failures_logged = [0]


@events.request.add_listener
def _log_failure(request_type, name, response_time, exception=None, start_time=None, **_kwargs) -> None:
    if exception is None or _failures_logged[0] >= MAX_FAILURES_LOGGED:
        return
    _failures_logged[0] += 1
    line = json.dumps({"at": round(start_time or time.time(), 3), "name": name, "kind": str(exception)[:200],
                       "ms": round(response_time or 0, 1)})
    try:
        with open(_plan["folder"] / f"failures-{os.getpid()}.jsonl", "a") as out:
            out.write(line + "\n")
    except (OSError, KeyError):
        pass


class LoadUser(FastHttpUser):
    """Posts one request of a kind drawn by weight, with one of that kind's bodies."""

    max_retries = 0

    @task
    def post(self) -> None:
        kind = random.choices(_plan["kinds"], weights=_plan["weights"])[0]
        body = random.choice(kind["bodies"])
        with self.client.request("POST", kind["path"], data=body, name=kind["name"], catch_response=True,
                                 headers={"Content-Type": kind["content_type"]}) as answer:
            status = answer.status_code or 0
            if kind["expect"] == "4xx":
                if 400 <= status < 500:
                    answer.success()
                else:
                    answer.failure(f"expected a 4xx, got {status or answer.error}")
            elif 200 <= status < 300:
                answer.success()
            else:
                answer.failure(f"HTTP {status}" if status else f"{type(answer.error).__name__}: {answer.error}")
