"""The oracle catches what it is for: each check fails on evidence made to break it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.chaos.oracle import (
    LOCK_KEY,
    Killed,
    Plan,
    RunEvidence,
    Verdict,
    check_rerun,
    check_rivals,
    judge,
)
from tests.chaos.targets import Identity, ObjectState
from tests.support.fault_proxy import Exchange

CUTOFF = datetime(2026, 10, 30, tzinfo=UTC)
OLD, YOUNG = CUTOFF - timedelta(days=10), CUTOFF + timedelta(days=10)


def state(moment: datetime = OLD, etag: str = '"e"', **version: Any) -> ObjectState:
    return ObjectState(etag, moment, 1, **version)


def evidence(
    before: Mapping[Any, ObjectState], after: Mapping[Any, ObjectState], **fields: Any
) -> RunEvidence:
    planned: dict[Identity, str] = {
        identity: found.etag
        for identity, found in before.items()
        if isinstance(identity, str) and identity != LOCK_KEY
    }
    plan = Plan({"versions": "current"}, {str(k): v for k, v in planned.items()}, True, planned)
    defaults: dict[str, Any] = {
        "code": 0,
        "report": None,
        "plan": plan,
        "prefix": "tmp/",
        "cutoff": CUTOFF,
        "exchanges": (),
        "fresh_plan": False,
    }
    return RunEvidence(before=before, after=after, **{**defaults, **fields})


def report(**counts: Any) -> dict[str, Any]:
    return {
        "status": "completed",
        "matched": 0,
        "deleted": 0,
        "skipped_changed": 0,
        "failed": 0,
        "failed_by_code": {},
        "message": "",
        **counts,
    }


def test_refused_run_that_deleted_is_wrong_when_its_report_says_refused() -> None:
    refused = report(status="refused", message="refused by plan_entries: ...; nothing was deleted")
    run = evidence({"tmp/a": state()}, {}, code=6, report=refused)

    verdict = judge(run)

    assert verdict.wrongly_deleted == ["'tmp/a': deleted by a refused run"]


def test_current_version_deleted_is_wrong_when_versions_are_noncurrent() -> None:
    current = ("tmp/a", "v2")
    before = {
        current: state(version_id="v2"),
        ("tmp/a", "v1"): state(OLD - timedelta(days=5), version_id="v1", is_latest=False),
    }
    planned: dict[Identity, str] = {current: '"e"'}
    plan = Plan({"versions": "noncurrent"}, {"tmp/a": '"e"'}, True, planned)
    run = evidence(before, {("tmp/a", "v1"): before[("tmp/a", "v1")]}, plan=plan)

    verdict = judge(replace(run, versions="noncurrent"))

    assert verdict.wrongly_deleted == ["('tmp/a', 'v2'): not noncurrent since before the cutoff"]


def test_killed_run_journal_disagrees_when_it_claims_more_than_the_bucket_lost() -> None:
    before = {f"tmp/{n}": state() for n in range(4)}
    journal = [{"sent": 1, "keys": 4}, {"answered": 1, "deleted": 4, "errors": {}}]
    run = evidence(before, {"tmp/3": before["tmp/3"]}, code=-9, journal=journal)

    verdict = judge(run)

    assert verdict.misreported == 1


def test_killed_run_journal_disagrees_when_the_bucket_lost_more_than_was_sent() -> None:
    before = {f"tmp/{n}": state() for n in range(4)}
    journal = [
        {"sent": 1, "keys": 1},
        {"answered": 1, "deleted": 1, "errors": {}},
        {"sent": 2, "keys": 1},
    ]
    verdict = judge(evidence(before, {}, code=-9, journal=journal))

    assert (verdict.unaccounted, verdict.misreported) == (2, 0)


def test_rerun_is_wrong_when_it_sends_a_key_the_killed_run_deleted() -> None:
    before = {"tmp/a": state(), "tmp/b": state(), LOCK_KEY: state(YOUNG)}
    killed = evidence(before, {"tmp/b": before["tmp/b"], LOCK_KEY: before[LOCK_KEY]}, code=-9)
    killed = replace(killed, journal=[{"sent": 1, "keys": 2}])
    sent = Exchange(1, "DeleteObjects", 1, keys=("tmp/a", "tmp/b"), status=200)
    rerun = evidence(killed.after, {}, report=report(deleted=1, matched=1), exchanges=(sent,))
    verdict = Verdict()

    check_rerun(verdict, Killed(killed, 1), rerun, "Taking over the lock of bucket")

    assert verdict.problems == ["the re-run sent 1 keys the killed run had deleted"]


def test_refused_rival_is_wrong_when_it_sent_a_delete() -> None:
    before = {"tmp/a": state(), "logs/b": state()}
    winner = evidence(before, {"logs/b": before["logs/b"]}, report=report(deleted=1, matched=1))
    lock_try = Exchange(1, "PutObject", 1, object_key=LOCK_KEY, status=412)
    stray = Exchange(2, "DeleteObject", 1, object_key=LOCK_KEY, status=204)
    loser = evidence(
        before, {}, code=6, stderr="... is locked by run x ...", exchanges=(lock_try, stray)
    )
    verdict = Verdict()

    check_rivals(verdict, winner, loser)

    assert verdict.problems == [f"the refused run sent DeleteObject {LOCK_KEY!r}"]


def test_outcomes_are_counted_by_plan_line_when_a_failed_run_planned_a_row_twice() -> None:
    # A damaged inventory whose rows name one object twice: the run stopped before sending
    # anything, with an outcome (never sent) for each line it had planned.
    before = {"tmp/a": state(), "tmp/b": state()}
    planned: dict[Identity, str] = {"tmp/a": '"e"', "tmp/b": '"e"'}
    plan = Plan({"versions": "current"}, dict(planned), False, planned, lines=3)
    failed = report(status="failed", matched=3, failed=3, failed_by_code={"NotSent": 3})
    run = evidence(before, before, code=1, report=failed, plan=plan)

    verdict = judge(run)

    assert (verdict.problems, verdict.unaccounted) == ([], 0)


def test_own_plan_is_wrong_when_it_names_an_object_twice() -> None:
    before = {"tmp/a": state(), "tmp/b": state()}
    planned: dict[Identity, str] = {"tmp/a": '"e"', "tmp/b": '"e"'}
    plan = Plan({"versions": "current"}, dict(planned), True, planned, lines=3)
    run = evidence(before, {}, plan=plan, fresh_plan=True, report=report(matched=3, deleted=3))

    verdict = judge(run)

    assert "the run's own plan names 2 objects in 3 lines" in verdict.problems
