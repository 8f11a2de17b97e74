"""Retention rules under the prefix: key patterns, sizes, storage classes, key times, keep counts.

A rule only ever keeps: an object the age and the prefix select is deleted unless a rule keeps
it (`Rules.kept_by` for what one object says, tasks/s3/keep.py for the counts over a group). A
plan's header carries its rules (`as_header`, `from_header`), so a saved plan is applied only
under the rules it was made with.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from tasks.s3.keep import KEEP_RULES
from tasks.s3.key_fields import group_by_problems, time_from_key_problems
from tasks.s3.patterns import any_matching, first_matching, pattern_problems
from tasks.s3.sizes import MAX_SIZE, size_text
from tasks.s3.vetting import protect_tag_problems

#: Why a rule keeps an object, in the order they are checked: the first that applies is given.
#: time_from_key: the key gives no time, or a time after the cutoff; group_by: the key is in
#: no group.
FILTER_REASONS = ("exclude", "include", "size", "storage_class")
#: protect_tag and locked are S3's answers for an object every other rule would delete
#: (tasks/s3/vetting.py).
REASONS = (*FILTER_REASONS, "time_from_key", "group_by", *KEEP_RULES, "protect_tag", "locked")
#: The most a keep count can be (a count is held in memory per group).
MAX_KEEP = 100_000
#: The storage classes S3 reports for an object (ObjectStorageClass in botocore's S3 model; a
#: test compares the two). A constant, not read from botocore: reading the model costs a
#: tenth of a second, and a class botocore adds should be a reviewed change here.
STORAGE_CLASSES = (
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "GLACIER",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "DEEP_ARCHIVE",
    "OUTPOSTS",
    "GLACIER_IR",
    "SNOW",
    "EXPRESS_ONEZONE",
    "FSX_OPENZFS",
    "FSX_ONTAP",
    "AWS_BACKUP_WARM",
    "AWS_BACKUP_LOW_COST_WARM",
)
#: `Rules.decision`'s answers for a kept candidate, made once.
_EXCLUDED, _NOT_INCLUDED = ("exclude", None), ("include", None)
_SIZE, _STORAGE_CLASS = ("size", None), ("storage_class", None)
_PATTERN_LISTS = ("include", "exclude")
_TEXT_LISTS = (*_PATTERN_LISTS, "storage_classes", "protect_tags")
_SIZES = ("min_size", "max_size")
_TEXTS = ("group_by", "time_from_key")


def kept_text(kept: Mapping[str, int]) -> str:
    """The objects old enough that the rules kept, by reason: 'exclude 3, size 2'; '' for
    none."""
    return ", ".join(f"{reason} {kept[reason]:,}" for reason in REASONS if kept.get(reason))


@dataclass(frozen=True)
class Rules:
    """What keeps an old-enough object under the prefix; the defaults keep nothing.

    `include` and `exclude` are patterns on the key below the prefix (tasks/s3/patterns.py);
    `min_size` and `max_size` bound, inclusively, the sizes that may be deleted;
    `storage_classes`, when given, are the only classes deleted. A delete marker has no storage
    class (the listing gives it ""): a storage-class rule keeps every delete marker.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    min_size: int | None = None
    max_size: int | None = None
    storage_classes: tuple[str, ...] = ()
    keep_newest: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    group_by: str = ""
    time_from_key: str = ""
    protect_tags: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        """Whether any rule is set (else every candidate is deleted)."""
        return bool(self.as_header())

    @property
    def keep_counts(self) -> dict[str, int]:
        """The keep rules set, by name (tasks/s3/keep.py); empty when none is."""
        return {name: getattr(self, name) for name in KEEP_RULES if getattr(self, name)}

    def kept_by(self, key_below_prefix: str, size: int, storage_class: str) -> str | None:
        """Why a candidate (old enough, under the prefix) is kept, one of REASONS, or None when
        it is to be deleted. Exclude wins over include; sizes are inclusive bounds.

        Raises:
            ValueError: a pattern is broken (`problems` finds it before any listing).
        """
        return self.decision(key_below_prefix, size, storage_class)[0]

    def decision(
        self, key_below_prefix: str, size: int, storage_class: str
    ) -> tuple[str | None, str | None]:
        """Why a candidate is kept (as `kept_by`), and, when it is not and include is set,
        the include pattern that let it through (the first that matches)."""
        return self.decider(key_below_prefix, size, storage_class)

    @cached_property
    def decider(self) -> Callable[[str, int, str], tuple[str | None, str | None]]:
        """`decision` as one function made for these rules, asked of every listed key: the
        patterns' matchers, bounds and answers are made once, and a key is matched once
        against all the exclude patterns, once against all the include patterns."""
        excluded = any_matching(self.exclude) if self.exclude else None
        one_include = any_matching(self.include) if len(self.include) == 1 else None
        first_include = first_matching(self.include) if len(self.include) > 1 else None
        let_through: list[tuple[str | None, str | None]] = [(None, p) for p in self.include]
        lowest = self.min_size if self.min_size is not None else -math.inf
        highest = self.max_size if self.max_size is not None else math.inf
        classes = frozenset(self.storage_classes)
        deleted: tuple[str | None, str | None] = (None, None)

        def decide(key: str, size: int, storage_class: str) -> tuple[str | None, str | None]:
            if excluded is not None and excluded(key):
                return _EXCLUDED
            answer = deleted
            if one_include is not None:
                if not one_include(key):
                    return _NOT_INCLUDED
                answer = let_through[0]
            elif first_include is not None:
                index = first_include(key)
                if index is None:
                    return _NOT_INCLUDED
                answer = let_through[index]
            if not lowest <= size <= highest:
                return _SIZE
            if classes and storage_class not in classes:
                return _STORAGE_CLASS
            return answer

        return decide

    def selected_by(self, included: str | None) -> str:
        """The rule a planned object names in its plan line: the include pattern that let it
        through, else its age by the time in its key, else its age (the other rules only keep:
        they select nothing). One string each, made once: a plan holds it for every line."""
        return self.selecting_rules[included]

    @cached_property
    def selecting_rules(self) -> dict[str | None, str]:
        """`selected_by` as a table: by include pattern, and None for no pattern."""
        names: dict[str | None, str] = {p: f"include:{p}" for p in self.include}
        names[None] = "time_from_key" if self.time_from_key else "age"
        return names

    def problems(self, prefix: str) -> list[str]:
        """Every problem of these rules below this prefix, each naming its setting (lists by
        index from 0, as "include[1]: ..."); empty when they are usable."""
        problems = [
            f"{name}[{index}]: {problem}"
            for name in _PATTERN_LISTS
            for index, pattern in enumerate(getattr(self, name))
            for problem in pattern_problems(pattern, prefix)
        ]
        for name in _SIZES:
            size = getattr(self, name)
            if size is not None and not 0 <= size <= MAX_SIZE:
                problems.append(f"{name}: must be from 0 to {size_text(MAX_SIZE)}")
        if (
            self.min_size is not None
            and self.max_size is not None
            and self.min_size > self.max_size
        ):
            problems.append("min_size: must not be above max_size (no size would be deleted)")
        problems += [
            f"storage_classes[{index}]: is not an S3 storage class ({', '.join(STORAGE_CLASSES)})"
            for index, storage_class in enumerate(self.storage_classes)
            if storage_class not in STORAGE_CLASSES
        ]
        problems += [
            f"{name}: must be from 0 to {MAX_KEEP:,}"
            for name in KEEP_RULES
            if not 0 <= getattr(self, name) <= MAX_KEEP
        ]
        problems += [f"group_by: {problem}" for problem in group_by_problems(self.group_by)]
        if self.group_by and not self.keep_counts:
            problems.append("group_by: groups only matter to a keep rule (keep_newest, ...)")
        problems += [
            f"time_from_key: {problem}" for problem in time_from_key_problems(self.time_from_key)
        ]
        problems += [
            f"protect_tags[{index}]: {problem}"
            for index, tag in enumerate(self.protect_tags)
            for problem in protect_tag_problems(tag)
        ]
        return problems

    def versions_problems(self, versions: str) -> list[str]:
        """What these rules cannot do in a versions mode: there, the keep rules count the
        versions of each key, so no other grouping is taken; nor a time from the key (every
        version of a key has the key's time)."""
        if versions == "current":
            return []
        return [
            f"{name}: versions {versions} keeps versions per key; {name} applies to versions "
            "current"
            for name in _TEXTS
            if getattr(self, name)
        ]

    def as_header(self) -> dict[str, Any]:
        """The rules set, for a plan file's header: JSON-ready, {} when none is."""
        header: dict[str, Any] = {}
        for name in _TEXT_LISTS:
            if getattr(self, name):
                header[name] = list(getattr(self, name))
        for name in _SIZES:
            if getattr(self, name) is not None:
                header[name] = getattr(self, name)
        header.update(self.keep_counts)
        for name in _TEXTS:
            if getattr(self, name):
                header[name] = getattr(self, name)
        return header

    @classmethod
    def from_header(cls, header: Mapping[str, Any]) -> Rules:
        """The rules a plan's header carries (`as_header`'s output).

        Raises:
            ValueError: an unknown key, or a value of the wrong type (the message names the
                key, never the value).
        """
        unknown = sorted(set(header) - {*_TEXT_LISTS, *_SIZES, *KEEP_RULES, *_TEXTS})
        if unknown:
            raise ValueError(f"unknown rules in the plan's header: {', '.join(unknown)}")
        for name in _TEXT_LISTS:
            value = header.get(name, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{name}: must be a list of texts")
        for name in _SIZES:
            value = header.get(name)
            # A JSON true is an int to Python, and never a size.
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{name}: must be a whole number of bytes")
        for name in KEEP_RULES:
            value = header.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name}: must be a whole number")
        for name in _TEXTS:
            if not isinstance(header.get(name, ""), str):
                raise ValueError(f"{name}: must be a text")
        return cls(
            include=tuple(header.get("include", ())),
            exclude=tuple(header.get("exclude", ())),
            min_size=header.get("min_size"),
            max_size=header.get("max_size"),
            storage_classes=tuple(header.get("storage_classes", ())),
            protect_tags=tuple(header.get("protect_tags", ())),
            **{name: header.get(name, 0) for name in KEEP_RULES},
            **{name: header.get(name, "") for name in _TEXTS},
        )

    def lifecycle_blocker(self) -> str | None:
        """Which rule keeps this run from being an S3 lifecycle rule, as a message naming it;
        None when it can be one. A lifecycle filter has a prefix, tags and sizes: no key
        patterns, no storage classes; and it ages each object on its own: no count of a group's
        objects (its NewerNoncurrentVersions, up to 100, is not offered here), no time read from
        a key."""
        for name in (*_PATTERN_LISTS, "storage_classes"):
            if getattr(self, name):
                what = "key patterns" if name in _PATTERN_LISTS else "storage class"
                return f"{name}: an S3 lifecycle rule cannot select by {what}"
        for name in self.keep_counts:
            return f"{name}: an S3 lifecycle rule cannot keep the newest objects of a group"
        if self.time_from_key:
            return "time_from_key: an S3 lifecycle rule ages objects by LastModified only"
        if self.protect_tags:
            return "protect_tags: an S3 lifecycle rule can select tagged objects, not spare them"
        return None

    def lifecycle_filter(self, prefix: str) -> dict[str, Any]:
        """The lifecycle rule's `Filter` for this prefix and these sizes (see
        `lifecycle_blocker` for the rules it cannot hold).

        S3's size filters are strict (ObjectSizeGreaterThan n: larger than n bytes), these
        bounds inclusive: min_size n is ObjectSizeGreaterThan n - 1, max_size n is
        ObjectSizeLessThan n + 1; min_size 0 says nothing and is left out. A filter holds
        exactly one predicate, so two or more go in an `And`.

        Raises:
            ValueError: a rule cannot be a lifecycle filter (`lifecycle_blocker`).
        """
        blocker = self.lifecycle_blocker()
        if blocker is not None:
            raise ValueError(blocker)
        predicates: dict[str, Any] = {"Prefix": prefix} if prefix else {}
        if self.min_size:
            predicates["ObjectSizeGreaterThan"] = self.min_size - 1
        if self.max_size is not None:
            predicates["ObjectSizeLessThan"] = self.max_size + 1
        return {"And": predicates} if len(predicates) > 1 else predicates
