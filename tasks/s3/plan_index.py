"""A plan made in shards: an index of its parts (each a plan file of its own) and their totals."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tasks.s3.manifest import PlanTarget, PlanTotals

FORMAT = "s3-housekeeping/plan-index-v1"


@dataclass(frozen=True)
class Part:
    """One shard's part of the plan: where it is kept, its digest and its totals."""

    location: str
    sha256: str
    scanned: int
    matched: int
    matched_bytes: int


def write_index(path: Path, target: PlanTarget, parts: Sequence[Part]) -> PlanTotals:
    """Write the index (header, one line a part, the totals last; readable by its owner only)
    and return the totals of the whole plan."""
    totals = PlanTotals(
        scanned=sum(part.scanned for part in parts),
        matched=sum(part.matched for part in parts),
        matched_bytes=sum(part.matched_bytes for part in parts),
    )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as index:
        index.write(json.dumps({"format": FORMAT, **target.as_header()}) + "\n")
        for part in parts:
            index.write(json.dumps({"part": asdict(part)}) + "\n")
        index.write(json.dumps({"end": asdict(totals)}) + "\n")
    return totals
