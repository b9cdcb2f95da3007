"""``lastmile drill``: list, run and clean up after failure drills."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer
from rich.live import Live
from rich.table import Table

from harness.cli.context import config_path, err, harness, options, out
from harness.domain.errors import UserError
from harness.drills import library
from harness.drills.catalog import activities
from harness.drills.journal import DrillRecord
from harness.drills.junit import write_junit

HELP = (
    "Failure drills: Chaos Toolkit experiments in scenarios/drills/, run against the profile, with a verdict.\n\n"
    "A drill is a Chaos Toolkit experiment (steady-state hypothesis, method, rollbacks) whose probes and actions "
    "are lastmile's (`lastmile drill activities`). `lastmile drill run` runs it with Chaos Toolkit's engine, "
    "rollbacks always played, then reverts the faults it left, checks the invariants (@champion answers as the "
    "registry recorded, no run left running, no orphan process, no leaked secret) and writes "
    ".lastmile/drills/<id>/journal.json: Chaos Toolkit's journal plus lastmile's verdict.\n\n"
    "Verdicts: passed, deviated, failed, aborted, invariant-violated, fault-not-applied (a fault met nothing), "
    "interrupted. Exit code 1 when a drill does not pass, 130 on Ctrl-C (its faults reverted).\n\n"
    "`chaos run scenarios/drills/NAME.yaml` runs the same file with Chaos Toolkit's own CLI."
)

drill_app = typer.Typer(help=HELP, no_args_is_help=True)

_STYLE = {"passed": "green", "running": "yellow", "deviated": "red", "failed": "red", "aborted": "red",
          "interrupted": "red", "invariant-violated": "red", "fault-not-applied": "magenta"}


def _tags(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _drills() -> list[library.Drill]:
    return library.discover(library.folder_of(harness().settings.root))


@drill_app.command("list")
def list_drills(
    tags: Optional[str] = typer.Option(None, "--tags", help="Only drills with any of these tags (comma-separated)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The drills in scenarios/drills/: name, title, stage (the tag naming a pipeline stage), tags, file."""
    drills = library.select(_drills(), tags=_tags(tags))
    if as_json:
        print(json.dumps([{**asdict(d), "path": str(d.path), "stage": d.stage} for d in drills], indent=2))
        return
    table = Table(title=f"drills ({len(drills)})")
    for column in ("name", "title", "stage", "tags", "profiles", "file"):
        table.add_column(column, overflow="fold")
    root = harness().settings.root
    for d in drills:
        title = d.title if not d.problem else f"[red]{d.problem}[/]"
        table.add_row(d.name, title, d.stage or "-", ", ".join(d.tags), ", ".join(d.profiles) or "all",
                      str(d.path.relative_to(root))
                      if d.path.is_relative_to(root) else str(d.path))
    out.print(table)


@drill_app.command("run")
def run(
    names: Optional[list[str]] = typer.Argument(None, metavar="NAME", help="Drills by name (or a path to a drill file)."),
    run_all: bool = typer.Option(False, "--all", help="Every drill in scenarios/drills/."),
    tags: Optional[str] = typer.Option(None, "--tags", help="Only drills with any of these tags (comma-separated)."),
    junit: Optional[Path] = typer.Option(None, "--junit", metavar="FILE", help="Write JUnit XML for CI here."),
    as_json: bool = typer.Option(False, "--json", help="Print the drills' records as JSON."),
) -> None:
    """Run drills (by NAME, or --all) one after another, each on its own: a live table, a journal per drill in
    .lastmile/drills/<id>/journal.json, JUnit XML with --junit. Exit 1 when any drill does not pass."""
    from harness.drills.runner import DrillInterrupted, run_drill  # chaoslib loads only when drills run

    if bool(names) == run_all:
        raise UserError("name the drills to run, or pass --all", hint="`lastmile drill list` lists them",
                        exit_code=2)
    h = harness()
    drills = library.select(_drills(), names or (), _tags(tags), h.settings.profile)
    if not drills:
        raise UserError("no drill matches", hint="`lastmile drill list` lists them", exit_code=2)
    records: list[DrillRecord] = []
    live = None if as_json or not out.is_terminal else Live(console=out, refresh_per_second=4)

    def changed(record: DrillRecord) -> None:
        if live is not None:
            live.update(_table(records if any(r is record for r in records) else [*records, record]))
        elif not as_json and record.verdict != "running":
            err.print(_line(record), highlight=False)

    try:
        if live:
            live.start()
        for drill in drills:
            records.append(run_drill(h, drill, config=config_path(), profile=options.profile, on_change=changed))
    except DrillInterrupted as exc:
        records.append(exc.record)
        if live:
            live.update(_table(records))
        _finish(live, records, junit, as_json)
        err.print(f"lastmile: interrupted; drill {exc.record.name}'s faults were reverted, its journal says so",
                  style="red")
        raise typer.Exit(130) from None
    except KeyboardInterrupt:  # between drills, before any fault
        _finish(live, records, junit, as_json)
        err.print("lastmile: interrupted", style="red")
        raise typer.Exit(130) from None
    _finish(live, records, junit, as_json)
    if any(not r.passed for r in records):
        raise typer.Exit(1)


def _finish(live: Live | None, records: list[DrillRecord], junit: Path | None, as_json: bool) -> None:
    if live:
        live.stop()
    if junit:
        write_junit(junit, records)
    if as_json:
        print(json.dumps([r.to_json() for r in records], indent=2, default=str))
    counts: dict[str, int] = {}
    for r in records:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    summary = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items(), key=lambda c: c[0] != "passed"))
    err.print(f"{len(records)} drill{'s' if len(records) != 1 else ''}: {summary} "
              f"in {sum(r.seconds for r in records):.1f} s" + (f"; JUnit XML in {junit}" if junit else ""),
              highlight=False)


def _table(records: list[DrillRecord]) -> Table:
    table = Table(title="drills")
    for column in ("drill", "stage", "verdict", "seconds", "reason"):
        table.add_column(column, overflow="fold")
    for r in records:
        verdict = f"[{_STYLE.get(r.verdict, '')}]{r.verdict}[/]"
        detail = r.phase if r.verdict == "running" else r.reason
        table.add_row(r.name, r.stage or "-", verdict, f"{r.seconds:.1f}", detail)
    return table


def _line(record: DrillRecord) -> str:
    return f"{record.name}: {record.verdict} in {record.seconds:.1f} s: {record.reason} ({record.journal})"


@drill_app.command("revert")
def revert(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Revert every active fault of the profile (after an interrupted drill, or a `chaos run` without rollbacks)."""
    injector = harness().fault_injector
    reverted = []
    for handle in injector.active():
        evidence = injector.revert(handle.id)
        reverted.append({"fault_id": handle.id, "kind": handle.spec.kind, "target": handle.spec.target,
                         "action": handle.spec.action, "took_effect": evidence.took_effect, "detail": evidence.detail})
    if as_json:
        print(json.dumps(reverted, indent=2))
        return
    for f in reverted:
        out.print(f"reverted {f['fault_id']}: {f['kind']} {f['action']} on {f['target']}", highlight=False)
    out.print(f"{len(reverted)} fault{'s' if len(reverted) != 1 else ''} reverted" if reverted
              else "no fault is active")


@drill_app.command("activities")
def list_activities(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The probes and actions a drill can call, with the provider block that calls them."""
    found = activities()
    if as_json:
        print(json.dumps({name: asdict(a) for name, a in found.items()}, indent=2))
        return
    table = Table(title="lastmile's Chaos Toolkit activities: provider {type: python, module: MODULE, func: NAME}")
    for column in ("type", "module", "call", "what it does"):
        table.add_column(column, overflow="fold")
    for a in found.values():
        table.add_row(a.type, a.module.rpartition(".")[2], a.signature,
                      a.doc.split("\n\n")[0].replace("\n", " ").replace("``", ""))
    out.print(table)
    out.print("modules: harness.drills.actions, harness.drills.probes", highlight=False)
