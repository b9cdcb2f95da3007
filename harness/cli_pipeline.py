"""The pipeline's commands: run, runs, data, model and hook."""

from __future__ import annotations

import json
import sys

import typer
from rich.live import Live

from harness import datasets, hooks, journal as journal_mod
from harness.errors import UserError
from harness.pipeline import Pipeline, RunOptions, StageFailed
from harness.promotion import promote, rollback
from harness.views import runs_table, stage_table

runs_app = typer.Typer(help="List and show pipeline runs.", invoke_without_command=True)
data_app = typer.Typer(help="Training data in object storage.", no_args_is_help=True)
model_app = typer.Typer(help="Manual control of the @champion alias.", no_args_is_help=True)
hook_app = typer.Typer(help="The git hook that runs the pipeline on commits to main.", no_args_is_help=True)


def register(app: typer.Typer, harness_factory, out, err) -> None:
    @app.command()
    def run(
        force: bool = typer.Option(False, "--force", help="Run every stage even when no filtered path changed."),
        as_json: bool = typer.Option(False, "--json", help="Print the run journal as JSON (for CI)."),
    ) -> None:
        """Run the pipeline (stages 1-5) through the profile's ports; exit 1 when a stage fails."""
        h = harness_factory()
        live = None if as_json or not out.is_terminal else Live(console=out, refresh_per_second=4)
        pipeline = Pipeline(h, on_change=(lambda r: live.update(stage_table(r))) if live else (lambda r: None))
        record = None
        try:
            if live:
                live.start()
            record = pipeline.run(RunOptions(force=force))
        except StageFailed as exc:
            record = journal_mod.history(pipeline.runs_dir)[0]
            if live:
                live.stop()
                live = None
            _report(record, as_json, out)
            err.print(f"lastmile: error: {str(exc).splitlines()[0]}", style="red", highlight=False)
            tail = "\n".join(str(exc).splitlines()[1:])
            if tail:
                err.print(tail, highlight=False, markup=False)
            raise typer.Exit(1)
        except KeyboardInterrupt:
            if live:
                live.stop()
                live = None
            err.print("lastmile: interrupted; the journal says so", style="red")
            raise typer.Exit(130)
        finally:
            if live:
                live.stop()
        _report(record, as_json, out, printed=not as_json and out.is_terminal)
        if record.status == "nothing-to-do":
            err.print(f"nothing to do: {record.summary.get('reason', '')} (--force runs anyway)")

    @runs_app.callback()
    def runs(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """List runs, newest first."""
        if ctx.invoked_subcommand:
            return
        records = journal_mod.history(harness_factory().settings.state_dir / "runs")
        if as_json:
            print(json.dumps([r.to_json() for r in records], indent=2, default=str))
        else:
            out.print(runs_table(records))

    @runs_app.command("show")
    def runs_show(run_id: str, as_json: bool = typer.Option(False, "--json", help="Print the journal.")) -> None:
        """Show one run's journal."""
        runs_dir = harness_factory().settings.state_dir / "runs"
        try:
            record = journal_mod.load(runs_dir, run_id)
        except FileNotFoundError:
            raise UserError(f"no run {run_id} in {runs_dir.name}/", hint="`lastmile runs` lists them") from None
        _report(record, as_json, out)

    @data_app.command("seed")
    def data_seed() -> None:
        """Upload the default dataset (scikit-learn's iris) under its sha256; a no-op when already there."""
        h = harness_factory()
        ref, uploaded = datasets.seed(h.object_store, h.settings.buckets.data)
        print(f"{'uploaded' if uploaded else 'already there'}: {ref.uri} ({ref.size} bytes)")

    @model_app.command("promote")
    def model_promote(version: str) -> None:
        """Make VERSION the @champion; the old champion becomes @previous."""
        h = harness_factory()
        move = promote(h.model_registry, h.settings.model.name, version)
        out.print(f"{h.settings.model.name}: @champion={move.champion} @previous={move.previous or '-'}")

    @model_app.command("rollback")
    def model_rollback() -> None:
        """Swap @champion back to @previous."""
        h = harness_factory()
        move = rollback(h.model_registry, h.settings.model.name)
        out.print(f"{h.settings.model.name}: @champion={move.champion} @previous={move.previous or '-'}")

    @hook_app.command("install")
    def hook_install() -> None:
        """Install a post-commit hook that runs `lastmile run` on commits to the trigger branch."""
        h = harness_factory()
        path = hooks.install_hook(h.settings.root, h.settings.ports.source_trigger.branch)
        out.print(f"installed {path}")

    @hook_app.command("uninstall")
    def hook_uninstall() -> None:
        """Remove lastmile's hook (a hook that is not ours is left alone)."""
        removed = hooks.uninstall_hook(harness_factory().settings.root)
        out.print("removed the lastmile hook" if removed else "no lastmile hook was installed")

    app.add_typer(runs_app, name="runs")
    app.add_typer(data_app, name="data")
    app.add_typer(model_app, name="model")
    app.add_typer(hook_app, name="hook")


def _report(record, as_json: bool, out, printed: bool = False) -> None:
    if as_json:
        print(json.dumps(record.to_json(), indent=2, default=str))
        sys.stdout.flush()
    elif not printed:
        out.print(stage_table(record))
    if not as_json and record.summary.get("endpoint"):
        sample = record.summary.get("sample", {})
        answer = sample.get("answer", {})
        out.print(f"[bold]serving[/] model version {record.summary.get('deployed_version')} at "
                  f"{record.summary['endpoint']} (revision {record.summary.get('revision')})")
        if answer:
            out.print(f"sample: {json.dumps(sample.get('row'))} -> prediction {answer.get('predictions')} "
                      f"probabilities {json.dumps(answer.get('probabilities'))}", highlight=False)
