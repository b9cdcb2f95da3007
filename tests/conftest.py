"""Shared by every tier: time budgets that report their figures and tolerate a busy machine."""

from __future__ import annotations

import os

import pytest

_FIGURES: list[tuple[str, str, float, float, float]] = []


def load_factor() -> float:
    """How busy the machine is: the 1-minute load average per core, never below 1."""
    return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


@pytest.fixture
def budget(request):
    """``budget(what, seconds, limit)``: records the figure for the summary, and fails only when ``seconds``
    is over ``limit`` times the machine's load factor (a shared 2-core machine is often busy)."""

    def check(what: str, seconds: float, limit: float) -> None:
        factor = load_factor()
        _FIGURES.append((request.node.nodeid, what, seconds, limit, factor))
        assert seconds <= limit * factor, (f"{what}: {seconds:.2f} s, over the budget of {limit:g} s "
                                           f"(x{factor:.2f} for the load average)")
    return check


def pytest_terminal_summary(terminalreporter) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("time budgets")
    for nodeid, what, seconds, limit, factor in _FIGURES:
        terminalreporter.write_line(f"{seconds:7.2f} s  budget {limit:g} s x{factor:.2f}  {what}  ({nodeid})")
