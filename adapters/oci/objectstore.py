"""ObjectStore over OCI Object Storage's native API (the ``oci`` SDK's ``ObjectStorageClient``)."""

from __future__ import annotations

import io
import threading
from typing import Any

from harness.domain.errors import IntegrityError, NotFound
from harness.domain.records import ObjectRef, sha256_hex

from .auth import Credentials
from .sdk import PreconditionFailed, endpoint_of, make_client, service_errors

MIB = 1024 * 1024
PART_ATTEMPTS = 2
"""SDK attempts per part request: the UploadManager's assembler already tries every part 5 times."""
SHA256_META = "sha256"
"""The user metadata key of an object's sha256; OCI stores and returns it as the ``opc-meta-sha256`` header."""


class OciObjectStore:
    """Objects in a namespace's buckets, created in ``compartment_id``, each carrying its sha256 as
    ``opc-meta-sha256``, which :meth:`get` checks on every read.

    Objects over ``multipart_threshold`` bytes go up through the SDK's ``UploadManager`` in parts of
    ``part_size`` bytes, sent by ``upload_client`` when given (the SDK's assembler tries each part 5 times itself,
    so that client should retry less than the store's own).

    :meth:`put` can be made conditional: ``if_none_match=True`` sends ``If-None-Match: *`` (refused when the
    object exists), ``if_match=ETAG`` replaces only that version (see :meth:`etag`); a refusal is a
    :class:`~adapters.oci.sdk.PreconditionFailed`."""

    service = "OCI Object Storage"

    def __init__(self, client: Any, namespace: str, compartment_id: str, *, key_id: str = "?",
                 multipart_threshold: int = 64 * MIB, part_size: int = 16 * MIB, upload_client: Any = None):
        self._client, self._upload_client = client, upload_client or client
        self._namespace = namespace
        self.compartment_id = compartment_id
        self.key_id = key_id
        self.multipart_threshold, self.part_size = multipart_threshold, part_size
        self.endpoint = endpoint_of(client)
        self._uploads: Any = None
        self._lock = threading.Lock()

    @property
    def namespace(self) -> str:
        """The tenancy's Object Storage namespace: the configured one, else asked of the service once."""
        if not self._namespace:
            with self._errors("the namespace"):
                self._namespace = str(self._client.get_namespace(compartment_id=self.compartment_id or None).data)
        return self._namespace

    def ensure_bucket(self, bucket: str) -> None:
        import oci

        try:
            with self._errors(bucket):
                self._client.head_bucket(self.namespace, bucket)
                return
        except NotFound:
            pass
        details = oci.object_storage.models.CreateBucketDetails(name=bucket, compartment_id=self.compartment_id)
        try:
            with self._errors(bucket):
                self._client.create_bucket(self.namespace, details)
        except PreconditionFailed:
            pass  # created meanwhile by someone else: what we wanted

    def put(self, bucket: str, key: str, data: bytes, *, if_none_match: bool = False,
            if_match: str | None = None) -> ObjectRef:
        """Store a copy of ``data`` with its sha256; conditional with ``if_none_match`` or ``if_match``."""
        data = bytes(data)
        digest = sha256_hex(data)
        conditions: dict[str, str] = {}
        if if_none_match:
            conditions["if_none_match"] = "*"
        if if_match:
            conditions["if_match"] = if_match
        with self._errors(bucket, key):
            if len(data) > self.multipart_threshold:
                self._upload_manager().upload_stream(self.namespace, bucket, key, io.BytesIO(data),
                                                     part_size=self.part_size, metadata={SHA256_META: digest},
                                                     **conditions)
            else:
                self._client.put_object(self.namespace, bucket, key, data, content_length=len(data),
                                        opc_meta={SHA256_META: digest}, **conditions)
        return ObjectRef(bucket, key, digest, len(data))

    def get(self, bucket: str, key: str) -> bytes:
        with self._errors(bucket, key):
            response = self._client.get_object(self.namespace, bucket, key)
            data = response.data.content
        expected = _meta(response.headers)
        if expected and sha256_hex(data) != expected:
            raise IntegrityError(f"{self._uri(bucket, key)}: content does not match its sha256 {expected[:12]}…")
        return data

    def head(self, bucket: str, key: str) -> ObjectRef | None:
        response = self._head(bucket, key)
        if response is None:
            return None
        return ObjectRef(bucket, key, _meta(response.headers), int(response.headers.get("content-length") or 0))

    def etag(self, bucket: str, key: str) -> str | None:
        """The object's current ETag (for ``put(..., if_match=...)``), None when there is no such object."""
        response = self._head(bucket, key)
        return None if response is None else response.headers.get("etag")

    def list(self, bucket: str, prefix: str = "") -> list[ObjectRef]:
        refs: list[ObjectRef] = []
        start: str | None = None
        with self._errors(bucket):
            while True:
                page = self._client.list_objects(self.namespace, bucket, prefix=prefix or None, start=start,
                                                 fields="name,size").data
                refs += [ObjectRef(bucket, item.name, "", int(item.size or 0)) for item in page.objects or []]
                start = page.next_start_with
                if not start:
                    return refs

    def delete(self, bucket: str, key: str) -> None:
        """Remove the object; deleting one that is not there is a no-op."""
        try:
            with self._errors(bucket, key):
                self._client.delete_object(self.namespace, bucket, key)
        except NotFound:
            pass

    # internals -----------------------------------------------------------------------------------
    def _head(self, bucket: str, key: str) -> Any:
        try:
            with self._errors(bucket, key):
                return self._client.head_object(self.namespace, bucket, key)
        except NotFound:
            return None

    def _upload_manager(self) -> Any:
        from oci.object_storage import UploadManager

        with self._lock:
            if self._uploads is None:
                self._uploads = UploadManager(self._upload_client, allow_parallel_uploads=True,
                                              parallel_process_count=2)
            return self._uploads

    def _uri(self, bucket: str, key: str = "") -> str:
        return f"oci://{bucket}@{self._namespace or '?'}/{key}"

    def _errors(self, bucket: str, key: str = ""):
        return service_errors(self.service, self.endpoint, self._uri(bucket, key), self.key_id)


def open_store(credentials: Credentials, endpoint: str | None, namespace: str, compartment_id: str,
               multipart_threshold: int = 64 * MIB, part_size: int = 16 * MIB) -> OciObjectStore:
    """An :class:`OciObjectStore` with its own SDK clients, at ``endpoint`` or the region's endpoint. Parts of a
    multipart upload get :data:`PART_ATTEMPTS` SDK attempts each, times the assembler's 5 tries."""
    from oci.object_storage import ObjectStorageClient

    client = make_client(ObjectStorageClient, credentials.config, credentials.signer, endpoint)
    uploads = make_client(ObjectStorageClient, credentials.config, credentials.signer, endpoint,
                          attempts=PART_ATTEMPTS)
    return OciObjectStore(client, namespace, compartment_id, key_id=credentials.key_id,
                          multipart_threshold=multipart_threshold, part_size=part_size, upload_client=uploads)


def _meta(headers: Any) -> str:
    return str(headers.get(f"opc-meta-{SHA256_META}") or "")
