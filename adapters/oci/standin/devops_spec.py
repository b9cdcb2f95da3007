"""An OCI DevOps build specification (``build_spec.yaml``), read and checked as the managed build stage reads it.

https://docs.oracle.com/iaas/Content/devops/using/build_specs.htm: ``version: 0.1``, ``component: build``,
``timeoutInSeconds``, ``shell`` (bash), ``env`` with ``variables``, ``vaultVariables`` (name -> secret OCID) and
``exportedVariables`` (names), ``steps`` (``type: Command``, ``name``, ``command``, ``timeoutInSeconds``,
``onFailure``), ``outputArtifacts`` (``name``, ``type`` DOCKER_IMAGE or BINARY, ``location``). Input artifacts are
refused: the stand-in fetches none. What does not follow the format is a :class:`SpecError` naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

ARTIFACT_TYPES = ("DOCKER_IMAGE", "BINARY")
SHELLS = ("bash", "sh")
DEFAULT_TIMEOUT_S = 28800
"""OCI's default and greatest build timeout (8 hours)."""


class SpecError(ValueError):
    """The build spec does not follow OCI's format."""


@dataclass(frozen=True)
class Command:
    """A command to run (a step, or one of a step's ``onFailure`` commands)."""

    command: str
    timeout_s: int
    shell: str = "bash"
    name: str = ""
    on_failure: tuple[Command, ...] = ()


@dataclass(frozen=True)
class OutputArtifact:
    name: str
    type: str
    location: str


@dataclass(frozen=True)
class BuildSpec:
    """A parsed ``build_spec.yaml``."""

    timeout_s: int
    shell: str
    variables: dict[str, str] = field(default_factory=dict)
    vault_variables: dict[str, str] = field(default_factory=dict)
    exported_variables: tuple[str, ...] = ()
    steps: tuple[Command, ...] = ()
    output_artifacts: tuple[OutputArtifact, ...] = ()


def parse(text: str) -> BuildSpec:
    """The build spec in ``text``; :class:`SpecError` when it does not follow the format."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"build spec is not YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SpecError("build spec must be a mapping")
    if str(raw.get("version")) != "0.1":
        raise SpecError(f"version must be 0.1, not {raw.get('version')!r}")
    if raw.get("component") != "build":
        raise SpecError(f"component must be build, not {raw.get('component')!r}")
    if raw.get("inputArtifacts"):
        raise SpecError("inputArtifacts: the stand-in fetches no input artifacts")
    shell = _shell(raw.get("shell", "bash"), "shell")
    env = _mapping(raw.get("env") or {}, "env")
    variables = {str(k): str(v) for k, v in _mapping(env.get("variables") or {}, "env.variables").items()}
    vault = {str(k): str(v) for k, v in _mapping(env.get("vaultVariables") or {}, "env.vaultVariables").items()}
    for name, ocid in vault.items():
        if not ocid.startswith("ocid1.vaultsecret."):
            raise SpecError(f"env.vaultVariables.{name} must be a secret's OCID (ocid1.vaultsecret...)")
    exported = env.get("exportedVariables") or []
    if not isinstance(exported, list) or not all(isinstance(n, str) and n.isidentifier() for n in exported):
        raise SpecError("env.exportedVariables must be a list of variable names")
    steps = raw.get("steps")
    if not isinstance(steps, list) or not steps:
        raise SpecError("steps must be a non-empty list")
    artifacts = raw.get("outputArtifacts") or []
    if not isinstance(artifacts, list):
        raise SpecError("outputArtifacts must be a list")
    return BuildSpec(
        timeout_s=_timeout(raw.get("timeoutInSeconds", DEFAULT_TIMEOUT_S), "timeoutInSeconds"),
        shell=shell, variables=variables, vault_variables=vault, exported_variables=tuple(exported),
        steps=tuple(_command(step, f"steps[{i}]", shell, named=True) for i, step in enumerate(steps)),
        output_artifacts=tuple(_artifact(a, f"outputArtifacts[{i}]") for i, a in enumerate(artifacts)))


def _command(raw: object, where: str, shell: str, named: bool) -> Command:
    step = _mapping(raw, where)
    if step.get("type", "Command") != "Command":
        raise SpecError(f"{where}.type must be Command")
    if named and not step.get("name"):
        raise SpecError(f"{where}.name is required")
    if not isinstance(step.get("command"), str) or not step["command"].strip():
        raise SpecError(f"{where}.command is required")
    on_failure = step.get("onFailure") or []
    if not isinstance(on_failure, list):
        raise SpecError(f"{where}.onFailure must be a list")
    return Command(command=step["command"], timeout_s=_timeout(step.get("timeoutInSeconds", DEFAULT_TIMEOUT_S),
                                                               f"{where}.timeoutInSeconds"),
                   shell=_shell(step.get("shell", shell), f"{where}.shell"), name=str(step.get("name", "")),
                   on_failure=tuple(_command(c, f"{where}.onFailure[{i}]", shell, named=False)
                                    for i, c in enumerate(on_failure)))


def _artifact(raw: object, where: str) -> OutputArtifact:
    artifact = _mapping(raw, where)
    if artifact.get("type") not in ARTIFACT_TYPES:
        raise SpecError(f"{where}.type must be one of {', '.join(ARTIFACT_TYPES)}")
    if not artifact.get("name") or not artifact.get("location"):
        raise SpecError(f"{where} needs a name and a location")
    return OutputArtifact(str(artifact["name"]), artifact["type"], str(artifact["location"]))


def _mapping(raw: object, where: str) -> dict:
    if not isinstance(raw, dict):
        raise SpecError(f"{where} must be a mapping")
    return raw


def _shell(raw: object, where: str) -> str:
    if raw not in SHELLS:
        raise SpecError(f"{where} must be one of {', '.join(SHELLS)}")
    return str(raw)


def _timeout(raw: object, where: str) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= DEFAULT_TIMEOUT_S:
        raise SpecError(f"{where} must be a whole number of seconds from 1 to {DEFAULT_TIMEOUT_S}")
    return raw
