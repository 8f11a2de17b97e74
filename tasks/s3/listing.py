"""Streaming listings of a prefix: current objects (sub-prefixes in parallel) and all versions."""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tasks.errors import AwsApiError
from tasks.s3.key_ranges import DELIMITER, KeyRange, split_points

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ListObjectVersionsOutputTypeDef

_DONE = object()


@dataclass(frozen=True, slots=True)
class ListedObject:
    """One listed object or version, with what selection needs. Slots: the keep rules hold
    thousands of them until a listing ends (no per-object attribute dict)."""

    key: str
    etag: str
    size: int
    last_modified: datetime
    storage_class: str = "STANDARD"
    version_id: str | None = None
    is_delete_marker: bool = False
    #: For a noncurrent version: when the next newer version (or delete marker) replaced it.
    noncurrent_since: datetime | None = None
    #: What Object Lock holds it by, where the listing says ("legal hold", "retained until
    #: ..."): an inventory with its lock fields. "" for nothing, or not said.
    lock: str = ""


def current_object(entry: dict[str, Any]) -> ListedObject:
    """A ListObjectsV2 entry as a listed object."""
    return ListedObject(
        key=entry["Key"],
        etag=entry.get("ETag", ""),
        size=int(entry.get("Size", 0)),
        last_modified=entry["LastModified"],
        # One string per class, not one per object: the keep rules hold thousands of objects.
        storage_class=sys.intern(entry.get("StorageClass", "STANDARD")),
    )


#: Keys per ListObjectsV2 page: S3's most.
PAGE_SIZE = 1000
#: About how many keys one shard of a flat prefix lists before it hands the rest on.
SHARD_SIZE = 20_000
#: Pages a listing reads before any shard splits: a small prefix is listed one page after
#: another, without a request spent on a guess.
PAGES_BEFORE_SPLITTING = 5


@dataclass(frozen=True)
class Shard:
    """A piece of a listing: the keys of a range under a prefix. A delimited shard lists the
    objects directly under its prefix and hands on each sub-prefix ("folder") as a shard."""

    prefix: str
    keys: KeyRange = field(default_factory=KeyRange)
    delimited: bool = False


def list_current_objects(
    s3: S3Client,
    bucket: str,
    prefix: str,
    owner: str | None = None,
    workers: int = 8,
    shard_size: int = SHARD_SIZE,
    page_size: int = PAGE_SIZE,
) -> Iterator[ListedObject]:
    """Every current object under the prefix, page by page, in no particular order.

    A first listing with Delimiter="/" yields the objects directly under the prefix and
    discovers its sub-prefixes; those are listed in parallel (bounded workers), as the fastest
    tools do, and so are key ranges of any prefix that proves large (see `list_shard`), so a
    flat prefix is not listed one page after another. Pages wait in a bounded queue, so memory
    does not grow with the number of objects.
    """
    base: dict[str, Any] = {"Bucket": bucket}
    if owner:
        base["ExpectedBucketOwner"] = owner
    listing = _ParallelListing(s3, base, max(1, workers), shard_size, page_size)
    yield from listing.run(Shard(prefix, delimited=True))


@dataclass
class Rest:
    """What a shard still has to list after the pages it yielded: None once it is done."""

    shard: Shard | None


def list_shard(
    s3: S3Client,
    base: dict[str, Any],
    shard: Shard,
    shard_size: int,
    spare: Callable[[], int],
    hand_on: Callable[[Shard], None],
    page_size: int = PAGE_SIZE,
    rest: Rest | None = None,
) -> Iterator[list[ListedObject]]:
    """The current objects of one shard, a page at a time.

    Sub-prefixes a delimited shard finds are handed on as shards of their own. After each
    page that is not the last, while `spare()` says other workers could take work, the rest of
    the range is cut at a guess of where `shard_size` keys end (`tasks.s3.key_ranges`): this
    shard keeps the part before it and hands on the rest. A guess past the last key costs one
    request. Before each page is yielded, `rest` (if given) says what is left after it, so a
    consumer can stop after any page and hand the rest on.
    """
    arguments: dict[str, Any] = {**base, "Prefix": shard.prefix}
    if shard.delimited:
        arguments["Delimiter"] = DELIMITER
    keys = shard.keys
    if keys.start_after is not None:
        arguments["StartAfter"] = keys.start_after
    pages = s3.get_paginator("list_objects_v2").paginate(
        **arguments, PaginationConfig={"PageSize": page_size}
    )
    for page in pages:
        contents = page.get("Contents", [])
        folders = [common["Prefix"] for common in page.get("CommonPrefixes", [])]
        for folder in folders:
            if keys.holds(folder):
                hand_on(Shard(folder))
        listed = [current_object(dict(entry)) for entry in contents if keys.holds(entry["Key"])]
        names = sorted([entry["Key"] for entry in contents] + folders)
        done = not names or not page.get("IsTruncated") or keys.beyond(names[-1])
        # One piece handed on at a time: a guess that finds no key costs one request, and
        # every shard still splits after each page while workers are idle, so the pieces
        # can double with each round trip.
        if not done and spare():
            remaining = KeyRange(names[-1], keys.up_to)
            points = split_points(names, remaining, shard.prefix, shard_size, 1, shard.delimited)
            if points:
                pieces = remaining.split_at(points)
                for piece in pieces[1:]:
                    hand_on(Shard(shard.prefix, piece, shard.delimited))
                keys = KeyRange(keys.start_after, pieces[0].up_to)
        if rest is not None:
            after = KeyRange(names[-1], keys.up_to) if not done else None
            rest.shard = Shard(shard.prefix, after, shard.delimited) if after else None
        yield listed
        if done:
            return


class _ParallelListing:
    """Shards listed by a bounded pool of threads, their pages merged into one stream."""

    def __init__(
        self, s3: S3Client, base: dict[str, Any], workers: int, shard_size: int, page_size: int
    ) -> None:
        self.s3, self.base, self.workers = s3, base, workers
        self.shard_size, self.page_size = shard_size, page_size
        self.pages: queue.Queue[Any] = queue.Queue(maxsize=workers * 2)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.outstanding = 0  # shards handed on and not yet done
        self.pages_read = 0
        self.pool: ThreadPoolExecutor | None = None

    def spare(self) -> int:
        """How many more shards could be listed at once now (none until the listing has
        shown it is not small)."""
        with self.lock:
            if self.pages_read < PAGES_BEFORE_SPLITTING:
                return 0
            return max(0, self.workers - self.outstanding)

    def hand_on(self, shard: Shard) -> None:
        if self.stop.is_set() or self.pool is None:
            return
        with self.lock:
            self.outstanding += 1
        self.pool.submit(self._list, shard)

    def _list(self, shard: Shard) -> None:
        try:
            if self.stop.is_set():
                return
            pages = list_shard(
                self.s3, self.base, shard, self.shard_size, self.spare, self.hand_on, self.page_size
            )
            for page in pages:
                if self.stop.is_set():
                    return
                with self.lock:
                    self.pages_read += 1
                self.pages.put(page)
        except Exception as exc:  # raised again in the consuming thread
            self.pages.put(exc)
        finally:
            self.pages.put(_DONE)

    def run(self, first: Shard) -> Iterator[ListedObject]:
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="list") as pool:
            self.pool = pool
            self.hand_on(first)
            try:
                while self._pending():
                    item = self.pages.get()
                    if item is _DONE:
                        with self.lock:
                            self.outstanding -= 1
                    elif isinstance(item, Exception):
                        raise item
                    else:
                        yield from item
            finally:
                self.stop.set()
                # Unblock workers waiting on a full queue so the pool can shut down.
                while self._pending():
                    if self.pages.get() is _DONE:
                        with self.lock:
                            self.outstanding -= 1

    def _pending(self) -> bool:
        with self.lock:
            return self.outstanding > 0


def list_object_versions(
    s3: S3Client,
    bucket: str,
    prefix: str,
    owner: str | None = None,
    start_after: str | None = None,
) -> Iterator[ListedObject]:
    """Every version and delete marker under the prefix (of the keys after `start_after`, if
    given), newest first within each key, with the time each noncurrent one was superseded."""
    base: dict[str, Any] = {"Bucket": bucket}
    if owner:
        base["ExpectedBucketOwner"] = owner
    shard = Shard(prefix, KeyRange(start_after))
    for page in list_versions_shard(s3, base, shard, SHARD_SIZE, lambda: 0, lambda _: None):
        yield from page


def list_versions_shard(
    s3: S3Client,
    base: dict[str, Any],
    shard: Shard,
    shard_size: int,
    spare: Callable[[], int],
    hand_on: Callable[[Shard], None],
    page_size: int = PAGE_SIZE,
    rest: Rest | None = None,
) -> Iterator[list[ListedObject]]:
    """The versions and delete markers of one shard (a key range, never delimited), a page at
    a time, every key whole in one shard: its history decides what is noncurrent, and since
    when.

    A page can end in the middle of a key's versions: that key waits for the next page, so
    `rest` (as in `list_shard`) always starts after a key listed whole. A split cuts the rest
    of the range at the first current key after a guessed point (one ListObjectsV2 request of
    one key): a range then always starts after a key that exists. S3 lists a `KeyMarker`'s
    versions in no range; some servers list them, or skip the next key's newest version when
    the marker is no key (moto); versions of the marker are filtered out here, and a key whose
    first version listed is not its latest is refused rather than planned from half its
    history.
    """
    keys = shard.keys
    arguments: dict[str, Any] = {**base, "Prefix": shard.prefix, "MaxKeys": page_size}
    if keys.start_after is not None:
        arguments["KeyMarker"] = keys.start_after
    history = _History()
    held: list[tuple[dict[str, Any], bool]] = []  # the versions of a key a page ended in
    whole: str | None = None  # the last key listed whole
    while True:
        page = s3.list_object_versions(**arguments)
        answered = _entries(page)
        entries = held + [
            (entry, is_marker) for entry, is_marker in answered if keys.holds(entry["Key"])
        ]
        entries.sort(key=_newest_first)
        last_named = max((entry["Key"] for entry, _ in answered), default=None)
        done = not page.get("IsTruncated") or (last_named is not None and keys.beyond(last_named))
        held = []
        if not done:
            if entries:
                held = [pair for pair in entries if pair[0]["Key"] == entries[-1][0]["Key"]]
                entries = entries[: -len(held)]
            if spare() and (named := [pair[0]["Key"] for pair in entries + held]):
                keys = _split(s3, base, shard, keys, named, shard_size, hand_on)
            arguments["KeyMarker"] = page["NextKeyMarker"]
            if page.get("NextVersionIdMarker"):
                arguments["VersionIdMarker"] = page["NextVersionIdMarker"]
            else:
                arguments.pop("VersionIdMarker", None)
        listed = history.listed(entries, shard.prefix)
        whole = listed[-1].key if listed else whole
        if rest is not None:
            after = KeyRange(whole, keys.up_to) if not done and whole is not None else None
            rest.shard = Shard(shard.prefix, after) if after else None
        yield listed
        if done:
            return


def _entries(page: ListObjectVersionsOutputTypeDef) -> list[tuple[dict[str, Any], bool]]:
    """A ListObjectVersions page's versions and delete markers, each with whether it is a
    marker."""
    return [(dict(version), False) for version in page.get("Versions", [])] + [
        (dict(marker), True) for marker in page.get("DeleteMarkers", [])
    ]


def _newest_first(pair: tuple[dict[str, Any], bool]) -> tuple[str, float, bool]:
    # S3 returns each list ordered by key, newest first; merged that way. Times can tie
    # (second precision): the current entry comes first, else S3's own order.
    entry = pair[0]
    return entry["Key"], -entry["LastModified"].timestamp(), not entry.get("IsLatest")


def _split(
    s3: S3Client,
    base: dict[str, Any],
    shard: Shard,
    keys: KeyRange,
    named: list[str],
    shard_size: int,
    hand_on: Callable[[Shard], None],
) -> KeyRange:
    """Hand on the rest of a versions range from the first current key after a guessed
    point, and return the range this shard keeps (unchanged when there is no such key)."""
    remaining = KeyRange(named[-1], keys.up_to)
    points = split_points(named, remaining, shard.prefix, shard_size, 1)
    if not points:
        return keys
    probe = s3.list_objects_v2(**base, Prefix=shard.prefix, StartAfter=points[0], MaxKeys=1)
    found = [entry["Key"] for entry in probe.get("Contents", [])]
    if not found or not remaining.holds(found[0]) or found[0] == keys.up_to:
        return keys
    hand_on(Shard(shard.prefix, KeyRange(found[0], keys.up_to)))
    return KeyRange(keys.start_after, found[0])


class _History:
    """Turns a shard's entries, in listing order, into listed versions with the time each
    noncurrent one was superseded (the entry before it, of the same key)."""

    def __init__(self) -> None:
        self.newer: ListedObject | None = None

    def listed(self, entries: list[tuple[dict[str, Any], bool]], prefix: str) -> list[ListedObject]:
        listed: list[ListedObject] = []
        for entry, is_marker in entries:
            newer = (
                self.newer if self.newer is not None and self.newer.key == entry["Key"] else None
            )
            if newer is None and not entry.get("IsLatest"):
                raise AwsApiError(
                    f"the server listed versions of a key under '{prefix}' without its latest "
                    "one: its ListObjectVersions skipped versions, so no plan is made from it",
                    code="IncompleteVersionListing",
                )
            self.newer = ListedObject(
                key=entry["Key"],
                etag="" if is_marker else entry.get("ETag", ""),
                size=0 if is_marker else int(entry.get("Size", 0)),
                last_modified=entry["LastModified"],
                storage_class="" if is_marker else entry.get("StorageClass", "STANDARD"),
                version_id=entry.get("VersionId"),
                is_delete_marker=is_marker,
                noncurrent_since=(
                    newer.last_modified if newer is not None and not entry.get("IsLatest") else None
                ),
            )
            listed.append(self.newer)
        return listed
