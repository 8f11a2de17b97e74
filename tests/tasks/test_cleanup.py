"""plan_cleanup and apply_cleanup against moto: selection, manifest, batching, per-key outcomes."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from deployments.local_aws import backdate
from tasks.aws import AwsClients, AwsSettings, create_clients
from tasks.cleanup import PlanRequest, plan_cleanup, plan_cleanup_task
from tasks.errors import ConfigError, SafetyRefusal
from tasks.s3.manifest import PlanSummary, PlanTarget, isoformat, read_objects, read_target
from tests.support.audit import audit_requests
from tests.support.faults import inject_delete_errors, reject_batches_containing
from tests.support.moto_backend import bulk_put
from tests.support.plans import apply_plan

BUCKET = "cleanup-test-bucket"


def make_target(cutoff: datetime, prefix: str = "temp/") -> PlanTarget:
    return PlanTarget(
        bucket=BUCKET,
        region="us-east-1",
        prefix=prefix,
        cutoff=isoformat(cutoff),
        created_at=isoformat(cutoff),
    )


def put_aged(aws: AwsClients, key: str, last_modified: datetime, body: bytes = b"data") -> None:
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    backdate(BUCKET, key, last_modified)


def plan_old_objects(aws: AwsClients, count: int, cutoff: datetime, manifest: Path) -> PlanSummary:
    """Put `count` empty objects a day older than the cutoff under temp/ and plan them."""
    bulk_put(BUCKET, [f"temp/k{number:05d}" for number in range(count)], cutoff - timedelta(days=1))
    return plan_cleanup(aws.s3, make_target(cutoff), cutoff, manifest)


def remaining_keys(aws: AwsClients) -> set[str]:
    keys: set[str] = set()
    for page in aws.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        keys.update(obj["Key"] for obj in page.get("Contents", []))
    return keys


@pytest.fixture
def bucket(aws: AwsClients) -> str:
    aws.s3.create_bucket(Bucket=BUCKET)
    return BUCKET


@pytest.fixture
def cutoff(as_of: datetime) -> datetime:
    return as_of - timedelta(days=30)


@pytest.fixture
def seeded(aws: AwsClients, bucket: str, cutoff: datetime) -> dict[str, datetime]:
    """Old and new objects under temp/, and old ones beside it (temp-keep/, other/)."""
    ages = {
        "temp/old-1.log": cutoff - timedelta(days=300),
        "temp/nested/old-2.log": cutoff - timedelta(days=1),
        "temp/just-before-cutoff.log": cutoff - timedelta(seconds=1),
        "temp/at-cutoff.log": cutoff,
        "temp/new.log": cutoff + timedelta(days=29),
        "temp-keep/old.db": cutoff - timedelta(days=300),
        "other/temp/old.log": cutoff - timedelta(days=300),
    }
    for key, moment in ages.items():
        put_aged(aws, key, moment)
    return ages


class TestPlanSelection:
    def test_selects_only_old_objects_under_prefix_when_siblings_share_its_start(
        self, aws: AwsClients, seeded: dict[str, datetime], cutoff: datetime, tmp_path: Path
    ) -> None:
        plan = plan_cleanup(aws.s3, make_target(cutoff), cutoff, tmp_path / "plan.jsonl")

        planned = {entry.key for entry in read_objects(Path(plan.manifest))}
        assert planned == {"temp/old-1.log", "temp/nested/old-2.log", "temp/just-before-cutoff.log"}
        assert plan.scanned == 5  # only keys under temp/ are listed
        assert plan.matched == 3
        assert plan.matched_bytes == 3 * len(b"data")

    def test_keeps_object_when_last_modified_equals_cutoff(
        self, aws: AwsClients, seeded: dict[str, datetime], cutoff: datetime, tmp_path: Path
    ) -> None:
        plan = plan_cleanup(aws.s3, make_target(cutoff), cutoff, tmp_path / "plan.jsonl")

        planned = {entry.key for entry in read_objects(Path(plan.manifest))}
        assert "temp/at-cutoff.log" not in planned
        assert "temp/just-before-cutoff.log" in planned

    def test_prefix_without_slash_matches_siblings_when_given_literally(
        self, aws: AwsClients, seeded: dict[str, datetime], cutoff: datetime, tmp_path: Path
    ) -> None:
        target = make_target(cutoff, prefix="temp")
        plan = plan_cleanup(aws.s3, target, cutoff, tmp_path / "plan.jsonl")

        planned = {entry.key for entry in read_objects(Path(plan.manifest))}
        assert "temp-keep/old.db" in planned  # S3 prefixes are plain string prefixes

    def test_refuses_naive_cutoff_when_called(
        self, aws: AwsClients, bucket: str, cutoff: datetime, tmp_path: Path
    ) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            plan_cleanup(
                aws.s3, make_target(cutoff), cutoff.replace(tzinfo=None), tmp_path / "p.jsonl"
            )

    def test_missing_bucket_is_a_config_error_when_listing(
        self, aws: AwsClients, cutoff: datetime, tmp_path: Path
    ) -> None:
        request = PlanRequest(make_target(cutoff), cutoff, str(tmp_path), "plan.jsonl")

        with pytest.raises(ConfigError, match=r"ListObjectsV2 on bucket .*: not found"):
            plan_cleanup_task.fn(aws.s3, request, tmp_path)


class TestManifest:
    def test_manifest_has_header_and_one_line_per_object_when_gzipped(
        self, aws: AwsClients, seeded: dict[str, datetime], cutoff: datetime, tmp_path: Path
    ) -> None:
        path = tmp_path / "plan.jsonl.gz"
        plan_cleanup(aws.s3, make_target(cutoff), cutoff, path)

        lines = gzip.decompress(path.read_bytes()).decode().splitlines()
        header = json.loads(lines[0])
        assert header["format"] == "s3-housekeeping/plan-v1"
        assert header["bucket"] == BUCKET and header["prefix"] == "temp/"
        rows = [json.loads(line) for line in lines[1:-1]]
        assert json.loads(lines[-1]) == {
            "end": True,
            "scanned": 5,
            "matched": 3,
            "matched_bytes": 12,
            "unrecoverable_keys": 0,
        }
        assert len(rows) == 3
        assert set(rows[0]) == {"key", "etag", "size", "last_modified", "storage_class"}
        assert all(row["etag"].startswith('"') for row in rows)
        assert read_target(path).cutoff == isoformat(cutoff)


class TestApply:
    def test_deletes_exactly_the_planned_objects_when_executed(
        self, aws: AwsClients, seeded: dict[str, datetime], cutoff: datetime, tmp_path: Path
    ) -> None:
        plan = plan_cleanup(aws.s3, make_target(cutoff), cutoff, tmp_path / "plan.jsonl")

        result = apply_plan(aws.s3, plan)

        assert (result.planned, result.deleted, result.skipped_changed, result.failed) == (
            3,
            3,
            0,
            0,
        )
        assert remaining_keys(aws) == {
            "temp/at-cutoff.log",
            "temp/new.log",
            "temp-keep/old.db",
            "other/temp/old.log",
        }

    def test_refuses_to_send_anything_when_the_plan_file_changed_after_it_was_checked(
        self, aws: AwsClients, seeded: dict[str, datetime], cutoff: datetime, tmp_path: Path
    ) -> None:
        plan = plan_cleanup(aws.s3, make_target(cutoff), cutoff, tmp_path / "plan.jsonl")
        assert plan.sha256 == hashlib.sha256(plan.path.read_bytes()).hexdigest()
        lines = plan.path.read_text().splitlines(keepends=True)
        plan.path.write_text("".join(lines[:2] + lines[3:]))  # one planned object fewer

        with audit_requests() as audit, pytest.raises(SafetyRefusal) as refused:
            apply_plan(create_clients(AwsSettings(region="us-east-1")).s3, plan)

        assert refused.value.guard == "plan_digest"
        assert f"its SHA-256 is no longer {plan.sha256}" in str(refused.value)
        assert audit.calls == []
        assert len(remaining_keys(aws)) == 7

    def test_batches_hold_at_most_1000_keys_each_with_etag_when_2500_are_planned(
        self, aws: AwsClients, bucket: str, cutoff: datetime, tmp_path: Path
    ) -> None:
        plan = plan_old_objects(aws, 2600, cutoff, tmp_path / "plan.jsonl.gz")

        with audit_requests() as audit:
            from tasks.aws import AwsSettings, create_clients

            audited = create_clients(AwsSettings(region="us-east-1"))
            result = apply_plan(audited.s3, plan)

        batches = [call.params["Delete"]["Objects"] for call in audit.of("DeleteObjects")]
        assert sorted(len(batch) for batch in batches) == [600, 1000, 1000]
        assert all(entry.get("ETag") for batch in batches for entry in batch)
        assert all(call.params["Delete"]["Quiet"] is True for call in audit.of("DeleteObjects"))
        sent = [entry["Key"] for batch in batches for entry in batch]
        assert len(sent) == len(set(sent)) == 2600
        assert result.deleted == 2600
        assert remaining_keys(aws) == set()

    def test_accounts_every_key_when_some_fail_inside_a_200_response(
        self, aws: AwsClients, bucket: str, cutoff: datetime, tmp_path: Path
    ) -> None:
        plan = plan_old_objects(aws, 1200, cutoff, tmp_path / "plan.jsonl")

        def rule(key: str, attempt: int) -> str | None:
            number = int(key[-5:])
            if number % 100 == 0:
                return "AccessDenied"  # 12 keys, every attempt
            if number % 150 == 1:
                return "PreconditionFailed"  # 8 keys changed since listing
            return None

        with inject_delete_errors(rule) as faults:
            from tasks.aws import AwsSettings, create_clients

            faulty = create_clients(AwsSettings(region="us-east-1"))
            result = apply_plan(faulty.s3, plan)

        assert len(faults.injected) == 20
        assert result.planned == 1200
        assert result.failed_by_code == {"AccessDenied": 12}
        assert result.skipped_changed == 8
        assert result.deleted == 1180
        assert result.deleted + result.skipped_changed + result.failed == result.planned
        assert len(remaining_keys(aws)) == 20

    def test_counts_a_key_already_gone_as_deleted_and_gone_when_the_server_says_no_such_key(
        self, aws: AwsClients, bucket: str, cutoff: datetime, tmp_path: Path
    ) -> None:
        # A DeleteObjects whose answer was lost is sent again by botocore; a server honouring
        # the ETag condition then answers NoSuchKey for each key the first try deleted.
        plan = plan_old_objects(aws, 30, cutoff, tmp_path / "plan.jsonl")
        gone = {f"temp/k{n:05d}" for n in range(0, 30, 3)}
        for key in gone:
            aws.s3.delete_object(Bucket=bucket, Key=key)

        with inject_delete_errors(lambda key, _: "NoSuchKey" if key in gone else None):
            faulty = create_clients(AwsSettings(region="us-east-1"))
            result = apply_plan(faulty.s3, plan)

        assert (result.planned, result.deleted, result.failed) == (30, 30, 0)
        assert result.already_gone == len(gone) == 10
        assert remaining_keys(aws) == set()

    def test_retries_only_throttled_keys_when_slowdown_clears(
        self, aws: AwsClients, bucket: str, cutoff: datetime, tmp_path: Path
    ) -> None:
        plan = plan_old_objects(aws, 50, cutoff, tmp_path / "plan.jsonl")

        def rule(key: str, attempt: int) -> str | None:
            return "SlowDown" if int(key[-5:]) < 10 and attempt == 1 else None

        with audit_requests() as audit, inject_delete_errors(rule) as faults:
            from tasks.aws import AwsSettings, create_clients

            faulty = create_clients(AwsSettings(region="us-east-1"))
            result = apply_plan(faulty.s3, plan, retry_base_delay_s=0)

        assert len(audit.of("DeleteObjects")) == 2  # the batch, then the throttled keys only
        sent_twice = {key for key, count in faults.attempts.items() if count == 2}
        assert sent_twice == {f"temp/k{number:05d}" for number in range(10)}
        assert sum(faults.attempts.values()) == 60
        assert (result.deleted, result.failed, result.skipped_changed) == (50, 0, 0)
        assert remaining_keys(aws) == set()

    def test_counts_throttled_keys_as_failed_when_slowdown_outlasts_the_budget(
        self, aws: AwsClients, bucket: str, cutoff: datetime, tmp_path: Path
    ) -> None:
        put_aged(aws, "temp/a", cutoff - timedelta(days=1))
        put_aged(aws, "temp/b", cutoff - timedelta(days=1))
        plan = plan_cleanup(aws.s3, make_target(cutoff), cutoff, tmp_path / "plan.jsonl")

        with inject_delete_errors(lambda key, _: "SlowDown" if key == "temp/a" else None) as f:
            from tasks.aws import AwsSettings, create_clients

            faulty = create_clients(AwsSettings(region="us-east-1"))
            result = apply_plan(
                faulty.s3, plan, key_attempts=3, retry_base_delay_s=0.01, throttle_budget_s=0.3
            )

        # Throttled keys are tried for the whole budget, not a fixed number of times.
        assert f.attempts["temp/a"] > 3
        assert (result.deleted, dict(result.failed_by_code)) == (1, {"SlowDown": 1})
        assert 0.3 <= result.throttled_s < 5

    def test_deletes_every_key_when_a_sustained_slowdown_lets_some_through_each_time(
        self, aws: AwsClients, bucket: str, cutoff: datetime, tmp_path: Path
    ) -> None:
        plan = plan_old_objects(aws, 1500, cutoff, tmp_path / "plan.jsonl")
        draw = random.Random(7)  # noqa: S311 - a seeded test pattern, not security

        # A prefix being re-partitioned: 30 % of the keys answer SlowDown, every time they come.
        with inject_delete_errors(lambda key, _: "SlowDown" if draw.random() < 0.3 else None):
            from tasks.aws import AwsSettings, create_clients

            faulty = create_clients(AwsSettings(region="us-east-1"))
            result = apply_plan(faulty.s3, plan, retry_base_delay_s=0.01)

        assert (result.planned, result.deleted, result.failed) == (1500, 1500, 0)
        assert result.throttled_s > 0
        assert remaining_keys(aws) == set()

    def test_fails_the_batch_at_once_when_a_whole_request_is_refused_for_another_reason(
        self, aws: AwsClients, bucket: str, cutoff: datetime, tmp_path: Path
    ) -> None:
        plan = plan_old_objects(aws, 2500, cutoff, tmp_path / "plan.jsonl")

        with (
            reject_batches_containing({"temp/k00007"}, code="AccessDenied") as rejected,
            audit_requests() as audit,
        ):
            from tasks.aws import AwsSettings, create_clients

            faulty = create_clients(AwsSettings(region="us-east-1"))
            result = apply_plan(faulty.s3, plan)

        # No split into single keys (2N requests for N keys): one request per batch.
        assert rejected.rejected_sizes == [1000]
        assert len(audit.of("DeleteObjects")) == 3
        assert (result.deleted, dict(result.failed_by_code)) == (1500, {"AccessDenied": 1000})
