"""The buckets and objects behind both Object Storage APIs (native and S3 compatibility), kept on disk.

``<root>/buckets/<bucket>/bucket.json`` describes a bucket; each object is ``objects/<sha256 of name>.json`` (its
record) plus ``objects/<sha256 of name>.<etag>.data`` (its bytes). A write puts the new bytes beside the old, then
replaces the record in one rename (the commit point), then removes the old bytes: a crash leaves the old object or
the new one. Multipart uploads live in ``<root>/uploads/<upload id>/`` until committed or aborted.

OCI's rules kept here: ETags are opaque UUIDs, new on every write; ``opc-content-md5`` is the base64 MD5 of the
bytes; a multipart object has no content MD5 but ``opc-multipart-md5``, the base64 MD5 of the concatenated binary
MD5s of its parts followed by ``-<part count>``. The store raises the neutral errors below; each API words them.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from .files import read_json, write_atomic, write_json

_BUCKET_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}")
MAX_PARTS = 10_000


class StoreError(Exception):
    """A refusal of the store; the API that called it words it in its own format."""


class NoSuchBucket(StoreError): ...
class BucketExists(StoreError): ...
class BucketNotEmpty(StoreError): ...
class InvalidBucketName(StoreError): ...
class NoSuchObject(StoreError): ...
class IfMatchFailed(StoreError): ...
class IfNoneMatchFailed(StoreError): ...
class NoSuchUpload(StoreError): ...
class InvalidPart(StoreError): ...


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def http_date(iso: str) -> str:
    """An ISO-8601 instant as an HTTP date (``Last-Modified``)."""
    return format_datetime(datetime.fromisoformat(iso.replace("Z", "+00:00")), usegmt=True)


def b64_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@dataclass
class BucketRecord:
    name: str
    namespace: str
    compartment_id: str
    created_by: str
    time_created: str
    etag: str
    id: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class ObjectRecord:
    name: str
    size: int
    etag: str
    md5: str  # base64 MD5, or the multipart MD5 ("...-N") when multipart
    multipart: bool
    time_created: str
    time_modified: str
    content_type: str
    metadata: dict[str, str]  # user metadata, names lowercased, without the opc-meta- / x-amz-meta- prefix
    headers: dict[str, str]  # content-encoding, content-language, content-disposition, cache-control as sent


@dataclass
class Part:
    number: int
    etag: str
    md5: str
    size: int


@dataclass
class Upload:
    upload_id: str
    bucket: str
    name: str
    time_created: str
    content_type: str
    metadata: dict[str, str]
    headers: dict[str, str]
    parts: dict[int, Part] = field(default_factory=dict)
    conditions: dict[str, str] = field(default_factory=dict)  # if-match / if-none-match given at creation


@dataclass
class Listing:
    objects: list[ObjectRecord]
    prefixes: list[str]
    next_start: str | None


def _key(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


class ObjectStore:
    """Buckets and objects of one namespace, indexed in memory, persisted under ``root``."""

    def __init__(self, root: Path, namespace: str):
        self.root, self.namespace = root, namespace
        self.buckets: dict[str, BucketRecord] = {}
        self.objects: dict[str, dict[str, ObjectRecord]] = {}
        self.uploads: dict[str, Upload] = {}
        self._load()

    def _load(self) -> None:
        for path in sorted((self.root / "buckets").glob("*/bucket.json")):
            bucket = BucketRecord(**read_json(path, {}))
            self.buckets[bucket.name] = bucket
            self.objects[bucket.name] = {}
            for record_path in path.parent.glob("objects/*.json"):
                record = ObjectRecord(**read_json(record_path, {}))
                self.objects[bucket.name][record.name] = record
        for path in (self.root / "uploads").glob("*/upload.json"):
            raw = read_json(path, {})
            parts = {int(n): Part(**p) for n, p in raw.pop("parts", {}).items()}
            self.uploads[raw["upload_id"]] = Upload(**raw, parts=parts)

    # --- buckets ---------------------------------------------------------------------------------------------------

    def _bucket_dir(self, name: str) -> Path:
        return self.root / "buckets" / name

    def create_bucket(self, name: str, compartment_id: str, created_by: str,
                      metadata: dict[str, str] | None = None) -> BucketRecord:
        if not _BUCKET_NAME.fullmatch(name) or name in (".", ".."):
            raise InvalidBucketName(name)
        if name in self.buckets:
            raise BucketExists(name)
        bucket = BucketRecord(name, self.namespace, compartment_id, created_by, now_iso(), str(uuid.uuid4()),
                              f"ocid1.bucket.oc1..{uuid.uuid4().hex}", dict(metadata or {}))
        write_json(self._bucket_dir(name) / "bucket.json", asdict(bucket))
        self.buckets[name], self.objects[name] = bucket, {}
        return bucket

    def bucket(self, name: str) -> BucketRecord:
        try:
            return self.buckets[name]
        except KeyError:
            raise NoSuchBucket(name) from None

    def delete_bucket(self, name: str, if_match: str | None = None) -> None:
        bucket = self.bucket(name)
        if if_match and _bare(if_match) != bucket.etag:
            raise IfMatchFailed(if_match)
        if self.objects[name] or any(u.bucket == name for u in self.uploads.values()):
            raise BucketNotEmpty(name)
        shutil.rmtree(self._bucket_dir(name), ignore_errors=True)
        del self.buckets[name], self.objects[name]

    # --- objects ---------------------------------------------------------------------------------------------------

    def head(self, bucket: str, name: str) -> ObjectRecord:
        self.bucket(bucket)
        try:
            return self.objects[bucket][name]
        except KeyError:
            raise NoSuchObject(name) from None

    def read(self, bucket: str, record: ObjectRecord) -> bytes:
        """The object's bytes; an object whose bytes were removed behind the store's back (a drill) is gone."""
        try:
            return self._data_path(bucket, record.name, record.etag).read_bytes()
        except FileNotFoundError:
            raise NoSuchObject(record.name) from None

    def _data_path(self, bucket: str, name: str, etag: str) -> Path:
        return self._bucket_dir(bucket) / "objects" / f"{_key(name)}.{etag}.data"

    def check_conditions(self, bucket: str, name: str, if_match: str | None, if_none_match: str | None) -> None:
        current = self.objects[bucket].get(name)
        if if_none_match is not None and _bare(if_none_match) == "*" and current is not None:
            raise IfNoneMatchFailed(name)
        if if_match is not None and (current is None or _bare(if_match) not in ("*", current.etag)):
            raise IfMatchFailed(if_match)

    def put(self, bucket: str, name: str, data: bytes, content_type: str, metadata: dict[str, str],
            headers: dict[str, str], if_match: str | None = None, if_none_match: str | None = None) -> ObjectRecord:
        self.bucket(bucket)
        self.check_conditions(bucket, name, if_match, if_none_match)
        etag = str(uuid.uuid4())
        write_atomic(self._data_path(bucket, name, etag), data)
        return self._commit(bucket, name, etag, len(data), b64_md5(data), False, content_type, metadata, headers)

    def _commit(self, bucket: str, name: str, etag: str, size: int, md5: str, multipart: bool, content_type: str,
                metadata: dict[str, str], headers: dict[str, str]) -> ObjectRecord:
        previous = self.objects[bucket].get(name)
        stamp = now_iso()
        record = ObjectRecord(name, size, etag, md5, multipart, previous.time_created if previous else stamp, stamp,
                              content_type, dict(metadata), dict(headers))
        write_json(self._bucket_dir(bucket) / "objects" / f"{_key(name)}.json", asdict(record))
        self.objects[bucket][name] = record
        if previous is not None:
            self._data_path(bucket, name, previous.etag).unlink(missing_ok=True)
        return record

    def delete(self, bucket: str, name: str, if_match: str | None = None) -> None:
        record = self.head(bucket, name)
        if if_match is not None and _bare(if_match) not in ("*", record.etag):
            raise IfMatchFailed(if_match)
        (self._bucket_dir(bucket) / "objects" / f"{_key(name)}.json").unlink(missing_ok=True)
        self._data_path(bucket, name, record.etag).unlink(missing_ok=True)
        del self.objects[bucket][name]

    def listing(self, bucket: str, prefix: str = "", start: str = "", end: str | None = None,
             delimiter: str | None = None, limit: int = 1000, after: str | None = None) -> Listing:
        """Objects by name from ``start`` (inclusive) or after ``after``, below ``end``; with a delimiter, the
        names that continue past it after ``prefix`` are rolled up into ``prefixes``."""
        self.bucket(bucket)
        objects: list[ObjectRecord] = []
        prefixes: list[str] = []
        for name in sorted(self.objects[bucket]):
            if not name.startswith(prefix) or name < start or (after is not None and name <= after):
                continue
            if end is not None and name >= end:
                break
            rolled = None
            if delimiter and delimiter in name[len(prefix):]:
                rolled = name[:len(prefix) + name[len(prefix):].index(delimiter) + len(delimiter)]
                if prefixes and prefixes[-1] == rolled:
                    continue
            if len(objects) + len(prefixes) == limit:
                return Listing(objects, prefixes, name)
            if rolled is not None:
                prefixes.append(rolled)
            else:
                objects.append(self.objects[bucket][name])
        return Listing(objects, prefixes, None)

    # --- multipart uploads -----------------------------------------------------------------------------------------

    def create_upload(self, bucket: str, name: str, content_type: str, metadata: dict[str, str],
                      headers: dict[str, str], if_match: str | None = None,
                      if_none_match: str | None = None) -> Upload:
        """A new upload; conditions given here are checked now and again at commit, when the object is written (the
        SDK's UploadManager sends them only here)."""
        self.bucket(bucket)
        self.check_conditions(bucket, name, if_match, if_none_match)
        conditions = {k: v for k, v in (("if-match", if_match), ("if-none-match", if_none_match)) if v is not None}
        upload = Upload(str(uuid.uuid4()), bucket, name, now_iso(), content_type, dict(metadata), dict(headers),
                        conditions=conditions)
        self.uploads[upload.upload_id] = upload
        self._save_upload(upload)
        return upload

    def upload(self, bucket: str, name: str, upload_id: str) -> Upload:
        self.bucket(bucket)
        upload = self.uploads.get(upload_id)
        if upload is None or upload.bucket != bucket or upload.name != name:
            raise NoSuchUpload(upload_id)
        return upload

    def _save_upload(self, upload: Upload) -> None:
        raw = asdict(upload)
        raw["parts"] = {str(n): p for n, p in raw["parts"].items()}
        write_json(self.root / "uploads" / upload.upload_id / "upload.json", raw)

    def upload_part(self, bucket: str, name: str, upload_id: str, number: int, data: bytes) -> Part:
        upload = self.upload(bucket, name, upload_id)
        if not 1 <= number <= MAX_PARTS:
            raise InvalidPart(f"part number {number} is not between 1 and {MAX_PARTS}")
        part = Part(number, str(uuid.uuid4()), b64_md5(data), len(data))
        write_atomic(self.root / "uploads" / upload_id / f"part-{number}.data", data)
        upload.parts[number] = part
        self._save_upload(upload)
        return part

    def commit_upload(self, bucket: str, name: str, upload_id: str, parts: list[tuple[int, str]],
                      if_match: str | None = None, if_none_match: str | None = None) -> ObjectRecord:
        upload = self.upload(bucket, name, upload_id)
        if not parts:
            raise InvalidPart("partsToCommit is empty")
        chosen = []
        for number, etag in sorted(parts):
            part = upload.parts.get(number)
            if part is None or _bare(etag) != part.etag:
                raise InvalidPart(f"part {number} with ETag '{etag}' was not uploaded to upload '{upload_id}'")
            chosen.append(part)
        self.check_conditions(bucket, name, if_match or upload.conditions.get("if-match"),
                              if_none_match or upload.conditions.get("if-none-match"))
        folder = self.root / "uploads" / upload_id
        data = b"".join((folder / f"part-{p.number}.data").read_bytes() for p in chosen)
        digests = b"".join(base64.b64decode(p.md5) for p in chosen)
        etag = str(uuid.uuid4())
        write_atomic(self._data_path(bucket, name, etag), data)
        record = self._commit(bucket, name, etag, len(data), f"{b64_md5(digests)}-{len(chosen)}", True,
                              upload.content_type, upload.metadata, upload.headers)
        self.abort_upload(bucket, name, upload_id)
        return record

    def abort_upload(self, bucket: str, name: str, upload_id: str) -> None:
        self.upload(bucket, name, upload_id)
        del self.uploads[upload_id]
        shutil.rmtree(self.root / "uploads" / upload_id, ignore_errors=True)


def _bare(etag: str) -> str:
    """An ETag as stored: S3 clients quote it, OCI's do not."""
    return etag.strip().strip('"')
