"""The OCI stand-in's S3 compatibility API (``/s3``, path-style, SigV4 with customer secret keys) through boto3:
the same buckets as the native API, OCI's refusal of the checksums newer boto3 sends by default, and S3's errors."""

from __future__ import annotations

import time

import boto3
import httpx
import oci
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from adapters.oci.standin.testing import StandInProcess
from harness.infra.processes import free_port

pytestmark = pytest.mark.timeout(60)
OCI_CHECKSUMS = {"request_checksum_calculation": "when_required", "response_checksum_validation": "when_required"}


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    with StandInProcess(free_port(), tmp_path_factory.mktemp("oci-standin")) as process:
        yield process


def s3(standin: StandInProcess, checksums: dict | None = None, access_key: str | None = None,
       secret: str | None = None):
    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **(checksums or {}))
    return boto3.client("s3", endpoint_url=f"{standin.url}/s3", region_name="us-ashburn-1", config=config,
                        aws_access_key_id=access_key or standin.s3_key.access_key_id,
                        aws_secret_access_key=secret or standin.s3_key.secret_key)


@pytest.fixture(scope="module")
def client(standin):
    client = s3(standin, OCI_CHECKSUMS)
    client.create_bucket(Bucket="compat")
    return client


def error_of(call, **kwargs) -> dict:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return {"code": caught.value.response["Error"]["Code"],
            "status": caught.value.response["ResponseMetadata"]["HTTPStatusCode"],
            "message": caught.value.response["Error"].get("Message", "")}


def test_boto3_defaults_are_refused_as_oci_refuses_them(standin, client):
    error = error_of(s3(standin).put_object, Bucket="compat", Key="default-checksums", Body=b"data")

    assert (error["status"], error["code"]) == (400, "InvalidArgument")
    assert "x-amz-checksum-crc32" in error["message"]
    assert error_of(client.head_object, Bucket="compat", Key="default-checksums")["status"] == 404


def test_boto3_with_checksums_when_required_round_trips_an_object(client):
    client.put_object(Bucket="compat", Key="dir/k v", Body=b"payload", Metadata={"sha256": "abc"},
                      ContentType="text/plain")
    got = client.get_object(Bucket="compat", Key="dir/k v")
    head = client.head_object(Bucket="compat", Key="dir/k v")

    assert got["Body"].read() == b"payload" and got["Metadata"] == {"sha256": "abc"}
    assert head["ContentLength"] == 7 and head["ETag"] == got["ETag"] and head["ContentType"] == "text/plain"


def test_a_streaming_trailer_payload_is_refused_with_ocis_message(standin, client):
    """What boto3 1.36+ sends over HTTPS (a trailing checksum, aws-chunked) is refused as OCI refuses it."""
    import httpx

    answer = httpx.put(f"{standin.url}/s3/compat/streamed", content=b"x",
                       headers={"x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                                "content-encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32"})

    assert answer.status_code == 400 and "<Code>InvalidArgument</Code>" in answer.text
    assert "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value" in answer.text


def test_an_object_written_through_s3_is_read_natively_with_its_metadata(standin, client):
    client.put_object(Bucket="compat", Key="shared", Body=b"both", Metadata={"run": "r1"})
    native = oci.object_storage.ObjectStorageClient(standin.sdk_config(), service_endpoint=standin.url)
    got = native.get_object("lastmile", "compat", "shared")

    assert got.data.content == b"both" and got.headers["opc-meta-run"] == "r1"
    assert client.head_object(Bucket="compat", Key="shared")["ETag"] == f'"{got.headers["etag"]}"'


def test_list_objects_v2_pages_prefixes_and_encodes_keys(client):
    for key in ("l/a+b", "l/c d", "l/sub/e", "m/f"):
        client.put_object(Bucket="compat", Key=key, Body=b"1")
    first = client.list_objects_v2(Bucket="compat", Prefix="l/", Delimiter="/", MaxKeys=2)
    second = client.list_objects_v2(Bucket="compat", Prefix="l/", Delimiter="/", MaxKeys=2,
                                    ContinuationToken=first["NextContinuationToken"])

    assert [o["Key"] for o in first["Contents"]] == ["l/a+b", "l/c d"] and first["IsTruncated"]
    assert second.get("Contents", []) == [] and [p["Prefix"] for p in second["CommonPrefixes"]] == ["l/sub/"]
    assert not second["IsTruncated"]


def test_head_bucket_and_a_missing_bucket_or_key(client):
    assert client.head_bucket(Bucket="compat")["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert error_of(client.head_bucket, Bucket="nowhere")["status"] == 404
    assert error_of(client.get_object, Bucket="nowhere", Key="k")["code"] == "NoSuchBucket"
    assert error_of(client.get_object, Bucket="compat", Key="missing")["code"] == "NoSuchKey"


def test_creating_an_existing_bucket_is_409(client):
    assert error_of(client.create_bucket, Bucket="compat")["code"] == "BucketAlreadyExists"


def test_delete_object_removes_it(client):
    client.put_object(Bucket="compat", Key="to-delete", Body=b"x")

    assert client.delete_object(Bucket="compat", Key="to-delete")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error_of(client.get_object, Bucket="compat", Key="to-delete")["code"] == "NoSuchKey"


def test_if_none_match_on_an_existing_key_is_412(client):
    client.put_object(Bucket="compat", Key="exists", Body=b"x")

    assert error_of(client.put_object, Bucket="compat", Key="exists", Body=b"y", IfNoneMatch="*")["status"] == 412


def test_a_wrong_secret_is_403_signature_does_not_match(standin):
    client = s3(standin, OCI_CHECKSUMS, secret="not-the-secret")

    assert error_of(client.head_object, Bucket="compat", Key="k")["status"] == 403
    assert error_of(client.get_object, Bucket="compat", Key="k")["code"] == "SignatureDoesNotMatch"


def test_an_unknown_access_key_is_403_invalid_access_key_id(standin):
    client = s3(standin, OCI_CHECKSUMS, access_key="0" * 40)

    assert error_of(client.get_object, Bucket="compat", Key="k")["code"] == "InvalidAccessKeyId"


def test_a_body_that_does_not_match_its_signed_hash_is_refused(standin, client):
    import httpx
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="PUT", url=f"{standin.url}/s3/compat/tampered", data=b"signed body")
    S3SigV4Auth(Credentials(standin.s3_key.access_key_id, standin.s3_key.secret_key), "s3",
                "us-ashburn-1").add_auth(request)
    answer = httpx.put(request.url, content=b"forged body", headers=dict(request.headers.items()))

    assert answer.status_code == 400 and "<Code>XAmzContentSHA256Mismatch</Code>" in answer.text


def test_a_pre_signed_url_reads_and_writes_without_an_authorization_header(client):
    client.put_object(Bucket="compat", Key="pre signed/model.skops", Body=b"weights")
    read = client.generate_presigned_url("get_object", Params={"Bucket": "compat", "Key": "pre signed/model.skops"})
    write = client.generate_presigned_url("put_object", Params={"Bucket": "compat", "Key": "pre signed/new"})

    assert httpx.get(read).content == b"weights"
    assert httpx.put(write, content=b"uploaded").status_code == 200
    assert client.get_object(Bucket="compat", Key="pre signed/new")["Body"].read() == b"uploaded"


def test_a_tampered_or_expired_pre_signed_url_is_refused(client):
    client.put_object(Bucket="compat", Key="guarded", Body=b"secret weights")
    url = client.generate_presigned_url("get_object", Params={"Bucket": "compat", "Key": "guarded"}, ExpiresIn=60)
    other_key = url.replace("/guarded?", "/other?")
    expired = client.generate_presigned_url("get_object", Params={"Bucket": "compat", "Key": "guarded"},
                                            ExpiresIn=1)

    assert httpx.get(other_key).status_code == 403
    assert "SignatureDoesNotMatch" in httpx.get(url.replace("X-Amz-Expires=60", "X-Amz-Expires=600")).text
    time.sleep(2.1)
    answer = httpx.get(expired)
    assert answer.status_code == 403 and "Request has expired" in answer.text
