"""What makes a unit test a unit test here: no process, no network socket, no database. Loaded by the unit
tier's conftest; a unit test that reaches for one fails, naming what it tried, so it moves to a higher tier."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess

import pytest


class ImpureUnitTest(AssertionError):
    pass


def _refuse(what: str):
    def refuse(*_args, **_kwargs):
        raise ImpureUnitTest(f"a unit test may not {what}: move it to tests/component or tests/integration")
    return refuse


@pytest.fixture(autouse=True)
def pure(monkeypatch):
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("start a process"))
    monkeypatch.setattr(os, "fork", _refuse("fork"))
    monkeypatch.setattr(os, "posix_spawn", _refuse("start a process"))
    monkeypatch.setattr(sqlite3, "connect", _refuse("open a database"))
    real_connect, real_bind = socket.socket.connect, socket.socket.bind

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            raise ImpureUnitTest(f"a unit test may not connect to {address}: move it to a higher tier")
        return real_connect(sock, address)

    def bind(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            raise ImpureUnitTest(f"a unit test may not listen on {address}: move it to a higher tier")
        return real_bind(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "bind", bind)
