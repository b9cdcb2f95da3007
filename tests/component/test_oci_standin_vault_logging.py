"""The OCI stand-in's Vault secret retrieval and Logging (ingestion and search) through the real ``oci`` SDK."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import oci
import pytest
from oci.loggingingestion.models import LogEntry, LogEntryBatch, PutLogsDetails
from oci.loggingsearch.models import SearchLogsDetails

from adapters.oci.standin import put_secret, register_log
from adapters.oci.standin.testing import StandInProcess
from harness.infra.processes import free_port

pytestmark = pytest.mark.timeout(60)
VAULT = "ocid1.vault.oc1.iad.aaaaaaaalastmilevault"
COMPARTMENT = "ocid1.compartment.oc1..aaaaaaaalogs"
GROUP = "ocid1.loggroup.oc1.iad.aaaaaaaalastmile"
LOG = "ocid1.log.oc1.iad.aaaaaaaaevents"


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    state = tmp_path_factory.mktemp("oci-standin")
    put_secret(state, "registry-password", VAULT, "first-password")
    register_log(state, LOG, GROUP, COMPARTMENT)
    with StandInProcess(free_port(), state) as process:
        yield process


@pytest.fixture(scope="module")
def secrets(standin):
    return oci.secrets.SecretsClient(standin.sdk_config(), service_endpoint=standin.url)


@pytest.fixture(scope="module")
def ingestion(standin):
    return oci.loggingingestion.LoggingClient(standin.sdk_config(), service_endpoint=standin.url)


@pytest.fixture(scope="module")
def search(standin):
    return oci.loggingsearch.LogSearchClient(standin.sdk_config(), service_endpoint=standin.url)


def decoded(bundle) -> str:
    assert bundle.secret_bundle_content.content_type == "BASE64"
    return base64.b64decode(bundle.secret_bundle_content.content).decode()


def refused(call, *args, **kwargs) -> oci.exceptions.ServiceError:
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        call(*args, **kwargs)
    return caught.value


def test_a_secret_is_read_by_name_in_its_vault(secrets):
    bundle = secrets.get_secret_bundle_by_name("registry-password", VAULT).data

    assert decoded(bundle) == "first-password" and bundle.version_number == 1 and "CURRENT" in bundle.stages


def test_a_secret_is_read_by_its_ocid(secrets):
    ocid = secrets.get_secret_bundle_by_name("registry-password", VAULT).data.secret_id
    bundle = secrets.get_secret_bundle(ocid).data

    assert ocid.startswith("ocid1.vaultsecret.") and decoded(bundle) == "first-password"


def test_a_rotated_secret_serves_the_new_value_and_keeps_the_previous(standin, secrets):
    put_secret(standin.state, "rotating", VAULT, "v1")
    put_secret(standin.state, "rotating", VAULT, "v2")
    current = secrets.get_secret_bundle_by_name("rotating", VAULT).data
    previous = secrets.get_secret_bundle(current.secret_id, stage="PREVIOUS").data
    first = secrets.get_secret_bundle(current.secret_id, version_number=1).data

    assert (decoded(current), current.version_number) == ("v2", 2)
    assert decoded(previous) == decoded(first) == "v1" and previous.stages == ["PREVIOUS"]


def test_an_unknown_secret_is_404_not_authorized_or_not_found(secrets):
    by_name = refused(secrets.get_secret_bundle_by_name, "no-such-secret", VAULT)
    by_id = refused(secrets.get_secret_bundle, "ocid1.vaultsecret.oc1..aaaaaaaanothere")
    other_vault = refused(secrets.get_secret_bundle_by_name, "registry-password", "ocid1.vault.oc1..other")

    assert {(e.status, e.code) for e in (by_name, by_id, other_vault)} == {(404, "NotAuthorizedOrNotFound")}


def test_the_secret_file_is_private(standin):
    assert (standin.state / "secrets.json").stat().st_mode & 0o777 == 0o600


def put_events(ingestion, subject: str, events: list[dict], log_id: str = LOG) -> None:
    now = datetime.now(UTC)
    entries = [LogEntry(data=json.dumps(event), id=str(uuid.uuid4()), time=now) for event in events]
    details = PutLogsDetails(specversion="1.0", log_entry_batches=[
        LogEntryBatch(entries=entries, source="lastmile", type="lastmile.stage", subject=subject)])
    assert ingestion.put_logs(log_id, details).status == 200


def searched(search, query: str):
    now = datetime.now(UTC)
    return search.search_logs(SearchLogsDetails(time_start=now - timedelta(hours=1),
                                                time_end=now + timedelta(minutes=1), search_query=query)).data


def test_put_logs_then_search_by_subject(ingestion, search):
    run = f"run-{uuid.uuid4().hex[:8]}"
    put_events(ingestion, run, [{"event": "stage.started", "stage": "build"},
                                {"event": "stage.succeeded", "stage": "build"}])
    put_events(ingestion, "another-run", [{"event": "stage.started", "stage": "build"}])
    found = searched(search, f"search \"{COMPARTMENT}/{GROUP}/{LOG}\" | where subject = '{run}'")
    content = [r.data["logContent"] for r in found.results]

    assert found.summary.result_count == 2
    assert [c["data"]["event"] for c in content] == ["stage.started", "stage.succeeded"]
    assert {c["subject"] for c in content} == {run} and content[0]["oracle"]["logid"] == LOG
    assert isinstance(found.results[0].data["datetime"], int)


def test_search_by_a_data_field_and_the_log_group(ingestion, search):
    run = f"run-{uuid.uuid4().hex[:8]}"
    put_events(ingestion, run, [{"event": "stage.failed", "stage": "training"}, {"event": "stage.started"}])
    found = searched(search, f"search \"{COMPARTMENT}/{GROUP}\" | where subject = '{run}' and "
                             "data.event = 'stage.failed'")

    assert [r.data["logContent"]["data"]["stage"] for r in found.results] == ["training"]


def test_a_plain_text_entry_is_searched_as_data_message(ingestion, search):
    subject = f"plain-{uuid.uuid4().hex[:8]}"
    details = PutLogsDetails(specversion="1.0", log_entry_batches=[LogEntryBatch(
        entries=[LogEntry(data="just text", id="1")], source="s", type="t", subject=subject)])
    ingestion.put_logs(LOG, details)
    found = searched(search, f"search \"{COMPARTMENT}/{GROUP}/{LOG}\" | where subject = '{subject}'")

    assert found.results[0].data["logContent"]["data"] == {"message": "just text"}


def test_an_unsupported_query_is_400_naming_what_is_supported(search):
    error = refused(searched, search, f"search \"{COMPARTMENT}/{GROUP}/{LOG}\" | stats count() by subject")

    assert (error.status, error.code) == (400, "InvalidParameter") and "is not supported" in error.message


def test_put_logs_to_an_unknown_log_is_404(ingestion):
    error = refused(put_events, ingestion, "x", [{"event": "e"}], log_id="ocid1.log.oc1..aaaaaaaanosuchlog")

    assert (error.status, error.code) == (404, "NotAuthorizedOrNotFound")


def test_put_logs_without_specversion_is_400(standin, ingestion):
    details = PutLogsDetails(log_entry_batches=[LogEntryBatch(entries=[LogEntry(data="d", id="1")], source="s",
                                                              type="t")])

    assert refused(ingestion.put_logs, LOG, details).status == 400


def test_secrets_and_logs_survive_a_restart(tmp_path):
    put_secret(tmp_path, "kept", VAULT, "kept-value")
    register_log(tmp_path, LOG, GROUP, COMPARTMENT)
    with StandInProcess(free_port(), tmp_path) as first:
        put_events(oci.loggingingestion.LoggingClient(first.sdk_config(), service_endpoint=first.url), "kept",
                   [{"event": "before-restart"}])
    with StandInProcess(free_port(), tmp_path) as second:
        bundle = oci.secrets.SecretsClient(second.sdk_config(), service_endpoint=second.url) \
            .get_secret_bundle_by_name("kept", VAULT).data
        found = searched(oci.loggingsearch.LogSearchClient(second.sdk_config(), service_endpoint=second.url),
                         f"search \"{COMPARTMENT}\" | where subject = 'kept'")

        assert decoded(bundle) == "kept-value"
        assert [r.data["logContent"]["data"]["event"] for r in found.results] == ["before-restart"]


def test_a_secret_pending_deletion_is_inaccessible_until_the_deletion_is_canceled(standin, secrets):
    put_secret(standin.state, "doomed", VAULT, "still-here")
    vaults = oci.vault.VaultsClient(standin.sdk_config(), service_endpoint=standin.url)
    ocid = secrets.get_secret_bundle_by_name("doomed", VAULT).data.secret_id
    when = datetime.now(UTC) + timedelta(days=1)

    vaults.schedule_secret_deletion(ocid, oci.vault.models.ScheduleSecretDeletionDetails(time_of_deletion=when))
    pending = vaults.get_secret(ocid).data
    by_name = refused(secrets.get_secret_bundle_by_name, "doomed", VAULT)
    by_id = refused(secrets.get_secret_bundle, ocid)
    update = refused(vaults.update_secret, ocid, oci.vault.models.UpdateSecretDetails(
        secret_content=oci.vault.models.Base64SecretContentDetails(content_type="BASE64", content="eA==")))
    again = refused(vaults.schedule_secret_deletion, ocid,
                    oci.vault.models.ScheduleSecretDeletionDetails(time_of_deletion=when))
    vaults.cancel_secret_deletion(ocid)

    assert pending.lifecycle_state == "PENDING_DELETION" and pending.time_of_deletion is not None
    assert (by_name.status, by_name.code) == (404, "NotAuthorizedOrNotFound")
    assert by_id.status == 404
    assert (update.status, update.code) == (409, "IncorrectState") and again.status == 409
    assert decoded(secrets.get_secret_bundle(ocid).data) == "still-here"
    assert vaults.get_secret(ocid).data.lifecycle_state == "ACTIVE"
    assert refused(vaults.cancel_secret_deletion, ocid).status == 409
