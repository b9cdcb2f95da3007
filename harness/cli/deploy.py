"""The deployment's commands: deploy status / rollback / scale, observe and observe drift."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Optional

import typer
from rich.table import Table

from harness.cli.context import harness, out
from harness.domain.errors import UserError
from harness.domain.records import DeploymentStatus
from harness.pipeline import drift
from harness.pipeline import journal as journal_mod
from harness.pipeline.delivery import policy_of
from harness.pipeline.observation import SERVICE, sampled_rows, slowest
from harness.pipeline.observation import observe as observe_replicas
from harness.pipeline.rollout import undo

deploy_app = typer.Typer(help="The deployment of the serving build (the OKE stand-in locally).", no_args_is_help=True)
observe_app = typer.Typer(help="Health, traffic and drift of the deployment.", invoke_without_command=True)


def _show(status: DeploymentStatus, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(status), indent=2))
        return
    rev = status.revision
    title = (f"{status.name}: revision {rev.number} (model version {rev.model_version}, serving "
             f"{rev.serving_digest[:19]}), {status.ready}/{status.desired} ready at {status.endpoint}"
             if rev else f"{status.name}: nothing deployed")
    table = Table(title=title)
    for column in ("replica", "revision", "state", "address", "pid", "restarts", "detail"):
        table.add_column(column, overflow="fold")
    for r in status.replicas:
        table.add_row(r.name, str(r.revision), r.state, r.address or "-", str(r.pid or "-"), str(r.restarts),
                      r.detail)
    out.print(table)
    if status.standby:
        out.print(f"standby replica: {status.standby}")
    if status.message:
        out.print(status.message)


@deploy_app.command("status")
def deploy_status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The live revision and every replica's state."""
    h = harness()
    _show(h.deployer.status(h.settings.project), as_json)


@deploy_app.command("rollback")
def deploy_rollback() -> None:
    """Roll the deployment back to the revision before the live one, and wait until it serves."""
    h = harness()
    out.print(f"rolled back: {undo(h.deployer, h.settings.project, policy_of(h))}")


@deploy_app.command("scale")
def deploy_scale(replicas: int = typer.Argument(..., help="Number of replicas, 1 to 16.")) -> None:
    """Set the number of replicas; the deployer starts or drains replicas to match."""
    h = harness()
    _show(h.deployer.scale(h.settings.project, replicas), False)


@observe_app.callback()
def observe(ctx: typer.Context, window: float = typer.Option(2.0, "--window", help="Seconds between scrapes."),
            as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Per replica and in total: health, version, request rate, p50/p95 latency and error rate; and the slowest
    replica. Latency is what the Service timed for each replica (the hop included) where it times them, else what
    the replica timed itself."""
    if ctx.invoked_subcommand:
        return
    h = harness()
    name = h.settings.project
    status = h.deployer.status(name)
    if not status.replicas:
        raise UserError(f"deployment {status.name} has no replicas", hint="run `lastmile run` first")
    views, total = observe_replicas(lambda: h.deployer.replica_metrics(name), window)
    slow = slowest(views)
    if as_json:
        print(json.dumps({"replicas": [asdict(v) for v in views], "total": asdict(total),
                          "slowest": slow.name if slow else None}, indent=2))
        return
    table = Table(title=f"{status.name} at {status.endpoint} over {window:.0f} s")
    for column in ("replica", "health", "version", "req/s", "p50 ms", "p95 ms", "errors"):
        table.add_column(column)
    for v in [*views, total]:
        table.add_row(v.name, v.health, v.version or "-", f"{v.rate:.1f}", _ms(v.p50_ms), _ms(v.p95_ms),
                      f"{v.error_rate:.2%}", end_section=v is views[-1] if views else False)
    out.print(table)
    if slow is not None:
        timed = "as the Service timed it, the hop included" if slow.latency_from == SERVICE else "as it timed itself"
        out.print(f"slowest replica: {slow.name} (p50 {_ms(slow.p50_ms)} ms, p95 {_ms(slow.p95_ms)} ms, {timed})",
                  highlight=False)


@observe_app.command("drift")
def observe_drift(threshold: float = typer.Option(0.2, help="PSI above which a feature has drifted."),
                  since: Optional[float] = typer.Option(
                      None, "--since", metavar="SECONDS", min=0.001,
                      help="Only the samples of requests scored in the last SECONDS (default: every sample)."),
                  as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Compare the prediction samples the replicas shipped to object storage with the training data (PSI).
    Samples are kept: without --since, old traffic (a load test's one repeated row, say) counts as much as today's."""
    h = harness()
    bucket, prefix = h.settings.buckets.predictions, f"{drift.PREFIX}{h.settings.model.name}/"
    if since is None:
        sampled = drift.samples(h.object_store, bucket, prefix)
    else:
        sampled = sampled_rows(h.object_store, bucket, prefix, time.time() - since)
    if not sampled:
        raise UserError("no prediction samples in object storage" + (f" from the last {since:g} s" if since else
                                                                     " yet"), hint="send traffic to the endpoint first")
    last = journal_mod.last_good(h.settings.state_dir / "runs")
    if last is None or "dataset" not in last.summary:
        raise UserError("no successful run records the training data", hint="run `lastmile run` first")
    data_bucket, key = last.summary["dataset"]["uri"].removeprefix("s3://").split("/", 1)
    result = drift.report(h.object_store.get(data_bucket, key), sampled, threshold)
    if as_json:
        print(json.dumps([asdict(f) for f in result], indent=2))
        return
    table = Table(title=f"drift of {len(sampled)} sampled rows against {last.summary['dataset']['uri']}")
    for column in ("feature", "PSI", "drifted"):
        table.add_column(column)
    for f in result:
        table.add_row(f.feature, f"{f.psi:.3f}", "[red]yes[/]" if f.drifted else "no")
    out.print(table)
    drifted = [f.feature for f in result if f.drifted]
    out.print(f"drifted: {', '.join(drifted)}" if drifted else "no feature drifted")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
