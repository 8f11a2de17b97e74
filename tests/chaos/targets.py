"""The S3 servers a chaos run goes against, and how each fills a bucket with objects of known ages.

moto runs in this process, so its objects are backdated through its backend. SeaweedFS cannot
backdate: the old objects are put first, the young ones a moment later, and the run's `as_of`
is set 30 days after the moment between them (with ALLOW_FUTURE_AS_OF).
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from deployments.local_aws import LOCAL_ACCOUNT_ID, LocalAws
from tests.support.moto_backend import bulk_put
from tests.support.servers import S3Server

PREFIX = "tmp/"
OLDER_THAN_DAYS = 30
#: Sub-prefixes of PREFIX that hold some of the old objects.
SUB_PREFIXES = ("a/", "b/", "c/")
#: A character XML 1.0 cannot carry: S3 refuses a DeleteObjects body holding it (MalformedXML).
XML_POISON = "\x01"


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
class ObjectState:
    etag: str
    last_modified: datetime
    size: int


def listed(s3: Any, bucket: str) -> dict[str, ObjectState]:
    """Every object of the bucket, as the server lists it."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            found[entry["Key"]] = ObjectState(entry["ETag"], entry["LastModified"], entry["Size"])
    return found


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

    def fill(self, layout: Layout, label: str) -> Filled:
        """A new bucket holding `layout`."""
        ...

    def snapshot(self, bucket: str) -> dict[str, ObjectState]:
        """Every object of the bucket, straight from the server (around the proxy)."""
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

    def fill(self, layout: Layout, label: str) -> Filled:
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

    def fill(self, layout: Layout, label: str) -> Filled:
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
