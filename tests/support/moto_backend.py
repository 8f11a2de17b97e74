"""Fast seeding of in-process moto: objects put through its backend, with a chosen age."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from deployments.local_aws import LOCAL_ACCOUNT_ID


def bulk_put(bucket: str, keys: Iterable[str], last_modified: datetime, body: bytes = b"") -> int:
    """Put empty (or `body`) objects straight into moto's S3 backend, as old as asked; much
    faster than one PutObject request each. Returns how many were put."""
    from moto.s3.models import s3_backends

    backend = s3_backends[LOCAL_ACCOUNT_ID]["aws"]
    naive_utc = last_modified.astimezone(UTC).replace(tzinfo=None)
    count = 0
    for key in keys:
        stored = backend.put_object(bucket, key, body)
        stored.last_modified = naive_utc
        count += 1
    return count


def backdate_versions(bucket: str, key: str, moments: list[datetime]) -> None:
    """Set the LastModified of a key's versions (and delete markers), oldest first."""
    from moto.s3.models import s3_backends

    versions = s3_backends[LOCAL_ACCOUNT_ID]["aws"].buckets[bucket].keys.getlist(key)
    if len(versions) != len(moments):
        raise ValueError(f"{key} has {len(versions)} versions, not {len(moments)}")
    for version, moment in zip(versions, moments, strict=True):
        version.last_modified = moment.astimezone(UTC).replace(tzinfo=None)
