"""A plan of current objects not made by this run's own listing, confirmed against a fresh one.

A saved plan or an S3 Inventory says what an object was; whoever could write the file could
also say that an object written today is old, with its real ETag, and the ETag condition of the
delete would let it go. So before a batch of such a plan is sent, the server is asked again: an
object goes only if a listing made now shows it under the prefix, older than the plan's cutoff,
with the plan's ETag and size. That is what a live listing would plan, whatever the file says.

A batch's keys are sorted and listed in runs: each request starts just before the next key
not yet seen (`StartAfter`) and reads one page, so keys that lie close together (the common
case: an old folder, a day's logs) are confirmed a thousand to a request, and a gap between two
runs of keys costs nothing to skip. Memory holds one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

from tasks.s3.listing import PAGE_SIZE, ListedObject, current_object
from tasks.s3.manifest import PlannedObject
from tasks.s3.selection import is_selected

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: Planned objects confirmed at a time: one delete batch.
BATCH = 1000
#: The last code point: a key just before another ends with it (see `just_before`).
LAST_CHARACTER = "\U0010ffff"
#: S3 keys (and so StartAfter) are at most 1024 bytes of UTF-8.
MAX_KEY_BYTES = 1024


def confirmed(
    s3: S3Client,
    bucket: str,
    prefix: str,
    owner: str | None,
    cutoff: datetime,
    planned: Iterable[PlannedObject],
    gone: Callable[[PlannedObject], None],
    changed: Callable[[PlannedObject], None],
) -> Iterator[PlannedObject]:
    """The planned current objects that a listing made now would plan, in the plan's order.

    Args:
        s3: a client of the bucket.
        bucket: the bucket the plan is of.
        prefix: the plan's prefix; a key must still be under it.
        owner: the expected bucket owner, sent with every request.
        cutoff: the plan's cutoff; an object must still be last modified before it.
        planned: the plan's objects (current objects, with their ETags).
        gone: told of each planned object no longer there (deleted since).
        changed: told of each planned object that is there but is no longer the one planned:
            another ETag or size, or modified since the cutoff.
    """
    base: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if owner:
        base["ExpectedBucketOwner"] = owner
    entries = iter(planned)
    while batch := list(islice(entries, BATCH)):
        now = listed_now(s3, base, sorted({entry.key for entry in batch}))
        for entry in batch:
            found = now.get(entry.key)
            if found is None:
                gone(entry)
            elif (
                found.etag == entry.etag
                and found.size == entry.size
                and is_selected(found, prefix, cutoff, "current")
            ):
                yield entry
            else:
                changed(entry)


def listed_now(s3: S3Client, base: dict[str, Any], keys: list[str]) -> dict[str, ListedObject]:
    """The current objects, by key, of those among `keys` (sorted) that exist now."""
    found: dict[str, ListedObject] = {}
    wanted = set(keys)
    position, start_after = 0, just_before(keys[0], base["Prefix"]) if keys else None
    while position < len(keys):
        arguments = {**base, "MaxKeys": PAGE_SIZE}
        if start_after is not None:
            arguments["StartAfter"] = start_after
        page = s3.list_objects_v2(**arguments)
        contents = page.get("Contents", [])
        for entry in contents:
            if entry["Key"] in wanted:
                found[entry["Key"]] = current_object(dict(entry))
        if not contents or not page.get("IsTruncated"):
            break  # nothing after this page: the keys not found are gone
        last = contents[-1]["Key"]
        while position < len(keys) and keys[position] <= last:
            position += 1
        if position < len(keys):
            # Skip to the next key not seen, never back: each request starts past the last.
            start_after = max(last, just_before(keys[position], base["Prefix"]) or last)
    return found


def just_before(key: str, prefix: str) -> str | None:
    """A StartAfter that lists `key` first, or after few others: the key with its last
    character lowered by one and the last code point added (S3 orders keys by their UTF-8
    bytes, which is the order of code points). None: list from the prefix's start."""
    if len(key) <= len(prefix):
        return None
    last = ord(key[-1])
    if last == 0:
        return key[:-1] if len(key) - 1 > len(prefix) else None
    lowered = last - 1
    if 0xD800 <= lowered <= 0xDFFF:  # surrogates are no characters: below them
        lowered = 0xD7FF
    candidate = key[:-1] + chr(lowered)
    padded = candidate + LAST_CHARACTER
    return padded if len(padded.encode("utf-8")) <= MAX_KEY_BYTES else candidate
