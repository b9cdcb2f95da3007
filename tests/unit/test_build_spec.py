"""``build_spec.yaml`` follows OCI DevOps' build spec format, and the stand-in's reader refuses what OCI refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from adapters.oci.standin.devops_spec import ARTIFACT_TYPES, SpecError, parse

SPEC = Path(__file__).resolve().parents[2] / "build_spec.yaml"


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(SPEC.read_text())


def test_header_is_oci_build_spec_0_1(raw):
    assert (str(raw["version"]), raw["component"], raw["shell"]) == ("0.1", "build", "bash")
    assert isinstance(raw["timeoutInSeconds"], int)


def test_every_step_is_a_named_command_with_a_timeout(raw):
    for step in raw["steps"]:
        assert step["type"] == "Command" and step["name"] and step["command"].strip()
        assert isinstance(step["timeoutInSeconds"], int)
        assert set(step) <= {"type", "name", "command", "timeoutInSeconds", "onFailure", "shell",
                             "failImmediatelyOnError"}


def test_output_artifacts_are_docker_images_or_binaries(raw):
    assert raw["outputArtifacts"]
    assert all(a["type"] in ARTIFACT_TYPES and a["name"] and a["location"] for a in raw["outputArtifacts"])


def test_the_auth_token_is_a_vault_variable_and_the_digest_is_exported():
    spec = parse(SPEC.read_text())

    assert spec.vault_variables["OCIR_AUTH_TOKEN"].startswith("ocid1.vaultsecret.")
    assert "BUNDLE_DIGEST" in spec.exported_variables
    assert any("adapters.shared.bundle_push" in step.command and "--password-env OCIR_AUTH_TOKEN" in step.command
               for step in spec.steps)


@pytest.mark.parametrize(("text", "named"), [
    ("version: 0.2\ncomponent: build\nsteps: [{name: a, command: b}]", "version"),
    ("version: 0.1\ncomponent: deploy\nsteps: [{name: a, command: b}]", "component"),
    ("version: 0.1\ncomponent: build\nsteps: []", "steps"),
    ("version: 0.1\ncomponent: build\nsteps: [{command: b}]", "steps[0].name"),
    ("version: 0.1\ncomponent: build\nsteps: [{name: a, command: b, timeoutInSeconds: 0}]", "timeoutInSeconds"),
    ("version: 0.1\ncomponent: build\nenv: {vaultVariables: {X: plain}}\nsteps: [{name: a, command: b}]",
     "vaultVariables.X"),
    ("version: 0.1\ncomponent: build\nsteps: [{name: a, command: b}]\noutputArtifacts: [{name: x, type: ZIP, "
     "location: y}]", "outputArtifacts[0].type"),
])
def test_a_spec_off_the_format_is_refused_naming_the_key(text, named):
    with pytest.raises(SpecError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse(text)
