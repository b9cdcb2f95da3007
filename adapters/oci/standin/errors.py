"""OCI's refusals, worded, coded and numbered as the services answer them.

Native APIs answer ``{"code": ..., "message": ...}`` (application/json) with an ``opc-request-id`` header, the
shape the fault proxy's ``oci-too-many-requests`` preset also sends, so the SDK parses both into the same
``ServiceError`` and its retry strategy treats them alike. The S3 compatibility API answers S3's XML ``<Error>``.
Messages are OCI's where they are known from its answers (cited in the stand-in's README section).
"""

from __future__ import annotations

from xml.sax.saxutils import escape


class OciError(Exception):
    """An answer of a native OCI API: ``status`` with ``{"code", "message"}``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class S3Error(Exception):
    """An answer of the S3 compatibility API: ``status`` with S3's XML ``<Error>``."""

    def __init__(self, status: int, code: str, message: str, resource: str = ""):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.resource = status, code, message, resource

    def xml(self, request_id: str) -> str:
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{self.code}</Code><Message>{escape(self.message)}</Message>"
                f"<Resource>{escape(self.resource)}</Resource><RequestId>{request_id}</RequestId></Error>")


# --- every service -------------------------------------------------------------------------------------------------

NOT_PROVIDED = "The required information to complete authentication was not provided."
NOT_PROVIDED_OR_INCORRECT = "The required information to complete authentication was not provided or was incorrect."
SIGNATURE_FAILED = "Failed to verify the HTTP(S) Signature"


def not_authenticated(message: str = NOT_PROVIDED) -> OciError:
    return OciError(401, "NotAuthenticated", message)


def not_found() -> OciError:
    """What OCI answers for a resource that does not exist, or one the caller may not see (and unknown routes)."""
    return OciError(404, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")


def invalid_parameter(message: str) -> OciError:
    return OciError(400, "InvalidParameter", message)


def missing_parameter(name: str) -> OciError:
    return OciError(400, "MissingParameter", f"Missing required parameter '{name}'.")


def cannot_parse(message: str) -> OciError:
    return OciError(400, "CannotParseRequest", message)


# --- Object Storage ------------------------------------------------------------------------------------------------

def namespace_not_found() -> OciError:
    return OciError(404, "NamespaceNotFound", "You do not have authorization to perform this request, "
                                              "or the requested resource could not be found.")


def bucket_not_found(namespace: str, bucket: str) -> OciError:
    return OciError(404, "BucketNotFound", f"Either the bucket named '{bucket}' does not exist in the namespace "
                                           f"'{namespace}' or you are not authorized to access it")


def bucket_already_exists(namespace: str, bucket: str) -> OciError:
    return OciError(409, "BucketAlreadyExists", f"Either the bucket '{bucket}' in namespace '{namespace}' already "
                                                "exists or you are not authorized to create it")


def bucket_not_empty(bucket: str) -> OciError:
    return OciError(409, "BucketNotEmpty", f"Bucket named '{bucket}' is not empty. Delete all objects first.")


def object_not_found(bucket: str, name: str) -> OciError:
    return OciError(404, "ObjectNotFound", f"The object '{name}' was not found in the bucket '{bucket}'")


def if_match_failed(etag: str) -> OciError:
    return OciError(412, "IfMatchFailed", f"The If-Match header value '{etag}' does not match the ETag of the "
                                          "resource.")


def if_none_match_failed() -> OciError:
    return OciError(412, "IfNoneMatchFailed", "The If-None-Match header is '*' but there is an existing entity")


def unmatched_content_md5(expected: str, computed: str) -> OciError:
    return OciError(400, "UnmatchedContentMD5", f"The computed MD5 of the request body ({computed}) does not match "
                                                f"the Content-MD5 header ({expected})")


def no_such_upload(upload_id: str) -> OciError:
    return OciError(404, "NoSuchUpload", f"The upload '{upload_id}' does not exist")


# --- S3 compatibility API ------------------------------------------------------------------------------------------

def no_such_bucket(bucket: str) -> S3Error:
    return S3Error(404, "NoSuchBucket", "The specified bucket does not exist", f"/{bucket}")


def no_such_key(bucket: str, key: str) -> S3Error:
    return S3Error(404, "NoSuchKey", "The specified key does not exist.", f"/{bucket}/{key}")
