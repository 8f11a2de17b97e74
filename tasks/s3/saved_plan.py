"""A saved plan read back: checked against this run before any of it is applied.

A plan file is only trusted for what can be checked: its target must be this run's, its cutoff
no later than this run's, its age within the limit, every line of the kind its versions mode
makes, under its prefix and older than its cutoff; its count and bytes are recomputed from its
lines, never taken from its totals line (but for the count of keys left without data, which
only a listing could check: it is shown as the plan states it); it names no object twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tasks.errors import SafetyRefusal, shown_text
from tasks.s3.bucket_lock import LOCK_FOLDER
from tasks.s3.key_fields import time_of
from tasks.s3.manifest import (
    FIRST_ROWS,
    PlannedObject,
    PlanSummary,
    PlanTally,
    PlanTarget,
    file_sha256,
    read_objects,
    read_target,
    read_totals,
)
from tasks.s3.plan_index import Part, PlanIndex, read_index
from tasks.s3.repeats import Repeats
from tasks.s3.rules import Rules

#: Clock skew tolerated between the machine that made a plan and the one applying it.
CLOCK_SKEW = timedelta(minutes=5)


def load_plan(
    manifest_path: Path,
    expected: PlanTarget,
    max_age: timedelta,
    now: datetime | None = None,
    repeats: Repeats | None = None,
) -> PlanSummary:
    """Read back a saved plan and check it may be applied to this run.

    Args:
        manifest_path: the plan's local file.
        expected: this run's target; its cutoff is the latest the plan's may be.
        max_age: the oldest plan that may be applied.
        now: the reference time of the age check (default: the clock).
        repeats: the objects of other plans this one is checked with (the parts of one plan
            made in shards): an object in two of them is refused too.

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
    tally = verify_entries(manifest_path, header, repeats)
    if (tally.matched, tally.matched_bytes) != (totals.matched, totals.matched_bytes):
        raise SafetyRefusal(
            "plan_complete",
            tally.matched,
            totals.matched,
            reason="the plan's totals do not match it",
        )
    if totals.scanned < tally.matched:
        raise refused("plan_complete", "the plan lists more objects than it says were listed")
    summary = tally.summary(
        str(manifest_path), header, totals.scanned, totals.unrecoverable_keys, totals.kept
    )
    return replace(summary, sha256=file_sha256(manifest_path), saved=True)


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
        # An owner is left unshown: this run's may come from its secret.
        compared_values = "; ".join(
            f"{name}: the plan's {shown(getattr(header, name))}, this run's "
            f"{shown(getattr(expected, name))}"
            for name in mismatched
            if name != "owner"
        )
        raise refused(
            "plan_target",
            f"the plan was made for another {', '.join(mismatched)}"
            + (f" ({compared_values})" if compared_values else ""),
        )
    if header.rules != expected.rules:
        raise refused(
            "plan_rules",
            f"the plan was made under other retention rules (the plan's: "
            f"{shown(json.dumps(header.rules))}, this run's: {shown(json.dumps(expected.rules))})",
        )
    cutoff = moment(header.cutoff, "the plan's cutoff")
    if cutoff > moment(expected.cutoff, "this run's cutoff"):
        raise refused(
            "plan_cutoff",
            f"the plan's cutoff {header.cutoff} is later than this run's {expected.cutoff} "
            "(its older_than_days and as_of): it would delete objects this run keeps",
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


def load_parts(
    index: PlanIndex,
    fetched: Callable[[Part], Path],
    max_age: timedelta,
    now: datetime | None = None,
) -> list[PlannedObject]:
    """Read and check every part of a plan made in shards, as one plan, before any of it is
    applied: each part's file is the one the index names (its SHA-256), a plan the index's
    target may apply, and holds exactly the counts the index gives it; no part is named twice
    and no object is in two parts. Returns the plan's first rows.

    Args:
        index: the index, read and checked against this run (`load_index`).
        fetched: a part's private copy, fetched from where the part is kept; it is removed
            once read.
        max_age: the oldest a part may be.
        now: the reference time of the age check (default: the clock).

    Raises:
        SafetyRefusal: a part is missing its digest's file, is named twice, is not a plan of
            this target, or holds other counts than the index says; nothing has been deleted.
    """
    repeats, locations = Repeats(), set[str]()
    first_rows: list[PlannedObject] = []
    for number, part in enumerate(index.parts, start=1):
        if part.location in locations:
            raise refused("plan_entries", f"the plan index names part {number} a second time")
        locations.add(part.location)
        copy = fetched(part)
        try:
            if file_sha256(copy) != part.sha256:
                raise refused(
                    "plan_digest",
                    f"part {number} of the plan ('{part.location}') changed since it was "
                    f"planned: its SHA-256 is no longer {part.sha256}",
                )
            plan = load_plan(copy, index.target, max_age, now, repeats)
        finally:
            copy.unlink(missing_ok=True)
        found = (plan.scanned, plan.matched, plan.matched_bytes, plan.unrecoverable_keys)
        said = (part.scanned, part.matched, part.matched_bytes, part.unrecoverable_keys)
        if found != said:
            raise SafetyRefusal(
                "plan_complete",
                plan.matched,
                part.matched,
                reason=f"part {number} of the plan holds {plan.matched} objects "
                f"({plan.matched_bytes} bytes, {plan.scanned} listed) and the index says "
                f"{part.matched} ({part.matched_bytes} bytes, {part.scanned} listed)",
            )
        first_rows += plan.first_rows[: FIRST_ROWS - len(first_rows)]
    if repeats.found():
        raise refused("plan_entries", "the plan names an object (or version) more than once")
    return first_rows


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


def verify_entries(
    manifest_path: Path, header: PlanTarget, repeats: Repeats | None = None
) -> PlanTally:
    """Tally the plan's entries, refusing a line outside its prefix, not older than its cutoff,
    not of the kind its versions mode makes, out of listing order in a versions plan (the
    apply joins it with a fresh listing in that order), or naming an object a second time (in
    this plan, or in the others `repeats` holds)."""
    cutoff = moment(header.cutoff, "the plan's cutoff")
    rules = plan_rules(header)
    tally, previous_key = PlanTally(), ""
    # Checked at the end by whoever holds the others' objects too (once, not per part).
    shared, repeats = repeats is not None, repeats if repeats is not None else Repeats()
    for number, entry in enumerate(read_objects(manifest_path), start=2):
        where = f"line {number} of the plan"
        modified = moment(entry.last_modified, f"the last_modified of {where}")
        outside = not entry.key.startswith(header.prefix) or entry.key.startswith(LOCK_FOLDER)
        if outside or modified >= cutoff:
            raise refused("plan_entries", f"{where} is outside its prefix or its cutoff")
        if not fits_mode(entry, header.versions) or entry.size < 0:
            raise refused("plan_entries", f"{where} is not a {header.versions}-versions entry")
        below = entry.key[len(header.prefix) :]
        selected_by = None
        if rules is not None:
            reason, included = rules.decision(below, entry.size, entry.storage_class)
            if reason or not key_time_before(rules, below, cutoff):
                raise refused("plan_entries", f"{where} is an object its retention rules keep")
            selected_by = rules.selected_by(included)
        # A plan made before lines named their rule names none; one that names it names the
        # rule its header's rules give.
        if entry.rule not in (None, selected_by):
            raise refused("plan_entries", f"{where} names a rule its plan's rules do not give")
        if header.versions != "current" and entry.key < previous_key:
            raise refused("plan_entries", f"{where} is out of listing order (keys ascending)")
        previous_key = entry.key
        repeats.add(entry.key, entry.version_id)
        tally.add(entry)
    if not shared and repeats.found():
        raise refused("plan_entries", "the plan names an object (or version) more than once")
    return tally


def plan_rules(header: PlanTarget) -> Rules | None:
    """The retention rules a plan's header names, None for none.

    Raises:
        SafetyRefusal: the header's rules are malformed or not usable under its prefix.
    """
    try:
        rules = Rules.from_header(header.rules)
    except (TypeError, ValueError):
        raise refused("plan_rules", "the plan's retention rules are malformed") from None
    if rules.problems(header.prefix):
        raise refused("plan_rules", "the plan's retention rules are not usable")
    return rules if rules.any else None


def key_time_before(rules: Rules, key_below_prefix: str, cutoff: datetime) -> bool:
    """Whether the key gives a time before the cutoff, when the rules read times from keys
    (time_from_key); True when they do not."""
    if not rules.time_from_key:
        return True
    when = time_of(rules.time_from_key, key_below_prefix)
    return when is not None and when < cutoff


def needs_its_digest(rules: Rules | None) -> str | None:
    """Which of a plan's rules no line of it can be checked against alone, so that only the
    plan a person reviewed (its SHA-256 given) may be applied; None when every line can be.
    A keep rule decides from the whole group, a tag and a lock from S3 at planning time."""
    if rules is None:
        return None
    for name in rules.keep_counts:
        return name
    return "protect_tags" if rules.protect_tags else None


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


def shown(value: object) -> str:
    """A header's value in a refusal: text from a file, escaped; none said as such."""
    return "none" if value is None else repr(shown_text(str(value)))


def refused(guard: str, reason: str) -> SafetyRefusal:
    return SafetyRefusal(guard, 0, 0, reason=reason)
