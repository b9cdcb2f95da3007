"""The stand-ins' commands: up, status, down; and doctor and config show."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict

import typer
import yaml
from rich.table import Table

from harness.cli import doctor as doctor_mod
from harness.cli.context import config_path, err, harness, out, settings
from harness.config.settings import load_settings, redacted
from harness.infra import compose
from harness.infra.supervisor import ServiceStatus

config_app = typer.Typer(help="Inspect the resolved configuration.", no_args_is_help=True)


def up(prepare_only: bool = typer.Option(
        False, "--prepare-only",
        help="Containers mode: write the stand-ins' files and compose's env files, start nothing; then "
             "`docker compose --env-file .lastmile/compose/compose.env -f compose/compose.yaml up -d`, and "
             "`lastmile up` adopts compose's containers.")) -> None:
    """Start the profile's stand-ins on 127.0.0.1 (reusing healthy ones) and print their endpoints."""
    h = harness()
    if prepare_only:
        specs = h.supervisor.prepare(h.standins())
        env = compose.write(h.settings.state_dir, specs, {"LASTMILE_ARTIFACTS_BUCKET": h.settings.buckets.artifacts})
        out.print(f"prepared for compose: docker compose --env-file {os.path.relpath(env)} -f compose/compose.yaml "
                  "up -d", soft_wrap=True)
        return
    started = time.monotonic()
    with err.status("starting stand-ins…") as status:
        result = h.supervisor.up(h.standins(), progress=lambda msg: status.update(msg))
    table = Table(title=f"lastmile stand-ins ({h.settings.profile}) up in {time.monotonic() - started:.1f} s")
    for column in ("service", "endpoint", "pid/id", "action", "log"):
        table.add_column(column, overflow="fold", no_wrap=column in ("service", "endpoint"))
    for s in result:
        table.add_row(s.name, s.url or "-", _runs_as(s), s.action, s.log)
    out.print(table)


def status(as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
    """Show each stand-in's health. Exits 1 when one is not healthy."""
    h = harness()
    result = h.supervisor.status(h.standins())
    if as_json:
        print(json.dumps([asdict(s) for s in result], indent=2))
    else:
        table = Table(title=f"lastmile stand-ins ({h.settings.profile})")
        for column in ("service", "state", "endpoint", "pid/id", "log"):
            table.add_column(column, overflow="fold", no_wrap=column in ("service", "endpoint"))
        for s in result:
            colour = "green" if s.state == "healthy" else "red"
            state = f"[{colour}]{s.state}[/]" + (f" ({s.action})" if s.action else "")
            table.add_row(s.name, state, s.url or "-", _runs_as(s), s.log)
        out.print(table)
    if any(s.state != "healthy" for s in result):
        raise typer.Exit(1)


def _runs_as(s: ServiceStatus) -> str:
    """A process's pid, or a container's short id (``docker ps`` shows the same 12 characters)."""
    return str(s.pid) if s.pid else s.container[:12] if s.container else "-"


def down() -> None:
    """Stop every stand-in `lastmile up` started; leaves no process behind."""
    h = harness()
    stopped = h.supervisor.down(progress=lambda msg: err.print(msg, style="dim"))
    out.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


def doctor() -> None:
    """Report what this machine offers, the adapter families installed, and which profiles can run here."""
    found = doctor_mod.findings()
    table = Table(title="this machine")
    for column in ("check", "ok", "detail"):
        table.add_column(column)
    for f in found:
        table.add_row(f.name, "[green]yes[/]" if f.ok else "[yellow]no[/]", f.detail)
    out.print(table)
    out.print(doctor_mod.families_table())
    path = config_path()
    profiles = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("profiles", {})
    verdicts = Table(title="profiles")
    for column in ("profile", "runs here", "why"):
        verdicts.add_column(column)
    for name in profiles:
        ok, why = doctor_mod.profile_verdict(load_settings(path, name), found)
        verdicts.add_row(name, "[green]yes[/]" if ok else "[red]no[/]", why)
    out.print(verdicts)


@config_app.command("show")
def config_show(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of YAML.")) -> None:
    """Print the resolved config (base, then profile, then LASTMILE_* variables), secrets redacted."""
    data = redacted(settings())
    print(json.dumps(data, indent=2) if as_json else yaml.safe_dump(data, sort_keys=False), end="")
