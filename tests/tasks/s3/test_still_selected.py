"""A versions plan joined with a fresh listing: what the plan's rule still selects goes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tasks.s3.listing import ListedObject
from tasks.s3.manifest import PlannedObject
from tasks.s3.still_selected import still_selected

CUTOFF = datetime(2026, 6, 1, tzinfo=UTC)
OLD = CUTOFF - timedelta(days=10)


def listed(
    key: str, version: str, noncurrent_since: datetime | None, last_modified: datetime = OLD
) -> ListedObject:
    return ListedObject(
        key, '"e"', 1, last_modified, version_id=version, noncurrent_since=noncurrent_since
    )


def planned(key: str, version: str) -> PlannedObject:
    return PlannedObject(key, '"e"', 1, OLD.isoformat(), "STANDARD", version_id=version)


def join(
    plan: list[PlannedObject], fresh: list[ListedObject], versions: str = "noncurrent"
) -> tuple[list[tuple[str, str | None]], list[tuple[str, str | None]]]:
    changed: list[PlannedObject] = []
    kept = list(still_selected(plan, fresh, "t/", CUTOFF, versions, changed.append))
    return [(e.key, e.version_id) for e in kept], [(e.key, e.version_id) for e in changed]


def test_sends_versions_still_noncurrent_since_before_the_cutoff() -> None:
    plan = [planned("t/a", "a1"), planned("t/b", "b1")]
    fresh = [
        listed("t/a", "a2", None),
        listed("t/a", "a1", OLD),
        listed("t/b", "b2", None),
        listed("t/b", "b1", OLD),
    ]

    assert join(plan, fresh) == ([("t/a", "a1"), ("t/b", "b1")], [])


def test_keeps_a_version_current_again_gone_or_superseded_only_since_the_cutoff() -> None:
    plan = [planned("t/a", "a1"), planned("t/b", "b1"), planned("t/c", "c1"), planned("t/d", "d1")]
    fresh = [
        listed("t/a", "a1", None),  # undeleted: its delete marker was removed
        listed("t/c", "c2", None),  # t/b is gone from the listing altogether
        listed("t/c", "c1", CUTOFF + timedelta(days=1)),  # undeleted, then overwritten
        listed("t/d", "d2", None),  # t/d's planned version was deleted by someone else
    ]

    sent, changed = join(plan, fresh)

    assert sent == []
    assert changed == [("t/a", "a1"), ("t/b", "b1"), ("t/c", "c1"), ("t/d", "d1")]


def test_skips_keys_the_plan_does_not_name_on_either_side() -> None:
    plan = [planned("t/b", "b1")]
    fresh = [
        listed("t/a", "a1", OLD),
        listed("t/b", "b2", None),
        listed("t/b", "b1", OLD),
        listed("t/c", "c1", OLD),
    ]

    assert join(plan, fresh) == ([("t/b", "b1")], [])


def test_keeps_every_version_of_a_key_the_plan_lists_out_of_order() -> None:
    # Never written by a planner and refused in a saved plan; if it happened anyway, the join
    # finds the listing past the key, and the versions are kept rather than deleted.
    plan = [planned("t/b", "b1"), planned("t/a", "a1")]
    fresh = [listed("t/a", "a1", OLD), listed("t/b", "b1", OLD)]

    assert join(plan, fresh) == ([("t/b", "b1")], [("t/a", "a1")])


def test_keeps_a_version_written_since_the_cutoff_whatever_date_the_plan_gives_it() -> None:
    # A plan of all versions from a file: t/b's line names today's version with an old date.
    plan = [planned("t/a", "a1"), planned("t/b", "b2")]
    fresh = [
        listed("t/a", "a1", OLD),
        listed("t/b", "b2", None, last_modified=CUTOFF + timedelta(days=3)),
        listed("t/b", "b1", CUTOFF + timedelta(days=3)),
    ]

    assert join(plan, fresh, versions="all") == ([("t/a", "a1")], [("t/b", "b2")])
