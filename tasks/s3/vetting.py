"""What a listing cannot say of an object a plan would delete, asked of S3 object by object: its
tags (protect_tags) and, in a bucket with Object Lock, its retention and legal hold.

Only the objects every other rule would delete are asked about, several at once (the delete
concurrency), in a window that keeps the plan's order. A request that fails for any reason but
the object being gone stops the plan: an object whose protection cannot be read is never
planned. A delete marker holds no data, no tags and no lock: it is not asked about.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tasks.s3.manifest import PlannedObject, PlanTarget

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: Why S3 says an object stays, and what it said ("legal hold", "retained until ..."); None
#: when nothing keeps it.
Verdict = tuple[str, str | None] | None
#: What is told of each object kept: the entry, the reason, what S3 said.
OnKept = Callable[[PlannedObject, str, str | None], None]
#: The most characters of a tag's key and value (S3's limits).
TAG_KEY_MAX, TAG_VALUE_MAX = 128, 256
#: What S3 answers for an object (or version) deleted since it was listed: it is planned still,
#: and its delete says it was gone.
GONE = {"404", "NoSuchKey", "NoSuchVersion", "NotFound"}


def protect_tag_problems(tag: str) -> list[str]:
    """What is wrong with a protect tag ("key=value", or "key" for any value); [] if usable."""
    key, _, value = tag.partition("=")
    problems = []
    if not 1 <= len(key) <= TAG_KEY_MAX:
        problems.append(f"a tag's key has 1 to {TAG_KEY_MAX} characters")
    if len(value) > TAG_VALUE_MAX:
        problems.append(f"a tag's value has at most {TAG_VALUE_MAX} characters")
    return problems


def is_protected(tag_set: Iterable[Mapping[str, Any]], protect_tags: Iterable[str]) -> bool:
    """Whether an object's tags hold any of the protect tags."""
    tags = {(tag["Key"], tag["Value"]) for tag in tag_set}
    keys = {key for key, _ in tags}
    for wanted in protect_tags:
        key, equals, value = wanted.partition("=")
        if ((key, value) in tags) if equals else (key in keys):
            return True
    return False


def object_lock_enabled(s3: S3Client, bucket: str, owner: str | None) -> bool:
    """Whether the bucket has Object Lock on (one request)."""
    from botocore.exceptions import ClientError

    arguments: dict[str, Any] = {"Bucket": bucket}
    if owner:
        arguments["ExpectedBucketOwner"] = owner
    try:
        answer = s3.get_object_lock_configuration(**arguments)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ObjectLockConfigurationNotFoundError":
            return False
        raise
    return answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"


@dataclass
class Vetting:
    """The per-object questions a run asks before it plans an object. Whether the bucket has
    Object Lock on is asked once, when the first object would be deleted, unless the run
    already knows (`object_lock`): a run that deletes nothing does not ask."""

    s3: S3Client
    bucket: str
    owner: str | None
    protect_tags: tuple[str, ...]
    object_lock: bool | None
    concurrency: int
    #: A retention is in force until after this moment.
    now: datetime

    @classmethod
    def of(
        cls, s3: S3Client, target: PlanTarget, object_lock: bool | None, concurrency: int
    ) -> Vetting | None:
        """The questions a plan of the target asks, None when it surely asks none."""
        protect_tags = tuple(target.rules.get("protect_tags", ()))
        if not protect_tags and object_lock is False:
            return None
        return cls(
            s3,
            target.bucket,
            target.owner,
            protect_tags,
            object_lock,
            concurrency,
            datetime.now(UTC),
        )

    def vetted(self, entries: Iterable[PlannedObject], kept: OnKept) -> Iterator[PlannedObject]:
        """The entries no tag and no lock protects, in their order; the others handed to
        `kept` with their reason (protect_tag, locked) and what S3 said."""
        entries = iter(entries)
        first = next(entries, None)
        if first is None:
            return
        if self.object_lock is None:
            self.object_lock = object_lock_enabled(self.s3, self.bucket, self.owner)
        everything = itertools.chain([first], entries)
        if not (self.object_lock or self.protect_tags):
            yield from everything  # nothing to ask: no lock on the bucket, no protect tags
            return
        width = max(1, self.concurrency)
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="vet") as pool:
            window: deque[tuple[PlannedObject, Future[Verdict]]] = deque()
            for entry in everything:
                if entry.is_delete_marker:
                    window.append((entry, _none()))
                else:
                    window.append((entry, pool.submit(self.kept_by, entry)))
                if len(window) >= width * 4:
                    yield from _settled(window.popleft(), kept)
            while window:
                yield from _settled(window.popleft(), kept)

    def kept_by(self, entry: PlannedObject) -> Verdict:
        """Why S3 says the object must stay (locked, protect_tag) and what it said, or
        None."""
        from botocore.exceptions import ClientError

        arguments: dict[str, Any] = {"Bucket": self.bucket, "Key": entry.key}
        if entry.version_id:
            arguments["VersionId"] = entry.version_id
        if self.owner:
            arguments["ExpectedBucketOwner"] = self.owner
        try:
            if self.object_lock:
                lock = self._lock(self.s3.head_object(**arguments))
                if lock is not None:
                    return "locked", lock
            if self.protect_tags:
                tags = self.s3.get_object_tagging(**arguments)["TagSet"]
                if is_protected(tags, self.protect_tags):
                    return "protect_tag", None
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in GONE:
                return None
            raise
        return None

    def _lock(self, head: Any) -> str | None:
        """What holds the object: a legal hold, or a retention (governance or compliance) not
        yet over, never bypassed; None when nothing does."""
        if head.get("ObjectLockLegalHoldStatus") == "ON":
            return "legal hold"
        until = head.get("ObjectLockRetainUntilDate")
        if head.get("ObjectLockMode") and until is not None and until > self.now:
            return f"retained until {until.astimezone(UTC).isoformat()}"
        return None


def _none() -> Future[Verdict]:
    done: Future[Verdict] = Future()
    done.set_result(None)
    return done


def _settled(pair: tuple[PlannedObject, Future[Verdict]], kept: OnKept) -> Iterator[PlannedObject]:
    entry, answer = pair
    verdict = answer.result()
    if verdict is None:
        yield entry
    else:
        kept(entry, *verdict)
