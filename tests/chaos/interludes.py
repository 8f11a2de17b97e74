"""What happens between a saved plan and its apply: someone changes the bucket, or the plan file.

Each interlude gets a client straight to the server, the bucket, the saved plan as the oracle
read it, the plan's file and the seed. A tampering rewrites the file so that only the field it
names is wrong: the totals still add up, and the rest of the file is as the dry run wrote it.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.chaos.oracle import Plan
from tests.chaos.scenarios import UNDELETED
from tests.chaos.targets import PREFIX

InterludeFunction = Callable[[Any, str, Plan, Path, int], None]


def rewrite_one_planned(s3: Any, bucket: str, plan: Plan, saved: Path, seed: int) -> None:
    """Someone writes a new version of one planned object after the plan was made."""
    key = random.Random(seed).choice(sorted(plan.etags))  # noqa: S311 - a test's choice
    s3.put_object(Bucket=bucket, Key=key, Body=b"rewritten after planning")


def undelete_some_planned(s3: Any, bucket: str, plan: Plan, saved: Path, seed: int) -> None:
    """Someone undeletes planned keys (removes the delete marker over the planned version):
    the planned version is current again."""
    undeleted = 0
    keys = sorted(plan.etags)
    random.Random(seed).shuffle(keys)  # noqa: S311 - a test's choice
    for key in keys:
        listed = s3.list_object_versions(Bucket=bucket, Prefix=key)
        markers = [
            marker
            for marker in listed.get("DeleteMarkers", [])
            if marker["Key"] == key and marker["IsLatest"]
        ]
        if markers:
            s3.delete_object(Bucket=bucket, Key=key, VersionId=markers[0]["VersionId"])
            undeleted += 1
            if undeleted == UNDELETED:
                return
    raise AssertionError(f"only {undeleted} planned keys had a delete marker to remove")


@dataclass
class PlanLines:
    """A saved plan's records, to edit: its header, its object lines and its totals."""

    header: dict[str, Any]
    objects: list[dict[str, Any]]
    totals: dict[str, Any]

    @classmethod
    def read(cls, path: Path) -> PlanLines:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            records = [json.loads(line) for line in lines]
        return cls(records[0], records[1:-1], records[-1])

    def write(self, path: Path) -> None:
        with gzip.open(path, "wt", encoding="utf-8") as out:
            for record in (self.header, *self.objects, self.totals):
                out.write(json.dumps(record, separators=(",", ":")) + "\n")


def tampering(change: Callable[[Any, str, PlanLines, random.Random], None]) -> InterludeFunction:
    """An interlude that edits the saved plan's records with `change`."""

    def interlude(s3: Any, bucket: str, plan: Plan, saved: Path, seed: int) -> None:
        lines = PlanLines.read(saved)
        change(s3, bucket, lines, random.Random(seed))  # noqa: S311 - a test's choice
        lines.write(saved)

    interlude.__doc__ = change.__doc__
    return interlude


def key_outside_prefix(s3: Any, bucket: str, plan: PlanLines, pick: random.Random) -> None:
    """A line names an object outside the prefix (one that exists, with its real ETag and size:
    the totals agree)."""
    first = s3.list_objects_v2(Bucket=bucket, Prefix="logs/", MaxKeys=1)["Contents"][0]
    line = pick.choice(plan.objects)
    plan.totals["matched_bytes"] += first["Size"] - line["size"]
    line.update(key=first["Key"], etag=first["ETag"], size=first["Size"])


def version_id_on_a_current_line(
    s3: Any, bucket: str, plan: PlanLines, pick: random.Random
) -> None:
    """A line of a plan of current objects names a version ("null": the object itself, in a
    bucket without versioning, deleted by id with no ETag condition)."""
    pick.choice(plan.objects)["version_id"] = "null"


def fewer_bytes_in_totals(s3: Any, bucket: str, plan: PlanLines, pick: random.Random) -> None:
    """The totals line says one byte less than the lines hold (a guard on bytes would pass)."""
    plan.totals["matched_bytes"] -= 1


def duplicate_line(s3: Any, bucket: str, plan: PlanLines, pick: random.Random) -> None:
    """A line appears twice (the totals count it twice, as if listed twice)."""
    index = pick.randrange(len(plan.objects))
    plan.objects.insert(index + 1, dict(plan.objects[index]))
    plan.totals["matched"] += 1
    plan.totals["scanned"] += 1
    plan.totals["matched_bytes"] += plan.objects[index]["size"]


def other_bucket(s3: Any, bucket: str, plan: PlanLines, pick: random.Random) -> None:
    """The header names another bucket."""
    plan.header["bucket"] = f"{bucket}-other"


def other_prefix(s3: Any, bucket: str, plan: PlanLines, pick: random.Random) -> None:
    """The header names a wider prefix (every line still under it)."""
    plan.header["prefix"] = PREFIX[:1]


def later_cutoff(s3: Any, bucket: str, plan: PlanLines, pick: random.Random) -> None:
    """The header's cutoff is a day later than the one the plan was made with (and than the
    apply's own)."""
    cutoff = datetime.fromisoformat(plan.header["cutoff"]) + timedelta(days=1)
    plan.header["cutoff"] = cutoff.isoformat().replace("+00:00", "Z")


def truncate(s3: Any, bucket: str, plan: Plan, saved: Path, seed: int) -> None:
    """The plan file cut at a seeded point past its first half, mid-stream."""
    data = saved.read_bytes()
    cut = len(data) // 2 + random.Random(seed).randrange(len(data) // 4)  # noqa: S311
    saved.write_bytes(data[:cut])


INTERLUDES: dict[str, InterludeFunction] = {
    "rewrite_one_planned": rewrite_one_planned,
    "undelete_some_planned": undelete_some_planned,
    "tamper_key_outside_prefix": tampering(key_outside_prefix),
    "tamper_version_id": tampering(version_id_on_a_current_line),
    "tamper_fewer_bytes": tampering(fewer_bytes_in_totals),
    "tamper_duplicate_line": tampering(duplicate_line),
    "tamper_bucket": tampering(other_bucket),
    "tamper_prefix": tampering(other_prefix),
    "tamper_cutoff": tampering(later_cutoff),
    "tamper_truncated": truncate,
}
