"""The S3 servers a chaos run goes against, and how each fills a bucket with objects of known ages.

moto runs in this process, so its objects are backdated through its backend. SeaweedFS cannot
backdate: the old objects are put first, the young ones a moment later, and the run's `as_of`
is set 30 days after the moment between them (with ALLOW_FUTURE_AS_OF).

A versioned layout (VersionedLayout) fills a versioned bucket whose keys have histories: old
versions under delete markers or newer versions, some under a legal hold. Its snapshots are of
every version, by (key, version id). Only moto fills one (UNFAITHFUL_VERSIONS says why).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeAlias

from deployments.local_aws import LOCAL_ACCOUNT_ID, LocalAws
from tests.support.moto_backend import backdate_versions, bulk_put
from tests.support.servers import S3Server

PREFIX = "tmp/"
OLDER_THAN_DAYS = 30
#: Sub-prefixes of PREFIX that hold some of the old objects.
SUB_PREFIXES = ("a/", "b/", "c/")
#: A character XML 1.0 cannot carry: S3 refuses a DeleteObjects body holding it (MalformedXML).
XML_POISON = "\x01"
#: Why versioned layouts are filled on moto only (checked with SeaweedFS 4.48).
UNFAITHFUL_VERSIONS = (
    "SeaweedFS's versions differ from S3's: a legal hold put on a version moves its "
    "LastModified to the time of the hold, and a ListObjectVersions of the whole bucket loses "
    "keys across pages (tmp-keep/ after tmp/), so neither ages nor snapshots would hold"
)


@dataclass(frozen=True)
class Layout:
    """What a run's bucket holds, by count. Every group but `old` must survive the run."""

    #: Under the prefix and older than the cutoff (the plan): directly under the prefix ...
    old_direct: int = 800
    #: ... and under its sub-prefixes (listed in parallel by the run).
    old_nested: int = 700
    #: Under the prefix, younger than the cutoff.
    young: int = 150
    #: Old, beside the prefix (`tmp-keep/`, which `Prefix="tmp"` would also match).
    beside: int = 50
    #: Old, elsewhere in the bucket (`logs/`).
    elsewhere: int = 50
    #: One more old key under the prefix, holding a character XML 1.0 cannot carry.
    poison: bool = False

    def old_keys(self) -> list[str]:
        keys = [f"{PREFIX}old-{n:05d}" for n in range(self.old_direct)]
        keys += [
            f"{PREFIX}{SUB_PREFIXES[n % len(SUB_PREFIXES)]}old-{n:05d}"
            for n in range(self.old_nested)
        ]
        return keys

    def young_keys(self) -> list[str]:
        return [f"{PREFIX}new-{n:05d}" for n in range(self.young - self.young // 2)] + [
            f"{PREFIX}a/new-{n:05d}" for n in range(self.young // 2)
        ]

    def kept_old_keys(self) -> list[str]:
        return [f"{PREFIX.rstrip('/')}-keep/old-{n:05d}" for n in range(self.beside)] + [
            f"logs/old-{n:05d}" for n in range(self.elsewhere)
        ]

    def poison_key(self) -> str | None:
        return f"{PREFIX}b/poison-{XML_POISON}-key" if self.poison else None


@dataclass(frozen=True)
class VersionedLayout:
    """A versioned bucket, by count of keys of each history (v1 is the oldest version). Under
    `versions noncurrent`, only the v1 of `deleted`, `overwritten` and `held` keys is eligible."""

    #: Under the prefix: v1 old, then a delete marker, also before the cutoff (the key was
    #: deleted long ago; its v1 is noncurrent and eligible, the marker current).
    deleted: int = 600
    #: Under the prefix: v1 old, v2 current since before the cutoff (v1 eligible).
    overwritten: int = 600
    #: Under the prefix: v1 old, v2 current since after the cutoff (v1 not eligible yet).
    recently_overwritten: int = 100
    #: Under the prefix: a single old version, current.
    old_current: int = 100
    #: Under the prefix: a single young version.
    young: int = 100
    #: Overwritten keys beside the prefix (`tmp-keep/`) and elsewhere (`logs/`): v1 kept.
    beside: int = 30
    elsewhere: int = 30
    #: Overwritten keys under the prefix whose v1 is under a legal hold (S3 Object Lock).
    held: int = 0

    def history_keys(self) -> dict[str, list[str]]:
        """The keys of each history, by its name."""
        return {
            "deleted": [f"{PREFIX}deleted-{n:05d}" for n in range(self.deleted)],
            "overwritten": [f"{PREFIX}a/overwritten-{n:05d}" for n in range(self.overwritten)]
            + [f"{PREFIX.rstrip('/')}-keep/overwritten-{n:05d}" for n in range(self.beside)]
            + [f"logs/overwritten-{n:05d}" for n in range(self.elsewhere)],
            "recently_overwritten": [
                f"{PREFIX}b/recent-{n:05d}" for n in range(self.recently_overwritten)
            ],
            "old_current": [f"{PREFIX}old-{n:05d}" for n in range(self.old_current)],
            "young": [f"{PREFIX}new-{n:05d}" for n in range(self.young)],
            "held": [f"{PREFIX}c/held-{n:05d}" for n in range(self.held)],
        }


@dataclass(frozen=True)
class ObjectState:
    """An object as a listing shows it; for a version, also its id and its place in its key's
    history (`noncurrent_since`: when its next newer version or delete marker came)."""

    etag: str
    last_modified: datetime
    size: int
    version_id: str | None = None
    is_latest: bool = True
    is_delete_marker: bool = False
    noncurrent_since: datetime | None = None


#: What a snapshot is keyed by: a key (current objects) or (key, version id) (every version).
Identity: TypeAlias = str | tuple[str, str]


def listed(s3: Any, bucket: str) -> dict[str, ObjectState]:
    """Every object of the bucket, as the server lists it."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            found[entry["Key"]] = ObjectState(entry["ETag"], entry["LastModified"], entry["Size"])
    return found


def versions_of(
    entries: Iterable[tuple[str, str, str, datetime, int, bool]],
) -> dict[Identity, ObjectState]:
    """States from (key, version id, etag, last modified, size, is marker), newest first
    within each key."""
    states: dict[Identity, ObjectState] = {}
    newer: tuple[str, datetime] | None = None
    for key, version_id, etag, last_modified, size, marker in entries:
        latest = newer is None or newer[0] != key
        states[(key, version_id)] = ObjectState(
            etag,
            last_modified,
            size,
            version_id,
            is_latest=latest,
            is_delete_marker=marker,
            noncurrent_since=None if latest or newer is None else newer[1],
        )
        newer = (key, last_modified)
    return states


@dataclass(frozen=True)
class Filled:
    """A bucket ready for a run: its name and the run's reference time."""

    bucket: str
    as_of: datetime

    @property
    def cutoff(self) -> datetime:
        return self.as_of - timedelta(days=OLDER_THAN_DAYS)


class Target(Protocol):
    """An S3 server the runs go to (through the fault proxy)."""

    name: str
    endpoint_url: str

    def environment(self) -> dict[str, str]:
        """Credentials, region and settings a run needs on this server (not the endpoint)."""
        ...

    def client(self) -> Any:
        """A boto3 S3 client straight to the server, around the proxy."""
        ...

    def fill(self, layout: Layout | VersionedLayout, label: str) -> Filled:
        """A new bucket holding `layout` (a versioned bucket for a VersionedLayout)."""
        ...

    def snapshot(self, bucket: str) -> dict[str, ObjectState]:
        """Every object of the bucket, straight from the server (around the proxy)."""
        ...

    def snapshot_versions(self, bucket: str) -> dict[Identity, ObjectState]:
        """Every version and delete marker of the bucket, by (key, version id)."""
        ...


def s3_client(endpoint_url: str, environment: dict[str, str]) -> Any:
    """A client of its own session, made once per server: runs fill and inspect buckets from
    several threads, and clients are thread-safe where boto3's default session is not."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        region_name=environment["AWS_DEFAULT_REGION"],
    )
    return session.client("s3", endpoint_url=endpoint_url)


def bucket_name(label: str) -> str:
    return f"chaos-{label[:40].strip('-')}-{uuid.uuid4().hex[:8]}".lower()


class MotoTarget:
    """moto's server in this process; objects backdated in its backend."""

    name = "moto"

    def __init__(self, aws: LocalAws) -> None:
        self.aws = aws
        self.endpoint_url = aws.endpoint_url
        self._client = s3_client(self.endpoint_url, aws.environment())

    def environment(self) -> dict[str, str]:
        env = self.aws.environment()
        env.pop("AWS_ENDPOINT_URL")
        return env

    def client(self) -> Any:
        return self._client

    def fill(self, layout: Layout | VersionedLayout, label: str) -> Filled:
        if isinstance(layout, VersionedLayout):
            return self._fill_versioned(layout, label)
        bucket = bucket_name(label)
        self.client().create_bucket(Bucket=bucket)
        as_of = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        cutoff = as_of - timedelta(days=OLDER_THAN_DAYS)
        old = cutoff - timedelta(days=10)
        bulk_put(bucket, layout.old_keys(), old, b"old")
        bulk_put(bucket, layout.kept_old_keys(), old, b"old")
        bulk_put(bucket, layout.young_keys(), cutoff + timedelta(days=20), b"young")
        # Exactly at the cutoff is not older than it: it stays.
        bulk_put(bucket, [f"{PREFIX}at-cutoff"], cutoff, b"edge")
        if poison := layout.poison_key():
            bulk_put(bucket, [poison], old, b"poison")
        return Filled(bucket, as_of)

    def _fill_versioned(self, layout: VersionedLayout, label: str) -> Filled:
        """Versions put through the backend and backdated; legal holds put over HTTP, as a
        client would (moto keeps a version's LastModified when it is held, as S3 does)."""
        from moto.s3.models import s3_backends

        bucket = bucket_name(label)
        s3 = self.client()
        if layout.held:
            s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        else:
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        backend = s3_backends[LOCAL_ACCOUNT_ID]["aws"]
        as_of = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        cutoff = as_of - timedelta(days=OLDER_THAN_DAYS)
        older, old = cutoff - timedelta(days=15), cutoff - timedelta(days=10)
        young = cutoff + timedelta(days=5)
        # Each history: one moment per version (None as body: a delete marker), oldest first.
        histories: dict[str, list[tuple[datetime, bytes | None]]] = {
            "deleted": [(older, b"v1"), (old, None)],
            "overwritten": [(older, b"v1"), (old, b"v2")],
            "held": [(older, b"v1"), (old, b"v2")],
            "recently_overwritten": [(older, b"v1"), (young, b"v2")],
            "old_current": [(old, b"v1")],
            "young": [(young, b"v1")],
        }
        for history, keys in layout.history_keys().items():
            for key in keys:
                for _, body in histories[history]:
                    if body is None:
                        backend.delete_object(bucket, key)
                    else:
                        backend.put_object(bucket, key, body)
                backdate_versions(bucket, key, [moment for moment, _ in histories[history]])
        for key in layout.history_keys()["held"]:
            first = backend.buckets[bucket].keys.getlist(key)[0]
            s3.put_object_legal_hold(
                Bucket=bucket, Key=key, VersionId=str(first.version_id), LegalHold={"Status": "ON"}
            )
        return Filled(bucket, as_of)

    def snapshot_versions(self, bucket: str) -> dict[Identity, ObjectState]:
        from moto.s3.models import FakeDeleteMarker, s3_backends

        keys = s3_backends[LOCAL_ACCOUNT_ID]["aws"].buckets[bucket].keys
        entries = []
        for name, versions in list(keys.iterlists()):
            # Oldest first in moto's list: newest first here, as a listing shows them.
            for stored in reversed(list(versions)):
                marker = isinstance(stored, FakeDeleteMarker)
                entries.append(
                    (
                        name,
                        str(stored.version_id),
                        "" if marker else stored.etag,
                        stored.last_modified.replace(microsecond=0, tzinfo=UTC),
                        0 if marker else stored.size,
                        marker,
                    )
                )
        return versions_of(entries)

    def snapshot(self, bucket: str) -> dict[str, ObjectState]:
        # Read from the backend: listing thousands of keys over HTTP costs moto a second.
        from moto.s3.models import s3_backends

        keys = s3_backends[LOCAL_ACCOUNT_ID]["aws"].buckets[bucket].keys
        # Listings show whole seconds, as here.
        return {
            name: ObjectState(
                stored.etag, stored.last_modified.replace(microsecond=0, tzinfo=UTC), stored.size
            )
            for name, stored in list(keys.items())
        }


class SeaweedTarget:
    """SeaweedFS: ages made by putting the old objects a moment before the young ones."""

    name = "seaweedfs"

    def __init__(self, server: S3Server) -> None:
        self.server = server
        self.endpoint_url = server.endpoint_url
        self._client = s3_client(self.endpoint_url, server.environment())

    def environment(self) -> dict[str, str]:
        env = self.server.environment()
        env.pop("AWS_ENDPOINT_URL")
        return {**env, "ALLOW_FUTURE_AS_OF": "true"}

    def client(self) -> Any:
        return self._client

    def fill(self, layout: Layout | VersionedLayout, label: str) -> Filled:
        if isinstance(layout, VersionedLayout):
            raise NotImplementedError(UNFAITHFUL_VERSIONS)
        bucket = bucket_name(label)
        s3 = self.client()
        s3.create_bucket(Bucket=bucket)

        def put(key: str) -> None:
            s3.put_object(Bucket=bucket, Key=key, Body=key.encode())

        old = layout.old_keys() + layout.kept_old_keys()
        if poison := layout.poison_key():
            old.append(poison)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, old))
            # Listings show whole seconds: leave a clear second on each side of the cutoff.
            time.sleep(1.1)
            between = datetime.now(UTC)
            time.sleep(1.1)
            list(pool.map(put, layout.young_keys()))
        return Filled(bucket, between + timedelta(days=OLDER_THAN_DAYS))

    def snapshot(self, bucket: str) -> dict[str, ObjectState]:
        return listed(self.client(), bucket)

    def snapshot_versions(self, bucket: str) -> dict[Identity, ObjectState]:
        raise NotImplementedError(UNFAITHFUL_VERSIONS)
