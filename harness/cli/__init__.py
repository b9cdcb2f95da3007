"""The ``lastmile`` command line: one module per command group, each a typer app at module level."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from harness.cli import deploy, drill, load, pipeline, stack
from harness.cli.context import err, options
from harness.domain.errors import LastmileError

app = typer.Typer(help="lastmile: run the MLOps last mile locally, then on OCI.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)


@app.callback()
def _global(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Config file (default: lastmile.yaml here or above)."),
    profile: Optional[str] = typer.Option(None, "--profile", "-p", help="Profile: local, containers or oci (default from the file, or $LASTMILE_PROFILE)."),
) -> None:
    options.config, options.profile = config, profile


app.command()(stack.up)
app.command()(stack.status)
app.command()(stack.down)
app.command()(stack.doctor)
app.add_typer(stack.config_app, name="config")
app.command(help=pipeline.RUN_HELP)(pipeline.run)
app.add_typer(pipeline.runs_app, name="runs")
app.add_typer(pipeline.data_app, name="data")
app.add_typer(pipeline.model_app, name="model")
app.add_typer(pipeline.hook_app, name="hook")
app.add_typer(deploy.deploy_app, name="deploy")
app.add_typer(deploy.observe_app, name="observe")
app.add_typer(drill.drill_app, name="drill")
app.add_typer(load.load_app, name="load")


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
