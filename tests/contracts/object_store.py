"""The ObjectStore contract."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from harness.domain.errors import IntegrityError, NotFound
from tests.contracts import unique


class ObjectStoreContract:
    """Fixtures: ``store``; ``bucket`` (an existing bucket); ``missing_bucket`` (a name that does not exist);
    ``tamper(bucket, key, data)``, which replaces an object's bytes behind the store's back."""

    def test_put_then_get_and_head(self, store, bucket):
        key, data = f"{unique('obj')}/data.bin", uuid.uuid4().bytes * 3
        ref = store.put(bucket, key, data)
        assert (ref.bucket, ref.key, ref.size) == (bucket, key, len(data))
        assert ref.sha256 == hashlib.sha256(data).hexdigest()
        assert store.get(bucket, key) == data
        assert store.head(bucket, key) == ref

    def test_a_missing_key_has_no_head_and_cannot_be_read(self, store, bucket):
        key = unique("missing")
        assert store.head(bucket, key) is None
        with pytest.raises(NotFound):
            store.get(bucket, key)

    def test_ensure_bucket_keeps_what_is_there(self, store, bucket):
        ref = store.put(bucket, unique("keep"), b"kept")
        store.ensure_bucket(bucket)
        assert store.get(bucket, ref.key) == b"kept"

    def test_put_into_a_missing_bucket_is_not_found(self, store, missing_bucket):
        with pytest.raises(NotFound):
            store.put(missing_bucket, "key", b"data")

    def test_list_by_prefix_in_key_order_with_sizes(self, store, bucket):
        prefix = unique("list") + "/"
        for name in ("b", "c/1", "a"):
            store.put(bucket, prefix + name, name.encode())
        store.put(bucket, prefix[:-1] + "-sibling", b"not under the prefix")
        listed = store.list(bucket, prefix)
        assert [ref.key for ref in listed] == [prefix + "a", prefix + "b", prefix + "c/1"]
        assert [ref.size for ref in listed] == [1, 1, 3]

    def test_delete_removes_and_deleting_a_missing_key_is_a_no_op(self, store, bucket):
        ref = store.put(bucket, unique("gone"), b"soon gone")
        store.delete(bucket, ref.key)
        assert store.head(bucket, ref.key) is None
        with pytest.raises(NotFound):
            store.get(bucket, ref.key)
        store.delete(bucket, ref.key)

    def test_get_refuses_an_object_changed_behind_its_back(self, store, bucket, tamper):
        ref = store.put(bucket, unique("tampered"), b"the original")
        tamper(bucket, ref.key, b"something else")
        with pytest.raises(IntegrityError):
            store.get(bucket, ref.key)

    def test_put_keeps_its_own_copy(self, store, bucket):
        data = bytearray(b"mutable")
        ref = store.put(bucket, unique("copy"), data)
        data[:] = b"changed"
        assert store.get(bucket, ref.key) == b"mutable"
