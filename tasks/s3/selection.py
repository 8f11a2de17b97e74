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
from tasks.s3.kept_list import KeptList
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


def planned(listed: ListedObject | Ranked, versions: str, rule: str | None = None) -> PlannedObject:
    """The plan's line for a selected object: a specific version only when versions are asked
    for (then it is deleted by id), else the current object with its ETag; under retention
    rules, with the rule that selected it."""
    return PlannedObject(
        key=listed.key,
        etag=listed.etag,
        size=listed.size,
        last_modified=isoformat(listed.last_modified),
        storage_class=listed.storage_class,
        version_id=listed.version_id if versions != "current" else None,
        is_delete_marker=listed.is_delete_marker,
        rule=rule,
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


def _rule(verdict: bool | str) -> str | None:
    """The rule a plan line names, from a verdict that plans it (None without rules)."""
    return verdict if isinstance(verdict, str) else None


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
        kept_list: KeptList | None = None,
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
        # Asked of every listed object: looked up once here.
        self._any_rule = self.rules.any
        self._selecting_rules = self.rules.selecting_rules
        self._decide = self.rules.decider
        #: The objects old enough that a rule kept, by reason.
        self.kept: Counter[str] = Counter()
        counts = self.rules.keep_counts
        self._keeper = Keeper(counts, max_groups) if counts else None
        self._settled = settled
        #: What the keep rules still hold at the end of an unsettled selection, by group.
        self.held: list[tuple[str, Ranked]] = []
        self._vetting = vetting
        self._kept_list = kept_list

    @property
    def unrecoverable_keys(self) -> int:
        return self._lost.count

    def __iter__(self) -> Iterator[PlannedObject]:
        decided = self._decided()
        if self._vetting is None:
            yield from decided
            return
        # Tags and locks are asked of S3 last: only for what every other rule would delete.
        yield from self._vetting.vetted(decided, self._planned_kept)

    def _decided(self) -> Iterator[PlannedObject]:
        """What the listing and the rules plan, before S3 is asked about tags and locks."""
        if self._keeper is not None and self.target.versions != "current":
            yield from self._by_key(self._keeper)
            return
        for listed in self.listed:
            self.scanned += 1
            verdict = self._judged(listed)
            if isinstance(verdict, tuple):  # only with keep rules
                self.progress.add(listed=1)
                if self._keeper is not None:
                    for released in self._keeper.offer(*verdict):
                        yield self._released(released)
                continue
            chosen = verdict is not False
            self.progress.add(
                listed=1, matched=int(chosen), matched_bytes=listed.size if chosen else 0
            )
            if self.target.versions != "current":
                self._lost.see(listed, chosen)
            if chosen:
                rule = verdict if isinstance(verdict, str) else None  # _rule, inlined
                yield planned(listed, self.target.versions, rule)
        self._lost.close()
        self._end()

    def _by_key(self, keeper: Keeper) -> Iterator[PlannedObject]:
        """A versions listing with keep rules: each key's versions, gathered (a listing gives
        them together), decided once the key is complete, and planned in listing order. Memory
        holds one key's history."""
        for _, versions in itertools.groupby(self.listed, key=attrgetter("key")):
            history = [(listed, self._judged(listed)) for listed in versions]
            released: dict[str, Ranked] = {}  # by version id: the versions of one key
            for _, verdict in history:
                if isinstance(verdict, tuple):
                    released.update((item.version, item) for item in keeper.offer(*verdict))
            for item, reason in keeper.close(history[0][0].key):
                self._kept(item, reason)
            for listed, verdict in history:
                self.scanned += 1
                if isinstance(verdict, tuple):
                    ranked = released.get(listed.version_id or "")
                    chosen, rule = ranked is not None, ranked.rule if ranked else None
                else:
                    chosen, rule = verdict is not False, _rule(verdict)
                self.progress.add(
                    listed=1, matched=int(chosen), matched_bytes=listed.size if chosen else 0
                )
                self._lost.see(listed, chosen)
                if chosen:
                    yield planned(listed, self.target.versions, rule)
        self._lost.close()

    def _kept(self, listed: ListedObject | Ranked, reason: str) -> None:
        """A candidate a rule keeps: counted by its reason, and listed when asked."""
        self.kept[reason] += 1
        if self._kept_list is not None:
            self._kept_list.add(
                listed.key,
                listed.version_id if self.target.versions != "current" else None,
                listed.size,
                isoformat(listed.last_modified),
                reason,
                listed.lock if reason == "locked" else None,
            )

    def _planned_kept(self, entry: PlannedObject, reason: str, detail: str | None) -> None:
        """A planned object S3 says must stay (a tag, a lock): no longer planned."""
        self.kept[reason] += 1
        self.progress.add(matched=-1, matched_bytes=-entry.size)
        if self._kept_list is not None:
            self._kept_list.add(
                entry.key, entry.version_id, entry.size, entry.last_modified, reason, detail
            )

    def _released(self, item: Ranked) -> PlannedObject:
        self.progress.add(matched=1, matched_bytes=item.size)
        return planned(item, self.target.versions, item.rule)

    def _end(self) -> None:
        """The listing is over: what the keep rules hold is kept, or, unsettled, handed on."""
        if self._keeper is None:
            return
        if self._settled:
            for item, rule in self._keeper.close_all():
                self._kept(item, rule)
        else:
            self.held = self._keeper.held()

    def _judged(self, listed: ListedObject) -> bool | str | tuple[str, Ranked]:
        """Whether the object is planned (under rules, the rule its line names; else True),
        not (False), or left to the keep rules (its group and rank). A rule that keeps a
        candidate is counted under its reason."""
        prefix, versions = self.target.prefix, self.target.versions
        old = is_selected(listed, prefix, self.cutoff, versions)
        if not (self._any_rule or listed.lock):
            return old  # a run without rules: the age and the prefix decide alone
        ranks = self._keeper is not None and self._ranks(listed)
        if not (old or ranks):
            return old
        rules = self.rules
        below = listed.key[len(prefix) :]
        reason, included = self._decide(below, listed.size, listed.storage_class)
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
                    self._kept(listed, "time_from_key")
                    old = False
        if reason is None and listed.lock:
            reason = "locked"  # an inventory's row says so; a listing's are asked of S3 later
        if reason is not None:
            if old:
                self._kept(listed, reason)
            return False
        rule = self._selecting_rules[included] if old else None
        if not ranks:
            return rule or False
        group = self._group(listed)
        if group is None:  # in no group: kept, as no keep rule can count it
            if old:
                self._kept(listed, "group_by")
            return False
        return group, Ranked.of(listed, when, old, rule)

    def _ranks(self, listed: ListedObject) -> bool:
        """Whether the keep rules count the object: any current object under the prefix; of
        versions, those holding data (a marker holds none) that the mode considers."""
        if listed.is_delete_marker:
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
        held: Iterable[tuple[str, Ranked]],
        target: PlanTarget,
        cutoff: datetime,
        max_groups: int,
        vetting: Vetting | None = None,
        kept_list: KeptList | None = None,
    ) -> None:
        super().__init__(
            (), target, cutoff, max_groups=max_groups, vetting=vetting, kept_list=kept_list
        )
        self._held = held
        self._max_groups = max_groups

    def _decided(self) -> Iterator[PlannedObject]:
        released, kept = settle(self.rules.keep_counts, self._max_groups, self._held)
        for item, rule in kept:
            self._kept(item, rule)
        for item in released:
            yield self._released(item)
