"""The in-memory fakes behave like the backends they stand in for."""

from __future__ import annotations

import inspect
import json

import pytest

from adapters.local.memory import (
    MemoryDeployer,
    MemoryImageBuilder,
    MemoryJobRunner,
    MemoryLogSink,
    MemoryModelRegistry,
    MemoryObjectStore,
    MemoryRegistry,
    MemorySecretStore,
    MemorySourceTrigger,
)
from harness import ports
from harness.errors import IntegrityError, NotFound, UserError
from harness.records import (
    ArtifactRef,
    DeploymentSpec,
    Descriptor,
    JobSpec,
    JobState,
    LogEvent,
    ModelVersion,
    Secret,
    SecretRef,
    oci_digest,
)
from tests import contracts

FAKES = {
    "object_store": MemoryObjectStore,
    "artifact_registry": MemoryRegistry,
    "image_builder": lambda: MemoryImageBuilder(MemoryRegistry()),
    "job_runner": MemoryJobRunner,
    "model_registry": MemoryModelRegistry,
    "deployer": MemoryDeployer,
    "secret_store": MemorySecretStore,
    "log_sink": MemoryLogSink,
    "source_trigger": MemorySourceTrigger,
}


# every port ------------------------------------------------------------------------------------
def test_every_port_has_a_fake():
    assert set(FAKES) == set(ports.PORTS)


@pytest.mark.parametrize("port", sorted(ports.PORTS))
def test_fake_satisfies_port(port):
    assert isinstance(FAKES[port](), ports.PORTS[port])


def _public_members(protocol: type) -> dict[str, object]:
    return {name: value for name, value in vars(protocol).items() if not name.startswith("_")}


@pytest.mark.parametrize("port", sorted(ports.PORTS))
def test_fake_signatures_match_port(port):
    fake = FAKES[port]()
    for name, member in _public_members(ports.PORTS[port]).items():
        if isinstance(member, property):
            assert isinstance(getattr(type(fake), name), property), name
        else:
            expected = list(inspect.signature(member).parameters)[1:]
            assert list(inspect.signature(getattr(fake, name)).parameters) == expected, name


# ObjectStore -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "check",
    [
        contracts.check_object_roundtrip,
        contracts.check_object_missing_key,
        contracts.check_ensure_bucket_idempotent,
        contracts.check_object_list_by_prefix,
        contracts.check_object_delete,
    ],
)
def test_object_store_contract(check):
    check(MemoryObjectStore(), "data")


def test_put_into_missing_bucket_not_found():
    contracts.check_put_into_missing_bucket(MemoryObjectStore(), "never-created")


def test_get_detects_corrupted_object():
    store = MemoryObjectStore()
    store.ensure_bucket("data")
    store.put("data", "train.csv", b"a,b\n1,2\n")
    store.objects["data", "train.csv"] = b"a,b\n1,3\n"
    with pytest.raises(IntegrityError, match="s3://data/train.csv"):
        store.get("data", "train.csv")


def test_put_keeps_a_copy_of_the_data():
    store = MemoryObjectStore()
    store.ensure_bucket("data")
    buffer = bytearray(b"before")
    store.put("data", "k", buffer)
    buffer[:] = b"after!"
    assert store.get("data", "k") == b"before"


# ArtifactRegistry ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "check",
    [
        contracts.check_blob_and_manifest_roundtrip,
        contracts.check_blob_push_is_idempotent,
        contracts.check_missing_blob_not_found,
        contracts.check_manifest_by_tag,
        contracts.check_missing_manifest_not_found,
        contracts.check_manifest_with_unknown_blob_rejected,
    ],
)
def test_artifact_registry_contract(check):
    check(MemoryRegistry(), "lastmile/train")


def test_registry_host_defaults_and_can_be_set():
    assert MemoryRegistry().registry == "memory.invalid"
    assert MemoryRegistry("127.0.0.1:5055").registry == "127.0.0.1:5055"


def test_push_blob_stores_once():
    registry = MemoryRegistry()
    registry.push_blob("repo", b"layer")
    registry.push_blob("repo", b"layer")
    assert registry.pushes == 1
    assert list(registry.blobs) == [("repo", oci_digest(b"layer"))]


def test_blobs_belong_to_a_repository():
    registry = MemoryRegistry()
    digest = registry.push_blob("repo-a", b"layer")
    assert not registry.has_blob("repo-b", digest)


def test_manifest_digest_is_of_canonical_json():
    registry = MemoryRegistry()
    manifest = {"schemaVersion": 2, "annotations": {"b": "2", "a": "1"}}
    ref = registry.push_manifest("repo", manifest)
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    assert ref.digest == oci_digest(canonical)
    assert registry.push_manifest("repo", dict(reversed(manifest.items()))).digest == ref.digest


def test_manifest_with_missing_config_blob_rejected():
    registry = MemoryRegistry()
    config = Descriptor("application/vnd.oci.empty.v1+json", oci_digest(b"{}"), 2)
    with pytest.raises(NotFound, match=oci_digest(b"{}")):
        registry.push_manifest("repo", {"schemaVersion": 2, "config": config.to_oci(), "layers": []})
    assert registry.manifests == {}


def test_fetch_blob_detects_corruption():
    registry = MemoryRegistry()
    digest = registry.push_blob("repo", b"layer")
    registry.blobs["repo", digest] = b"tampered"
    with pytest.raises(IntegrityError):
        registry.fetch_blob("repo", digest)


def test_invalid_tag_rejected():
    with pytest.raises(UserError, match="bad tag"):
        MemoryRegistry().push_manifest("repo", {"schemaVersion": 2}, tag="bad tag")


# ImageBuilder ----------------------------------------------------------------------------------
@pytest.fixture
def context(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "train.py").write_text("print('train')\n")
    (tmp_path / "requirements.txt").write_text("scikit-learn\n")
    return tmp_path


def test_build_pushes_to_the_registry(context):
    registry = MemoryRegistry("127.0.0.1:5055")
    build = MemoryImageBuilder(registry).build("train", context)
    assert build.pushed
    assert build.artifact.registry == "127.0.0.1:5055"
    assert build.artifact.repository == "lastmile/train"
    manifest = registry.fetch_manifest("lastmile/train", build.artifact.digest)
    assert manifest["annotations"]["dev.lastmile.source-digest"] == build.source_digest


def test_unchanged_context_builds_the_same_digest_without_pushing(context):
    registry = MemoryRegistry()
    builder = MemoryImageBuilder(registry)
    first = builder.build("train", context)
    pushes = registry.pushes
    second = builder.build("train", context)
    assert (second.artifact, second.source_digest) == (first.artifact, first.source_digest)
    assert not second.pushed
    assert registry.pushes == pushes


def test_changed_content_changes_the_digest(context):
    builder = MemoryImageBuilder(MemoryRegistry())
    first = builder.build("train", context)
    (context / "pkg" / "train.py").write_text("print('train v2')\n")
    second = builder.build("train", context)
    assert second.source_digest != first.source_digest
    assert second.artifact.digest != first.artifact.digest
    assert second.pushed


def test_renamed_file_changes_the_digest(context):
    builder = MemoryImageBuilder(MemoryRegistry())
    first = builder.build("train", context)
    (context / "pkg" / "train.py").rename(context / "pkg" / "fit.py")
    assert builder.build("train", context).source_digest != first.source_digest


def test_build_of_missing_context_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not a directory"):
        MemoryImageBuilder(MemoryRegistry()).build("train", tmp_path / "absent")


# JobRunner -------------------------------------------------------------------------------------
def _job(name: str = "train") -> JobSpec:
    return JobSpec(name=name, artifact=ArtifactRef("memory.invalid", "lastmile/train", oci_digest(b"x")))


def test_successful_job_goes_accepted_in_progress_succeeded():
    runner = MemoryJobRunner()
    submitted = runner.submit(_job())
    assert submitted.state is JobState.ACCEPTED
    assert runner.states[submitted.run_id] == [JobState.ACCEPTED, JobState.IN_PROGRESS, JobState.SUCCEEDED]
    assert runner.get(submitted.run_id).exit_code == 0


def test_failing_job_ends_failed_with_its_exit_code():
    runner = MemoryJobRunner(lambda spec: (3, "boom"))
    run = runner.wait(runner.submit(_job()).run_id)
    assert (run.state, run.exit_code) == (JobState.FAILED, 3)
    assert runner.states[run.run_id] == [JobState.ACCEPTED, JobState.IN_PROGRESS, JobState.FAILED]


def test_behaviour_receives_the_spec():
    seen = []
    runner = MemoryJobRunner(lambda spec: seen.append(spec) or (0, ""))
    runner.submit(_job("evaluate"))
    assert [spec.name for spec in seen] == ["evaluate"]


def test_cancel_of_a_finished_run_leaves_it_unchanged():
    runner = MemoryJobRunner()
    run_id = runner.submit(_job()).run_id
    finished = runner.get(run_id)
    assert runner.cancel(run_id) == finished
    assert runner.states[run_id][-1] is JobState.SUCCEEDED


def test_cancel_of_a_hung_run_goes_canceling_then_canceled():
    runner = MemoryJobRunner(lambda spec: None)
    run_id = runner.submit(_job()).run_id
    assert runner.wait(run_id, timeout_s=1).state is JobState.IN_PROGRESS
    assert runner.cancel(run_id).state is JobState.CANCELED
    assert runner.states[run_id][-2:] == [JobState.CANCELING, JobState.CANCELED]


def test_log_tail_returns_the_last_lines():
    runner = MemoryJobRunner(lambda spec: (0, "".join(f"line {i}\n" for i in range(1, 31))))
    run_id = runner.submit(_job()).run_id
    assert runner.log_tail(run_id, lines=2) == "line 29\nline 30"
    assert len(runner.log_tail(run_id).splitlines()) == 20
    assert runner.log_tail(run_id, lines=0) == ""


@pytest.mark.parametrize("method", ["get", "wait", "cancel", "log_tail"])
def test_unknown_run_id_not_found(method):
    with pytest.raises(NotFound, match="jobrun-404"):
        getattr(MemoryJobRunner(), method)("jobrun-404")


# ModelRegistry ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "check",
    [
        contracts.check_versions_count_per_name,
        contracts.check_alias_moves,
        contracts.check_alias_to_missing_version,
        contracts.check_run_tracking,
    ],
)
def test_model_registry_contract(check):
    check(MemoryModelRegistry())


def test_by_alias_of_unknown_model_is_none():
    assert MemoryModelRegistry().by_alias("nobody", "champion") is None


def test_tag_version():
    registry = MemoryModelRegistry()
    version = registry.register("clf", "s3://m/1")
    registry.tag_version("clf", version.version, "validated", "true")
    assert registry.get_version("clf", "1").tags == {"validated": "true"}


def test_tag_missing_version_not_found():
    with pytest.raises(NotFound, match="clf/1"):
        MemoryModelRegistry().tag_version("clf", "1", "k", "v")


def test_params_cannot_change_once_logged():
    registry = MemoryModelRegistry()
    run_id = registry.start_run("exp").run_id
    registry.log_params(run_id, {"depth": "3"})
    registry.log_params(run_id, {"depth": "3"})
    with pytest.raises(ValueError, match="depth"):
        registry.log_params(run_id, {"depth": "4"})
    assert registry.get_run(run_id).params == {"depth": "3"}


def test_register_with_unknown_run_not_found():
    with pytest.raises(NotFound, match="run-9"):
        MemoryModelRegistry().register("clf", "s3://m/1", run_id="run-9")


def test_reserved_alias_rejected():
    registry = MemoryModelRegistry()
    registry.register("clf", "s3://m/1")
    with pytest.raises(ValueError, match="latest"):
        registry.set_alias("clf", "latest", "1")


def test_end_run_rejects_unknown_status():
    registry = MemoryModelRegistry()
    run_id = registry.start_run("exp").run_id
    with pytest.raises(ValueError, match="DONE"):
        registry.end_run(run_id, "DONE")
    assert registry.get_run(run_id).status == "RUNNING"


# Deployer --------------------------------------------------------------------------------------
def _spec(tag: str, version: str, replicas: int = 2) -> DeploymentSpec:
    serving = ArtifactRef("memory.invalid", "lastmile/serve", oci_digest(tag.encode()))
    return DeploymentSpec("api", serving, ModelVersion("clf", version, None, "s3://m"), replicas)


def test_revisions_are_numbered_from_one():
    deployer = MemoryDeployer()
    assert [deployer.deploy(_spec("a", "1")).number, deployer.deploy(_spec("b", "2")).number] == [1, 2]


def test_status_reports_the_live_revision():
    deployer = MemoryDeployer()
    revision = deployer.deploy(_spec("a", "1", replicas=3))
    status = deployer.status("api")
    assert (status.revision, status.desired, status.ready) == (revision, 3, 3)
    assert status.endpoint == "http://memory.invalid/api"


def test_status_of_a_name_never_deployed_is_empty():
    status = MemoryDeployer().status("api")
    assert (status.endpoint, status.revision, status.desired, status.ready) == (None, None, 0, 0)


def test_rollback_returns_to_the_previous_revision():
    deployer = MemoryDeployer()
    first = deployer.deploy(_spec("a", "1"))
    deployer.deploy(_spec("b", "2"))
    assert deployer.rollback("api") == first
    assert deployer.status("api").revision == first


def test_rollback_without_a_previous_revision_is_a_user_error():
    deployer = MemoryDeployer()
    deployer.deploy(_spec("a", "1"))
    with pytest.raises(UserError, match="api"):
        deployer.rollback("api")


def test_deploy_after_rollback_never_reuses_a_number():
    deployer = MemoryDeployer()
    deployer.deploy(_spec("a", "1"))
    deployer.deploy(_spec("b", "2"))
    deployer.rollback("api")
    assert deployer.deploy(_spec("c", "3")).number == 3


def test_scale_changes_replicas():
    deployer = MemoryDeployer()
    deployer.deploy(_spec("a", "1"))
    status = deployer.scale("api", 4)
    assert (status.desired, status.ready) == (4, 4)


@pytest.mark.parametrize("replicas", [0, -1])
def test_scale_below_one_is_a_user_error(replicas):
    deployer = MemoryDeployer()
    deployer.deploy(_spec("a", "1"))
    with pytest.raises(UserError, match="at least 1"):
        deployer.scale("api", replicas)
    assert deployer.status("api").desired == 2


def test_scale_of_unknown_deployment_not_found():
    with pytest.raises(NotFound, match="api"):
        MemoryDeployer().scale("api", 2)


# SecretStore -----------------------------------------------------------------------------------
def test_resolve_returns_a_secret():
    store = MemorySecretStore()
    store.put(SecretRef("secret", "registry-password"), "hunter2")
    secret = store.resolve(SecretRef("secret", "registry-password"))
    assert isinstance(secret, Secret)
    assert secret.reveal() == "hunter2"
    assert "hunter2" not in repr(secret)


def test_missing_secret_names_the_ref_but_no_value():
    store = MemorySecretStore({SecretRef("secret", "db-url"): "postgres://u:pw@db"})
    with pytest.raises(NotFound) as raised:
        store.resolve(SecretRef("secret", "registry-password"))
    assert "secret:registry-password" in str(raised.value)
    assert "pw@db" not in str(raised.value)


# LogSink ---------------------------------------------------------------------------------------
def test_log_sink_keeps_events_in_order():
    sink = MemoryLogSink()
    events = [LogEvent("build.started"), LogEvent("build.done", fields={"pushed": True})]
    for event in events:
        sink.emit(event)
    assert list(sink.events()) == events
    assert sink.emitted == events


# SourceTrigger ---------------------------------------------------------------------------------
@pytest.fixture
def trigger():
    return MemorySourceTrigger(
        [("c1", ["README.md"]), ("c2", ["training/train.py"]), ("c3", ["serving/app.py", "training/train.py"])]
    )


def test_head_is_the_last_commit(trigger):
    assert trigger.head() == "c3"


def test_changes_since_none_covers_every_commit(trigger):
    changes = trigger.changes(None)
    assert changes.paths == ("README.md", "serving/app.py", "training/train.py")
    assert (changes.head, changes.base) == ("c3", None)


def test_changes_since_a_commit_cover_only_later_commits(trigger):
    assert trigger.changes("c1").paths == ("serving/app.py", "training/train.py")
    assert trigger.changes("c3").paths == ()


def test_changes_since_unknown_commit_not_found(trigger):
    with pytest.raises(NotFound, match="c9"):
        trigger.changes("c9")


def test_head_of_empty_history_not_found():
    with pytest.raises(NotFound):
        MemorySourceTrigger().head()
