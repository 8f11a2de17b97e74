"""SNS notices through moto SNS with an SQS queue subscribed: what arrives, what never does."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from deployments.local_aws import LOCAL_ACCOUNT_ID
from tasks.aws import AwsSettings
from tasks.record.decision import Approval
from tasks.record.notifications import notify
from tasks.record.outcome import RunOutcome, from_report
from tasks.record.report import RunReport
from tests.support.sns import received

CANARY = "CANARY-notification-secret-value"
BUCKET = "notify-test-bucket"
OLD = {"temp/a.log", "temp/b.log"}


def report(**overrides: Any) -> RunReport:
    fields: dict[str, Any] = {
        "status": "completed",
        "bucket": BUCKET,
        "prefix": "temp/",
        "region": "us-east-1",
        "environment": "prod",
        "cutoff": "2026-01-01T00:00:00Z",
        "dry_run": False,
        "scanned": 5,
        "matched": 2,
        "matched_bytes": 20,
        "deleted": 2,
        "manifest": "manifests/notify-test-bucket/plan.jsonl.gz",
        "message": "deleted 2 of 2 planned objects",
    }
    return RunReport(**(fields | overrides))


class TestNotify:
    def test_summary_arrives_with_counts_when_a_run_deleted_objects(
        self, sns_queue: dict[str, Any]
    ) -> None:
        outcome = from_report(report(), "run-id", "http://ui/runs/flow-run/run-id")

        sent = notify(outcome, sns_queue["topic_arn"], AwsSettings(region="eu-west-1"))

        assert sent is True
        (envelope,) = received(sns_queue)
        summary = json.loads(envelope["Message"])
        assert summary["source"] == "s3-housekeeping"
        assert (summary["status"], summary["bucket"], summary["environment"]) == (
            "completed",
            BUCKET,
            "prod",
        )
        assert summary["counts"]["deleted"] == 2
        assert summary["flow_run_url"] == "http://ui/runs/flow-run/run-id"
        assert envelope["Subject"] == f"s3-housekeeping completed (prod): s3://{BUCKET}/temp/"
        assert envelope["MessageAttributes"]["status"]["Value"] == "completed"

    def test_says_who_approved_and_why_in_plain_json_when_a_person_approved(
        self, sns_queue: dict[str, Any]
    ) -> None:
        approved = report()
        typed = 'checked "the plan"\n}, {"status": "dry_run"'  # cannot leave its JSON string
        approved.record_approval(Approval.answered(True, "Ana Ops", typed))
        outcome = from_report(approved, "run-id", None)

        notify(outcome, sns_queue["topic_arn"], AwsSettings(region="us-east-1"))

        (envelope,) = received(sns_queue)
        summary = json.loads(envelope["Message"])
        assert summary["status"] == "completed"
        assert summary["approval"]["by"] == "Ana Ops"
        assert summary["approval"]["reason"] == 'checked "the plan" }, {"status": "dry_run"'
        assert "Ana Ops" not in envelope["Subject"]

    def test_nothing_is_sent_when_a_dry_run_deleted_nothing(
        self, sns_queue: dict[str, Any]
    ) -> None:
        outcome = from_report(report(status="dry_run", dry_run=True, deleted=0), None, None)

        assert notify(outcome, sns_queue["topic_arn"], AwsSettings(region="us-east-1")) is False
        assert received(sns_queue) == []

    def test_outcome_stands_and_a_warning_is_logged_when_the_topic_does_not_exist(
        self, sns_queue: dict[str, Any], caplog: pytest.LogCaptureFixture
    ) -> None:
        missing = f"arn:aws:sns:us-east-1:{LOCAL_ACCOUNT_ID}:no-such-topic"
        outcome = from_report(report(status="refused", deleted=0), None, None)

        with caplog.at_level(logging.WARNING, logger="tasks.record.notifications"):
            sent = notify(outcome, missing, AwsSettings(region="us-east-1"))

        assert sent is False
        assert "Could not notify" in caplog.text and "NotFound" in caplog.text

    def test_outcome_stands_when_the_endpoint_is_unreachable(self) -> None:
        settings = AwsSettings(region="us-east-1", max_attempts=1)
        outcome = RunOutcome(
            status="failed", bucket=BUCKET, prefix="temp/", environment="dev", dry_run=False
        )
        unreachable = "arn:aws:sns:us-east-1:123456789012:notices"

        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            assert notify(outcome, unreachable, settings) is False
