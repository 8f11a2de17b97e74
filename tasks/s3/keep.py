"""The keep rules, in one pass over a listing in any order: the newest N of each group, and the
newest of each of its last N days, ISO weeks, months and years that have one (restic's
`forget --keep-last/--keep-daily/...`), their union kept.

Each group holds, per rule, only what that rule keeps so far: at most its count. An object no
rule of its group holds any longer can never be kept again, whatever comes after it in the
listing (N newer objects of its group, or a newer one of its period, have been seen, and more
only push it further out), so it is released at once, to be deleted while the listing goes on.
What the rules hold when the listing ends is kept. The same holds across shards: what a shard
releases is released for good, and what the shards still hold, settled together, gives the plan
one listing gives (`settle`).

Objects are ranked by time, then key, then version id: a total order, so which of two objects of
the same second is kept does not depend on the order they were listed in.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tasks.errors import ConfigError
from tasks.s3.listing import ListedObject

#: The keep rules, in the order a kept object's reason is given (the first that holds it).
KEEP_RULES = ("keep_newest", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")

#: The most groups the keep rules track at once, unless a run says otherwise (max_groups).
MAX_GROUPS = 100_000

#: The period each calendar rule keeps one object of, from a UTC time.
PERIODS: dict[str, Callable[[datetime], Any]] = {
    "keep_daily": lambda when: when.date(),
    "keep_weekly": lambda when: when.isocalendar()[:2],
    "keep_monthly": lambda when: (when.year, when.month),
    "keep_yearly": lambda when: when.year,
}


#: An ETag as S3 gives a single-part upload's: its 16 bytes are held, not its 34 characters.
_PLAIN_ETAG = re.compile(r'"[0-9a-f]{32}"')


@dataclass(frozen=True, slots=True, order=True)
class Ranked:
    """An object the keep rules rank: its time (LastModified, or read from its key, in POSIX
    seconds), key and version id ("" for none); the rule its plan line names (`rule`,
    `Rules.selected_by`) when it may be deleted (a candidate: old enough, and no other rule
    keeps it). A younger object counts among the newest all the same, and is never released.

    It carries what its plan line or kept-list line needs, not the listed object (a delete
    marker is never ranked), as compactly as it can be read back: thousands are held until a
    listing ends (docs/guides/retention-rules.md, Memory). Its group is not held here: the
    Keeper holds each group's name once."""

    when: float
    key: str
    version: str
    rule: str | None = field(compare=False)
    packed_etag: str | bytes = field(compare=False)
    size: int = field(compare=False)
    modified: float = field(compare=False)
    storage_class: str = field(compare=False)

    #: As a listed object says them (a plan line is made from either): never a delete marker,
    #: never found under a lock (a lock found in a listing keeps an object before it is ranked).
    is_delete_marker = False
    lock = ""

    @classmethod
    def of(cls, listed: ListedObject, when: datetime, candidate: bool, rule: str | None) -> Ranked:
        modified = listed.last_modified.timestamp()
        etag = listed.etag
        return cls(
            modified if when is listed.last_modified else when.timestamp(),
            listed.key,
            listed.version_id or "",
            rule if candidate else None,
            bytes.fromhex(etag[1:-1]) if _PLAIN_ETAG.fullmatch(etag) else etag,
            listed.size,
            modified,
            listed.storage_class,
        )

    @property
    def candidate(self) -> bool:
        return self.rule is not None

    @property
    def version_id(self) -> str | None:
        return self.version or None

    @property
    def etag(self) -> str:
        packed = self.packed_etag
        return f'"{packed.hex()}"' if isinstance(packed, bytes) else packed

    @property
    def last_modified(self) -> datetime:
        return datetime.fromtimestamp(self.modified, UTC)


class _Alone:
    """A rule that is its group's only one (the common case, keep_newest alone) is the group
    itself, with no count of holders: an open group costs the rule and what it holds."""

    __slots__ = ()
    name: str

    def offer(self, item: Ranked) -> Ranked | None:
        raise NotImplementedError

    def held(self) -> Iterable[Ranked]:
        raise NotImplementedError

    def release(self, item: Ranked) -> Iterator[Ranked]:
        """The candidate no longer held once the item is offered, if any."""
        dropped = self.offer(item)
        if dropped is not None and dropped.candidate:
            yield dropped

    def kept(self) -> Iterator[tuple[Ranked, str]]:
        return ((item, self.name) for item in self.held())


class _Newest(_Alone, list[Ranked]):
    """keep_newest: the N newest objects seen, as a heap. It is the heap's list itself: a
    listing in any order keeps every group open to its end, and a group under keep_newest
    alone is this object and what it holds."""

    __slots__ = ("most",)
    name = "keep_newest"

    def __init__(self, count: int) -> None:
        super().__init__()
        self.most = count

    def offer(self, item: Ranked) -> Ranked | None:
        """Hold the item if it is among the newest so far; what is no longer held (the item
        itself, or the oldest held), or None. An item held already (listed twice) changes
        nothing."""
        if len(self) < self.most:
            if item not in self:
                heapq.heappush(self, item)
            return None
        if item < self[0]:
            return item  # most items of a long listing: older than all held
        if item in self:
            return None
        return heapq.heapreplace(self, item)

    def held(self) -> Iterable[Ranked]:
        return self


class _Periodic(_Alone):
    """keep_daily and the like: the newest object of each of the N latest periods seen."""

    __slots__ = ("by_period", "count", "name", "period_of")

    def __init__(self, name: str, count: int) -> None:
        self.name, self.count, self.period_of = name, count, PERIODS[name]
        self.by_period: dict[Any, Ranked] = {}

    def offer(self, item: Ranked) -> Ranked | None:
        period = self.period_of(datetime.fromtimestamp(item.when, UTC))
        holder = self.by_period.get(period)
        if holder is not None:
            if item == holder:
                return None  # listed twice: held once
            if item > holder:
                self.by_period[period] = item
                return holder
            return item
        if len(self.by_period) < self.count:
            self.by_period[period] = item
            return None
        # A count is small (days of a year at most, in practice): a scan costs less than a heap.
        oldest = min(self.by_period)
        if period < oldest:
            return item
        self.by_period[period] = item
        return self.by_period.pop(oldest)

    def held(self) -> Iterable[Ranked]:
        return self.by_period.values()


def _rule(name: str, count: int) -> _Newest | _Periodic:
    return _Newest(count) if name == "keep_newest" else _Periodic(name, count)


class _Group:
    """One group's rules, when there are several, and how many of them hold each object."""

    # One per open group: slots, as a listing in any order keeps every group open to its end.
    __slots__ = ("holders", "rules")

    def __init__(self, counts: dict[str, int]) -> None:
        self.rules = [(name, _rule(name, count)) for name, count in counts.items()]
        self.holders: Counter[Ranked] = Counter()

    def release(self, item: Ranked) -> Iterator[Ranked]:
        """The candidates no rule holds any longer once the item is offered to each."""
        if item in self.holders:
            return  # listed twice (a row repeated across an inventory's data files): held once
        self.holders[item] = len(self.rules)
        for _, rule in self.rules:
            dropped = rule.offer(item)
            if dropped is None:
                continue
            self.holders[dropped] -= 1
            if not self.holders[dropped]:
                del self.holders[dropped]
                if dropped.candidate:
                    yield dropped

    def kept(self) -> Iterator[tuple[Ranked, str]]:
        """Every object still held, with the first rule (in KEEP_RULES order) holding it."""
        seen: set[Ranked] = set()
        for name, rule in self.rules:
            for item in rule.held():
                if item not in seen:
                    seen.add(item)
                    yield item, name


class Keeper:
    """The keep rules over the groups of one listing. `offer` an object of a group, get back the
    candidates released for deletion; `close` a group once no more of its objects can come (a
    listing in key order, groups by key), which returns what the group kept, by rule.

    Memory: the open groups, each holding at most the sum of the counts; a listing whose groups
    are not contiguous keeps every group open to its end, so more than `max_groups` groups is
    refused rather than left to grow.
    """

    def __init__(self, counts: dict[str, int], max_groups: int) -> None:
        self.counts = {name: counts[name] for name in KEEP_RULES if counts.get(name)}
        self.max_groups = max_groups
        self.groups: dict[str, _Group | _Newest | _Periodic] = {}

    def offer(self, group: str, item: Ranked) -> Iterator[Ranked]:
        """The candidates released once the item, of this group, is offered."""
        state = self.groups.get(group)
        if state is None:
            if len(self.groups) >= self.max_groups:
                raise ConfigError(
                    f"the keep rules track more than max_groups ({self.max_groups:,}) groups at "
                    "once: raise max_groups (each open group holds at most the sum of the keep "
                    "counts, about 400 bytes an object), or group by folder (depth:N) in a "
                    "listing of one folder at a time"
                )
            state = self.groups[group] = self._new_group()
        return state.release(item)

    def _new_group(self) -> _Group | _Newest | _Periodic:
        if len(self.counts) == 1:
            ((name, count),) = self.counts.items()
            return _rule(name, count)
        return _Group(self.counts)

    def close(self, group: str) -> list[tuple[Ranked, str]]:
        """The group is complete: what its rules hold is kept. Returns the candidates kept,
        each with the first rule keeping it."""
        state = self.groups.pop(group, None)
        if state is None:
            return []
        return [(item, name) for item, name in state.kept() if item.candidate]

    def close_all(self) -> Iterator[tuple[Ranked, str]]:
        """Every group closed, one after another: a group's objects are let go as the next
        is closed (at the end of a listing the rules hold the most they ever do)."""
        while self.groups:
            yield from self.close(next(iter(self.groups)))

    def held(self) -> list[tuple[str, Ranked]]:
        """Every object the open groups hold, young ones included, with its group: what a
        shard hands back for `settle`."""
        return [(group, item) for group, state in self.groups.items() for item, _ in state.kept()]


def settle(
    counts: dict[str, int], max_groups: int, held: Iterable[tuple[str, Ranked]]
) -> tuple[list[Ranked], list[tuple[Ranked, str]]]:
    """What the shards of one listing still held, decided together: the candidates released
    for deletion, and those kept, each with its rule. Each object once, whichever shard
    listed it (a shard run twice hands back the same objects)."""
    keeper = Keeper(counts, max_groups)
    released: list[Ranked] = []
    seen: set[Ranked] = set()
    for group, item in held:
        if item not in seen:
            seen.add(item)
            released += keeper.offer(group, item)
    return released, list(keeper.close_all())
