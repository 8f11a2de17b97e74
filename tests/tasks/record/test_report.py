"""The run report: begun from the settings, kept up to date by each step, closed and rendered."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tasks.buckets import BucketResult
from tasks.errors import SafetyRefusal
from tasks.record.decision import Approval
from tasks.record.lifecycle import lifecycle_rule
from tasks.record.report import VERSIONED_CURRENT_NOTE, RunReport
from tasks.s3.deletion import ApplyResult
from tasks.s3.manifest import PlannedObject, PlanSummary, PlanTarget
from tasks.settings import load_settings

AS_OF = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
#: DESIGN.md, "Run report": the fields every report carries.
CONTRACT_FIELDS = {
    "status",
    "bucket",
    "prefix",
    "cutoff",
    "dry_run",
    "bucket_action",
    "scanned",
    "matched",
    "matched_bytes",
    "deleted",
    "skipped_changed",
    "failed",
    "failed_by_code",
    "requests",
    "manifest",
    "duration_s",
}
#: The fields RunReport declares beyond the contract.
EXTRA_FIELDS = {
    "already_gone",
    "throttled_s",
    "unrecoverable_keys",
    "kept",
    "kept_list",
    "manifest_sha256",
    "approval",
    "journal",
    "region",
    "environment",
    "versions",
    "versioning",
    "bucket_changes",
    "plan_source",
    "inventory_created",
    "workers",
    "lifecycle_rule",
    "notes",
    "message",
}


def begin(**parameters: Any) -> RunReport:
    given: dict[str, Any] = {
        "bucket": "report-bucket",
        "prefix": "temp/",
        "older_than_days": 30,
        "as_of": AS_OF,
    }
    return RunReport.begin(load_settings(given | parameters))


def plan_summary(cutoff: str = "2025-01-01T00:00:00Z") -> PlanSummary:
    target = PlanTarget("report-bucket", "us-east-1", "temp/", cutoff, "2025-01-02T00:00:00Z")
    row = PlannedObject("temp/a", '"e"', 10, "2024-01-01T00:00:00Z", "STANDARD")
    return PlanSummary(
        manifest="s3://plans/report-bucket/run.jsonl",
        target=target,
        scanned=12,
        matched=5,
        matched_bytes=500,
        first_rows=[row],
    )


class TestBegin:
    def test_is_a_dry_run_with_the_settings_target_when_dry_run_is_the_default(self) -> None:
        report = begin()

        assert (report.status, report.dry_run) == ("dry_run", True)
        assert (report.bucket, report.prefix, report.region, report.environment) == (
            "report-bucket",
            "temp/",
            "us-east-1",
            "dev",
        )
        assert report.cutoff == "2026-05-02T12:00:00Z"
        assert (report.versions, report.plan_source) == ("current", None)
        assert (report.scanned, report.matched, report.deleted) == (0, 0, 0)

    def test_starts_completed_when_the_run_deletes(self) -> None:
        report = begin(dry_run=False, environment="prod")

        assert (report.status, report.dry_run, report.environment) == ("completed", False, "prod")

    def test_carries_the_equivalent_lifecycle_rule_and_plan_source_when_set(self) -> None:
        report = begin(older_than_days=7, versions="noncurrent", plan="/plans/saved.jsonl")

        assert report.lifecycle_rule == lifecycle_rule("temp/", 7, "noncurrent")
        assert report.lifecycle_rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7}
        assert (report.versions, report.plan_source) == ("noncurrent", "/plans/saved.jsonl")

    def test_writes_the_cutoff_in_utc_when_as_of_has_another_zone(self) -> None:
        report = begin(as_of=datetime(2026, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))))

        assert report.cutoff == "2026-05-02T12:00:00Z"


class TestRecordBucket:
    @pytest.mark.parametrize(
        ("versioning", "versions", "noted"),
        [
            ("Enabled", "current", True),
            ("Suspended", "current", True),
            ("Enabled", "noncurrent", False),
            ("Suspended", "all", False),
            ("unknown", "current", False),
            ("", "current", False),
        ],
    )
    def test_adds_the_versioned_note_only_when_current_objects_of_a_versioned_bucket_are_asked(
        self, versioning: str, versions: str, noted: bool
    ) -> None:
        report = begin(versions=versions)

        report.record_bucket(BucketResult("report-bucket", "unchanged", [], versioning))

        assert (VERSIONED_CURRENT_NOTE in report.notes) is noted
        assert report.versioning == versioning

    def test_copies_the_action_and_changes_when_the_bucket_step_changed_something(self) -> None:
        report = begin(dry_run=False)

        report.record_bucket(
            BucketResult("report-bucket", "changed", ["tags", "encryption"], "Disabled")
        )

        assert (report.bucket_action, report.bucket_changes) == ("changed", ["tags", "encryption"])
        assert report.notes == []


class TestRecordSteps:
    def test_takes_totals_manifest_and_the_plans_own_cutoff_when_a_plan_is_recorded(self) -> None:
        report = begin()

        report.record_plan(plan_summary(cutoff="2025-01-01T00:00:00Z"))

        assert (report.scanned, report.matched, report.matched_bytes) == (12, 5, 500)
        assert report.manifest == "s3://plans/report-bucket/run.jsonl"
        assert report.cutoff == "2025-01-01T00:00:00Z"

    def test_says_nothing_was_deleted_when_a_dry_run_is_recorded(self) -> None:
        report = begin()
        report.record_plan(plan_summary())

        report.record_dry_run()

        assert report.message == "dry run: 5 objects would be deleted; nothing was deleted"

    def test_becomes_refused_with_the_refusals_text_when_a_guard_refuses(self) -> None:
        report = begin(dry_run=False)
        refusal = SafetyRefusal("max_deletions", 5, 2)

        report.record_refusal(refusal)

        assert report.status == "refused"
        assert report.message == str(refusal)
        assert "max_deletions" in report.message

    def test_stays_completed_when_every_planned_object_was_deleted(self) -> None:
        report = begin(dry_run=False)

        report.record_apply(ApplyResult(planned=5, deleted=4, skipped_changed=1))

        assert report.status == "completed"
        assert (report.deleted, report.skipped_changed, report.failed) == (4, 1, 0)
        assert report.message == "deleted 4 of 5 planned objects"

    def test_says_how_many_of_the_deleted_were_already_gone_when_the_server_said_so(
        self,
    ) -> None:
        report = begin(dry_run=False)

        report.record_apply(ApplyResult(planned=5, deleted=5, already_gone=2))

        assert (report.status, report.deleted, report.already_gone) == ("completed", 5, 2)
        assert report.to_dict()["already_gone"] == 2
        assert "| of which already gone | 2 |" in report.to_markdown()

    def test_becomes_partial_failure_with_counts_by_code_when_some_deletions_failed(
        self,
    ) -> None:
        report = begin(dry_run=False)
        failures = Counter({"AccessDenied": 2, "SlowDown": 1})

        report.record_apply(ApplyResult(planned=10, deleted=7, failed_by_code=failures))

        assert report.status == "partial_failure"
        assert report.failed == 3
        assert report.failed_by_code == {"AccessDenied": 2, "SlowDown": 1}
        assert type(report.failed_by_code) is dict
        assert report.message == "3 of 10 planned deletions failed"


class TestClose:
    def test_stamps_the_requests_and_the_duration_when_closed(self) -> None:
        report = begin()
        report.started = time.monotonic() - 1.5

        closed = report.close({"ListObjectsV2": 3, "DeleteObjects": 1})

        assert closed is report
        assert report.requests == {"ListObjectsV2": 3, "DeleteObjects": 1}
        assert 1.5 <= report.duration_s < 10
        assert report.duration_s == round(report.duration_s, 3)


class TestToDict:
    def test_holds_the_contract_and_declared_fields_but_not_bookkeeping_when_exported(
        self,
    ) -> None:
        exported = begin().to_dict()

        assert set(exported) >= CONTRACT_FIELDS
        assert set(exported) == CONTRACT_FIELDS | EXTRA_FIELDS
        assert "started" not in exported

    def test_is_json_ready_and_matches_the_report_when_filled(self) -> None:
        report = begin(dry_run=False, versions="all")
        report.record_bucket(BucketResult("report-bucket", "created", ["bucket"], "Enabled"))
        report.record_plan(plan_summary())
        report.record_apply(ApplyResult(planned=5, deleted=4, failed_by_code=Counter(x=1)))
        report.close({"DeleteObjects": 1})

        exported = json.loads(json.dumps(report.to_dict()))

        assert exported["status"] == "partial_failure"
        assert (exported["deleted"], exported["failed"], exported["failed_by_code"]) == (
            4,
            1,
            {"x": 1},
        )
        assert exported["requests"] == {"DeleteObjects": 1}
        assert exported["lifecycle_rule"] == report.lifecycle_rule
        assert exported["approval"] is None  # no one was asked

    def test_carries_who_approved_what_and_why_when_a_person_answered(self) -> None:
        report = begin(dry_run=False)
        report.record_approval(Approval.answered(True, "Ana Ops", "checked the plan"))

        exported = json.loads(json.dumps(report.to_dict()))

        assert exported["approval"] == {
            "decision": "approved",
            "by": "Ana Ops",
            "reason": "checked the plan",
            "at": report.approval.at if report.approval else None,
        }


class TestToMarkdown:
    def test_says_would_delete_with_the_matched_count_when_a_dry_run(self) -> None:
        report = begin()
        report.record_plan(plan_summary())
        report.record_dry_run()

        text = report.to_markdown()

        assert text.startswith("# s3-housekeeping: dry_run\n")
        assert "would delete **5**" in text
        assert "| scanned | 12 |" in text
        assert "| matched | 5 |" in text
        assert "| matched bytes | 500 |" in text
        assert report.message in text
        assert json.dumps(report.lifecycle_rule, indent=2) in text

    def test_says_deleted_with_failures_and_requests_when_a_run_deleted(self) -> None:
        report = begin(dry_run=False)
        report.record_bucket(BucketResult("report-bucket", "unchanged", [], "Enabled"))
        report.record_plan(plan_summary())
        report.record_apply(ApplyResult(planned=5, deleted=3, failed_by_code=Counter(SlowDown=2)))
        report.close({"ListObjectsV2": 1, "DeleteObjects": 2})

        text = report.to_markdown()

        assert "deleted **3**" in text
        assert "| failed | 2 |" in text
        assert "| failed by code | SlowDown: 2 |" in text
        assert "| requests | ListObjectsV2: 1, DeleteObjects: 2 |" in text
        assert "| manifest | `s3://plans/report-bucket/run.jsonl` |" in text
        assert f"- {VERSIONED_CURRENT_NOTE}" in text

    def test_shows_the_approval_in_code_spans_when_a_person_answered(self) -> None:
        report = begin(dry_run=False)
        report.record_approval(Approval.answered(False, "Eve | `x`", "no\n| table |"))

        text = report.to_markdown()

        (line,) = [line for line in text.splitlines() if line.startswith("**Approval**")]
        assert line.startswith("**Approval**: rejected by `Eve | \\u0060x\\u0060` (name as typed")
        assert line.endswith("reason: `no | table |`.")
        assert "**Approval**" not in begin().to_markdown()

    def test_shows_dashes_when_nothing_failed_or_was_requested(self) -> None:
        text = begin().to_markdown()

        assert "| failed by code | - |" in text
        assert "| requests | - |" in text
        assert "| manifest | - |" in text
