"""Stage 1 rules: which changed paths trigger the training and serving builds. Pure, no I/O.

Semantics follow OCI DevOps file-based build triggers ("Files to include" / "Files to exclude",
docs.oracle.com/iaas/Content/devops/using/trigger_file.htm): a build is triggered when a change
touches at least one included file; with no include patterns every file is included; when both
are given, the exclude filter applies to the output of the include filter, so changes that touch
only excluded files trigger nothing.

OCI documents "glob patterns" without spelling out their syntax, so the globs here follow the
common doublestar convention (as in AWS CodePipeline trigger filters and gitignore):

- patterns and paths are relative to the repository root, with ``/`` separators; a leading
  ``/`` or ``./`` on a pattern is ignored, and ``*.md`` matches only at the root (use ``**/*.md``);
- ``*`` matches any run of characters within one path segment, never ``/``;
- ``?`` matches one character other than ``/``; ``[abc]``, ``[a-z]``, ``[!abc]`` one character from a set;
- ``**`` as a whole segment matches zero or more segments: ``**/x`` matches ``x`` and ``a/b/x``,
  ``a/**/x`` matches ``a/x`` and ``a/b/x``, ``a/**`` matches everything under ``a/``, ``**`` everything;
  ``**`` inside a segment (``a**b``) acts like ``*``; a trailing ``/`` means ``/**`` (a directory's
  contents), while a bare name such as ``training`` matches only a file of that name;
- ``\\`` escapes the next character; matching is case-sensitive, as git is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from harness.domain.records import ChangeSet

__all__ = ["BuildPlan", "FilterRules", "matches", "nothing_to_do", "plan_builds", "select"]


class FilterRules(Protocol):
    """The path filters of a trigger config (``flavors.GitTrigger`` has them)."""

    @property
    def training_paths(self) -> tuple[str, ...]: ...

    @property
    def serving_paths(self) -> tuple[str, ...]: ...

    @property
    def exclude(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class BuildPlan:
    """Which builds a run needs, the changed paths that call for each, and why."""

    training: bool
    serving: bool
    training_paths: tuple[str, ...]
    serving_paths: tuple[str, ...]
    reason: str


def matches(path: str, pattern: str) -> bool:
    """True when the repo-relative ``path`` matches the glob ``pattern`` (see the module docstring)."""
    return _compile(pattern).fullmatch(_normalize(path)) is not None


def select(paths: Iterable[str], include: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
    """The paths matched by any include pattern (all paths when there is none) and by no exclude pattern.

    Order and duplicates of ``paths`` are kept."""
    include, exclude = tuple(include), tuple(exclude)
    chosen = []
    for path in paths:
        included = not include or any(matches(path, pattern) for pattern in include)
        if included and not any(matches(path, pattern) for pattern in exclude):
            chosen.append(path)
    return chosen


def plan_builds(changes: ChangeSet, cfg: FilterRules, *, force: bool = False, since: str | None = None) -> BuildPlan:
    """Decide the builds for ``changes``: both when forced or when there is no base, else by the filters.

    ``since`` is the commit the changes were asked for (the last good run's); when the source answered without
    a base although one was asked for, that commit is no longer in history and the reason says so, rather
    than calling it a first run."""
    training = tuple(select(changes.paths, cfg.training_paths, cfg.exclude))
    serving = tuple(select(changes.paths, cfg.serving_paths, cfg.exclude))
    if force:
        return BuildPlan(True, True, training, serving, "forced")
    if changes.base is None and since:
        reason = f"the last good commit {since[:12]} is no longer in history; building everything"
        return BuildPlan(True, True, training, serving, reason)
    if changes.base is None:
        return BuildPlan(True, True, training, serving, "first run")
    if not training and not serving:
        reason = f"no change since {changes.base[:12]} matches the training or serving paths"
        return BuildPlan(False, False, training, serving, reason)
    reason = "; ".join(f"{name}: {_summary(hits)}" for name, hits in (("training", training), ("serving", serving)))
    return BuildPlan(bool(training), bool(serving), training, serving, reason)


def nothing_to_do(plan: BuildPlan) -> bool:
    """True when the plan needs neither build, so the run can stop after stage 1."""
    return not plan.training and not plan.serving


def _summary(hits: tuple[str, ...]) -> str:
    if not hits:
        return "unchanged"
    more = f" (+{len(hits) - 1} more)" if len(hits) > 1 else ""
    return f"{hits[0]}{more} changed"


def _normalize(path: str) -> str:
    while path.startswith("./"):
        path = path[2:]
    return path


@functools.lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    while pattern.startswith("./"):
        pattern = pattern[2:]
    pattern = pattern.lstrip("/")
    if pattern.endswith("/"):
        pattern += "**"
    segments = pattern.split("/")
    regex = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "**":
            if last:
                regex.append(".*" if i == 0 else ".+")
            else:
                regex.append("(?:[^/]+/)*")
        else:
            regex.append(_segment(segment) + ("" if last else "/"))
    return re.compile("".join(regex), re.DOTALL)


def _segment(segment: str) -> str:
    """Translate one path segment (no ``/``) to a regex that stays inside the segment."""
    out, i, n = [], 0, len(segment)
    while i < n:
        c = segment[i]
        i += 1
        if c == "*":
            while i < n and segment[i] == "*":
                i += 1
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i < n:
            out.append(re.escape(segment[i]))
            i += 1
        elif c == "[":
            end = _class_end(segment, i)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = segment[i:end]
                i = end + 1
                negate = body[:1] in ("!", "^")
                body = body[1:] if negate else body
                body = body.replace("\\", "\\\\").replace("[", "\\[")
                out.append(f"(?!/)[{'^' if negate else ''}{body}]")
        else:
            out.append(re.escape(c))
    return "".join(out)


def _class_end(segment: str, start: int) -> int:
    """Index of the ``]`` closing a set that opens just before ``start``, or -1 when unclosed."""
    i = start
    if i < len(segment) and segment[i] in "!^":
        i += 1
    if i < len(segment) and segment[i] == "]":
        i += 1
    return segment.find("]", i)
