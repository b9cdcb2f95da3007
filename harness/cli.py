"""The ``lastmile`` command line."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer
import yaml
from rich.console import Console
from rich.table import Table

from harness import cli_deploy, cli_pipeline, doctor as doctor_mod
from harness.config import Settings, find_config, load_settings, redacted
from harness.errors import LastmileError
from harness.wiring import Harness, build

app = typer.Typer(help="lastmile: run the MLOps last mile locally, then on OCI.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
config_app = typer.Typer(help="Inspect the resolved configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

out = Console()
err = Console(stderr=True)


class _Options:
    config: Optional[Path] = None
    profile: Optional[str] = None


def settings() -> Settings:
    return load_settings(_Options.config or find_config(), _Options.profile)


def harness() -> Harness:
    return build(settings())


@app.callback()
def _global(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Config file (default: lastmile.yaml here or above)."),
    profile: Optional[str] = typer.Option(None, "--profile", "-p", help="Profile: local, containers or oci (default from the file, or $LASTMILE_PROFILE)."),
) -> None:
    _Options.config, _Options.profile = config, profile


@app.command()
def up() -> None:
    """Start the profile's stand-ins on 127.0.0.1 (reusing healthy ones) and print their endpoints."""
    h = harness()
    started = time.monotonic()
    with err.status("starting stand-ins…") as status:
        result = h.supervisor.up(h.standins(), progress=lambda msg: status.update(msg))
    table = Table(title=f"lastmile stand-ins ({h.settings.profile}) up in {time.monotonic() - started:.1f} s")
    for column in ("service", "endpoint", "pid", "action", "log"):
        table.add_column(column, overflow="fold", no_wrap=column in ("service", "endpoint"))
    for s in result:
        table.add_row(s.name, s.url or "-", str(s.pid), s.action, s.log)
    out.print(table)


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
    """Show each stand-in's health. Exits 1 when one is not healthy."""
    h = harness()
    result = h.supervisor.status(h.standins())
    if as_json:
        print(json.dumps([asdict(s) for s in result], indent=2))
    else:
        table = Table(title=f"lastmile stand-ins ({h.settings.profile})")
        for column in ("service", "state", "endpoint", "pid", "log"):
            table.add_column(column, overflow="fold", no_wrap=column in ("service", "endpoint"))
        for s in result:
            colour = "green" if s.state == "healthy" else "red"
            table.add_row(s.name, f"[{colour}]{s.state}[/]", s.url or "-", str(s.pid or "-"), s.log)
        out.print(table)
    if any(s.state != "healthy" for s in result):
        raise typer.Exit(1)


@app.command()
def down() -> None:
    """Stop every stand-in `lastmile up` started; leaves no process behind."""
    h = harness()
    stopped = h.supervisor.down(progress=lambda msg: err.print(msg, style="dim"))
    out.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@app.command()
def doctor() -> None:
    """Report what this machine offers and which profiles can run here."""
    found = doctor_mod.findings()
    table = Table(title="this machine")
    for column in ("check", "ok", "detail"):
        table.add_column(column)
    for f in found:
        table.add_row(f.name, "[green]yes[/]" if f.ok else "[yellow]no[/]", f.detail)
    out.print(table)
    path = _Options.config or find_config()
    profiles = (yaml.safe_load(path.read_text()) or {}).get("profiles", {})
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


cli_pipeline.register(app, harness, out, err)
cli_deploy.register(app, harness, out, err)


def main() -> None:
    """Entry point: usage errors are click's (exit 2); our errors are one red line and their exit code."""
    try:
        app()
    except LastmileError as exc:
        line = exc.line() if hasattr(exc, "line") else str(exc)
        err.print(f"lastmile: error: {line}", style="red", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
