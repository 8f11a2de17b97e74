"""Which listed objects a plan selects: under the prefix, old enough, of the versions asked for."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from tasks.s3.bucket_lock import LOCK_FOLDER
from tasks.s3.inventory import Inventory, inventory_objects
from tasks.s3.key_order import in_key_order
from tasks.s3.listing import SHARD_SIZE, ListedObject, list_current_objects, list_object_versions
from tasks.s3.manifest import PlannedObject, PlanTarget, isoformat
from tasks.s3.progress import Progress
from tasks.s3.rules import Rules

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def is_selected(listed: ListedObject, prefix: str, cutoff: datetime, versions: str) -> bool:
    """Whether a listed object or version is old enough, under the prefix, for the mode.

    current: the current object, last modified before the cutoff (in a versioned bucket its
    delete only adds a delete marker). noncurrent: a version that stopped being current before
    the cutoff. all: any version or delete marker last modified before the cutoff.
    """
    # The server filtered by prefix; checked again because a wrong key must never pass. The
    # tool's own folder (the bucket's lock) is never planned, whatever the prefix.
    if not listed.key.startswith(prefix) or listed.key.startswith(LOCK_FOLDER):
        return False
    if versions == "noncurrent":
        return listed.noncurrent_since is not None and listed.noncurrent_since < cutoff
    return listed.last_modified < cutoff


def planned(listed: ListedObject, versions: str) -> PlannedObject:
    """The plan's line for a selected object: a specific version only when versions are asked
    for (then it is deleted by id), else the current object with its ETag."""
    return PlannedObject(
        key=listed.key,
        etag=listed.etag,
        size=listed.size,
        last_modified=isoformat(listed.last_modified),
        storage_class=listed.storage_class,
        version_id=listed.version_id if versions != "current" else None,
        is_delete_marker=listed.is_delete_marker,
    )


def listing(
    s3: S3Client,
    target: PlanTarget,
    workers: int,
    shard_size: int = SHARD_SIZE,
    inventory: Inventory | None = None,
) -> Iterator[ListedObject]:
    """Every current object (sub-prefixes and key ranges in parallel), or every version and
    delete marker when the target's versions mode asks for versions; or, given the target's
    S3 Inventory, the rows of its data files under the prefix."""
    if inventory is not None:
        return inventory_listing(s3, inventory, target)
    if target.versions == "current":
        return list_current_objects(
            s3, target.bucket, target.prefix, target.owner, workers, shard_size
        )
    return list_object_versions(s3, target.bucket, target.prefix, target.owner)


def inventory_listing(
    s3: S3Client, inventory: Inventory, target: PlanTarget
) -> Iterator[ListedObject]:
    """The rows of an inventory under the target's prefix, data file after data file (each
    checked against its MD5 once read: the plan is complete only if every file was intact);
    for versions, sorted by key, as a listing of versions gives them (tasks/s3/key_order.py)."""
    rows = (
        row
        for data_file in inventory.files
        for row in inventory_objects(s3, inventory, data_file, target.prefix, target.versions)
    )
    return rows if target.versions == "current" else in_key_order(rows)


class LostKeys:
    """Counts the keys a versions plan leaves with no version holding data: once it is
    applied, nothing of them can be restored. Fed every listed version, in listing order
    (grouped by key)."""

    def __init__(self) -> None:
        self.count = 0
        self._key: str | None = None
        self._planned = self._kept = False

    def see(self, listed: ListedObject, selected: bool) -> None:
        if listed.key != self._key:
            self.close()
            self._key, self._planned, self._kept = listed.key, False, False
        if listed.is_delete_marker:
            return  # a marker holds no data: removing it or keeping it restores nothing
        if selected:
            self._planned = True
        else:
            self._kept = True

    def close(self) -> None:
        """The last key's verdict (call once the listing is over)."""
        if self._planned and not self._kept:
            self.count += 1
        self._planned = self._kept = False


class Selection:
    """The planned objects of a listing, in listing order; `scanned` counts what was listed,
    `unrecoverable_keys` the keys a versions plan leaves without data."""

    def __init__(
        self,
        listed: Iterable[ListedObject],
        target: PlanTarget,
        cutoff: datetime,
        progress: Progress | None = None,
    ) -> None:
        if cutoff.tzinfo is None:
            raise ValueError("cutoff must be timezone-aware")  # S3 reports LastModified in UTC
        self.listed = listed
        self.target = target
        self.cutoff = cutoff
        self.progress = progress or Progress()
        self.scanned = 0
        self._lost = LostKeys()
        self.rules = Rules.from_header(target.rules)
        #: The objects old enough that a rule kept, by reason.
        self.kept: Counter[str] = Counter()

    @property
    def unrecoverable_keys(self) -> int:
        return self._lost.count

    def __iter__(self) -> Iterator[PlannedObject]:
        prefix, versions = self.target.prefix, self.target.versions
        rules = self.rules if self.rules.any else None
        for listed in self.listed:
            self.scanned += 1
            selected = is_selected(listed, prefix, self.cutoff, versions)
            # The rules only ever keep: they judge what age and prefix selected, nothing else.
            if selected and rules is not None:
                reason = rules.kept_by(listed.key[len(prefix) :], listed.size, listed.storage_class)
                if reason is not None:
                    self.kept[reason] += 1
                    selected = False
            self.progress.add(
                listed=1, matched=int(selected), matched_bytes=listed.size if selected else 0
            )
            if versions != "current":
                self._lost.see(listed, selected)
            if selected:
                yield planned(listed, versions)
        self._lost.close()
