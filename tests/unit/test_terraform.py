"""The Terraform of the oci profile (adapters/oci/terraform), checked offline: it parses as HCL, its references
resolve, its IAM policies and network rules hold to least privilege, its secrets stay out of defaults, and its
outputs render an ``oci`` profile that lastmile's typed config accepts."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from hcl2 import SerializationOptions

from adapters.oci.terraform import policy, render
from harness.config.flavors import flavor_configs, flavor_tag
from harness.config.settings import load_settings
from harness.domain.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "adapters" / "oci" / "terraform"
OUTPUTS_FIXTURE = Path(__file__).parent / "data" / "terraform-outputs.json"
FILES = ("versions.tf", "variables.tf", "outputs.tf", "network.tf", "storage.tf", "ocir.tf", "vault.tf",
         "datascience.tf", "logging.tf", "devops.tf", "oke.tf", "iam.tf")
SECRET_VARIABLES = {"ocir_auth_token", "s3_access_key_id", "s3_secret_key", "mlflow_password", "github_access_token"}
WORLD = ("0.0.0.0/0", "::/0")
_OPTIONS = SerializationOptions(with_comments=False, strip_string_quotes=True, explicit_blocks=False)


# --- reading the HCL -------------------------------------------------------------------------------------------

@functools.cache
def parsed(name: str) -> dict[str, Any]:
    return hcl2.loads((TERRAFORM / name).read_text(encoding="utf-8"), serialization_options=_OPTIONS)


def blocks(kind: str) -> Iterator[dict[str, Any]]:
    for name in sorted(p.name for p in TERRAFORM.glob("*.tf")):
        yield from parsed(name).get(kind, [])


def labelled(kind: str) -> dict[str, Any]:
    """``variable``/``output`` blocks by name."""
    return {name: body for block in blocks(kind) for name, body in block.items()}


def typed(kind: str) -> dict[tuple[str, str], Any]:
    """``resource``/``data`` blocks by (type, name)."""
    return {(rtype, name): body for block in blocks(kind) for rtype, named in block.items()
            for name, body in named.items()}


def locals_() -> dict[str, Any]:
    return {name: value for block in blocks("locals") for name, value in block.items()}


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def expressions(text: str) -> Iterator[str]:
    """The ``${...}`` expressions in a string, braces balanced (for-expressions nest them)."""
    start = text.find("${")
    while start != -1:
        depth, i = 0, start + 1
        while i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        yield text[start + 2:i]
        start = text.find("${", i)


def references(node: Any, pattern: str) -> set[str]:
    found: set[str] = set()
    for text in strings(node):
        for expression in expressions(text):
            found.update(re.findall(pattern, expression))
    return found


VAR, LOCAL = r"\bvar\.(\w+)", r"\blocal\.(\w+)"
DATA, RESOURCE = r"\bdata\.(\w+\.\w+)", r"(?<![\w.])(oci_\w+\.\w+)"


def everything() -> list[dict[str, Any]]:
    return [parsed(p.name) for p in sorted(TERRAFORM.glob("*.tf"))]


def statements() -> list[str]:
    return [s for body in (typed("resource")[k] for k in typed("resource") if k[0] == "oci_identity_policy")
            for s in body["statements"]]


# --- structure ---------------------------------------------------------------------------------------------------

def test_every_file_by_concern_is_there_and_parses():
    assert sorted(p.name for p in TERRAFORM.glob("*.tf")) == sorted(FILES)
    assert all(parsed(name) for name in FILES)
    assert (TERRAFORM / "terraform.tfvars.example").is_file()


def test_the_oci_provider_is_pinned():
    required = next(blocks("terraform"))["required_providers"][0]["oci"]
    assert required["source"] == "oracle/oci"
    assert re.fullmatch(r"~> \d+\.\d+", required["version"]), required["version"]


def test_every_variable_used_is_declared_and_every_declared_one_is_used():
    used = references(everything(), VAR)
    declared = set(labelled("variable"))
    assert used - declared == set(), "used but not declared"
    assert declared - used == set(), "declared but never used"


def test_every_local_used_is_defined():
    assert references(everything(), LOCAL) - set(locals_()) == set()


def test_every_resource_and_data_source_referenced_exists():
    resources = {f"{t}.{n}" for t, n in typed("resource")}
    sources = {f"{t}.{n}" for t, n in typed("data")}
    assert references(everything(), RESOURCE) - resources == set()
    assert references(everything(), DATA) - sources == set()


# --- IAM ---------------------------------------------------------------------------------------------------------

def test_every_policy_statement_parses_and_holds_to_least_privilege():
    texts = statements()
    assert len(texts) >= 20
    for text in texts:
        statement = policy.parse(text)
        assert statement.verb in policy.VERBS
        assert policy.problems(statement) == [], text
        assert statement.location == "compartment id X" and " in compartment id ${local.compartment_id}" in text


def test_any_user_appears_only_for_the_serving_workload():
    for statement in map(policy.parse, statements()):
        if statement.subject_kind == "any-user":
            condition = statement.condition or ""
            assert "request.principal.type = 'workload'" in condition
            assert "request.principal.cluster_id" in condition and "request.principal.service_account" in condition


def test_the_grammar_refuses_what_the_rules_forbid():
    assert policy.problems(policy.parse("Allow group admins to manage all-resources in compartment lastmile")) == \
        ["manage all-resources"]
    assert policy.problems(policy.parse("Allow group ci to read buckets in tenancy")) == ["not scoped to a compartment"]
    assert policy.problems(policy.parse("Allow any-user to read objects in compartment id ${x}")) == \
        ["any-user without a where clause naming request.principal.type"]
    with pytest.raises(policy.PolicySyntaxError, match="verb"):
        policy.parse("Allow group ci to administer buckets in compartment lastmile")
    with pytest.raises(policy.PolicySyntaxError, match="unbalanced"):
        policy.parse("Allow group ci to read objects in compartment c where all {target.bucket.name = 'a'")
    with pytest.raises(policy.PolicySyntaxError):
        policy.parse("Allow group ci read buckets in compartment lastmile")


def test_dynamic_groups_match_only_principals_in_the_lastmile_compartment():
    groups = [body for (t, _), body in typed("resource").items() if t == "oci_identity_dynamic_group"]
    assert len(groups) == 4
    for body in groups:
        assert "compartment.id = '${local.compartment_id}'" in body["matching_rule"], body["matching_rule"]


def test_identity_changes_go_to_the_home_region():
    identity = {k: v for k, v in typed("resource").items() if k[0].startswith("oci_identity_")}
    assert identity and all(body.get("provider") == "${oci.home}" for body in identity.values())


# --- network -----------------------------------------------------------------------------------------------------

def _may_be_world(rule: dict[str, Any], for_each: Any = None) -> bool:
    """A rule's source is the world when it says so, or comes from a variable that may hold it: one whose default
    holds it or whose validation does not refuse it."""
    source = rule.get("source", "")
    if source in WORLD:
        return True
    names = references(source, VAR)
    if re.search(r"\b(each|\w+)\.value", source):
        names |= references(for_each, VAR)
    variables = labelled("variable")
    for name in names:
        spec = variables[name]
        refused = any("0.0.0.0/0" in json.dumps(v.get("condition")) for v in spec.get("validation", []))
        if any(w in json.dumps(spec.get("default")) for w in WORLD) or not refused:
            return True
    return False


def _ingress_rules(body: dict[str, Any]) -> Iterator[tuple[dict[str, Any], Any]]:
    for rule in body.get("ingress_security_rules", []):
        yield rule, None
    for dynamic in body.get("dynamic", []):
        for name, spec in dynamic.items():
            if name == "ingress_security_rules":
                for content in spec["content"]:
                    yield content, spec["for_each"]


def test_only_the_load_balancer_subnet_takes_ingress_from_anywhere_and_only_on_80_and_443():
    lists = {n: b for (t, n), b in typed("resource").items() if t == "oci_core_security_list"}
    assert set(lists) == {"oke_api", "oke_nodes", "oke_lb", "jobs"}
    for name, body in lists.items():
        world = [(rule, fe) for rule, fe in _ingress_rules(body) if _may_be_world(rule, fe)]
        if name != "oke_lb":
            assert world == [], name
            continue
        assert world, "the prediction endpoint's listener"
        for rule, _ in world:
            ports = rule["tcp_options"][0]
            assert ports["min"] == ports["max"] == "${ingress_security_rules.value[1]}"
    assert set(locals_()["lb_ports"]) <= {80, 443}


def test_no_network_security_group_rule_takes_ingress_from_anywhere():
    rules = [(b, b.get("for_each")) for (t, _), b in typed("resource").items()
             if t == "oci_core_network_security_group_security_rule" and b["direction"] == "INGRESS"]
    assert rules
    assert [b for b, fe in rules if _may_be_world(b, fe)] == []


def test_the_default_security_list_is_emptied():
    body = typed("resource")[("oci_core_default_security_list", "this")]
    assert "ingress_security_rules" not in body and "egress_security_rules" not in body


def test_private_subnets_refuse_public_ips_and_leave_through_nat_and_the_service_gateway():
    subnets = {n: b for (t, n), b in typed("resource").items() if t == "oci_core_subnet"}
    for name in ("oke_nodes", "jobs"):
        assert subnets[name]["prohibit_public_ip_on_vnic"] is True
        assert subnets[name]["route_table_id"] == "${oci_core_route_table.private.id}"
    targets = {r["network_entity_id"] for r in typed("resource")[("oci_core_route_table", "private")]["route_rules"]}
    assert targets == {"${oci_core_nat_gateway.this.id}", "${oci_core_service_gateway.this.id}"}


# --- storage, registry, secrets --------------------------------------------------------------------------------

def test_buckets_are_private_versioned_and_encrypted_with_the_vault_key():
    bucket = typed("resource")[("oci_objectstorage_bucket", "this")]
    assert bucket["access_type"] == "NoPublicAccess"
    assert bucket["versioning"] == "Enabled"
    assert bucket["kms_key_id"] == "${oci_kms_key.this.id}"


def test_ocir_repositories_are_private():
    assert typed("resource")[("oci_artifacts_container_repository", "this")]["is_public"] is False


def test_secret_values_are_sensitive_variables_without_defaults():
    variables = labelled("variable")
    sensitive = {name for name, spec in variables.items() if spec.get("sensitive") is True}
    assert sensitive == SECRET_VARIABLES
    assert all("default" not in variables[name] for name in sensitive)
    assert references(locals_()["secrets"], VAR) == SECRET_VARIABLES
    example = (TERRAFORM / "terraform.tfvars.example").read_text(encoding="utf-8")
    assert not any(re.search(rf"^\s*{name}\s*=", example, re.MULTILINE) for name in SECRET_VARIABLES)


def test_the_devops_build_stage_runs_the_repository_build_spec_and_a_trigger_starts_it():
    stage = typed("resource")[("oci_devops_build_pipeline_stage", "build")]
    assert stage["build_pipeline_stage_type"] == "BUILD"
    assert stage["build_spec_file"] == "${var.build_spec_file}"
    assert labelled("variable")["build_spec_file"]["default"] == "build_spec.yaml"
    action = typed("resource")[("oci_devops_trigger", "push")]["actions"][0]
    assert action["build_pipeline_id"] == "${oci_devops_build_pipeline.this.id}"


# --- outputs and the rendered profile --------------------------------------------------------------------------

def fixture_outputs() -> dict[str, Any]:
    return render.read_outputs(OUTPUTS_FIXTURE.read_text(encoding="utf-8"), OUTPUTS_FIXTURE.name)


def test_every_output_the_profile_needs_is_declared():
    assert {key.output for key in render.TABLE} - set(labelled("output")) == set()


def test_the_sample_outputs_match_the_declared_outputs():
    assert set(fixture_outputs()) == set(labelled("output"))


def test_every_required_field_of_the_profiles_flavors_has_an_output():
    keyed = {(key.section, key.field) for key in render.TABLE}
    for port, flavor in render.FLAVORS.items():
        config = next(c for c in flavor_configs(port) if flavor_tag(c) == flavor)
        required = {name for name, field in config.model_fields.items() if field.is_required() and name != "flavor"}
        assert {(port, name) for name in required} <= keyed, f"{port}: {flavor}"


def _config_with(tmp_path: Path) -> Path:
    text = render.updated_config((ROOT / "lastmile.yaml").read_text(encoding="utf-8"), render.render(fixture_outputs())[0])
    path = tmp_path / "lastmile.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_rendered_profile_validates_against_lastmiles_typed_config(tmp_path):
    settings = load_settings(_config_with(tmp_path), "oci", environ={})
    outputs = fixture_outputs()
    assert settings.ports.job_runner.project_id == outputs["datascience_project_id"]
    assert settings.ports.image_builder.build_pipeline_id == outputs["devops_build_pipeline_id"]
    assert settings.ports.deployer.cluster_id == outputs["oke_cluster_id"]
    assert settings.ports.log_sink.log_id == outputs["events_log_id"]
    assert settings.ports.artifact_registry.auth_token == f"vault:{outputs['ocir_auth_token_secret_id']}"
    assert settings.buckets.artifacts == outputs["bucket_artifacts"]


def test_writing_in_place_keeps_the_other_profiles_the_comments_and_the_users_keys():
    original = (ROOT / "lastmile.yaml").read_text(encoding="utf-8").replace(
        "      object_store:\n        flavor: oci\n        namespace: mytenancy\n",
        "      object_store:\n        flavor: oci\n        auth: {method: instance_principal}\n        namespace: mytenancy\n", 1)
    assert "instance_principal" in original
    updated = render.updated_config(original, render.render(fixture_outputs())[0])
    before, after = yaml.safe_load(original), yaml.safe_load(updated)
    assert {k: v for k, v in after["profiles"].items() if k != "oci"} == \
        {k: v for k, v in before["profiles"].items() if k != "oci"}
    assert {k: v for k, v in after.items() if k != "profiles"} == {k: v for k, v in before.items() if k != "profiles"}
    assert after["profiles"]["oci"]["ports"]["object_store"]["auth"] == {"method": "instance_principal"}
    kept = [line for line in original.splitlines() if line.lstrip().startswith("#") and line.startswith(("#", "  #"))]
    assert kept and all(line in updated.splitlines() for line in kept)


CONFIG_WITHOUT_OCI = """\
project: lastmile
profiles:
  local:
    standins:
      oci:
        port: 8181   # the stand-in's, not the profile
  # the containers profile comes next
  containers:
    standins: {mode: containers}

# a comment of the top level
state_dir: .lastmile
"""


def test_an_oci_profile_is_added_at_the_end_of_the_profiles_when_there_is_none():
    updated = render.updated_config(CONFIG_WITHOUT_OCI, render.render(fixture_outputs())[0])
    data = yaml.safe_load(updated)
    assert list(data["profiles"]) == ["local", "containers", "oci"]
    assert data["profiles"]["local"]["standins"]["oci"] == {"port": 8181}
    assert data["profiles"]["oci"]["ports"]["job_runner"]["flavor"] == "datascience"
    assert "# the containers profile comes next" in updated and "# a comment of the top level" in updated
    assert updated.index("  oci:\n") < updated.index("# a comment of the top level")


def test_a_config_without_profiles_gets_them():
    updated = render.updated_config("project: lastmile", render.render(fixture_outputs())[0])
    assert list(yaml.safe_load(updated)["profiles"]) == ["oci"]


def test_an_optional_key_is_rendered_only_where_the_flavor_declares_it():
    table = (*render.TABLE, render.Key("job_runner", "shape", "jobs_shape", optional=True),
             render.Key("job_runner", "no_such_field", "jobs_subnet_id", optional=True))
    profile, notes = render.render({**fixture_outputs(), "jobs_shape": "VM.Standard.E5.Flex"}, table)
    assert profile["ports"]["job_runner"]["shape"] == "VM.Standard.E5.Flex"
    assert "no_such_field" not in profile["ports"]["job_runner"]
    assert any("ports.job_runner.no_such_field" in note for note in notes)


def test_a_missing_output_is_one_line_naming_it(tmp_path, capsys):
    outputs = json.loads(OUTPUTS_FIXTURE.read_text(encoding="utf-8"))
    del outputs["datascience_project_id"]
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs), encoding="utf-8")
    assert render.main([str(path), "--config", str(tmp_path / "none.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "datascience_project_id" in err and "ports.job_runner.project_id" in err


def test_input_that_is_not_terraform_output_is_one_line(tmp_path, capsys):
    path = tmp_path / "outputs.json"
    path.write_text("Error: no state", encoding="utf-8")
    assert render.main([str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "not JSON" in err


def test_write_replaces_the_profile_and_the_result_loads(tmp_path, capsys):
    config = tmp_path / "lastmile.yaml"
    config.write_text((ROOT / "lastmile.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    assert render.main([str(OUTPUTS_FIXTURE), "--config", str(config), "--write"]) == 0
    assert load_settings(config, "oci", environ={}).ports.secret_store.vault_id == \
        fixture_outputs()["vault_id"]
    assert "wrote profiles.oci" in capsys.readouterr().err


def test_a_profile_that_does_not_validate_is_not_written(tmp_path, capsys):
    config = tmp_path / "lastmile.yaml"
    original = (ROOT / "lastmile.yaml").read_text(encoding="utf-8")
    config.write_text(original, encoding="utf-8")
    outputs = {**fixture_outputs(), "bucket_data": "Not A Bucket"}
    (tmp_path / "outputs.json").write_text(json.dumps(outputs), encoding="utf-8")
    assert render.main([str(tmp_path / "outputs.json"), "--config", str(config), "--write"]) == 2
    assert config.read_text(encoding="utf-8") == original
    assert "buckets.data" in capsys.readouterr().err


def test_help_says_what_it_reads(capsys):
    with pytest.raises(SystemExit) as exit_:
        render.main(["--help"])
    assert exit_.value.code == 0
    assert "terraform output -json" in capsys.readouterr().out


def test_render_errors_are_config_errors_with_exit_code_2():
    with pytest.raises(ConfigError) as error:
        render.read_outputs("{}")
    assert error.value.exit_code == 2
