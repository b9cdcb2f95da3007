"""``lastmile load``: load tests on the prediction endpoint with Locust, judged by the scenario's SLO gates."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from harness.bootstrap import Harness
from harness.cli.context import err, harness, out
from harness.domain.errors import LastmileError, UserError
from harness.load import runs
from harness.load import scenario as scenarios
from harness.load.engine import check_target

HELP = (
    "Load tests: Locust users post rows of the training data set to the prediction endpoint, in every format it "
    "speaks, for a scenario of scenarios/load/ (users or a constant rate, a duration and a request budget, a payload "
    "mix with a share of invalid requests that must get a 4xx, SLO gates).\n\n"
    "Locust runs in processes of its own, bounded by the scenario's duration and max_requests; with --workers N a "
    "Locust master and N workers here (scenarios/README.md shows workers on other machines). Results go to "
    ".lastmile/loads/<id>/: Locust's CSV and HTML, result.json, report.html.\n\n"
    "Exit code 0 when every gate passed, 1 when one failed (each failed gate is named), 2 for a usage error."
)

load_app = typer.Typer(help=HELP, no_args_is_help=True)
PROGRESS_EVERY_S = 3


@load_app.command("list")
def list_scenarios(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The scenarios in scenarios/load/: mode, rate or users, duration, request budget, gates."""
    folder = scenarios.folder_of(harness().settings.root)
    found = []
    for path in scenarios.discover(folder):
        try:
            found.append(scenarios.load(path).describe())
        except LastmileError as exc:
            found.append({"name": path.stem, "file": str(path), "problem": str(exc)})
    if as_json:
        print(json.dumps(found, indent=2))
        return
    table = Table(title=f"load scenarios ({len(found)}) in {folder.name}/")
    for column in ("name", "load", "duration", "max requests", "gates"):
        table.add_column(column, overflow="fold")
    for s in found:
        if "problem" in s:
            table.add_row(s["name"], f"[red]{s['problem']}[/]", "", "", "")
            continue
        load = f"{s['rate']:g} req/s" if s["mode"] == "rate" else f"{s['users']} users"
        gates = ", ".join(f"{k} {v:g}" for k, v in s["gates"].items()) or "-"
        table.add_row(s["name"], load, f"{s['duration_s']:g} s", str(s["max_requests"]), gates)
    out.print(table)


@load_app.command("run")
def run(
    scenario: str = typer.Argument("smoke", help="A scenario name in scenarios/load/ (see `lastmile load list`) "
                                                 "or a path to a scenario file."),
    target: Optional[str] = typer.Option(None, "--target", help="Base URL to load (default: the profile's "
                                                                "deployed endpoint). Loopback only without "
                                                                "--allow-remote."),
    workers: int = typer.Option(0, "--workers", min=0, max=32, help="Run Locust distributed: a master and N "
                                                                    "worker processes here (0: one process)."),
    html: Optional[Path] = typer.Option(None, "--html", metavar="FILE", help="Copy the run's report here too "
                                                                           "(lastmile's, else Locust's)."),
    as_json: bool = typer.Option(False, "--json", help="Print result.json."),
    duration: Optional[float] = typer.Option(None, "--duration", help="Override the scenario's duration_s."),
    max_requests: Optional[int] = typer.Option(None, "--max-requests", help="Override its max_requests."),
    rate: Optional[float] = typer.Option(None, "--rate", help="Override it with a constant rate (req/s)."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow a --target that is not on loopback."),
) -> None:
    """Run a load scenario against the endpoint; judge its gates (exit 1 naming each failed gate)."""
    h = _harness_or_none(needed=target is None)
    folder = scenarios.folder_of(h.settings.root) if h else Path("scenarios/load")
    chosen = scenarios.load(scenarios.find(scenario, folder)).with_bounds(duration, max_requests, rate)
    endpoint = _endpoint(h) if h else None
    url = check_target(target or endpoint or "", allow_remote)
    watched = h if endpoint and url == endpoint.rstrip("/") else None
    state_dir = h.settings.state_dir if h else Path(".lastmile")
    run_id, locust, view, source = runs.start(chosen, url, watched, state_dir, workers)
    err.print(f"load {run_id}: scenario {chosen.name} on {url} ({_load_text(chosen)}, {chosen.duration_s:g} s at "
              f"most, {chosen.max_requests} requests at most{f', {workers} workers' if workers else ''}); rows: "
              f"{source}; Ctrl-C stops it", highlight=False)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    ticks = [0]

    def progress(live: dict[str, Any]) -> None:
        ticks[0] += 1
        if ticks[0] % PROGRESS_EVERY_S == 0:
            err.print(_progress_line(live), highlight=False)

    try:
        locust.wait(on_tick=progress)
    except KeyboardInterrupt:
        err.print("interrupted: stopping Locust, writing what it has", style="yellow")
        locust.stop("signal")
    finally:
        signal.signal(signal.SIGTERM, previous)
    result = runs.finish(locust, run_id, view)
    _report(result, locust.folder, html, as_json)
    if not result["passed"]:
        raise typer.Exit(1)


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def _harness_or_none(needed: bool) -> Harness | None:
    try:
        return harness()
    except LastmileError:
        if needed:
            raise
        return None


def _endpoint(h: Harness) -> str | None:
    try:
        return h.deployer.status(h.settings.project).endpoint
    except LastmileError as exc:
        err.print(f"no deployment to read: {exc}", style="yellow", highlight=False)
        return None


def _load_text(s: scenarios.Scenario) -> str:
    return f"{s.rate:g} req/s by {s.user_count} users" if s.rate is not None else f"{s.user_count} users"


def _progress_line(live: dict[str, Any]) -> str:
    def ms(value: float | None) -> str:
        return f"{value:g} ms" if value is not None else "-"
    return (f"  {live['elapsed_s']:5.0f} s  {live['requests']:>7} requests  {live['failures']} failed "
            f"({live['error_ratio']:.2%})  {live['rps']:.1f} req/s  p50 {ms(live['recent_p50_ms'])}  "
            f"p95 {ms(live['recent_p95_ms'])}  p99 {ms(live['recent_p99_ms'])}  users {live['users']}")


def _report(result: dict[str, Any], folder: Path, html: Path | None, as_json: bool) -> None:
    if html is not None:
        source = folder / result["artifacts"].get("report_html", result["artifacts"]["locust_html"])
        if source.is_file():
            shutil.copyfile(source, html)
        else:
            raise UserError(f"--html {html}: the run wrote no report ({result.get('report_note')})")
    if as_json:
        print(json.dumps(result, indent=2, default=str))
    t = result["totals"]
    err.print(f"{t['requests']} requests in {result['elapsed_s']:g} s ({t['rps']:g} req/s), {t['failures']} failed "
              f"({t['error_ratio']:.2%}), {t['intended_4xx']} intended 4xx; p50 {t['p50_ms']} ms, p95 {t['p95_ms']} "
              f"ms, p99 {t['p99_ms']} ms; stopped by {result['stopped_by']}", highlight=False)
    for gate in result["gates"]:
        err.print(gate["message"], style="green" if gate["passed"] else "red", highlight=False)
    if not result["totals"]["requests"]:
        err.print("no request was answered: see locust.log in the run's folder", style="red")
    err.print(f"{'passed' if result['passed'] else 'FAILED'}: results in {folder} ({result['report_note']})",
              style="green" if result["passed"] else "red", highlight=False)
