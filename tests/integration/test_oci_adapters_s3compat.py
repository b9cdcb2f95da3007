"""The ``s3`` flavor pointed at OCI's S3 compatibility API (the stand-in's, SigV4 with a customer secret key): boto3's
default checksums (1.36 and later) are refused there, so both checksum settings are needed, and the S3 adapter has
them; objects it writes are the native API's objects, with the same sha256 metadata."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from adapters.local.s3 import S3ObjectStore
from adapters.oci.auth import credentials
from adapters.oci.flavors import OciAuth
from adapters.oci.objectstore import open_store
from adapters.oci.standin.testing import StandInProcess
from harness.domain.records import Secret
from harness.infra.processes import free_port
from tests.contracts import unique

pytestmark = pytest.mark.integration

REGION = "us-ashburn-1"
BOTH = {"request_checksum_calculation": "when_required", "response_checksum_validation": "when_required"}


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    with StandInProcess(free_port(), tmp_path_factory.mktemp("oci-standin")) as running:
        yield running


@pytest.fixture(scope="module")
def bucket(standin):
    name = "s3compat"
    _client(standin, **BOTH).create_bucket(Bucket=name)
    return name


def _client(standin, **checksums):
    return boto3.client("s3", endpoint_url=f"{standin.url}/s3", region_name=REGION,
                        aws_access_key_id=standin.s3_key.access_key_id,
                        aws_secret_access_key=standin.s3_key.secret_key,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **checksums))


def test_without_when_required_request_checksums_a_put_is_refused(standin, bucket):
    client = _client(standin, response_checksum_validation="when_required")
    with pytest.raises(ClientError) as caught:
        client.put_object(Bucket=bucket, Key=unique("put"), Body=b"data")
    assert caught.value.response["Error"]["Code"] == "InvalidArgument"
    assert "x-amz-checksum-crc32" in caught.value.response["Error"]["Message"]


def test_without_when_required_response_validation_a_get_is_refused(standin, bucket):
    key = unique("get")
    _client(standin, **BOTH).put_object(Bucket=bucket, Key=key, Body=b"data")
    client = _client(standin, request_checksum_calculation="when_required")
    with pytest.raises(ClientError) as caught:
        client.get_object(Bucket=bucket, Key=key)
    assert "x-amz-checksum-mode" in caught.value.response["Error"]["Message"]


def test_with_both_settings_objects_go_up_and_come_back(standin, bucket):
    client, key = _client(standin, **BOTH), unique("both")
    client.put_object(Bucket=bucket, Key=key, Body=b"data")
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"data"


def test_the_s3_adapter_works_there_and_the_native_api_sees_its_sha256(standin, bucket):
    store = S3ObjectStore(f"{standin.url}/s3", REGION, Secret(standin.s3_key.access_key_id),
                          Secret(standin.s3_key.secret_key))
    assert {k: getattr(store._client.meta.config, k) for k in BOTH} == BOTH
    ref = store.put(bucket, unique("adapter"), b"through S3")
    assert store.get(bucket, ref.key) == b"through S3" and store.head(bucket, ref.key) == ref
    auth = OciAuth(config_file=str(standin.api_key.config_file), profile=standin.api_key.profile)
    native = open_store(credentials(auth), standin.url, "", "ocid1.compartment.oc1..aaaaaaaas3compat")
    assert native.head(bucket, ref.key) == ref and native.get(bucket, ref.key) == b"through S3"
