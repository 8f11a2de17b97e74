"""A plan made in shards: an index of its parts (each a plan file of its own) and their totals."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tasks.errors import ConfigError, SafetyRefusal
from tasks.s3.manifest import PlanTarget, PlanTotals, counts_by_reason, totals_record
from tasks.s3.private_files import private_folder

FORMAT = "s3-housekeeping/plan-index-v1"
#: An index's file name ends so; a part is a plan file of its own (.jsonl.gz).
SUFFIX = ".index.jsonl"


@dataclass(frozen=True)
class Part:
    """One shard's part of the plan: where it is kept, its digest and its totals."""

    location: str
    sha256: str
    scanned: int
    matched: int
    matched_bytes: int
    #: Versions plans: the part's keys left with no version holding data once it is applied.
    unrecoverable_keys: int = 0
    #: Every key of the part comes after this one (None: from the prefix's start). A part of
    #: noncurrent versions is checked against a fresh listing from there before it is applied.
    start_after: str | None = None
    #: The objects old enough that the retention rules kept, by reason.
    kept: dict[str, int] = field(default_factory=dict)


def write_index(path: Path, target: PlanTarget, parts: Sequence[Part]) -> PlanTotals:
    """Write the index (header, one line a part, the totals last; readable by its owner only)
    and return the totals of the whole plan."""
    totals = totals_of(parts)
    private_folder(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as index:
        index.write(json.dumps({"format": FORMAT, **target.as_header()}) + "\n")
        for part in parts:
            record = asdict(part)
            if not part.kept:
                del record["kept"]
            index.write(json.dumps({"part": record}) + "\n")
        index.write(json.dumps({"end": totals_record(totals)}) + "\n")
    return totals


@dataclass(frozen=True)
class PlanIndex:
    """A plan made in shards, read back: its target, its parts and its totals."""

    target: PlanTarget
    parts: list[Part]
    totals: PlanTotals


def is_index(path: Path) -> bool:
    """Whether the file is a plan index (its first line says so)."""
    try:
        with path.open(encoding="utf-8") as lines:
            first = json.loads(lines.readline())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(first, dict) and first.get("format") == FORMAT


def read_index(path: Path) -> PlanIndex:
    """Read a plan index back.

    Raises:
        ConfigError: the file is not an index, or a line is malformed.
        SafetyRefusal: it has no totals (cut short), or its totals are not its parts' sums.
    """
    try:
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        header = dict(records[0])
        if header.pop("format", None) != FORMAT:
            raise ConfigError(f"plan '{path.name}' is not a plan index")
        target = PlanTarget(**header)
        parts = [Part(**record["part"]) for record in records[1:] if "part" in record]
        ends = [record["end"] for record in records[1:] if "end" in record]
    except (IndexError, KeyError, TypeError, ValueError, UnicodeDecodeError):
        raise ConfigError(f"plan '{path.name}' is not a readable plan index") from None
    if not all(isinstance(part.kept, dict) and counts_by_reason(part.kept) for part in parts):
        raise ConfigError(f"plan '{path.name}' is not a readable plan index")
    if len(ends) != 1 or records[-1].get("end") is None:
        raise SafetyRefusal(
            "plan_complete", 0, 0, reason=f"the plan index '{path.name}' has no totals"
        )
    totals = _totals(ends[0], path)
    summed = totals_of(parts)
    if totals != summed:
        raise SafetyRefusal(
            "plan_complete",
            summed.matched,
            totals.matched,
            reason=f"the totals of the plan index '{path.name}' are not its parts' sums",
        )
    return PlanIndex(target, parts, totals)


def totals_of(parts: Sequence[Part]) -> PlanTotals:
    """The totals of a plan made of these parts."""
    return PlanTotals(
        scanned=sum(part.scanned for part in parts),
        matched=sum(part.matched for part in parts),
        matched_bytes=sum(part.matched_bytes for part in parts),
        unrecoverable_keys=sum(part.unrecoverable_keys for part in parts),
        kept=dict(sum((Counter(part.kept) for part in parts), Counter())),
    )


def _totals(record: Any, path: Path) -> PlanTotals:
    try:
        return PlanTotals(**record)
    except TypeError:
        raise ConfigError(f"plan '{path.name}' has malformed totals") from None
