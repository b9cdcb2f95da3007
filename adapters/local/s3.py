"""ObjectStore over the S3 API (boto3): moto or MinIO locally, OCI's S3 compatibility API in the cloud."""

from __future__ import annotations

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from harness.domain.errors import AuthError, CapacityError, IntegrityError, NotFound, UnreachableError
from harness.domain.records import ObjectRef, Secret, sha256_hex

_MISSING = {"NoSuchKey", "NoSuchBucket", "404", "NotFound"}


class S3ObjectStore:
    """Objects carry their sha256 as user metadata; :meth:`get` checks it on every read."""

    def __init__(self, endpoint: str | None, region: str, access_key: Secret | None, secret_key: Secret | None):
        self.endpoint = endpoint
        self._client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=access_key.reveal() if access_key else None,
            aws_secret_access_key=secret_key.reveal() if secret_key else None,
            config=Config(
                # OCI's S3 compatibility API (and some other stores) reject boto3's default checksum headers.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                s3={"addressing_style": "path"},
                connect_timeout=3,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )

    def ensure_bucket(self, bucket: str) -> None:
        with self._errors(bucket):
            try:
                self._client.head_bucket(Bucket=bucket)
                return
            except ClientError as exc:
                if _code(exc) not in _MISSING:
                    raise
            self._client.create_bucket(Bucket=bucket)

    def put(self, bucket: str, key: str, data: bytes) -> ObjectRef:
        digest = sha256_hex(data)
        with self._errors(bucket, key):
            self._client.put_object(Bucket=bucket, Key=key, Body=data, Metadata={"sha256": digest})
        return ObjectRef(bucket, key, digest, len(data))

    def get(self, bucket: str, key: str) -> bytes:
        with self._errors(bucket, key):
            response = self._client.get_object(Bucket=bucket, Key=key)
            data = response["Body"].read()
        expected = response.get("Metadata", {}).get("sha256")
        if expected and sha256_hex(data) != expected:
            raise IntegrityError(f"s3://{bucket}/{key}: content does not match its sha256 {expected[:12]}…")
        return data

    def head(self, bucket: str, key: str) -> ObjectRef | None:
        try:
            with self._errors(bucket, key):
                response = self._client.head_object(Bucket=bucket, Key=key)
        except NotFound:
            return None
        return ObjectRef(bucket, key, response.get("Metadata", {}).get("sha256", ""), response["ContentLength"])

    def list(self, bucket: str, prefix: str = "") -> list[ObjectRef]:
        refs: list[ObjectRef] = []
        with self._errors(bucket):
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    refs.append(ObjectRef(bucket, item["Key"], "", item["Size"]))
        return refs

    def delete(self, bucket: str, key: str) -> None:
        with self._errors(bucket, key):
            self._client.delete_object(Bucket=bucket, Key=key)

    def _errors(self, bucket: str, key: str = ""):
        return _S3Errors(self.endpoint or "the S3 endpoint", f"s3://{bucket}/{key}")


class _S3Errors:
    """Turns botocore errors into lastmile's: missing -> NotFound, no answer -> UnreachableError, refused for load
    or failing after boto3's own retries (SlowDown, 503, 5xx) -> CapacityError, refused credentials -> AuthError."""

    def __init__(self, endpoint: str, uri: str):
        self.endpoint, self.uri = endpoint, uri

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, ClientError) and _code(exc) in _MISSING:
            raise NotFound(f"{self.uri}: not found") from None
        if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)):
            raise UnreachableError(f"object storage at {self.endpoint} did not answer", url=self.endpoint) from None
        if isinstance(exc, ClientError):
            code, status = _code(exc), _status(exc)
            if code in _THROTTLED or status >= 500 or status == 429:
                raise CapacityError(f"object storage at {self.endpoint} kept refusing {self.uri} ({code or status}) "
                                    "after boto3's retries", url=self.endpoint) from None
            if code in _REFUSED or status in (401, 403):
                raise AuthError(f"object storage at {self.endpoint} refused the credentials ({code or status}) for "
                                f"{self.uri}", url=self.endpoint) from None
        return False


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


_THROTTLED = {"SlowDown", "ServiceUnavailable", "Throttling", "ThrottlingException", "RequestLimitExceeded",
              "InternalError", "TooManyRequests", "503", "500"}
_REFUSED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"}
