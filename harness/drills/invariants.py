"""What must hold after every drill, whatever its own hypothesis says.

Each invariant is a small function of plain inputs that returns its violations (strings naming the file,
alias or pid), so it can be tested with fakes; :func:`check` gathers the inputs from a harness and runs them:

- ``champion``: @champion (and @previous) point at versions the registry has, and when the deployment serves
  one of them, its stable endpoint reproduces that version's reference predictions;
- ``runs``: no run journal is left ``running`` or half-written;
- ``processes``: no process works under the state dir outside the family of a live stand-in;
- ``secrets``: no secret value appears under the state dir outside the secret store, nor in the drill's output.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path

import psutil

from harness.bootstrap import Harness
from harness.domain.errors import LastmileError, NotFound
from harness.domain.ports import Deployer, ModelRegistry
from harness.domain.promotion import CHAMPION, PREVIOUS
from harness.domain.records import DeploymentStatus, Reference
from harness.drills import leaks
from harness.infra.supervisor import Supervisor
from harness.pipeline.delivery import check_endpoint, reference_of

log = logging.getLogger("lastmile.drills")

NAMES = ("champion", "runs", "processes", "secrets")

EndpointCheck = Callable[[str | None, Reference, str], None]


def champion_serves(registry: ModelRegistry, model: str, deployer: Deployer, deployment: str, *,
                    check_answers: EndpointCheck = check_endpoint, required: bool = False) -> list[str]:
    """@champion and @previous point at versions the registry has; the one the deployment serves answers as
    its reference predictions say. ``required``: @champion must be set (it was before the drill)."""
    violations: list[str] = []
    status: DeploymentStatus | None = None
    for alias in (CHAMPION, PREVIOUS):
        try:
            pointed = registry.by_alias(model, alias)
            version = None if pointed is None else registry.get_version(model, pointed.version)
        except NotFound as exc:
            violations.append(f"@{alias} of {model} points at a version the registry does not have ({exc})")
            continue
        if version is None:
            if alias == CHAMPION and required:
                violations.append(f"@{alias} of {model} points nowhere, though it was set before the drill")
            continue
        status = status or deployer.status(deployment)
        if status.revision is None or status.revision.model_version != version.version:
            continue
        try:
            check_answers(status.endpoint, reference_of(version), version.version)
        except LastmileError as exc:
            violations.append(f"@{alias} of {model} (version {version.version}) is deployed as revision "
                              f"{status.revision.number}, but {exc}")
    return violations


def runs_finished(runs_dir: Path) -> list[str]:
    """No run journal says ``running`` (no run runs once the drill is over) or is unreadable or half-written."""
    violations = []
    for path in sorted(runs_dir.glob("*/journal.tmp")):
        violations.append(f"{_rel(path, runs_dir.parent.parent)}: a half-written run journal")
    for path in sorted(runs_dir.glob("*/journal.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            violations.append(f"{_rel(path, runs_dir.parent.parent)}: unreadable ({type(exc).__name__})")
            continue
        if data.get("status") == "running":
            stages = [name for name, s in (data.get("stages") or {}).items() if s.get("status") == "running"]
            violations.append(f"{_rel(path, runs_dir.parent.parent)}: run {data.get('run_id')} is left running"
                              + (f" (stage {', '.join(stages)})" if stages else ""))
    return violations


@dataclass(frozen=True)
class Proc:
    """A process as the orphan check sees it."""

    pid: int
    cwd: str
    command: str = ""


def no_orphans(state_dir: Path, processes: Iterable[Proc], families: AbstractSet[int]) -> list[str]:
    """Every process working under ``state_dir`` belongs to a live stand-in's family (``families``: their pids)."""
    root = os.path.realpath(state_dir) + os.sep
    return [f"pid {p.pid} ({p.command[:80] or '?'}) works in {_rel(Path(p.cwd), state_dir.parent)} but belongs "
            "to no stand-in" for p in processes
            if (os.path.realpath(p.cwd) + os.sep).startswith(root) and p.pid not in families]


def processes_under(state_dir: Path) -> list[Proc]:
    """Processes whose working directory is under ``state_dir``, except this one and its ancestors (a shell
    that runs lastmile from inside the state dir is not an orphan)."""
    root = os.path.realpath(state_dir) + os.sep
    ours = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found = []
    for process in psutil.process_iter(["pid", "cwd", "cmdline"]):
        cwd = process.info.get("cwd")
        if cwd and process.pid not in ours and (cwd + os.sep).startswith(root):
            found.append(Proc(process.pid, cwd, " ".join(process.info.get("cmdline") or ())))
    return found


def standin_families(supervisor: Supervisor) -> set[int]:
    """The pids of every live stand-in's family (its leader's descendants and whatever works in its home)."""
    return {p.pid for name in supervisor.running() for p in supervisor.processes(name)}


def check(h: Harness, names: Sequence[str] | None = None, *, output: Mapping[str, str] | None = None,
          champion_required: bool = False) -> dict[str, list[str]]:
    """Run the invariants (``names``, all by default) on ``h``; an invariant that cannot be checked (a service
    does not answer) is violated, and says why. ``output``: the drill's captured texts, by name."""
    unknown = sorted(set(names or ()) - set(NAMES))
    if unknown:
        raise ValueError(f"no invariant {', '.join(unknown)}; the invariants are {', '.join(NAMES)}")
    settings = h.settings
    checks: dict[str, Callable[[], list[str]]] = {
        "champion": lambda: champion_serves(h.model_registry, settings.model.name, h.deployer, settings.project,
                                            required=champion_required),
        "runs": lambda: runs_finished(settings.state_dir / "runs"),
        "processes": lambda: _orphans(h),
        "secrets": lambda: leaks.find_leaks(leaks.secret_values(h), settings.state_dir,
                                            skip=_store_files(h), texts=output),
    }
    results = {}
    for name in names or NAMES:
        try:
            results[name] = checks[name]()
        except Exception as exc:  # an invariant we cannot check does not hold
            log.warning("invariant %s could not be checked: %s", name, exc,
                        exc_info=not isinstance(exc, LastmileError))  # our own bugs keep their traceback
            first = str(exc).splitlines()[0] if str(exc) else ""
            results[name] = [f"could not be checked: {type(exc).__name__}: {first}"]
    return results


def _orphans(h: Harness) -> list[str]:
    processes = processes_under(h.settings.state_dir)  # listed first: a family computed later includes newcomers
    return no_orphans(h.settings.state_dir, processes, standin_families(h.supervisor) if processes else set())


def _store_files(h: Harness) -> list[Path]:
    """The secret store's file, and the files where a stand-in keeps credentials it checks (see
    :meth:`StandIn.credential_files`)."""
    store = leaks.store_file(h)
    held = [path for standin in h.standins() for path in standin.credential_files()]
    return [store, store.with_suffix(".tmp"), *held, *(path.with_suffix(".tmp") for path in held)]


def _rel(path: Path, base: Path) -> str:
    """``path`` as a user reads it: from the project folder (``.lastmile/runs/...``)."""
    return os.path.relpath(path, base)
