"""Approval through a real deployment: a run pauses with its plan, and only a yes deletes."""

from __future__ import annotations

import pytest

from tasks.locking import concurrency_limit_name
from tasks.s3.bucket_lock import LOCK_KEY
from tests.support.stack import DEMO_KEPT, DEMO_OLD, Stack

pytestmark = pytest.mark.e2e


def start_paused_run(stack: Stack, bucket: str) -> str:
    """A dev run that must be approved; returns its id once it waits, paused, for input."""
    run_id = stack.run_deployment(
        "s3-housekeeping-dev",
        bucket=bucket,
        prefix="tmp/",
        older_than_days=30,
        dry_run=False,
        require_approval=True,
        approval_timeout_minutes=10,
    )
    stack.wait_for_state(run_id, {"PAUSED"})
    return run_id


class TestApproval:
    def test_nothing_is_deleted_when_the_plan_is_rejected(self, stack: Stack) -> None:
        bucket = stack.seeded_bucket("rejected")
        run_id = start_paused_run(stack, bucket)
        try:
            request = stack.artifacts(run_id)["s3-housekeeping-approval"]["data"]
            assert "Delete **4** objects" in request
            assert "tmp/build-0001.tar.gz" in request and ".jsonl.gz" in request
            assert stack.keys(bucket) == DEMO_OLD | DEMO_KEPT | {LOCK_KEY}

            stack.resume(run_id, {"approve": False, "reason": "not during the release"})
            run = stack.wait_for_state(run_id, {"FAILED"})
        finally:
            stack.cancel(run_id)

        assert "refused by approval: rejected (not during the release)" in run["state"]["message"]
        assert "nothing was deleted" in run["state"]["message"]
        assert stack.keys(bucket) == DEMO_OLD | DEMO_KEPT
        report = stack.artifacts(run_id)["s3-housekeeping-report"]["data"]
        assert "refused" in report
        (event,) = stack.events(run_id)
        assert event["event"] == "s3-housekeeping.run.refused"
        assert event["payload"]["counts"]["deleted"] == 0

    def test_planned_objects_are_deleted_when_the_plan_is_approved(self, stack: Stack) -> None:
        bucket = stack.seeded_bucket("approved")
        run_id = start_paused_run(stack, bucket)
        try:
            assert stack.keys(bucket) == DEMO_OLD | DEMO_KEPT | {LOCK_KEY}

            stack.resume(run_id, {"approve": True, "reason": "checked the plan"})
            stack.wait_for_state(run_id, {"COMPLETED"})
        finally:
            stack.cancel(run_id)

        assert stack.keys(bucket) == DEMO_KEPT


class TestPausedRunHoldsTheBucket:
    def test_a_second_run_is_refused_while_the_first_waits_for_approval(self, stack: Stack) -> None:
        # A paused run gives its deployment slot back (FACTS.md); the bucket's lock is kept.
        bucket = stack.seeded_bucket("held")
        paused = start_paused_run(stack, bucket)
        try:
            limit = stack.get(f"v2/concurrency_limits/{concurrency_limit_name(bucket)}")
            assert (limit["limit"], limit["active_slots"]) == (1, 1)
            second = stack.run_deployment(
                "s3-housekeeping-dev",
                bucket=bucket,
                prefix="tmp/",
                older_than_days=30,
                dry_run=False,
            )
            refused = stack.wait_for_state(second, {"FAILED"})
            assert stack.keys(bucket) == DEMO_OLD | DEMO_KEPT | {LOCK_KEY}

            stack.resume(paused, {"approve": True, "reason": "one at a time"})
            stack.wait_for_state(paused, {"COMPLETED"})
        finally:
            stack.cancel(paused)

        message = refused["state"]["message"]
        assert f"bucket '{bucket}' is locked by run {paused} (prefix 'tmp/') since " in message
        assert "nothing was deleted" in message
        assert stack.keys(bucket) == DEMO_KEPT  # the first run deleted, then gave the lock back
        limit = stack.get(f"v2/concurrency_limits/{concurrency_limit_name(bucket)}")
        assert limit["active_slots"] == 0
