"""A saved plan read back: checked against this run before any of it is applied.

A plan file is only trusted for what can be checked: its target must be this run's, its cutoff
no later than this run's, its age within the limit, every line of the kind its versions mode
makes, under its prefix and older than its cutoff; its count and bytes are recomputed from its
lines, never taken from its totals line (but for the count of keys left without data, which
only a listing could check: it is shown as the plan states it); it names no object twice.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tasks.errors import SafetyRefusal
from tasks.s3.bucket_lock import LOCK_FOLDER
from tasks.s3.manifest import (
    PlannedObject,
    PlanSummary,
    PlanTally,
    PlanTarget,
    file_sha256,
    read_objects,
    read_target,
    read_totals,
)
from tasks.s3.plan_index import PlanIndex, read_index
from tasks.s3.repeats import Repeats

#: Clock skew tolerated between the machine that made a plan and the one applying it.
CLOCK_SKEW = timedelta(minutes=5)


def load_plan(
    manifest_path: Path,
    expected: PlanTarget,
    max_age: timedelta,
    now: datetime | None = None,
) -> PlanSummary:
    """Read back a saved plan and check it may be applied to this run.

    Args:
        manifest_path: the plan's local file.
        expected: this run's target; its cutoff is the latest the plan's may be.
        max_age: the oldest plan that may be applied.
        now: the reference time of the age check (default: the clock).

    Raises:
        SafetyRefusal: made for another bucket, region, owner, prefix or versions mode (or from
            another inventory than the one this run names); with a
            later cutoff than this run's; older than `max_age` or made in the future; cut short;
            totals that its lines contradict; or a line outside its prefix or cutoff, of another
            versions mode, or with a malformed time.
    """
    header = read_target(manifest_path)
    check_header(header, expected, max_age, now)
    totals = read_totals(manifest_path)
    if totals is None:
        raise refused("plan_complete", "the plan is incomplete (no totals)")
    tally = verify_entries(manifest_path, header)
    if (tally.matched, tally.matched_bytes) != (totals.matched, totals.matched_bytes):
        raise SafetyRefusal(
            "plan_complete",
            tally.matched,
            totals.matched,
            reason="the plan's totals do not match it",
        )
    if totals.scanned < tally.matched:
        raise refused("plan_complete", "the plan lists more objects than it says were listed")
    summary = tally.summary(str(manifest_path), header, totals.scanned, totals.unrecoverable_keys)
    return replace(summary, sha256=file_sha256(manifest_path))


def check_header(
    header: PlanTarget, expected: PlanTarget, max_age: timedelta, now: datetime | None = None
) -> None:
    """A plan (or plan index) may be applied by this run: made for its target, with a cutoff
    no later than its own, within `max_age`.

    Raises:
        SafetyRefusal: it may not.
    """
    # An owner read from a secret is not in the file: the plan must say it came from a
    # secret, and this run's must too (every request carries this run's owner anyway).
    compared = ["bucket", "region", "prefix", "versions", "owner_from"]
    if header.owner_from != "secret":
        compared.append("owner")
    if expected.inventory is not None:  # a run that names an inventory applies plans of it
        compared.append("inventory")
    mismatched = [name for name in compared if getattr(header, name) != getattr(expected, name)]
    if mismatched:
        raise refused("plan_target", f"the plan was made for another {', '.join(mismatched)}")
    cutoff = moment(header.cutoff, "the plan's cutoff")
    if cutoff > moment(expected.cutoff, "this run's cutoff"):
        raise refused(
            "plan_cutoff",
            "the plan's cutoff is later than this run's (older_than_days and as_of): it would "
            "delete objects this run keeps",
        )
    check_age(moment(header.created_at, "the plan's created_at"), cutoff, max_age, now)


def load_index(
    index_path: Path, expected: PlanTarget, max_age: timedelta, now: datetime | None = None
) -> PlanIndex:
    """Read back a saved plan made in shards and check that this run may apply it; each part
    is checked like a saved plan by the worker that applies it.

    Raises:
        SafetyRefusal: as for a saved plan, or its totals are not its parts' sums.
    """
    index = read_index(index_path)
    check_header(index.target, expected, max_age, now)
    return index


def check_age(
    created_at: datetime, cutoff: datetime, max_age: timedelta, now: datetime | None
) -> None:
    """A plan is applied only within `max_age` of its making, and it cannot have been made in
    the future, nor before the cutoff it selects by."""
    age = (now or datetime.now(UTC)) - created_at
    if age < -CLOCK_SKEW or created_at < cutoff:
        raise refused("plan_created_at", "the plan's created_at is not a time it was made at")
    if age > max_age:
        hours = age.total_seconds() / 3600
        raise SafetyRefusal(
            "max_plan_age_hours",
            round(hours, 2),
            max_age.total_seconds() / 3600,
            reason=f"the plan is {hours:.1f} hours old and the limit is "
            f"{max_age.total_seconds() / 3600:g} hours",
        )


def verify_entries(manifest_path: Path, header: PlanTarget) -> PlanTally:
    """Tally the plan's entries, refusing a line outside its prefix, not older than its cutoff,
    not of the kind its versions mode makes, out of listing order in a versions plan (the
    apply joins it with a fresh listing in that order), or naming an object a second time."""
    cutoff = moment(header.cutoff, "the plan's cutoff")
    tally, repeats, previous_key = PlanTally(), Repeats(), ""
    for number, entry in enumerate(read_objects(manifest_path), start=2):
        where = f"line {number} of the plan"
        modified = moment(entry.last_modified, f"the last_modified of {where}")
        outside = not entry.key.startswith(header.prefix) or entry.key.startswith(LOCK_FOLDER)
        if outside or modified >= cutoff:
            raise refused("plan_entries", f"{where} is outside its prefix or its cutoff")
        if not fits_mode(entry, header.versions) or entry.size < 0:
            raise refused("plan_entries", f"{where} is not a {header.versions}-versions entry")
        if header.versions != "current" and entry.key < previous_key:
            raise refused("plan_entries", f"{where} is out of listing order (keys ascending)")
        previous_key = entry.key
        repeats.add(entry.key, entry.version_id)
        tally.add(entry)
    if repeats.found():
        raise refused("plan_entries", "the plan names an object (or version) more than once")
    return tally


def fits_mode(entry: PlannedObject, versions: str) -> bool:
    """current: a current object, deleted by key on its ETag, never a version by id; noncurrent
    and all: a specific version or delete marker, deleted by its id."""
    if versions == "current":
        return entry.version_id is None and not entry.is_delete_marker and bool(entry.etag)
    return bool(entry.version_id)


def moment(text: str, what: str) -> datetime:
    """An ISO 8601 time with a zone from a plan; anything else refuses the plan."""
    try:
        parsed = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise refused("plan_entries", f"{what} is not an ISO 8601 time with a zone")
    return parsed


def refused(guard: str, reason: str) -> SafetyRefusal:
    return SafetyRefusal(guard, 0, 0, reason=reason)
