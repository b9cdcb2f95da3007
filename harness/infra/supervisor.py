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
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
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
    routes: dict[str, list[int]] = field(default_factory=dict)  # route -> [public port, internal port]
    internal_url: str = ""  # where its own server listens (the front forwards ``url`` there)
    front: bool = False


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
        """Start what is not running, reuse what is healthy, restart what is dead or sick.

        A front (the fault proxy) starts first; every other stand-in then listens on an internal port and the
        front forwards each public port to it, so every client goes through the front without knowing."""
        for s in standins:
            s.check_installed()
        with self._locked():
            state = self._load()
            owned = {pair[0] for r in state.values() for pair in r.routes.values()}  # the front listens there
            keep, actions = self._triage(standins, state)
            todo = [s for s in standins if s.name not in keep]
            fronted = any(s.front for s in standins)
            taken = {port for r in keep.values() for pair in r.routes.values() for port in pair} | \
                {r.port for r in keep.values()}
            for s in todo:
                s.public, s.internal = plan_ports(s, taken, fronted, owned if any(r.front for r in keep.values()) else set())
                moved = [("" if route == s.name else f"{route} ") + f"from port {s.public_ports()[route]}"
                         for route, port in s.public.items() if port != s.public_ports()[route]]
                if moved:
                    actions[s.name] = "moved " + ", ".join(moved)
            routes = {route: (pub, s.internal[route]) for s in todo if not s.front for route, pub in s.public.items()}
            routes |= {route: (pair[0], pair[1]) for r in keep.values() if not r.front for route, pair in r.routes.items()}
            endpoints = Endpoints({**{route: _url(pub) for route, (pub, _) in routes.items()},
                                   **{r.name: r.url for r in keep.values() if r.front},
                                   **{s.name: _url(s.public[s.name]) for s in todo if s.front}})
            started: list[Running] = []
            try:
                for group in _waves(todo):
                    procs = {}
                    for s in group:
                        progress(f"starting {s.name} on port {s.public[s.name]}")
                        procs[s.name], running = self._spawn(s, routes, endpoints)
                        started.append(running)
                        state[s.name] = running
                        self._save(state)
                    self._wait_ready(group, procs, state, progress)
                    self._route(standins, state, routes)
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

    def _triage(self, standins: Sequence[StandIn], state: dict[str, Running]) -> tuple[dict, dict]:
        """Which running stand-ins to keep (alive and ready), and stop the others."""
        keep: dict[str, Running] = {}
        actions: dict[str, str] = {}
        for s in standins:
            prev = state.get(s.name)
            if prev and _alive(prev) and s.is_ready(prev.internal_url or prev.url):
                keep[s.name], actions[s.name] = prev, "reused"
            elif prev:
                _stop(prev)
                state.pop(s.name)
                actions[s.name] = "restarted"
        return keep, actions

    def _route(self, standins: Sequence[StandIn], state: dict[str, Running],
               routes: dict[str, tuple[int, int]]) -> None:
        """Tell a running front where every route goes now (a restarted stand-in has a new internal port)."""
        for s in standins:
            if s.front and s.name in state:
                s.apply_routes(state[s.name].url, routes)

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
                health = "healthy" if s.is_ready(r.internal_url or r.url) else "unhealthy"
                out.append(ServiceStatus(s.name, health, r.url, r.pid, _rel(s.log_path)))
        return out

    def running(self) -> dict[str, Running]:
        """The stand-ins started and not stopped, whose leader is still the process started (by name)."""
        return {name: r for name, r in self._load().items() if _alive(r)}

    def processes(self, name: str) -> list[psutil.Process]:
        """Every live process of stand-in ``name``: its leader, the leader's descendants, and anything working in
        its home (a server's children outlive a killed leader). Empty when it was never started."""
        running = self._load().get(name)
        return [p for p in _family(running) if _live(p)] if running else []

    def endpoints(self) -> Endpoints:
        """Where clients reach each route (through the front when one runs), and the front itself."""
        urls: dict[str, str] = {}
        for r in self._load().values():
            urls[r.name] = r.url
            urls.update({route: _url(pair[0]) for route, pair in r.routes.items()})
        return Endpoints(urls)

    def internal_endpoints(self) -> Endpoints:
        """Where each route's server itself listens, bypassing the front (for health checks and fault tools)."""
        return Endpoints({route: _url(pair[1]) for r in self._load().values() for route, pair in r.routes.items()})

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
    def _spawn(self, s: StandIn, routes: dict[str, tuple[int, int]],
               endpoints: Endpoints) -> tuple[subprocess.Popen, Running]:
        s.home.mkdir(parents=True, exist_ok=True)
        s.log_path.parent.mkdir(parents=True, exist_ok=True)
        port = s.internal[s.name]
        s.prepare(port)
        if s.front:
            s.apply_routes("", routes)  # before it starts: it reads its routes at start
        env = {**os.environ, **s.environment(endpoints)}
        with open(s.log_path, "ab") as log:
            log.write(f"\n--- lastmile up: starting {s.name} on port {port} at {time.ctime()} ---\n".encode())
            log.flush()
            proc = subprocess.Popen(
                s.command(port, endpoints), cwd=s.home, env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        (self.state_dir / f"{s.name}.pid").write_text(f"{proc.pid}\n")
        running = Running(s.name, proc.pid, psutil.Process(proc.pid).create_time(), s.public[s.name],
                          _url(s.public[s.name]), str(s.log_path), str(s.home),
                          {route: [s.public[route], s.internal[route]] for route in s.public} if not s.front else {},
                          _url(port), s.front)
        return proc, running

    def _wait_ready(self, todo: Sequence[StandIn], procs: dict, state: dict[str, Running],
                    progress: Progress) -> None:
        """Until each has answered its readiness check on its own (internal) address, then run its setup."""
        pending = {s.name: s for s in todo}
        timeout = max((s.start_timeout_s for s in todo), default=0)
        deadline = time.monotonic() + timeout
        while pending:
            for name, s in list(pending.items()):
                code = procs[name].poll()
                if code is not None:
                    raise UserError(f"{name} exited during start (exit code {code})",
                                    hint=f"read {_rel(s.log_path)}")
                internal = state[name].internal_url or state[name].url
                if s.is_ready(internal):
                    s.after_ready(internal)
                    progress(f"{name} ready at {state[name].url}")
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


def _live(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


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


def _waves(todo: Sequence[StandIn]) -> list[list[StandIn]]:
    """The front first, then each start order (``StandIn.wave``) in turn: a wave starts once the one before is
    ready, so a stand-in can use another's API while it prepares (credentials in a vault stand-in, say)."""
    fronts = [s for s in todo if s.front]
    others = sorted({s.wave for s in todo if not s.front})
    return [group for group in [fronts, *([s for s in todo if not s.front and s.wave == w] for w in others)] if group]


def plan_ports(s: StandIn, taken: set[int], fronted: bool, owned: AbstractSet[int] = frozenset()
               ) -> tuple[dict[str, int], dict[str, int]]:
    """Public and internal port of each of ``s``'s routes: the configured public port unless it is taken (a port
    in ``owned`` is the running front's own listener, so it is ours), and a fresh internal one behind a front
    (the same port without one). ``taken`` grows with every choice."""
    public, internal = {}, {}
    for route, wanted in s.public_ports().items():
        usable = wanted and wanted not in taken and (wanted in owned or port_free(wanted))
        port = wanted if usable else free_port()
        while port in taken:
            port = free_port()
        taken.add(port)
        public[route] = port
        if fronted and not s.front:
            inner = free_port()
            while inner in taken:
                inner = free_port()
            taken.add(inner)
            internal[route] = inner
        else:
            internal[route] = port
    return public, internal


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def _rel(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
