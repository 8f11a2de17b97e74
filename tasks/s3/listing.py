"""Streaming listings of a prefix: current objects (sub-prefixes in parallel) and all versions."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_DONE = object()


@dataclass(frozen=True)
class ListedObject:
    """One listed object or version, with what selection needs."""

    key: str
    etag: str
    size: int
    last_modified: datetime
    storage_class: str = "STANDARD"
    version_id: str | None = None
    is_delete_marker: bool = False
    #: For a noncurrent version: when the next newer version (or delete marker) replaced it.
    noncurrent_since: datetime | None = None


def _current(entry: dict[str, Any]) -> ListedObject:
    return ListedObject(
        key=entry["Key"],
        etag=entry.get("ETag", ""),
        size=int(entry.get("Size", 0)),
        last_modified=entry["LastModified"],
        storage_class=entry.get("StorageClass", "STANDARD"),
    )


def list_current_objects(
    s3: S3Client, bucket: str, prefix: str, owner: str | None = None, workers: int = 8
) -> Iterator[ListedObject]:
    """Every current object under the prefix, page by page.

    A first listing with Delimiter="/" yields the objects directly under the prefix and
    discovers its sub-prefixes; those are then listed in parallel (bounded workers), as the
    fastest tools do. A flat prefix costs exactly one request per 1000 objects. Pages wait in a
    bounded queue, so memory does not grow with the number of objects.
    """
    base: dict[str, Any] = {"Bucket": bucket}
    if owner:
        base["ExpectedBucketOwner"] = owner
    sub_prefixes: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(**base, Prefix=prefix, Delimiter="/"):
        sub_prefixes += [common["Prefix"] for common in page.get("CommonPrefixes", [])]
        for entry in page.get("Contents", []):
            yield _current(dict(entry))
    if sub_prefixes:
        yield from _list_in_parallel(s3, base, sub_prefixes, max(1, workers))


def _list_in_parallel(
    s3: S3Client, base: dict[str, Any], prefixes: list[str], workers: int
) -> Iterator[ListedObject]:
    pages: queue.Queue[Any] = queue.Queue(maxsize=workers * 2)
    stop = threading.Event()

    def list_one(prefix: str) -> None:
        try:
            for page in s3.get_paginator("list_objects_v2").paginate(**base, Prefix=prefix):
                if stop.is_set():
                    return
                pages.put(page.get("Contents", []))
        except Exception as exc:  # raised again in the consuming thread
            pages.put(exc)
        finally:
            pages.put(_DONE)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="list") as pool:
        for prefix in prefixes:
            pool.submit(list_one, prefix)
        remaining = len(prefixes)
        try:
            while remaining:
                item = pages.get()
                if item is _DONE:
                    remaining -= 1
                elif isinstance(item, Exception):
                    raise item
                else:
                    for entry in item:
                        yield _current(entry)
        finally:
            stop.set()
            # Unblock workers waiting on a full queue so the pool can shut down.
            while remaining:
                if pages.get() is _DONE:
                    remaining -= 1


def list_object_versions(
    s3: S3Client, bucket: str, prefix: str, owner: str | None = None
) -> Iterator[ListedObject]:
    """Every version and delete marker under the prefix, newest first within each key, with
    the time each noncurrent one was superseded."""
    arguments: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if owner:
        arguments["ExpectedBucketOwner"] = owner
    newer: ListedObject | None = None  # the previous entry: the next newer version of its key
    for page in s3.get_paginator("list_object_versions").paginate(**arguments):
        entries: list[tuple[dict[str, Any], bool]] = [
            (dict(version), False) for version in page.get("Versions", [])
        ] + [(dict(marker), True) for marker in page.get("DeleteMarkers", [])]
        # S3 returns each list ordered by key, newest first; merge the two that way. Times
        # can tie (second precision): the current entry comes first, else S3's own order.
        entries.sort(
            key=lambda pair: (
                pair[0]["Key"],
                -pair[0]["LastModified"].timestamp(),
                not pair[0].get("IsLatest"),
            )
        )
        for entry, is_marker in entries:
            listed = ListedObject(
                key=entry["Key"],
                etag="" if is_marker else entry.get("ETag", ""),
                size=0 if is_marker else int(entry.get("Size", 0)),
                last_modified=entry["LastModified"],
                storage_class="" if is_marker else entry.get("StorageClass", "STANDARD"),
                version_id=entry.get("VersionId"),
                is_delete_marker=is_marker,
                noncurrent_since=(
                    newer.last_modified
                    if newer is not None and newer.key == entry["Key"] and not entry.get("IsLatest")
                    else None
                ),
            )
            newer = listed
            yield listed
