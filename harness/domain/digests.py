"""A model version's files against the digests training recorded (the version tag ``lastmile.files``).

The serving app words its refusals the same way in ``serving/digests.py``: a deployable cannot import the core.
"""

from __future__ import annotations

from collections.abc import Mapping

FILES_TAG = "lastmile.files"


def file_problems(recorded: Mapping[str, str], found: Mapping[str, str]) -> list[str]:
    """One line per file that is missing, not recorded, or not the recorded bytes."""
    problems = []
    for path in sorted(recorded.keys() | found.keys()):
        expected, actual = recorded.get(path), found.get(path)
        if actual is None:
            problems.append(f"{path} is missing (recorded sha256 {expected})")
        elif expected is None:
            problems.append(f"{path} is not among the recorded files (sha256 {actual})")
        elif actual != expected:
            problems.append(f"{path} has sha256 {actual}, not the recorded {expected}")
    return problems
