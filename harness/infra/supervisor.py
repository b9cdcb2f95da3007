"""Starts, checks and stops the local stand-ins as supervised processes on 127.0.0.1.

State lives in ``<state_dir>/standins.json`` (pid, process start time, port, URL, log) plus a
``<name>.pid`` file each, so ``lastmile down`` finds exactly the processes it started and never
a stranger that reused a pid.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from harness.domain.errors import UserError
from harness.infra.processes import free_port, port_free, same_process
from harness.infra.standin import Endpoints, StandIn


@dataclass(frozen=True)
class Running:
    name: str
    pid: int
    create_time: float
    port: int
    url: str
    log: str
    home: str = ""  # the stand-in's working directory: its processes are found by it


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: str  # healthy | unhealthy | dead | stopped
    url: str | None
    pid: int | None
    log: str
    action: str = ""  # started | reused | restarted | moved (port was taken)


Progress = Callable[[str], None]


class Supervisor:
    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.state_file = state_dir / "standins.json"

    # public API ----------------------------------------------------------------------------------
    def up(self, standins: Sequence[StandIn], progress: Progress = lambda _: None) -> list[ServiceStatus]:
        """Start what is not running, reuse what is healthy, restart what is dead or sick."""
        for s in standins:
            s.check_installed()
        with self._locked():
            state = self._load()
            keep: dict[str, Running] = {}
            actions: dict[str, str] = {}
            for s in standins:
                prev = state.get(s.name)
                if prev and _alive(prev) and s.is_ready(prev.url):
                    keep[s.name], actions[s.name] = prev, "reused"
                elif prev:
                    _stop(prev)
                    state.pop(s.name)
                    actions[s.name] = "restarted"
            todo = [s for s in standins if s.name not in keep]
            ports = _choose_ports(todo, taken={r.port for r in keep.values()})
            for s in todo:
                if ports[s.name] != s.port:
                    actions[s.name] = f"moved from port {s.port}"
            endpoints = Endpoints({**{n: r.url for n, r in keep.items()}, **{s.name: s.url(ports[s.name]) for s in todo}})
            started: list[Running] = []
            try:
                procs = {}
                for s in todo:
                    progress(f"starting {s.name} on port {ports[s.name]}")
                    procs[s.name], running = self._spawn(s, ports[s.name], endpoints)
                    started.append(running)
                    state[s.name] = running
                    self._save(state)
                self._wait_ready(todo, procs, endpoints, progress)
            except BaseException:
                _stop(*started)
                for running in started:
                    state.pop(running.name, None)
                self._save(state)
                raise
            self._save(state)
            return [
                ServiceStatus(s.name, "healthy", state[s.name].url, state[s.name].pid, _rel(s.log_path),
                              actions.get(s.name, "started"))
                for s in standins
            ]

    def status(self, standins: Sequence[StandIn]) -> list[ServiceStatus]:
        state = self._load()
        out = []
        for s in standins:
            r = state.get(s.name)
            if r is None:
                out.append(ServiceStatus(s.name, "stopped", None, None, _rel(s.log_path)))
            elif not _alive(r):
                out.append(ServiceStatus(s.name, "dead", r.url, r.pid, _rel(s.log_path),
                                         "leftovers running" if _family(r) else ""))
            else:
                health = "healthy" if s.is_ready(r.url) else "unhealthy"
                out.append(ServiceStatus(s.name, health, r.url, r.pid, _rel(s.log_path)))
        return out

    def endpoints(self) -> Endpoints:
        return Endpoints({name: r.url for name, r in self._load().items()})

    def down(self, progress: Progress = lambda _: None) -> list[str]:
        """Stop every stand-in we started, children included. Returns the names stopped."""
        with self._locked():
            state = self._load()
            for r in state.values():
                progress(f"stopping {r.name} (pid {r.pid})")
            _stop(*state.values())
            self._save({})
            return sorted(state)

    # internals -----------------------------------------------------------------------------------
    def _spawn(self, s: StandIn, port: int, endpoints: Endpoints) -> tuple[subprocess.Popen, Running]:
        s.home.mkdir(parents=True, exist_ok=True)
        s.log_path.parent.mkdir(parents=True, exist_ok=True)
        s.prepare(port)
        env = {**os.environ, **s.environment(endpoints)}
        with open(s.log_path, "ab") as log:
            log.write(f"\n--- lastmile up: starting {s.name} on port {port} at {time.ctime()} ---\n".encode())
            log.flush()
            proc = subprocess.Popen(
                s.command(port, endpoints), cwd=s.home, env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        (self.state_dir / f"{s.name}.pid").write_text(f"{proc.pid}\n")
        running = Running(s.name, proc.pid, psutil.Process(proc.pid).create_time(), port, s.url(port),
                          str(s.log_path), str(s.home))
        return proc, running

    def _wait_ready(self, todo: Sequence[StandIn], procs: dict, endpoints: Endpoints, progress: Progress) -> None:
        pending = {s.name: s for s in todo}
        timeout = max((s.start_timeout_s for s in todo), default=0)
        deadline = time.monotonic() + timeout
        while pending:
            for name, s in list(pending.items()):
                code = procs[name].poll()
                if code is not None:
                    raise UserError(f"{name} exited during start (exit code {code})",
                                    hint=f"read {_rel(s.log_path)}")
                if s.is_ready(endpoints[name]):
                    s.after_ready(endpoints[name])
                    progress(f"{name} ready at {endpoints[name]}")
                    del pending[name]
            if pending and time.monotonic() > deadline:
                names = ", ".join(pending)
                logs = ", ".join(_rel(s.log_path) for s in pending.values())
                raise UserError(f"{names} not ready within {timeout:.0f} s", hint=f"read {logs}")
            if pending:
                time.sleep(0.1)

    def _load(self) -> dict[str, Running]:
        try:
            raw = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {}
        return {name: Running(**r) for name, r in raw.items()}

    def _save(self, state: dict[str, Running]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({n: asdict(r) for n, r in state.items()}, indent=2))
        tmp.replace(self.state_file)
        for pid_file in self.state_dir.glob("*.pid"):
            if pid_file.stem not in state:
                pid_file.unlink()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "supervisor.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def _alive(r: Running) -> bool:
    """True when the leader is still the process we started (same start time), not a reused pid."""
    return same_process(r.pid, r.create_time)


def _family(r: Running) -> list[psutil.Process]:
    """Everything of a stand-in: its leader (when still ours), the leader's descendants, and any process
    working in the stand-in's home, which catches a server's children that outlived a killed leader."""
    found: dict[int, psutil.Process] = {}
    if _alive(r):
        leader = psutil.Process(r.pid)
        found.update({p.pid: p for p in [leader, *leader.children(recursive=True)]})
    home = os.path.realpath(r.home) + os.sep if r.home else None
    if home:
        for process in psutil.process_iter():
            try:
                if process.pid != os.getpid() and (process.cwd() + os.sep).startswith(home):
                    found.setdefault(process.pid, process)
                    found.update({c.pid: c for c in process.children(recursive=True)})
            except psutil.Error:
                continue
    return list(found.values())


def _stop(*targets: Running, timeout: float = 10.0) -> None:
    """SIGTERM each target's whole family together, then SIGKILL what outlives ``timeout``."""
    family = [p for r in targets for p in _family(r)]
    for p in family:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, left = psutil.wait_procs(family, timeout=timeout)
    for p in left:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(left, timeout=timeout)


def _choose_ports(todo: Sequence[StandIn], taken: set[int]) -> dict[str, int]:
    chosen: dict[str, int] = {}
    for s in todo:
        port = s.port if s.port and s.port not in taken and port_free(s.port) else free_port()
        while port in taken:
            port = free_port()
        taken.add(port)
        chosen[s.name] = port
    return chosen


def _rel(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
