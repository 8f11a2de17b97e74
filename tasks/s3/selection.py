"""Which listed objects a plan selects: under the prefix, old enough, of the versions asked for."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING

from tasks.s3.bucket_lock import LOCK_FOLDER
from tasks.s3.inventory import Inventory, inventory_objects
from tasks.s3.keep import MAX_GROUPS, Keeper, Ranked, settle
from tasks.s3.key_fields import group_of, time_of
from tasks.s3.key_order import in_key_order
from tasks.s3.listing import SHARD_SIZE, ListedObject, list_current_objects, list_object_versions
from tasks.s3.manifest import PlannedObject, PlanTarget, isoformat
from tasks.s3.progress import Progress
from tasks.s3.rules import Rules
from tasks.s3.vetting import Vetting

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
    """The planned objects of a listing; `scanned` counts what was listed, `kept` the objects
    old enough that a rule kept, by reason, `unrecoverable_keys` the keys a versions plan leaves
    without data.

    Without keep rules, planned objects come in listing order. With them (tasks/s3/keep.py), an
    object comes once no rule of its group can keep it, which may be later in the listing; in
    a versions mode each key's versions are decided together, and come in listing order. A
    shard's selection is made with `settled=False`: what its groups still hold when its
    listing ends is left in `held`, for the run to settle with the other shards'.
    """

    def __init__(
        self,
        listed: Iterable[ListedObject],
        target: PlanTarget,
        cutoff: datetime,
        progress: Progress | None = None,
        max_groups: int = MAX_GROUPS,
        settled: bool = True,
        vetting: Vetting | None = None,
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
        # Asked of every listed object: `Rules.any` builds the rules' header each time.
        self._any_rule = self.rules.any
        #: The objects old enough that a rule kept, by reason.
        self.kept: Counter[str] = Counter()
        counts = self.rules.keep_counts
        self._keeper = Keeper(counts, max_groups) if counts else None
        self._settled = settled
        #: What the keep rules still hold at the end of an unsettled selection, by group.
        self.held: list[Ranked] = []
        self._vetting = vetting

    @property
    def unrecoverable_keys(self) -> int:
        return self._lost.count

    def __iter__(self) -> Iterator[PlannedObject]:
        decided = self._decided()
        if self._vetting is None:
            yield from decided
            return
        # Tags and locks are asked of S3 last: only for what every other rule would delete.
        yield from self._vetting.vetted(decided, self.kept)

    def _decided(self) -> Iterator[PlannedObject]:
        """What the listing and the rules plan, before S3 is asked about tags and locks."""
        if self._keeper is not None and self.target.versions != "current":
            yield from self._by_key(self._keeper)
            return
        for listed in self.listed:
            self.scanned += 1
            verdict = self._judged(listed)
            if isinstance(verdict, Ranked):  # only with keep rules
                self.progress.add(listed=1)
                if self._keeper is not None:
                    for released in self._keeper.offer(verdict):
                        yield self._released(released.listed)
                continue
            self.progress.add(
                listed=1, matched=int(verdict), matched_bytes=listed.size if verdict else 0
            )
            if self.target.versions != "current":
                self._lost.see(listed, verdict)
            if verdict:
                yield planned(listed, self.target.versions)
        self._lost.close()
        self._end()

    def _by_key(self, keeper: Keeper) -> Iterator[PlannedObject]:
        """A versions listing with keep rules: each key's versions, gathered (a listing gives
        them together), decided once the key is complete, and planned in listing order. Memory
        holds one key's history."""
        for _, versions in itertools.groupby(self.listed, key=attrgetter("key")):
            history = [(listed, self._judged(listed)) for listed in versions]
            released: set[ListedObject] = set()
            for _, verdict in history:
                if isinstance(verdict, Ranked):
                    released.update(item.listed for item in keeper.offer(verdict))
            keeper.close(history[0][0].key)
            for listed, verdict in history:
                self.scanned += 1
                chosen = verdict is True or (isinstance(verdict, Ranked) and listed in released)
                self.progress.add(
                    listed=1, matched=int(chosen), matched_bytes=listed.size if chosen else 0
                )
                self._lost.see(listed, chosen)
                if chosen:
                    yield planned(listed, self.target.versions)
        self._lost.close()
        self.kept.update(keeper.kept)

    def _released(self, listed: ListedObject) -> PlannedObject:
        self.progress.add(matched=1, matched_bytes=listed.size)
        return planned(listed, self.target.versions)

    def _end(self) -> None:
        """The listing is over: what the keep rules hold is kept, or, unsettled, handed on."""
        if self._keeper is None:
            return
        if self._settled:
            self._keeper.close_all()
            self.kept.update(self._keeper.kept)
        else:
            self.held = self._keeper.held()

    def _judged(self, listed: ListedObject) -> bool | Ranked:
        """Whether the object is planned (True), not (False), or left to the keep rules (a
        Ranked). A rule that keeps a candidate is counted under its reason."""
        prefix, versions = self.target.prefix, self.target.versions
        old = is_selected(listed, prefix, self.cutoff, versions)
        rules = self.rules
        if not self._any_rule or not (old or self._ranks(listed)):
            return old
        below = listed.key[len(prefix) :]
        reason = rules.kept_by(below, listed.size, listed.storage_class)
        when = listed.last_modified
        if reason is None and rules.time_from_key:
            key_time = time_of(rules.time_from_key, below)
            if key_time is None:
                reason = "time_from_key"
            else:
                when = key_time
                if old and when >= self.cutoff:
                    # Named for a time after the cutoff (copied, or restored, long ago): kept,
                    # and among the newest of its group all the same.
                    self.kept["time_from_key"] += 1
                    old = False
        group = self._group(listed) if reason is None and self._ranks(listed) else None
        if reason is None and self._ranks(listed) and group is None:
            reason = "group_by"
        if reason is not None:
            if old:
                self.kept[reason] += 1
            return False
        if group is None:
            return old
        return Ranked(when, listed.key, listed.version_id or "", group, listed, candidate=old)

    def _ranks(self, listed: ListedObject) -> bool:
        """Whether the keep rules count the object: any current object under the prefix; of
        versions, those holding data (a marker holds none) that the mode considers."""
        if self._keeper is None or listed.is_delete_marker:
            return False
        if not listed.key.startswith(self.target.prefix) or listed.key.startswith(LOCK_FOLDER):
            return False
        return self.target.versions != "noncurrent" or listed.noncurrent_since is not None

    def _group(self, listed: ListedObject) -> str | None:
        if self.target.versions != "current":
            return listed.key
        return group_of(self.rules.group_by, listed.key[len(self.target.prefix) :])


class HeldSelection(Selection):
    """What the shards' keep rules still held when their listings ended, settled together
    (tasks/s3/keep.py): the candidates it releases make the plan's last part. It lists
    nothing: `scanned` is 0, the shards counted every object."""

    def __init__(
        self,
        held: Iterable[Ranked],
        target: PlanTarget,
        cutoff: datetime,
        max_groups: int,
        vetting: Vetting | None = None,
    ) -> None:
        super().__init__((), target, cutoff, max_groups=max_groups, vetting=vetting)
        self._held = held
        self._max_groups = max_groups

    def _decided(self) -> Iterator[PlannedObject]:
        released, kept = settle(self.rules.keep_counts, self._max_groups, self._held)
        self.kept.update(kept)
        for item in released:
            yield self._released(item.listed)
