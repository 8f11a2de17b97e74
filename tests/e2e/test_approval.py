"""Approval through a real deployment: a run pauses with its plan, and only a yes deletes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tasks.guards.locking import concurrency_limit_name
from tasks.s3.bucket_lock import LOCK_KEY
from tests.support.approval import APPROVER, answer
from tests.support.stack import DEMO_KEPT, DEMO_OLD, Stack

pytestmark = pytest.mark.e2e


def resume_until_checked(stack: Stack, run_id: str, run_input: dict[str, Any]) -> Any:
    """The server's answer to a resume, once it checks the answer against the form (a run is
    PAUSED a moment before its form is saved, and an answer in between is refused for that)."""
    deadline = time.monotonic() + 30
    while True:
        outcome = stack.resume(run_id, run_input)
        reason = (outcome.get("details") or {}).get("reason") or ""
        if "schema not found" not in reason or time.monotonic() > deadline:
            return outcome
        time.sleep(0.5)


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

            stack.resume(run_id, answer(False, "not during the release"))
            run = stack.wait_for_state(run_id, {"FAILED"})
        finally:
            stack.cancel(run_id)

        message = run["state"]["message"]
        assert "refused by approval: rejected by Ana Ops (not during the release)" in message
        assert "nothing was deleted" in message
        assert stack.keys(bucket) == DEMO_OLD | DEMO_KEPT
        report = stack.artifacts(run_id)["s3-housekeeping-report"]["data"]
        assert "refused" in report
        assert "**Approval**: rejected by `Ana Ops` (name as typed, not verified)" in report
        assert "reason: `not during the release`." in report
        (event,) = stack.events(run_id)
        assert event["event"] == "s3-housekeeping.run.refused"
        assert event["payload"]["counts"]["deleted"] == 0
        approval = event["payload"]["approval"]
        assert (approval["decision"], approval["by"], approval["reason"]) == (
            "rejected",
            APPROVER,
            "not during the release",
        )

    def test_an_answer_without_a_name_is_refused_and_the_run_waits_on(self, stack: Stack) -> None:
        bucket = stack.seeded_bucket("nameless")
        run_id = start_paused_run(stack, bucket)
        try:
            refused = resume_until_checked(stack, run_id, {"approve": True, "reason": "trust me"})
            assert refused["status"] == "REJECT"
            assert "'approver' is a required property" in refused["details"]["reason"]
            blank = resume_until_checked(stack, run_id, answer(True, "trust me", approver=" "))
            assert blank["status"] == "REJECT"
            assert stack.flow_run(run_id)["state"]["type"] == "PAUSED"
            assert stack.keys(bucket) == DEMO_OLD | DEMO_KEPT | {LOCK_KEY}

            stack.resume(run_id, answer(False, "no name, no delete"))
            stack.wait_for_state(run_id, {"FAILED"})
        finally:
            stack.cancel(run_id)

        assert stack.keys(bucket) == DEMO_OLD | DEMO_KEPT

    def test_planned_objects_are_deleted_when_the_plan_is_approved(self, stack: Stack) -> None:
        bucket = stack.seeded_bucket("approved")
        run_id = start_paused_run(stack, bucket)
        try:
            assert stack.keys(bucket) == DEMO_OLD | DEMO_KEPT | {LOCK_KEY}

            stack.resume(run_id, answer(True, "checked the plan"))
            stack.wait_for_state(run_id, {"COMPLETED"})
        finally:
            stack.cancel(run_id)

        assert stack.keys(bucket) == DEMO_KEPT
        (event,) = stack.events(run_id)
        assert event["event"] == "s3-housekeeping.run.completed"
        assert event["payload"]["approval"]["by"] == APPROVER
        assert event["payload"]["approval"]["reason"] == "checked the plan"
        report = stack.artifacts(run_id)["s3-housekeeping-report"]["data"]
        assert "**Approval**: approved by `Ana Ops`" in report


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

            stack.resume(paused, answer(True, "one at a time"))
            stack.wait_for_state(paused, {"COMPLETED"})
        finally:
            stack.cancel(paused)

        message = refused["state"]["message"]
        assert f"bucket '{bucket}' is locked by run {paused} (prefix 'tmp/') since " in message
        assert "nothing was deleted" in message
        assert stack.keys(bucket) == DEMO_KEPT  # the first run deleted, then gave the lock back
        limit = stack.get(f"v2/concurrency_limits/{concurrency_limit_name(bucket)}")
        assert limit["active_slots"] == 0


class TestCancelled:
    def test_a_cancelled_run_announces_it_gives_the_lock_back_and_deletes_nothing(
        self, stack: Stack
    ) -> None:
        # A process worker runs no cancellation hook of the flow's: the run says it itself.
        bucket = stack.seeded_bucket("cancelled")
        run_id = start_paused_run(stack, bucket)
        try:
            stack.post(
                f"flow_runs/{run_id}/set_state",
                {"state": {"type": "CANCELLING", "message": "not today"}, "force": True},
            )
            stack.wait_for_state(run_id, {"CANCELLED"})
            events = stack.events(run_id, "s3-housekeeping.run.cancelled")
        finally:
            stack.cancel(run_id)

        assert [event["event"] for event in events] == ["s3-housekeeping.run.cancelled"]
        assert events[0]["payload"]["status"] == "cancelled"
        assert events[0]["payload"]["counts"]["deleted"] == 0
        assert events[0]["payload"]["message"] == "stopped (TerminationSignal) after 0 deletions"
        # Stopped by a signal, the run still unwound: its lock is given back.
        assert stack.keys(bucket) == DEMO_OLD | DEMO_KEPT


def kill_run_process(run_id: str) -> int:
    """SIGKILL the process running a flow run (found by the run id in its environment)."""
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"PREFECT__FLOW_RUN_ID={run_id}".encode() in environ.read_bytes():
                pid = int(environ.parent.name)
                os.kill(pid, signal.SIGKILL)
                return pid
        except (OSError, ValueError):
            continue
    raise AssertionError(f"no process runs flow run {run_id}")


class TestKilled:
    def test_a_killed_runs_lock_keeps_the_next_run_out_until_it_expires(self, stack: Stack) -> None:
        # SIGKILL: the run cannot unwind, and a process worker runs no crash hook of the flow's
        # (the next run that takes over the expired lease announces it: tests/flows/test_hooks).
        bucket = stack.seeded_bucket("killed")
        killed = start_paused_run(stack, bucket)
        try:
            kill_run_process(killed)
            stack.wait_for_state(killed, {"CRASHED"}, timeout_s=120)
            second = stack.run_deployment(
                "s3-housekeeping-dev",
                bucket=bucket,
                prefix="tmp/",
                older_than_days=30,
                dry_run=False,
            )
            refused = stack.wait_for_state(second, {"FAILED"})
        finally:
            stack.cancel(killed)

        assert f"is locked by run {killed} (prefix 'tmp/')" in refused["state"]["message"]
        assert stack.keys(bucket) == DEMO_OLD | DEMO_KEPT | {LOCK_KEY}
