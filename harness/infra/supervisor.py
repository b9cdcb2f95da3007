"""Starts, checks and stops the local stand-ins as supervised processes (or containers) on 127.0.0.1.

State lives in ``<state_dir>/standins.json`` (pid, process start time, port, URL, log) plus a
``<name>.pid`` file each, so ``lastmile down`` finds exactly the processes it started and never
a stranger that reused a pid. A stand-in with an image runs as a container instead
(:mod:`harness.infra.containers`); the state records its container id, and ``down`` removes exactly those.
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
from harness.infra import containers
from harness.infra.processes import free_port, port_free, same_process
from harness.infra.standin import ContainerSpec, Endpoints, StandIn, network_alias


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
    container: str = ""  # the container's id when it runs in one (pid and create_time are then 0)
    adopted: bool = False  # a compose container found running, not started here: `down` leaves it to compose


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: str  # healthy | unhealthy | dead | stopped
    url: str | None
    pid: int | None
    log: str
    action: str = ""  # started | reused | restarted | adopted | moved (port was taken)
    container: str | None = None  # the container's id, for a stand-in that runs in one


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
            adopt = self._compose_containers(todo)
            for s in todo:
                s.public, s.internal = plan_ports(s, taken, fronted, owned if any(r.front for r in keep.values()) else set())
                if s.name in adopt:
                    s.internal[s.name] = adopt[s.name][1]
                    actions[s.name] = "adopted"
                moved = [("" if route == s.name else f"{route} ") + f"from port {s.public_ports()[route]}"
                         for route, port in s.public.items() if port != s.public_ports()[route]]
                if moved:
                    actions[s.name] = "moved " + ", ".join(moved)
            routes = {route: (pub, s.internal[route]) for s in todo if not s.front for route, pub in s.public.items()}
            routes |= {route: (pair[0], pair[1]) for r in keep.values() if not r.front for route, pair in r.routes.items()}
            endpoints = Endpoints({**{route: _url(pub) for route, (pub, _) in routes.items()},
                                   **{r.name: r.url for r in keep.values() if r.front},
                                   **{s.name: _url(s.public[s.name]) for s in todo if s.front}})
            boxed = {route for s in todo if s.image for route in s.public} | \
                {route for r in keep.values() if r.container for route in r.routes}
            peers = Endpoints({**endpoints.urls, **{route: f"http://{network_alias(route)}:{routes[route][1]}"
                                                    for route in boxed if route in routes}})
            started: list[Running] = []
            try:
                for group in _waves(todo):
                    procs: dict[str, subprocess.Popen | containers.Handle] = {}
                    for s in group:
                        progress(f"starting {s.name} on port {s.public[s.name]}")
                        if s.image:
                            procs[s.name], running = self._run_container(s, peers, adopt.get(s.name, ("", 0))[0])
                        else:
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
                if any(s.image for s in todo):
                    _forget_network(self.state_dir)
                raise
            self._save(state)
            return [
                ServiceStatus(s.name, "healthy", state[s.name].url, state[s.name].pid or None, _rel(s.log_path),
                              actions.get(s.name, "started"), state[s.name].container or None)
                for s in standins
            ]

    def prepare(self, standins: Sequence[StandIn]) -> dict[str, tuple[ContainerSpec, int]]:
        """``lastmile up --prepare-only``: the files of every stand-in that runs in a container, on ports planned
        as ``up`` plans them, and the container each would run in (name -> spec and port), for compose's env files
        (:mod:`harness.infra.compose`); nothing starts. ``lastmile up`` then adopts what compose started."""
        boxed = [s for s in standins if s.image]
        if not boxed:
            raise UserError("no stand-in of this profile runs in a container, so compose has nothing to run",
                            hint="use a profile with standins.mode: containers (--profile containers)")
        with self._locked():
            up = sorted(r.name for r in self._load().values() if r.container)
            if up:
                raise UserError(f"{', '.join(up)} already up: preparing again would change files under them",
                                hint="run `lastmile down` first (and `docker compose down` for compose's)")
            fronted = any(s.front for s in standins)
            taken: set[int] = set()
            for s in boxed:
                s.public, s.internal = plan_ports(s, taken, fronted)
            peers = Endpoints({route: f"http://{network_alias(route)}:{s.internal[route]}"
                               for s in boxed for route in s.public})
            specs = {}
            for s in boxed:
                s.home.mkdir(parents=True, exist_ok=True)
                port = s.internal[s.name]
                s.prepare(port)
                specs[s.name] = (s.container(port, peers), port)
            return specs

    def _compose_containers(self, todo: Sequence[StandIn]) -> dict[str, tuple[str, int]]:
        """The stand-ins to adopt rather than start: a compose container of this state dir runs each (its id and
        published port). Only stand-ins with an image look, so the processes profile never asks Docker."""
        found = {s.name: containers.find_compose(self.state_dir, s.name) for s in todo if s.image}
        return {name: hit for name, hit in found.items() if hit}

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
                out.append(ServiceStatus(s.name, "dead", r.url, r.pid or None, _rel(s.log_path),
                                         "leftovers running" if _family(r) else "", r.container or None))
            else:
                health = "healthy" if s.is_ready(r.internal_url or r.url) else "unhealthy"
                out.append(ServiceStatus(s.name, health, r.url, r.pid or None, _rel(s.log_path),
                                         "adopted" if r.adopted else "", r.container or None))
        return out

    def running(self) -> dict[str, Running]:
        """The stand-ins started and not stopped, whose leader is still the process started (by name)."""
        return {name: r for name, r in self._load().items() if _alive(r)}

    def processes(self, name: str) -> list[psutil.Process]:
        """Every live process of stand-in ``name``: its leader, the leader's descendants, and anything working in
        its home (a server's children outlive a killed leader). Empty when it was never started."""
        running = self._load().get(name)
        return [p for p in _family(running) if _live(p)] if running else []

    def container(self, name: str) -> str | None:
        """The id of stand-in ``name``'s container, when it runs in one (container faults act on it)."""
        running = self._load().get(name)
        return running.container or None if running else None

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
                progress(f"leaving {r.name} to compose (container {r.container[:12]})" if r.adopted else
                         f"stopping {r.name} (container {r.container[:12]})" if r.container else
                         f"stopping {r.name} (pid {r.pid})")
            _stop(*state.values())
            if any(r.container for r in state.values()):
                containers.remove_network(self.state_dir)
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

    def _run_container(self, s: StandIn, peers: Endpoints, adopt: str) -> tuple[containers.Handle, Running]:
        """Start ``s`` as a container (or adopt the compose container ``adopt``, which compose started with the
        files ``lastmile up --prepare-only`` wrote); published on 127.0.0.1 at its internal port."""
        s.home.mkdir(parents=True, exist_ok=True)
        port = s.internal[s.name]
        if adopt:
            container_id = adopt
        else:
            s.prepare(port)
            spec = s.container(port, peers)
            containers.write_header(s.log_path, self.state_dir, s.name, spec.image, port)
            container_id = containers.start(spec, name=s.name, state_dir=self.state_dir, port=port,
                                            aliases=[network_alias(route) for route in s.public])
        running = Running(s.name, 0, 0.0, s.public[s.name], _url(s.public[s.name]), str(s.log_path), str(s.home),
                          {route: [s.public[route], s.internal[route]] for route in s.public}, _url(port),
                          container=container_id, adopted=bool(adopt))
        return containers.Handle(container_id), running

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
    """True when the leader is still the process we started (same start time), not a reused pid; for a container,
    while it runs."""
    if r.container:
        return containers.running(r.container)
    return same_process(r.pid, r.create_time)


def _forget_network(state_dir: Path) -> None:
    """After a failed start: the stand-ins' network goes when no container is left on it."""
    try:
        containers.remove_network(state_dir)
    except UserError:
        pass  # the engine is the failure being reported


def _live(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _family(r: Running) -> list[psutil.Process]:
    """Everything of a stand-in: its leader (when still ours), the leader's descendants, and any process
    working in the stand-in's home, which catches a server's children that outlived a killed leader. A container
    has none here: its processes are the engine's to stop (and may work in the same path, mounted)."""
    if r.container:
        return []
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
    """SIGTERM each target's whole family together, then SIGKILL what outlives ``timeout``; remove each container
    we started (an adopted one is compose's)."""
    boxed = [r for r in targets if r.container and not r.adopted]
    if boxed:
        containers.remove([r.container for r in boxed], [Path(r.log) for r in boxed], timeout)
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
