"""Approval in a local flow run: what the request shows, and how yes, no and silence end."""

from __future__ import annotations

from dataclasses import replace

import pytest
from prefect import flow

from tasks.cleanup import PlanSummary
from tasks.errors import SafetyRefusal
from tasks.guards.approval import approval_request, request_approval
from tasks.s3.manifest import PlannedObject, PlanTarget
from tests.support.approval import resume_when_paused

TARGET = PlanTarget(
    bucket="approval-bucket",
    region="eu-west-1",
    prefix="tmp/",
    cutoff="2026-01-01T00:00:00Z",
    created_at="2026-01-31T00:00:00Z",
)


def plan(matched: int = 25) -> PlanSummary:
    rows = [
        PlannedObject(f"tmp/{n:03d}.log", f'"etag{n}"', 100, "2025-06-01T00:00:00Z", "STANDARD")
        for n in range(min(matched, 20))
    ]
    return PlanSummary(
        manifest="manifests/approval-bucket/plan.jsonl.gz",
        target=TARGET,
        scanned=40,
        matched=matched,
        matched_bytes=100 * matched,
        first_rows=rows,
        sha256="ab" * 32,
    )


@flow(name="approval-test")
def approve_flow(timeout_s: int) -> str:
    return request_approval(plan(), timeout_s)


def test_request_shows_counts_bytes_first_keys_and_manifest_when_published() -> None:
    text = approval_request(plan(25), 3600)

    assert "Delete **25** objects (**2.4 KiB**)" in text
    assert "`s3://approval-bucket/tmp/`" in text and "2026-01-01T00:00:00Z" in text
    assert "`tmp/000.log`" in text and "`tmp/009.log`" in text and "tmp/010.log" not in text
    assert "... and 15 more" in text
    assert "`manifests/approval-bucket/plan.jsonl.gz`, SHA-256 `" + "ab" * 32 + "`" in text
    assert "within 60 minutes nothing is deleted" in text
    assert "restored" not in text and "holding data" not in text  # current objects: none


@pytest.mark.parametrize(
    ("versions", "lost", "says"),
    [
        ("noncurrent", 0, "Every key keeps at least one version holding data."),
        ("all", 7, "**7** keys will have no version holding data left: they cannot be restored"),
    ],
)
def test_request_says_how_many_keys_a_versions_plan_leaves_unrecoverable(
    versions: str, lost: int, says: str
) -> None:
    versioned = replace(plan(25), target=replace(TARGET, versions=versions))

    text = approval_request(replace(versioned, unrecoverable_keys=lost), 3600)

    assert says in text


def test_request_escapes_keys_when_a_key_could_rewrite_the_text() -> None:
    hostile = replace(plan(1).first_rows[0], key="tmp/a`b\n**Approved by security** \u202e.gol")
    text = approval_request(replace(plan(1), first_rows=[hostile]), 3600)

    line = next(line for line in text.splitlines() if line.startswith("- `tmp/a"))
    assert line.startswith("- `tmp/a\\u0060b\\n**Approved by security** \\u202e.gol` (")
    assert "\n**Approved" not in text and "\u202e" not in text


@pytest.mark.usefixtures("prefect_harness")
class TestDecision:
    def test_reason_is_returned_when_approved(self) -> None:
        answering = resume_when_paused({"approve": True, "reason": "  looks  right "})

        assert approve_flow(60) == "looks right"
        answering.join(5)

    def test_refused_with_the_reason_when_rejected(self) -> None:
        answering = resume_when_paused({"approve": False, "reason": "not today"})

        with pytest.raises(SafetyRefusal, match=r"rejected \(not today\); nothing was deleted"):
            approve_flow(60)
        answering.join(5)

    def test_run_fails_with_its_own_message_when_no_one_answers_in_time(self) -> None:
        state = approve_flow(2, return_state=True)  # type: ignore[call-arg]

        assert state.is_failed()
        assert "refused by approval: no approval within 2 seconds" in (state.message or "")


def test_fleet_request_tables_every_target_and_escapes_prefixes_when_published() -> None:
    from tasks.fleet.report import FleetReport, TargetOutcome
    from tasks.guards.approval import fleet_approval_request

    plans = [
        TargetOutcome(
            "a",
            "bucket-a",
            "tmp/",
            3,
            "dry_run",
            0,
            counts={"matched": 25, "matched_bytes": 2500},
            manifest="manifests/a.jsonl.gz",
        ),
        TargetOutcome("b", "bucket-b", "odd`\n**yes**/", 5, "failed", 4),
    ]

    text = fleet_approval_request(FleetReport("targets.yaml", dry_run=False), plans, 3600)

    assert "| `s3://bucket-a/tmp/` | 25 | 2.4 KiB | `manifests/a.jsonl.gz` |" in text
    assert "| `s3://bucket-b/odd\\u0060\\n**yes**/` | not planned: failed | | |" in text
    assert "\n**yes**" not in text
    assert "no answer within 60 minutes, deletes nothing" in text
