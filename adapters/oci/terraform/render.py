"""``lastmile.yaml``'s ``oci`` profile, rendered from ``terraform output -json`` of the Terraform beside this module.

:data:`TABLE` says which Terraform output fills which key of the profile. A key marked ``optional`` belongs to a
flavor whose config is still growing (Data Science jobs, DevOps builds, OKE): it is rendered only when the
installed flavor's config has that field, and skipped with a note otherwise, so the profile always validates
against the lastmile it is rendered for.

Run as ``scripts/render-oci-profile.py`` (see ``--help``): it prints the profile, or with ``--write`` replaces the
``oci`` profile in the config file, keeping the other profiles, the comments outside the ``oci`` block and the
keys the user added inside it (``auth``, for one).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.config.flavors import flavor_configs, flavor_tag
from harness.config.settings import CONFIG_NAME, deep_merge, load_settings
from harness.domain.errors import ConfigError

PROFILE = "oci"
PROG = "render-oci-profile"


@dataclass(frozen=True)
class Key:
    """One key of the profile: ``section`` is a port (``ports.<port>``) or ``buckets``; ``output`` the Terraform
    output that fills it; ``vault_ref`` renders the value (a secret's OCID) as ``vault:OCID``."""

    section: str
    field: str
    output: str
    vault_ref: bool = False
    optional: bool = False

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.field}" if self.section == "buckets" else f"ports.{self.section}.{self.field}"


FLAVORS: Mapping[str, str] = {
    "object_store": "oci",
    "artifact_registry": "ocir",
    "image_builder": "devops",
    "job_runner": "datascience",
    "model_registry": "mlflow",
    "deployer": "oke",
    "secret_store": "vault",
    "log_sink": "oci-logging",
    "fault_injector": "none",
}
"""The flavor of every port the profile sets; ``source_trigger`` stays the base's (git)."""

TABLE: tuple[Key, ...] = (
    Key("buckets", "data", "bucket_data"),
    Key("buckets", "artifacts", "bucket_artifacts"),
    Key("buckets", "predictions", "bucket_predictions"),
    Key("object_store", "namespace", "namespace"),
    Key("object_store", "region", "region"),
    Key("object_store", "compartment_id", "compartment_id"),
    Key("object_store", "s3_access_key_id", "s3_access_key_id_secret_id", vault_ref=True),
    Key("object_store", "s3_secret_key", "s3_secret_key_secret_id", vault_ref=True),
    Key("artifact_registry", "region", "region"),
    Key("artifact_registry", "namespace", "namespace"),
    Key("artifact_registry", "username", "ocir_username"),
    Key("artifact_registry", "auth_token", "ocir_auth_token_secret_id", vault_ref=True),
    Key("artifact_registry", "repository_prefix", "ocir_repository_prefix"),
    Key("image_builder", "build_pipeline_id", "devops_build_pipeline_id"),
    Key("image_builder", "project_id", "devops_project_id", optional=True),
    Key("image_builder", "compartment_id", "compartment_id", optional=True),
    Key("image_builder", "log_id", "builds_log_id", optional=True),
    Key("image_builder", "region", "region", optional=True),
    Key("job_runner", "compartment_id", "compartment_id"),
    Key("job_runner", "project_id", "datascience_project_id"),
    Key("job_runner", "log_group_id", "log_group_id"),
    Key("job_runner", "log_id", "jobs_log_id", optional=True),
    Key("job_runner", "subnet_id", "jobs_subnet_id", optional=True),
    Key("job_runner", "region", "region", optional=True),
    Key("model_registry", "tracking_uri", "mlflow_tracking_uri"),
    Key("deployer", "cluster_id", "oke_cluster_id"),
    Key("deployer", "namespace", "kubernetes_namespace"),
    Key("deployer", "service_account", "serving_service_account", optional=True),
    Key("deployer", "lb_subnet_id", "oke_lb_subnet_id", optional=True),
    Key("deployer", "log_id", "serving_log_id", optional=True),
    Key("deployer", "region", "region", optional=True),
    Key("secret_store", "vault_id", "vault_id"),
    Key("secret_store", "compartment_id", "compartment_id"),
    Key("secret_store", "region", "region"),
    Key("log_sink", "log_id", "events_log_id"),
    Key("log_sink", "log_group_id", "log_group_id"),
    Key("log_sink", "compartment_id", "compartment_id"),
    Key("log_sink", "region", "region"),
)


class RenderError(ConfigError):
    """Terraform's outputs cannot make the profile: one line, exit code 2."""


def read_outputs(text: str, source: str = "stdin") -> dict[str, Any]:
    """Output name to value, from ``terraform output -json`` (``{"name": {"value": ...}}``) or a plain
    ``{"name": value}`` mapping."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RenderError(f"{source}: not JSON (line {exc.lineno}: {exc.msg}); pass `terraform output -json`") from None
    if not isinstance(data, dict) or not data:
        raise RenderError(f"{source}: no outputs; run `terraform apply` in adapters/oci/terraform first")
    return {name: (item["value"] if isinstance(item, dict) and "value" in item else item) for name, item in data.items()}


def fields_of(port: str, flavor: str) -> set[str]:
    """The fields the installed flavor's config declares (what the profile may set)."""
    for cls in flavor_configs(port):
        if flavor_tag(cls) == flavor:
            return set(cls.model_fields)
    raise RenderError(f"this lastmile has no flavor '{flavor}' for {port}; install the oci adapters")


def render(outputs: Mapping[str, Any], table: Iterable[Key] = TABLE) -> tuple[dict[str, Any], list[str]]:
    """The ``oci`` profile as data, and notes on the optional keys left out. Raises :class:`RenderError` naming
    every required output that is missing or empty."""
    table = tuple(table)
    missing = [k for k in table if not k.optional and outputs.get(k.output) in (None, "")]
    if missing:
        names = ", ".join(dict.fromkeys(k.output for k in missing))
        raise RenderError(f"terraform output lacks {names} (for {missing[0].dotted}"
                          f"{f' and {len(missing) - 1} more keys' if len(missing) > 1 else ''}); "
                          "apply this version of adapters/oci/terraform")
    ports: dict[str, dict[str, Any]] = {port: {"flavor": flavor} for port, flavor in FLAVORS.items()}
    profile: dict[str, Any] = {"standins": {"mode": "none"}, "buckets": {}, "ports": ports}
    unknown, unset = [], []
    for key in table:
        value = outputs.get(key.output)
        if key.optional and key.field not in fields_of(key.section, FLAVORS[key.section]):
            unknown.append(key.dotted)
        elif key.optional and value in (None, ""):
            unset.append(f"{key.dotted} (no output {key.output})")
        else:
            value = f"vault:{value}" if key.vault_ref else value
            (profile["buckets"] if key.section == "buckets" else ports[key.section])[key.field] = value
    notes = [f"not rendered, no such field in this lastmile's flavors yet: {', '.join(unknown)}"] if unknown else []
    notes += [f"not rendered: {', '.join(unset)}"] if unset else []
    return profile, notes


def dump(profile: Mapping[str, Any], indent: int = 2) -> str:
    """The profile as the ``oci:`` block of ``profiles:``, indented to sit under it."""
    body = yaml.safe_dump({PROFILE: dict(profile)}, sort_keys=False, default_flow_style=False, width=120)
    return "".join(" " * indent + line if line.strip() else line for line in body.splitlines(keepends=True))


_KEY = re.compile(r"^(?P<indent> *)(?P<key>[\w.-]+):\s*(#.*)?$")
"""A line that opens a block-style mapping key (``key:`` and maybe a comment, its value on the lines below)."""


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block_end(lines: list[str], start: int, depth: int) -> int:
    """Where the block opened at ``start`` ends: the next line indented no deeper than ``depth`` (a comment there
    belongs to what follows it); trailing blank lines stay outside."""
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > depth):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return end


def _oci_lines(lines: list[str]) -> tuple[int, int, int] | None:
    """The lines [start, end) that ``profiles.oci`` takes (an empty range where it is to be added) and the profiles'
    indent; None when there is no block-style ``profiles:``."""
    top = next((i for i, line in enumerate(lines) if (m := _KEY.match(line)) and not m["indent"]
                and m["key"] == "profiles"), None)
    if top is None:
        return None
    section_end = next((i for i in range(top + 1, len(lines))
                        if lines[i].strip() and not _indent(lines[i]) and not lines[i].startswith("#")), len(lines))
    while section_end > top + 1 and (not lines[section_end - 1].strip() or lines[section_end - 1].startswith("#")):
        section_end -= 1
    keys = [i for i in range(top + 1, section_end) if lines[i].strip() and not lines[i].lstrip().startswith("#")]
    depth = _indent(lines[keys[0]]) if keys else 2
    for i in keys:
        match = _KEY.match(lines[i])
        if match and len(match["indent"]) == depth and match["key"] == PROFILE:
            return i, _block_end(lines, i, depth), depth
    return section_end, section_end, depth


def updated_config(text: str, profile: Mapping[str, Any]) -> str:
    """The config text with its ``oci`` profile replaced (or added): keys the user added inside it are kept
    (merged under the rendered ones), everything outside it stays as it was, comments included."""
    raw = yaml.safe_load(text) or {}
    existing = ((raw.get("profiles") or {}).get(PROFILE)) or {}
    merged = _rendered_first(deep_merge(existing, profile), profile)
    text = text if not text or text.endswith("\n") else text + "\n"
    lines = text.splitlines(keepends=True)
    where = _oci_lines(lines)
    if where is None:
        if "profiles" in raw:
            raise RenderError(f"{CONFIG_NAME}: profiles: is not a block mapping, so profiles.{PROFILE} cannot be "
                              "written in place; print the profile (no --write) and paste it")
        return text + "profiles:\n" + dump(merged)
    start, end, depth = where
    return "".join(lines[:start]) + dump(merged, indent=depth) + "".join(lines[end:])


def _rendered_first(merged: dict[str, Any], rendered: Mapping[str, Any]) -> dict[str, Any]:
    """``merged`` with the rendered keys in the rendered order, then the user's own."""
    order = [*rendered, *(k for k in merged if k not in rendered)]
    return {k: _rendered_first(merged[k], rendered[k]) if isinstance(merged[k], dict)
            and isinstance(rendered.get(k), Mapping) else merged[k] for k in order}


def validate(config_text: str, source: str) -> None:
    """Load the ``oci`` profile of this config text the way lastmile does; a problem is a :class:`RenderError`."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / CONFIG_NAME
        path.write_text(config_text, encoding="utf-8")
        try:
            load_settings(path, PROFILE, environ={})
        except ConfigError as exc:
            raise RenderError(f"{source}: the rendered profile does not validate: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (0, or 2 with one line on stderr)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Render lastmile.yaml's `oci` profile from `terraform output -json` of adapters/oci/terraform.",
        epilog="Example: terraform -chdir=adapters/oci/terraform output -json | scripts/render-oci-profile.py --write")
    parser.add_argument("outputs", nargs="?", default="-",
                        help="a file holding `terraform output -json`; - or nothing reads stdin")
    parser.add_argument("--config", type=Path, default=Path(CONFIG_NAME),
                        help=f"the config the profile is checked against and --write updates (default ./{CONFIG_NAME})")
    parser.add_argument("--write", action="store_true",
                        help="replace profiles.oci in --config in place (comments inside that block are not kept)")
    args = parser.parse_args(argv)
    try:
        source = "stdin" if args.outputs == "-" else args.outputs
        text = sys.stdin.read() if args.outputs == "-" else _read(Path(args.outputs))
        profile, notes = render(read_outputs(text, source))
        config = _read(args.config) if args.config.is_file() else None
        if config is not None:
            new = updated_config(config, profile)
            validate(new, str(args.config))
        elif args.write:
            raise RenderError(f"{args.config}: no such file to --write")
        else:
            notes.append(f"not checked against a config: no {args.config}")
        if args.write and config is not None:
            args.config.write_text(new, encoding="utf-8")
            notes.append(f"wrote profiles.{PROFILE} to {args.config}")
        else:
            sys.stdout.write(dump(profile, indent=0))
        for note in notes:
            print(f"{PROG}: {note}", file=sys.stderr)
    except ConfigError as exc:
        print(f"{PROG}: error: {exc.line()}", file=sys.stderr)
        return exc.exit_code
    return 0


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RenderError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
