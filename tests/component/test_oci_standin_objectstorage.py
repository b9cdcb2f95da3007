"""The OCI stand-in's Object Storage, driven by the real ``oci`` SDK (``service_endpoint`` overridden): every emulated
operation, OCI's error codes, conditional writes, and multipart through the SDK's ``UploadManager``."""

from __future__ import annotations

import base64
import hashlib
import uuid

import oci
import pytest
from oci.object_storage import ObjectStorageClient, UploadManager
from oci.object_storage.models import (
    CommitMultipartUploadDetails,
    CommitMultipartUploadPartDetails,
    CreateBucketDetails,
    CreateMultipartUploadDetails,
)

from adapters.oci.standin.testing import StandInProcess
from harness.infra.processes import free_port

pytestmark = pytest.mark.timeout(120)
COMPARTMENT = "ocid1.compartment.oc1..aaaaaaaaobjectstoragetests"


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    with StandInProcess(free_port(), tmp_path_factory.mktemp("oci-standin")) as process:
        yield process


@pytest.fixture(scope="module")
def client(standin) -> ObjectStorageClient:
    return ObjectStorageClient(standin.sdk_config(), service_endpoint=standin.url)


@pytest.fixture
def bucket(client) -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    client.create_bucket("lastmile", CreateBucketDetails(name=name, compartment_id=COMPARTMENT))
    return name


def refused(call, *args, **kwargs) -> oci.exceptions.ServiceError:
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        call(*args, **kwargs)
    return caught.value


def test_get_namespace_answers_the_configured_namespace(client):
    answer = client.get_namespace()

    assert answer.data == "lastmile" and answer.headers["opc-request-id"]


def test_a_created_bucket_is_got_listed_and_headed_in_its_compartment(client, bucket):
    got = client.get_bucket("lastmile", bucket).data
    listed = [b.name for b in client.list_buckets("lastmile", COMPARTMENT).data]
    headed = client.head_bucket("lastmile", bucket)

    assert (got.name, got.compartment_id, got.namespace) == (bucket, COMPARTMENT, "lastmile")
    assert bucket in listed and headed.status == 200 and headed.headers["etag"] == got.etag


def test_list_buckets_pages_with_opc_next_page(client):
    compartment = f"ocid1.compartment.oc1..aaaa{uuid.uuid4().hex}"
    for i in range(3):
        client.create_bucket("lastmile", CreateBucketDetails(name=f"page-{compartment[-6:]}-{i}",
                                                             compartment_id=compartment))
    first = client.list_buckets("lastmile", compartment, limit=2)
    second = client.list_buckets("lastmile", compartment, limit=2, page=first.next_page)

    assert [len(first.data), len(second.data)] == [2, 1] and second.next_page is None


def test_creating_an_existing_bucket_is_409_bucket_already_exists(client, bucket):
    error = refused(client.create_bucket, "lastmile", CreateBucketDetails(name=bucket, compartment_id=COMPARTMENT))

    assert (error.status, error.code) == (409, "BucketAlreadyExists")
    assert error.message == (f"Either the bucket '{bucket}' in namespace 'lastmile' already exists or you are not "
                             "authorized to create it")


def test_a_missing_bucket_is_404_bucket_not_found(client):
    error = refused(client.get_bucket, "lastmile", "no-such-bucket")

    assert (error.status, error.code) == (404, "BucketNotFound")
    assert "Either the bucket named 'no-such-bucket' does not exist in the namespace 'lastmile'" in error.message


def test_another_namespace_is_404_namespace_not_found(client):
    assert refused(client.get_bucket, "not-ours", "b").code == "NamespaceNotFound"


def test_an_object_round_trips_with_its_metadata_md5_and_etag(client, bucket):
    body = b"the model's bytes"
    put = client.put_object("lastmile", bucket, "models/m 1.bin", body, opc_meta={"sha256": "abc"},
                            content_type="application/octet-stream")
    got = client.get_object("lastmile", bucket, "models/m 1.bin")
    head = client.head_object("lastmile", bucket, "models/m 1.bin")

    assert got.data.content == body
    assert got.headers["etag"] == head.headers["etag"] == put.headers["etag"]
    assert head.headers["opc-content-md5"] == base64.b64encode(hashlib.md5(body).digest()).decode()
    assert head.headers["opc-meta-sha256"] == "abc" and head.headers["content-length"] == str(len(body))


def test_each_write_gets_a_new_etag(client, bucket):
    first = client.put_object("lastmile", bucket, "k", b"1").headers["etag"]
    second = client.put_object("lastmile", bucket, "k", b"2").headers["etag"]

    assert first != second and uuid.UUID(second)


def test_if_none_match_star_on_an_existing_object_is_412_and_keeps_it(client, bucket):
    client.put_object("lastmile", bucket, "once", b"first")
    error = refused(client.put_object, "lastmile", bucket, "once", b"second", if_none_match="*")

    assert (error.status, error.code) == (412, "IfNoneMatchFailed")
    assert client.get_object("lastmile", bucket, "once").data.content == b"first"


def test_if_none_match_star_creates_an_absent_object(client, bucket):
    assert client.put_object("lastmile", bucket, "new", b"x", if_none_match="*").status == 200


def test_if_match_a_stale_etag_is_412_for_put_and_delete(client, bucket):
    stale = client.put_object("lastmile", bucket, "cas", b"1").headers["etag"]
    current = client.put_object("lastmile", bucket, "cas", b"2").headers["etag"]
    put_error = refused(client.put_object, "lastmile", bucket, "cas", b"3", if_match=stale)
    delete_error = refused(client.delete_object, "lastmile", bucket, "cas", if_match=stale)

    assert (put_error.status, put_error.code, delete_error.code) == (412, "IfMatchFailed", "IfMatchFailed")
    assert client.put_object("lastmile", bucket, "cas", b"4", if_match=current).status == 200


def test_a_wrong_content_md5_is_400_unmatched_content_md5(client, bucket):
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    error = refused(client.put_object, "lastmile", bucket, "md5", b"body", content_md5=wrong)

    assert (error.status, error.code) == (400, "UnmatchedContentMD5")
    assert refused(client.head_object, "lastmile", bucket, "md5").status == 404


def test_list_objects_filters_by_prefix_start_and_limit_with_chosen_fields(client, bucket):
    for name in ("a/1", "a/2", "a/3", "b/1"):
        client.put_object("lastmile", bucket, name, name.encode())
    page = client.list_objects("lastmile", bucket, prefix="a/", limit=2, fields="name,size,md5").data
    rest = client.list_objects("lastmile", bucket, prefix="a/", start=page.next_start_with).data
    rolled = client.list_objects("lastmile", bucket, delimiter="/").data
    bare = client.list_objects("lastmile", bucket, prefix="b/").data.objects[0]

    assert [o.name for o in page.objects] == ["a/1", "a/2"] and page.next_start_with == "a/3"
    assert page.objects[0].size == 3 and page.objects[0].md5
    assert [o.name for o in rest.objects] == ["a/3"] and rest.next_start_with is None
    assert rolled.prefixes == ["a/", "b/"] and rolled.objects == []
    assert (bare.name, bare.size, bare.etag) == ("b/1", None, None)


def test_a_deleted_object_is_404_object_not_found(client, bucket):
    client.put_object("lastmile", bucket, "gone", b"x")
    assert client.delete_object("lastmile", bucket, "gone").status == 204
    error = refused(client.get_object, "lastmile", bucket, "gone")

    assert (error.status, error.code) == (404, "ObjectNotFound")
    assert error.message == f"The object 'gone' was not found in the bucket '{bucket}'"


def test_a_bucket_with_objects_is_409_bucket_not_empty_and_an_empty_one_is_deleted(client, bucket):
    client.put_object("lastmile", bucket, "x", b"x")
    assert refused(client.delete_bucket, "lastmile", bucket).code == "BucketNotEmpty"
    client.delete_object("lastmile", bucket, "x")

    assert client.delete_bucket("lastmile", bucket).status == 204
    assert refused(client.get_bucket, "lastmile", bucket).code == "BucketNotFound"


def test_upload_manager_uploads_in_parts_with_oci_multipart_md5(client, bucket, tmp_path):
    body = bytes(range(256)) * 4 * 1024 * 3 + b"tail"  # 3 MiB and 4 bytes: four parts of 1 MiB at most
    path = tmp_path / "big.bin"
    path.write_bytes(body)
    manager = UploadManager(client, allow_parallel_uploads=True, parallel_process_count=2)
    answer = manager.upload_file("lastmile", bucket, "big.bin", str(path), part_size=1024 * 1024,
                                 metadata={"sha256": hashlib.sha256(body).hexdigest()})
    head = client.head_object("lastmile", bucket, "big.bin")
    parts = [body[i:i + 1024 * 1024] for i in range(0, len(body), 1024 * 1024)]
    expected = base64.b64encode(hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).digest()).decode()

    assert client.get_object("lastmile", bucket, "big.bin").data.content == body
    assert answer.headers["opc-multipart-md5"] == head.headers["opc-multipart-md5"] == f"{expected}-4"
    assert "opc-content-md5" not in head.headers
    assert head.headers["opc-meta-sha256"] == hashlib.sha256(body).hexdigest()


def test_multipart_parts_are_listed_and_an_abort_forgets_the_upload(client, bucket):
    upload = client.create_multipart_upload("lastmile", bucket, CreateMultipartUploadDetails(object="m")).data
    etags = [client.upload_part("lastmile", bucket, "m", upload.upload_id, n, f"part {n}".encode()).headers["etag"]
             for n in (1, 2)]
    listed = client.list_multipart_upload_parts("lastmile", bucket, "m", upload.upload_id).data
    client.abort_multipart_upload("lastmile", bucket, "m", upload.upload_id)
    error = refused(client.list_multipart_upload_parts, "lastmile", bucket, "m", upload.upload_id)

    assert [(p.part_number, p.etag, p.size) for p in listed] == [(1, etags[0], 6), (2, etags[1], 6)]
    assert (error.status, error.code) == (404, "NoSuchUpload")


def test_a_commit_naming_a_wrong_part_etag_is_refused(client, bucket):
    upload = client.create_multipart_upload("lastmile", bucket, CreateMultipartUploadDetails(object="w")).data
    client.upload_part("lastmile", bucket, "w", upload.upload_id, 1, b"one")
    details = CommitMultipartUploadDetails(parts_to_commit=[CommitMultipartUploadPartDetails(part_num=1,
                                                                                              etag="not-it")])
    error = refused(client.commit_multipart_upload, "lastmile", bucket, "w", upload.upload_id, details)

    assert error.status == 400 and refused(client.head_object, "lastmile", bucket, "w").status == 404


def test_objects_buckets_and_uploads_survive_a_restart(tmp_path):
    with StandInProcess(free_port(), tmp_path / "state") as first:
        client = ObjectStorageClient(first.sdk_config(), service_endpoint=first.url)
        client.create_bucket("lastmile", CreateBucketDetails(name="kept", compartment_id=COMPARTMENT))
        etag = client.put_object("lastmile", "kept", "k", b"kept bytes", opc_meta={"a": "b"}).headers["etag"]
        upload = client.create_multipart_upload("lastmile", "kept", CreateMultipartUploadDetails(object="u")).data
    with StandInProcess(free_port(), tmp_path / "state") as second:
        client = ObjectStorageClient(second.sdk_config(), service_endpoint=second.url)
        got = client.get_object("lastmile", "kept", "k")
        parts = client.list_multipart_upload_parts("lastmile", "kept", "u", upload.upload_id)

        assert (got.data.content, got.headers["etag"], got.headers["opc-meta-a"]) == (b"kept bytes", etag, "b")
        assert parts.status == 200


def test_upload_manager_with_if_none_match_does_not_clobber_an_existing_object(client, bucket, tmp_path):
    client.put_object("lastmile", bucket, "kept.bin", b"original")
    path = tmp_path / "big.bin"
    path.write_bytes(b"y" * (1024 * 1024 + 1))
    manager = UploadManager(client, allow_parallel_uploads=False)
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        manager.upload_file("lastmile", bucket, "kept.bin", str(path), part_size=1024 * 1024, if_none_match="*")

    assert (caught.value.status, caught.value.code) == (412, "IfNoneMatchFailed")
    assert client.get_object("lastmile", bucket, "kept.bin").data.content == b"original"


def test_if_none_match_given_at_creation_is_checked_again_at_commit(client, bucket):
    upload = client.create_multipart_upload("lastmile", bucket, CreateMultipartUploadDetails(object="raced"),
                                            if_none_match="*").data
    etag = client.upload_part("lastmile", bucket, "raced", upload.upload_id, 1, b"late").headers["etag"]
    client.put_object("lastmile", bucket, "raced", b"first writer")
    details = CommitMultipartUploadDetails(parts_to_commit=[CommitMultipartUploadPartDetails(part_num=1, etag=etag)])
    error = refused(client.commit_multipart_upload, "lastmile", bucket, "raced", upload.upload_id, details)

    assert error.code == "IfNoneMatchFailed"
    assert client.get_object("lastmile", bucket, "raced").data.content == b"first writer"
