"""The flow's hooks: however a run ends, its Prefect event goes out and its SNS notice arrives."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import pytest

from deployments.local_aws import backdate
from flows.hooks import notification_target
from flows.s3_housekeeping import s3_housekeeping
from tasks.aws import AwsClients
from tasks.errors import ConfigError, SafetyRefusal
from tasks.s3.bucket_lock import LOCK_KEY, Lease
from tests.support.sns import received

CANARY = "CANARY-notification-secret-value"
BUCKET = "notify-test-bucket"
OLD = {"temp/a.log", "temp/b.log"}
TOPIC = "arn:aws:sns:eu-west-1:123456789012:housekeeping"


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
        self, seeded: None, sns_queue: dict[str, Any], as_of: datetime
    ) -> None:
        result = s3_housekeeping(
            bucket=BUCKET,
            prefix="temp/",
            older_than_days=30,
            as_of=as_of,
            dry_run=False,
            secret_name="notify/run",
            notify_topic_arn=sns_queue["topic_arn"],
        )

        assert result.deleted == 2
        (envelope,) = received(sns_queue)
        body = json.dumps(envelope)
        assert CANARY not in body
        assert not any(key in body for key in OLD), "the notice must not list keys"
        summary = json.loads(envelope["Message"])
        assert (summary["status"], summary["counts"]["deleted"]) == ("completed", 2)
        assert summary["flow_run_id"]

    def test_the_next_run_announces_a_killed_run_whose_lock_it_takes_over(
        self, aws: AwsClients, seeded: None, sns_queue: dict[str, Any], as_of: datetime
    ) -> None:
        # A run killed outright (SIGKILL) left its lease; nobody renews it any more.
        killed = Lease("run-killed", "temp/", "2026-11-29T08:00:00Z", expiry_s=1)
        aws.s3.put_object(Bucket=BUCKET, Key=LOCK_KEY, Body=json.dumps(asdict(killed)).encode())
        time.sleep(2.2)  # the lease's LastModified and the server's Date have whole seconds

        result = s3_housekeeping(
            bucket=BUCKET,
            prefix="temp/",
            older_than_days=30,
            as_of=as_of,
            dry_run=False,
            notify_topic_arn=sns_queue["topic_arn"],
        )

        assert result.deleted == 2
        notices = [json.loads(envelope["Message"]) for envelope in received(sns_queue)]
        crashed, completed = sorted(notices, key=lambda notice: notice["status"] != "crashed")
        assert (crashed["status"], crashed["flow_run_id"]) == ("crashed", "run-killed")
        assert (
            "run run-killed held the bucket's lock since 2026-11-29T08:00:00Z"
            in (crashed["message"])
        )
        assert completed["status"] == "completed" and completed["flow_run_id"] != "run-killed"

    def test_refusal_is_notified_through_sns_topic_arn_when_the_parameter_is_unset(
        self,
        seeded: None,
        sns_queue: dict[str, Any],
        as_of: datetime,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setenv("SNS_TOPIC_ARN", sns_queue["topic_arn"])

        with pytest.raises(SafetyRefusal):
            s3_housekeeping(
                bucket=BUCKET,
                prefix="temp/",
                older_than_days=30,
                as_of=as_of,
                dry_run=False,
                max_deletions=1,
            )

        (envelope,) = received(sns_queue)
        summary = json.loads(envelope["Message"])
        assert (summary["status"], summary["counts"]["matched"]) == ("refused", 2)
        assert "max_deletions" in summary["message"]

    def test_failure_is_notified_when_the_settings_are_invalid_but_the_topic_is_not(
        self, sns_queue: dict[str, Any], as_of: datetime, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SNS_TOPIC_ARN", sns_queue["topic_arn"])

        with pytest.raises(ConfigError):
            s3_housekeeping(bucket="Not_A_Bucket", prefix="temp/", as_of=as_of)

        (envelope,) = received(sns_queue)
        summary = json.loads(envelope["Message"])
        assert (summary["status"], summary["error"]) == ("failed", "ConfigError")
        assert summary["bucket"] == "Not_A_Bucket"
        assert "bucket:" in summary["message"]


class TestNotificationTarget:
    def test_topic_and_the_runs_credentials_when_the_settings_are_valid(self) -> None:
        topic, aws = notification_target(
            {
                "bucket": "b-bucket",
                "prefix": "tmp/",
                "notify_topic_arn": TOPIC,
                "aws_credentials_block": "aws-prod",
            }
        )

        assert topic == TOPIC
        assert aws is not None
        # SNS is called in the topic's region, with the run's credentials.
        assert (aws.region, aws.credentials_block) == ("eu-west-1", "aws-prod")

    def test_topic_from_the_environment_and_the_default_chain_when_settings_are_invalid(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SNS_TOPIC_ARN", f" {TOPIC} ")

        topic, aws = notification_target({"bucket": "Not_A_Bucket", "aws_credentials_block": "x"})

        assert topic == TOPIC
        assert aws is not None
        assert (aws.region, aws.credentials_block, aws.role_arn) == ("eu-west-1", None, None)

    @pytest.mark.parametrize(
        "parameters",
        [
            pytest.param({"bucket": "b-bucket", "prefix": "tmp/"}, id="no-topic"),
            pytest.param({"bucket": "Not_A_Bucket", "notify_topic_arn": "nope"}, id="bad-topic"),
        ],
    )
    def test_no_notice_when_there_is_no_valid_topic(self, parameters: dict[str, Any]) -> None:
        assert notification_target(parameters) == (None, None)
