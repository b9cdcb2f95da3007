"""Process plumbing, once: free ports on loopback, and process groups as the unit that is started,
checked and stopped (a server's children live in its group, so stopping the group leaves nothing behind)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import psutil


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_free(port: int) -> bool:
    """True when a server could listen on ``port`` now. SO_REUSEADDR as servers set it: a port whose last
    connections linger in TIME-WAIT after a stop is free for the next start, not taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def stop_process(process: subprocess.Popen | None, grace_s: float = 10.0) -> int | None:
    """SIGTERM to a child we started, SIGKILL after ``grace_s``; its exit status (None when never started)."""
    if process is None or process.poll() is not None:
        return None if process is None else process.returncode
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(grace_s)


def same_process(pid: int, create_time: float | None, tolerance: float = 0.01) -> bool:
    """True when ``pid`` is still the process started at ``create_time`` (not a reused pid) and not a zombie."""
    try:
        process = psutil.Process(pid)
        return (create_time is not None and abs(process.create_time() - create_time) < tolerance
                and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def group_members(pgid: int) -> list[psutil.Process]:
    """The live (non-zombie) processes of process group ``pgid``. A group id is not reused while any
    member lives, so a non-empty answer for a group we started is still ours."""
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return members


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to the group; False when no such group exists."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_group(pgid: int, grace_s: float = 10.0, reap=None) -> None:
    """SIGTERM the whole group, SIGKILL what outlives ``grace_s``; works when the leader is already gone.

    ``reap`` (optional) is called while waiting, for a parent that must collect its own child."""
    if not group_members(pgid):
        return
    signal_group(pgid, signal.SIGTERM)
    until = time.monotonic() + grace_s
    while time.monotonic() < until and group_members(pgid):
        if reap is not None:
            reap()
        time.sleep(0.05)
    if group_members(pgid):
        signal_group(pgid, signal.SIGKILL)
        until = time.monotonic() + grace_s
        while time.monotonic() < until and group_members(pgid):
            if reap is not None:
                reap()
            time.sleep(0.05)
