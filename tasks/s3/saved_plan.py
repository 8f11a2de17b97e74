"""A saved plan read back: checked against this run's target before any of it is applied."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tasks.errors import SafetyRefusal
from tasks.s3.manifest import (
    FIRST_ROWS,
    PlannedObject,
    PlanSummary,
    PlanTarget,
    read_objects,
    read_target,
    read_totals,
)


def load_plan(
    manifest_path: Path,
    expected: PlanTarget,
    max_age: timedelta,
    now: datetime | None = None,
) -> PlanSummary:
    """Read back a saved plan and check it may be applied to this run's target.

    Raises:
        SafetyRefusal: made for another bucket, region, owner, prefix or versions mode; older
            than `max_age`; cut short; or holding an object outside its own prefix or cutoff.
    """
    header = read_target(manifest_path)
    mismatched = [
        name
        for name in ("bucket", "region", "owner", "prefix", "versions")
        if getattr(header, name) != getattr(expected, name)
    ]
    if mismatched:
        raise SafetyRefusal(
            "plan_target", 0, 0, reason=f"the plan was made for another {', '.join(mismatched)}"
        )
    age = (now or datetime.now(UTC)) - datetime.fromisoformat(header.created_at)
    if age > max_age:
        hours = age.total_seconds() / 3600
        raise SafetyRefusal(
            "max_plan_age_hours",
            round(hours, 2),
            max_age.total_seconds() / 3600,
            reason=f"the plan is {hours:.1f} hours old and the limit is "
            f"{max_age.total_seconds() / 3600:g} hours",
        )
    totals = read_totals(manifest_path)
    if totals is None:
        raise SafetyRefusal("plan_complete", 0, 0, reason="the plan is incomplete (no totals)")
    counted, first_rows = verify_entries(manifest_path, header)
    if counted != totals.matched:
        raise SafetyRefusal(
            "plan_complete", counted, totals.matched, reason="the plan's totals do not match it"
        )
    return PlanSummary(
        manifest=str(manifest_path),
        target=header,
        scanned=totals.scanned,
        matched=totals.matched,
        matched_bytes=totals.matched_bytes,
        first_rows=first_rows,
    )


def verify_entries(manifest_path: Path, header: PlanTarget) -> tuple[int, list[PlannedObject]]:
    """Count the plan's entries, refusing one outside its prefix or not older than its cutoff."""
    cutoff = datetime.fromisoformat(header.cutoff)
    counted = 0
    first_rows: list[PlannedObject] = []
    for number, entry in enumerate(read_objects(manifest_path), start=2):
        too_new = datetime.fromisoformat(entry.last_modified) >= cutoff
        if not entry.key.startswith(header.prefix) or too_new:
            raise SafetyRefusal(
                "plan_entries",
                0,
                0,
                reason=f"line {number} of the plan is outside its prefix or its cutoff",
            )
        counted += 1
        if len(first_rows) < FIRST_ROWS:
            first_rows.append(entry)
    return counted, first_rows
