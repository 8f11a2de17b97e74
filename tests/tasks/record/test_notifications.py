"""SNS notices through moto SNS with an SQS queue subscribed: what arrives, what never does."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from deployments.local_aws import LOCAL_ACCOUNT_ID, backdate
from flows.s3_housekeeping import s3_housekeeping
from tasks.aws import AwsClients, AwsSettings
from tasks.aws_names import sns_topic_problems
from tasks.errors import SafetyRefusal
from tasks.record.notifications import notify
from tasks.record.outcome import RunOutcome, from_report
from tasks.record.report import RunReport

CANARY = "CANARY-notification-secret-value"
BUCKET = "notify-test-bucket"
OLD = {"temp/a.log", "temp/b.log"}


@pytest.fixture
def queue(moto: None) -> dict[str, Any]:
    """An SNS topic in us-east-1 with an SQS queue subscribed (raw delivery off: the SNS
    envelope arrives, as an email or a chat integration would see it)."""
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic_arn = sns.create_topic(Name="s3-housekeeping-notices")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="notices")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return {"topic_arn": topic_arn, "sqs": sqs, "queue_url": queue_url}


def received(queue: dict[str, Any]) -> list[dict[str, Any]]:
    """The SNS envelopes in the queue."""
    answer = queue["sqs"].receive_message(QueueUrl=queue["queue_url"], MaxNumberOfMessages=10)
    return [json.loads(message["Body"]) for message in answer.get("Messages", [])]


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
        self, queue: dict[str, Any]
    ) -> None:
        outcome = from_report(report(), "run-id", "http://ui/runs/flow-run/run-id")

        sent = notify(outcome, queue["topic_arn"], AwsSettings(region="eu-west-1"))

        assert sent is True
        (envelope,) = received(queue)
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

    def test_nothing_is_sent_when_a_dry_run_deleted_nothing(self, queue: dict[str, Any]) -> None:
        outcome = from_report(report(status="dry_run", dry_run=True, deleted=0), None, None)

        assert notify(outcome, queue["topic_arn"], AwsSettings(region="us-east-1")) is False
        assert received(queue) == []

    def test_outcome_stands_and_a_warning_is_logged_when_the_topic_does_not_exist(
        self, queue: dict[str, Any], caplog: pytest.LogCaptureFixture
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


@pytest.mark.usefixtures("prefect_harness")
class TestFlowNotifies:
    @pytest.fixture
    def seeded(self, aws: AwsClients, as_of: datetime) -> None:
        aws.s3.create_bucket(Bucket=BUCKET)
        for key in (*OLD, "temp/new.log"):
            aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"0123456789")
            backdate(BUCKET, key, as_of - timedelta(days=2 if key == "temp/new.log" else 90))
        aws.secretsmanager.create_secret(
            Name="notify/run", SecretString=json.dumps({"api_token": CANARY})
        )

    def test_summary_arrives_and_holds_no_secret_when_a_run_deletes(
        self, seeded: None, queue: dict[str, Any], as_of: datetime
    ) -> None:
        result = s3_housekeeping(
            bucket=BUCKET,
            prefix="temp/",
            older_than_days=30,
            as_of=as_of,
            dry_run=False,
            secret_name="notify/run",
            notify_topic_arn=queue["topic_arn"],
        )

        assert result.deleted == 2
        (envelope,) = received(queue)
        body = json.dumps(envelope)
        assert CANARY not in body
        assert not any(key in body for key in OLD), "the notice must not list keys"
        summary = json.loads(envelope["Message"])
        assert (summary["status"], summary["counts"]["deleted"]) == ("completed", 2)
        assert summary["flow_run_id"]

    def test_refusal_is_notified_through_sns_topic_arn_when_the_parameter_is_unset(
        self,
        seeded: None,
        queue: dict[str, Any],
        as_of: datetime,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setenv("SNS_TOPIC_ARN", queue["topic_arn"])

        with pytest.raises(SafetyRefusal):
            s3_housekeeping(
                bucket=BUCKET,
                prefix="temp/",
                older_than_days=30,
                as_of=as_of,
                dry_run=False,
                max_deletions=1,
            )

        (envelope,) = received(queue)
        summary = json.loads(envelope["Message"])
        assert (summary["status"], summary["counts"]["matched"]) == ("refused", 2)
        assert "max_deletions" in summary["message"]


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:sns:us-east-1:123456789012:housekeeping",
        "arn:aws:sns:eu-west-1:123456789012:housekeeping.fifo",
        "arn:aws-cn:sns:cn-north-1:123456789012:housekeeping",
    ],
)
def test_topic_is_accepted_when_it_is_an_sns_topic_arn(arn: str) -> None:
    assert sns_topic_problems(arn) == []


@pytest.mark.parametrize(
    "arn",
    [
        "housekeeping",
        "arn:aws:sqs:us-east-1:123456789012:housekeeping",
        "arn:aws:sns:us-east-1:1234:housekeeping",
        "arn:aws:sns:cn-north-1:123456789012:housekeeping",
        "arn:aws:sns:us-east-1:123456789012:bad name",
    ],
)
def test_topic_is_refused_when_it_is_not_an_sns_topic_arn(arn: str) -> None:
    assert sns_topic_problems(arn)
