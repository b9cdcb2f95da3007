"""The oci-logging LogSink on the OCI API stand-in (PutLogs, Logging Search): the port contract, batching, and
OCI's throttling (429 ``TooManyRequests``) thrown by the fault proxy between the SDK and the stand-in."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from adapters.local.faultproxy.testing import FaultProxyProcess
from adapters.oci.auth import credentials
from adapters.oci.flavors import OciAuth
from adapters.oci.logsink import OciLogSink, open_sink
from adapters.oci.objectstore import PART_ATTEMPTS, open_store
from adapters.oci.sdk import ATTEMPTS
from adapters.oci.standin import register_log
from adapters.oci.standin.testing import StandInProcess
from harness.domain.errors import CapacityError
from harness.domain.records import LogEvent
from harness.infra.processes import free_port
from tests.contracts import unique
from tests.contracts.log_sink import LogSinkContract

pytestmark = pytest.mark.integration

COMPARTMENT, GROUP = "ocid1.compartment.oc1..aaaaaaaalogs", "ocid1.loggroup.oc1..aaaaaaaalogs"


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    with StandInProcess(free_port(), tmp_path_factory.mktemp("oci-standin")) as running:
        yield running


@pytest.fixture(scope="module")
def creds(standin):
    return credentials(OciAuth(config_file=str(standin.api_key.config_file), profile=standin.api_key.profile))


@pytest.fixture
def log_id(standin):
    log = f"ocid1.log.oc1..{uuid.uuid4().hex}"
    register_log(standin.state, log, GROUP, COMPARTMENT)
    return log


@pytest.fixture
def open_log(standin, creds, log_id):
    def opened(endpoint: str | None = None, **options) -> OciLogSink:
        return open_sink(creds, endpoint or standin.url, log_id, log_group_id=GROUP, compartment_id=COMPARTMENT,
                         **options)
    return opened


class TestOciLogSinkOnTheStandIn(LogSinkContract):
    @pytest.fixture
    def sink(self, open_log):
        return open_log()


def test_events_wait_for_a_full_batch_and_go_up_in_one_put(open_log):
    writer, reader, run = open_log(batch_size=3, max_delay_s=60), open_log(), unique("run")
    writer.emit(LogEvent("stage.started", subject=run, time=1.0))
    writer.emit(LogEvent("stage.succeeded", subject=run, time=2.0))
    assert list(reader.events(run)) == []
    writer.emit(LogEvent("stage.started", subject=run, time=3.0))
    assert [e.time for e in reader.events(run)] == [1.0, 2.0, 3.0]


def test_an_error_event_is_sent_at_once(open_log):
    writer, reader, run = open_log(batch_size=100, max_delay_s=60), open_log(), unique("run")
    writer.emit(LogEvent("stage.started", subject=run, time=1.0))
    writer.emit(LogEvent("stage.failed", "error", {"error": "no registry"}, run, 2.0))
    assert [e.event for e in reader.events(run)] == ["stage.started", "stage.failed"]


def test_reading_back_flushes_what_this_sink_holds_and_keeps_runs_apart(open_log):
    sink, one, two = open_log(batch_size=100, max_delay_s=60), unique("run"), unique("run")
    for index, subject in enumerate([one, two, one, two, one]):
        sink.emit(LogEvent("tick", fields={"n": index}, subject=subject, time=float(index)))
    assert [e.fields["n"] for e in sink.events(one)] == [0, 2, 4]
    assert [e.fields["n"] for e in sink.events(two)] == [1, 3]


def test_more_events_than_a_search_page_come_back_in_order(open_log):
    sink, run = open_log(batch_size=1000), unique("run")
    for index in range(1, 1206):
        sink.emit(LogEvent("tick", subject=run, time=float(index)))
    assert [e.time for e in sink.events(run)] == [float(i) for i in range(1, 1206)]


# throttling --------------------------------------------------------------------------------------
@pytest.fixture
def throttled(standin, tmp_path):
    """(url in front of the stand-in, the fault proxy's client, proxy name)."""
    with FaultProxyProcess(free_port(), log=tmp_path / "faultproxy.log") as proxy:
        client = proxy.client()
        front = client.create_proxy("oci", f"127.0.0.1:{standin.port}")
        yield f"http://127.0.0.1:{front.port}", client, "oci"


def test_put_logs_throttled_for_good_is_capacity_after_bounded_retries_and_loses_nothing(open_log, throttled):
    url, faults, proxy = throttled
    sink, run = open_log(url, batch_size=1), unique("run")
    fault = faults.add_fault(proxy, "POST", "/20200831/logs/*", preset="oci-too-many-requests", name="throttle")
    started = time.monotonic()
    with pytest.raises(CapacityError, match=f"429 TooManyRequests.*after {ATTEMPTS} attempts") as caught:
        sink.emit(LogEvent("run.started", subject=run, time=1.0))
    assert time.monotonic() - started < 20 and caught.value.url == url
    assert faults.stats(proxy).faults[fault.name].injected == ATTEMPTS
    faults.remove_fault(proxy, fault.name)
    sink.emit(LogEvent("run.finished", subject=run, time=2.0))
    assert [e.event for e in sink.events(run)] == ["run.started", "run.finished"]


def test_put_logs_throttled_for_a_while_succeeds_on_a_retry(open_log, throttled):
    url, faults, proxy = throttled
    sink, run = open_log(url, batch_size=1), unique("run")
    fault = faults.add_fault(proxy, "POST", "/20200831/logs/*", preset="oci-too-many-requests", name="throttle")

    def lift_after_two_refusals() -> None:
        deadline = time.monotonic() + 15
        while faults.stats(proxy).faults[fault.name].injected < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        faults.remove_fault(proxy, fault.name)

    lifter = threading.Thread(target=lift_after_two_refusals)
    lifter.start()
    sink.emit(LogEvent("run.started", subject=run, time=1.0))
    lifter.join()
    assert [e.event for e in sink.events(run)] == ["run.started"]


def test_object_storage_throttled_for_good_is_capacity_naming_the_endpoint(standin, creds, throttled):
    url, faults, proxy = throttled
    store = open_store(creds, url, "", COMPARTMENT)
    store.ensure_bucket("throttled")
    faults.add_fault(proxy, "GET", "/n/*/b/throttled/o/*", preset="oci-too-many-requests", name="throttle")
    with pytest.raises(CapacityError, match=f"OCI Object Storage at {url} kept refusing"):
        store.get("throttled", "anything")


def test_a_multipart_upload_whose_parts_are_throttled_is_capacity_too(standin, creds, throttled):
    url, faults, proxy = throttled
    store = open_store(creds, url, "", COMPARTMENT, multipart_threshold=64 * 1024, part_size=64 * 1024)
    store.ensure_bucket("throttled")
    faults.add_fault(proxy, "PUT", r"^/n/[^?]+/u/[^?]+\?.*uploadPartNum=", preset="oci-too-many-requests",
                     name="parts")
    started = time.monotonic()
    with pytest.raises(CapacityError, match="429 TooManyRequests"):
        store.put("throttled", unique("parts"), b"p" * (4 * 64 * 1024))
    elapsed, refused = time.monotonic() - started, faults.stats(proxy).faults["parts"].injected
    assert 0 < refused <= 4 * 5 * PART_ATTEMPTS, refused  # four parts, the assembler's 5 tries of 2 attempts each
    assert elapsed < 30, f"{elapsed:.1f} s"
