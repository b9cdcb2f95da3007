"""The seven stages, defined once: their order and what each does. The runner, the journal, the views and
``lastmile run --help`` all read this list."""

from __future__ import annotations

STAGES: dict[str, str] = {
    "trigger": "which source changed since the last good run, through the path filters",
    "build": "the training and serving builds, pushed by digest",
    "artifacts": "the training data in object storage under its sha256",
    "training": "the training job: trains, evaluates, registers a version",
    "registry": "the promotion gate moves @champion (and @previous)",
    "deployment": "the champion rolled out behind the stable endpoint, rolled back when it does not serve",
    "observation": "the endpoint checked, replica metrics read, prediction samples found",
}
NAMES: tuple[str, ...] = tuple(STAGES)


def through(last: str) -> tuple[str, ...]:
    """The stages up to and including ``last``; a ``ValueError`` naming the allowed ones otherwise."""
    if last not in STAGES:
        raise ValueError(f"no stage {last!r}; the stages are {', '.join(NAMES)}")
    return NAMES[: NAMES.index(last) + 1]


def describe() -> str:
    return "\n".join(f"{i}. {name}: {what}" for i, (name, what) in enumerate(STAGES.items(), 1))
