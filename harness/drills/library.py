"""The drills of a project: the Chaos Toolkit experiments in ``scenarios/drills/``, found by file name.

A drill's name is its file name without the extension; its stage is the first of its tags that names a
pipeline stage (``trigger`` ... ``observation``). A drill for some profiles only (one that uses a stand-in's own
switches) says which in a Chaos Toolkit extension: ``extensions: [{name: lastmile, profiles: [oci-local]}]``;
without it, a drill runs on every profile.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.domain.errors import UserError
from harness.pipeline.stages import NAMES

FOLDER = Path("scenarios") / "drills"
SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Drill:
    """One drill file, as much as listing it needs (chaoslib loads and validates it when it runs)."""

    name: str
    path: Path
    title: str
    tags: tuple[str, ...] = ()
    problem: str = ""  # why the file could not be read, when it could not
    profiles: tuple[str, ...] = ()  # the profiles it is for; () = every profile

    def runs_on(self, profile: str) -> bool:
        return not self.profiles or profile in self.profiles

    @property
    def stage(self) -> str:
        return next((t for t in self.tags if t in NAMES), "")


def folder_of(root: Path) -> Path:
    """Where a project keeps its drills."""
    return root / FOLDER


def read(path: Path) -> Drill:
    """The drill in ``path``; a file that is not a mapping with a title is listed with its problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return Drill(path.stem, path, "", (), f"unreadable: {str(exc).splitlines()[0]}")
    if not isinstance(data, dict):
        return Drill(path.stem, path, "", (), "not a Chaos Toolkit experiment (not a mapping)")
    tags = tuple(str(t) for t in data.get("tags") or ())
    ours = [e for e in data.get("extensions") or () if isinstance(e, dict) and e.get("name") == "lastmile"]
    profiles = tuple(str(p) for e in ours for p in e.get("profiles") or ())
    return Drill(path.stem, path, str(data.get("title") or ""), tags, profiles=profiles)


def discover(folder: Path) -> list[Drill]:
    """Every drill in ``folder``, by name."""
    if not folder.is_dir():
        return []
    return [read(p) for p in sorted(folder.iterdir()) if p.suffix in SUFFIXES and p.is_file()]


def select(drills: Sequence[Drill], names: Iterable[str] = (), tags: Iterable[str] = (),
           profile: str | None = None) -> list[Drill]:
    """The drills named (a name or a path to a drill file), or all of them; then those with any of ``tags``; then,
    with a ``profile``, those for it: all of them leave out the others, a named one for another profile is an
    error."""
    names, wanted = list(names), {t for t in tags if t}
    chosen = list(drills)
    if names:
        by_name = {d.name: d for d in drills}
        chosen = []
        for name in names:
            if name in by_name:
                chosen.append(by_name[name])
            elif Path(name).is_file():
                chosen.append(read(Path(name)))
            else:
                known = ", ".join(sorted(by_name)) or "none"
                raise UserError(f"no drill {name!r}", hint=f"the drills are: {known} (`lastmile drill list`)",
                                exit_code=2)
    if wanted:
        chosen = [d for d in chosen if wanted & set(d.tags)]
    if profile is None:
        return chosen
    elsewhere = [d for d in chosen if not d.runs_on(profile)]
    if names and elsewhere:
        raise UserError(f"drill {elsewhere[0].name} is for profile {', '.join(elsewhere[0].profiles)} only, not "
                        f"{profile}", hint=f"run it with --profile {elsewhere[0].profiles[0]}", exit_code=2)
    return [d for d in chosen if d.runs_on(profile)]
