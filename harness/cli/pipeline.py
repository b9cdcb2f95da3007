"""The pipeline's commands: run, runs, data, model and hook."""

from __future__ import annotations

import json
import sys

import typer
from rich.live import Live

from harness.cli.context import err, harness, out
from harness.cli.views import error_lines, events_table, runs_table, stage_table, why_nothing
from harness.domain.errors import LastmileError, UserError
from harness.domain.promotion import promote, rollback
from harness.infra import git_hook
from harness.infra.locks import Holder, RunLock, RunLocked
from harness.pipeline import datasets
from harness.pipeline import journal as journal_mod
from harness.pipeline.journal import RunRecord
from harness.pipeline.runner import Pipeline, RunOptions, endpoints, flavors
from harness.pipeline.stages import NAMES, describe

RUN_HELP = ("Run the pipeline through the profile's ports; exit 1 when a stage fails.\n\n"
            + describe().replace("\n", "\n\n"))

runs_app = typer.Typer(help="List and show pipeline runs.", invoke_without_command=True)
data_app = typer.Typer(help="Training data in object storage.", no_args_is_help=True)
model_app = typer.Typer(help="Manual control of the @champion alias.", no_args_is_help=True)
hook_app = typer.Typer(help="The git hook that runs the pipeline on commits to main.", no_args_is_help=True)


def run(
    force: bool = typer.Option(False, "--force", help="Run every stage even when no filtered path changed."),
    until: str = typer.Option(NAMES[-1], "--until", metavar="STAGE",
                              help=f"Stop after this stage: {', '.join(NAMES)}."),
    as_json: bool = typer.Option(False, "--json", help="Print the run journal as JSON (for CI)."),
    no_wait: bool = typer.Option(False, "--no-wait",
                                 help="When another run holds this state directory, refuse instead of waiting."),
) -> None:
    if until not in NAMES:
        raise UserError(f"--until {until}: no such stage", hint=f"the stages are {', '.join(NAMES)}", exit_code=2)
    h = harness()
    if not as_json and err.is_terminal:  # the journal records the same for scripts
        where = endpoints(h)
        err.print(f"profile {h.settings.profile}: " + ", ".join(
            f"{port}={flavor}" + (f" ({where[port]})" if port in where else "") for port, flavor in flavors(h).items()),
            style="dim", highlight=False)
    live = None if as_json or not out.is_terminal else Live(console=out, refresh_per_second=4)
    pipeline = Pipeline(h, on_change=_redraw(live), on_wait=_waiting(live))
    record = None
    try:
        if live:
            live.start()
        record = pipeline.run(RunOptions(force=force, until=until, wait=not no_wait))
    except RunLocked:
        raise
    except LastmileError as exc:
        if live:
            live.stop()
            live = None
        if pipeline.last is not None:
            _report(pipeline.last, as_json)
        for i, line in enumerate(error_lines(exc, pipeline.last)):
            err.print(line, style="red" if i == 0 else None, highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        if live:
            live.stop()
            live = None
        err.print("lastmile: interrupted; the journal says so", style="red")
        raise typer.Exit(130) from None
    finally:
        if live:
            live.stop()
    _report(record, as_json, printed=not as_json and out.is_terminal)
    if record.status == "nothing-to-do":
        err.print(f"nothing to do: {record.summary.get('reason', '')} "
                  f"{why_nothing(record, journal_mod.history(pipeline.runs_dir))}", highlight=False, markup=False)


def _redraw(live: Live | None):
    if live is None:
        return lambda record: None
    return lambda record: live.update(stage_table(record))


def _waiting(live: Live | None):
    def say(holder: Holder | None) -> None:
        who = holder.describe() if holder else "another run"
        line = f"lastmile: waiting for {who} to finish (one run at a time per state directory)"
        (live.console if live else err).print(line, style="yellow", highlight=False, markup=False)
    return say


@runs_app.callback()
def runs(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List runs, newest first."""
    if ctx.invoked_subcommand:
        return
    records = journal_mod.history(harness().settings.state_dir / "runs")
    if as_json:
        print(json.dumps([r.to_json() for r in records], indent=2, default=str))
    else:
        out.print(runs_table(records))


@runs_app.command("show")
def runs_show(run_id: str, as_json: bool = typer.Option(False, "--json", help="Print the journal.")) -> None:
    """Show one run's journal."""
    _report(_load(run_id), as_json)


@runs_app.command("events")
def runs_events(run_id: str, as_json: bool = typer.Option(False, "--json", help="Print JSON lines.")) -> None:
    """The events one run sent to the profile's log sink (OCI Logging in the cloud)."""
    _load(run_id)
    events = list(harness().log_sink.events(run_id))
    if as_json:
        for e in events:
            print(json.dumps({"time": e.time, "level": e.level, "event": e.event, **dict(e.fields)}, default=str))
    else:
        out.print(events_table(run_id, events))


@runs_app.command("logs")
def runs_logs(run_id: str,
              stage: str = typer.Option("all", "--stage", help="build, training or all."),
              lines: int = typer.Option(40, "--lines", min=1, max=10000, help="Lines from the end of each log.")) -> None:
    """The build runs' and the training job run's logs of one run, as their services keep them (OCI Logging for
    DevOps build runs and Data Science job runs; the job's log file locally). Builds made in-process have none."""
    if stage not in ("build", "training", "all"):
        raise UserError(f"--stage {stage}: one of build, training, all", exit_code=2)
    record, h = _load(run_id), harness()
    shown = 0
    if stage in ("build", "all"):
        build = record.stages.get("build")
        for name, output in sorted((build.outputs if build else {}).items()):
            if isinstance(output, dict) and output.get("build_run"):
                shown += _print_log(f"build {name} (build run {output['build_run']})",
                                    h.image_builder.log_tail(output["build_run"], lines))
    training = record.stages.get("training")
    job_run = training.outputs.get("job_run") if training else None
    if stage in ("training", "all") and job_run:
        shown += _print_log(f"training (job run {job_run})", h.job_runner.log_tail(job_run, lines))
    if not shown:
        raise UserError(f"run {run_id} has no {'build or training' if stage == 'all' else stage} log to show",
                        hint="in-process builds keep none; a run that stopped before training has no job run")


def _print_log(title: str, text: str) -> int:
    out.rule(title)
    out.print(text or "(empty)", markup=False, highlight=False)
    return 1


def _load(run_id: str) -> RunRecord:
    runs_dir = harness().settings.state_dir / "runs"
    try:
        return journal_mod.load(runs_dir, run_id)
    except (FileNotFoundError, NotADirectoryError):
        raise UserError(f"no run {run_id} in {runs_dir.name}/", hint="`lastmile runs` lists them") from None


@data_app.command("seed")
def data_seed() -> None:
    """Upload the default dataset (scikit-learn's iris) under its sha256; a no-op when already there and intact,
    a replacement (said so) when the stored copy no longer matches its sha256."""
    h = harness()
    seeded = datasets.seed(h.object_store, h.settings.buckets.data)
    done = "replaced" if seeded.replaced_corrupted else "uploaded" if seeded.uploaded else "already there"
    note = f"; {seeded.note}" if seeded.replaced_corrupted else ""
    print(f"{done}: {seeded.ref.uri} ({seeded.ref.size} bytes){note}")


@model_app.command("promote")
def model_promote(version: str) -> None:
    """Make VERSION the @champion; the old champion becomes @previous."""
    h = harness()
    with _run_lock(h, f"model promote {version}"):
        move = promote(h.model_registry, h.settings.model.name, version)
    out.print(f"{h.settings.model.name}: @champion={move.champion} @previous={move.previous or '-'}")


def _run_lock(h, what: str):
    """Manual alias moves take the run lock too, so a run never reads @champion halfway through one."""
    return RunLock(h.settings.state_dir / "run.lock").held(
        what, on_wait=lambda holder: err.print(f"lastmile: waiting for {holder.describe() if holder else 'a run'}"
                                               " to finish", style="dim"))


@model_app.command("rollback")
def model_rollback() -> None:
    """Swap @champion back to @previous."""
    h = harness()
    with _run_lock(h, "model rollback"):
        move = rollback(h.model_registry, h.settings.model.name)
    out.print(f"{h.settings.model.name}: @champion={move.champion} @previous={move.previous or '-'}")


@hook_app.command("install")
def hook_install() -> None:
    """Install a post-commit hook that runs `lastmile run` on commits to the trigger branch."""
    h = harness()
    path = git_hook.install_hook(h.settings.root, h.settings.ports.source_trigger.branch)
    out.print(f"installed {path}")


@hook_app.command("uninstall")
def hook_uninstall() -> None:
    """Remove lastmile's hook (a hook that is not ours is left alone)."""
    removed = git_hook.uninstall_hook(harness().settings.root)
    out.print("removed the lastmile hook" if removed else "no lastmile hook was installed")


def _report(record: RunRecord, as_json: bool, printed: bool = False) -> None:
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
