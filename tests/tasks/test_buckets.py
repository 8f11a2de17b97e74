"""ensure_bucket against moto: creation, the baseline, idempotency, dry runs and refusals."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from tasks.aws import AwsSettings, create_clients
from tasks.buckets import BucketResult, ensure_bucket, ensure_bucket_task, versioning_status
from tasks.errors import ConfigError, MissingBucket, PermissionDeniedError
from tests.support.audit import audit_requests

BUCKET = "baseline-test-bucket"
ALL_CHANGES = ["public_access_block", "encryption", "tags"]


def run_three_times(region: str, **kwargs: Any) -> list[BucketResult]:
    s3 = create_clients(AwsSettings(region=region)).s3
    return [ensure_bucket(s3, BUCKET, region, "staging", **kwargs) for _ in range(3)]


class TestIdempotency:
    @pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
    def test_creates_then_changes_nothing_when_run_three_times(
        self, moto: None, region: str
    ) -> None:
        with audit_requests() as audit:
            results = run_three_times(region)

        assert [r.action for r in results] == ["created", "unchanged", "unchanged"]
        assert results[0].changes == ALL_CHANGES
        assert results[1].changes == results[2].changes == []
        creates = audit.of("CreateBucket")
        assert len(creates) == 1
        if region == "us-east-1":
            assert "CreateBucketConfiguration" not in creates[0].params
        else:
            assert creates[0].params["CreateBucketConfiguration"] == {"LocationConstraint": region}
        # After the first run, only reads.
        first_run_calls = 1 + 1 + 3 + 3  # head, create, 3 reads, 3 writes
        assert all(not call.mutating for call in audit.calls[first_run_calls:])

    def test_bucket_has_baseline_when_created(self, moto: None) -> None:
        s3 = create_clients(AwsSettings(region="eu-west-1")).s3
        ensure_bucket(s3, BUCKET, "eu-west-1", "prod")

        assert s3.get_bucket_location(Bucket=BUCKET)["LocationConstraint"] == "eu-west-1"
        block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
        assert all(block.values()) and len(block) == 4
        rules = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]
        assert rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=BUCKET)["TagSet"]}
        assert tags == {"ManagedBy": "s3-housekeeping", "Environment": "prod"}

    def test_create_counts_as_done_when_an_earlier_attempt_already_created_it(
        self, moto: None
    ) -> None:
        # Outside us-east-1, re-creating your own bucket answers BucketAlreadyOwnedByYou: the
        # same answer botocore's retry of a create whose response was lost gets.
        from tasks.buckets import _create_bucket

        s3 = create_clients(AwsSettings(region="eu-west-1")).s3
        assert _create_bucket(s3, BUCKET, "eu-west-1") is True
        assert _create_bucket(s3, BUCKET, "eu-west-1") is False


class TestConvergence:
    def test_keeps_other_tags_and_kms_encryption_when_bucket_existed(self, moto: None) -> None:
        s3 = create_clients(AwsSettings(region="us-east-1")).s3
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_tagging(
            Bucket=BUCKET, Tagging={"TagSet": [{"Key": "CostCenter", "Value": "42"}]}
        )
        kms = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/team-key"}
        s3.put_bucket_encryption(
            Bucket=BUCKET,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": kms}]  # type: ignore[typeddict-item]
            },
        )

        result = ensure_bucket(s3, BUCKET, "us-east-1", "dev", converge=True)

        assert result.action == "changed"
        assert result.changes == ["public_access_block", "tags"]
        tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=BUCKET)["TagSet"]}
        assert tags == {"CostCenter": "42", "ManagedBy": "s3-housekeeping", "Environment": "dev"}
        rules = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]
        assert rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == (
            "alias/team-key"
        )

    def test_sets_kms_key_when_the_secret_names_one(self, moto: None) -> None:
        s3 = create_clients(AwsSettings(region="us-east-1")).s3
        ensure_bucket(s3, BUCKET, "us-east-1", "dev")

        key = "alias/run-key"
        result = ensure_bucket(s3, BUCKET, "us-east-1", "dev", kms_key_id=key, converge=True)
        again = ensure_bucket(s3, BUCKET, "us-east-1", "dev", kms_key_id=key, converge=True)

        assert (result.action, result.changes) == ("changed", ["encryption"])
        assert again.action == "unchanged"
        rule = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"][
            "Rules"
        ][0]
        assert rule["ApplyServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": "alias/run-key",
        }
        assert rule["BucketKeyEnabled"] is True


class TestDrift:
    def test_reports_drift_and_writes_nothing_when_an_existing_bucket_differs(
        self, moto: None
    ) -> None:
        create_clients(AwsSettings(region="us-east-1")).s3.create_bucket(Bucket=BUCKET)

        with audit_requests() as audit:
            s3 = create_clients(AwsSettings(region="us-east-1")).s3
            result = ensure_bucket(s3, BUCKET, "us-east-1", "dev", kms_key_id="alias/run-key")

        # A cleanup job must not re-encrypt or re-tag someone's bucket as a side effect.
        assert (result.action, result.changes) == ("drifted", ALL_CHANGES)
        assert audit.mutating() == []

    def test_gives_a_bucket_it_creates_the_baseline_when_convergence_is_off(
        self, moto: None
    ) -> None:
        s3 = create_clients(AwsSettings(region="us-east-1")).s3

        created = ensure_bucket(s3, BUCKET, "us-east-1", "dev")
        again = ensure_bucket(s3, BUCKET, "us-east-1", "dev")

        assert (created.action, created.changes) == ("created", ALL_CHANGES)
        assert (again.action, again.changes) == ("unchanged", [])


class TestDryRun:
    def test_sends_no_mutating_request_when_bucket_is_missing(self, moto: None) -> None:
        with audit_requests() as audit:
            s3 = create_clients(AwsSettings(region="us-east-1")).s3
            result = ensure_bucket(s3, BUCKET, "us-east-1", "dev", dry_run=True)

        assert (result.action, result.changes, result.exists) == (
            "would_create",
            ALL_CHANGES,
            False,
        )
        assert audit.mutating() == []
        assert [call.operation for call in audit.calls] == ["HeadBucket"]

    def test_reports_would_change_without_writing_when_baseline_differs(self, moto: None) -> None:
        with audit_requests() as audit:
            s3 = create_clients(AwsSettings(region="us-east-1")).s3
            s3.create_bucket(Bucket=BUCKET)
            result = ensure_bucket(s3, BUCKET, "us-east-1", "dev", dry_run=True, converge=True)

        assert result.action == "would_change"
        assert set(result.changes) >= {"public_access_block", "tags"}
        assert [call.operation for call in audit.mutating()] == ["CreateBucket"]  # the setup


class TestRefusals:
    def stubbed(self, operation: str, code: str, status: int) -> tuple[Any, Stubber]:
        s3 = create_clients(AwsSettings(region="us-east-1")).s3
        stubber = Stubber(s3)
        stubber.add_client_error(operation, service_error_code=code, http_status_code=status)
        return s3, stubber

    def test_permission_denied_when_head_bucket_answers_403(self, moto: None) -> None:
        # What S3 answers for another account's bucket, or with ExpectedBucketOwner set to
        # someone else; moto ignores ExpectedBucketOwner, so the answer is stubbed.
        s3, stubber = self.stubbed("head_bucket", "403", 403)
        with stubber, pytest.raises(PermissionDeniedError, match="another account"):
            ensure_bucket(s3, BUCKET, "us-east-1", "dev", expected_owner="111122223333")

    def test_clear_error_when_name_is_taken_by_another_account(self, moto: None) -> None:
        s3, stubber = self.stubbed("head_bucket", "404", 404)
        stubber.add_client_error("create_bucket", "BucketAlreadyExists", http_status_code=409)
        with stubber, pytest.raises(PermissionDeniedError, match="taken by another account"):
            ensure_bucket(s3, BUCKET, "us-east-1", "dev")

    def test_config_error_when_bucket_is_in_another_region(self, moto: None) -> None:
        s3 = create_clients(AwsSettings(region="us-east-1")).s3
        stubber = Stubber(s3)
        stubber.add_client_error(
            "head_bucket",
            service_error_code="301",
            http_status_code=301,
            response_meta={"HTTPHeaders": {"x-amz-bucket-region": "ap-south-1"}},
        )
        with stubber, pytest.raises(ConfigError, match="ap-south-1"):
            ensure_bucket(s3, BUCKET, "us-east-1", "dev")


class TestVersioning:
    def test_versioning_is_enabled_when_turned_on(self, moto: None) -> None:
        s3 = create_clients(AwsSettings(region="us-east-1")).s3
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})

        assert versioning_status(s3, BUCKET) == "Enabled"

    def test_versioning_is_disabled_when_never_enabled(self, moto: None) -> None:
        s3 = create_clients(AwsSettings(region="us-east-1")).s3
        s3.create_bucket(Bucket=BUCKET)

        assert versioning_status(s3, BUCKET) == "Disabled"


class TestTask:
    def test_only_reads_the_bucket_and_its_versioning_when_creation_is_off(
        self, moto: None
    ) -> None:
        create_clients(AwsSettings(region="us-east-1")).s3.create_bucket(Bucket=BUCKET)

        with audit_requests() as audit:
            s3 = create_clients(AwsSettings(region="us-east-1")).s3
            result = ensure_bucket_task.fn(s3, BUCKET, "us-east-1", "dev", create=False)

        assert (result.action, result.changes, result.versioning) == ("skipped", [], "Disabled")
        assert [call.operation for call in audit.calls] == ["GetBucketVersioning"]

    def test_leaves_versioning_unknown_when_a_dry_run_finds_the_bucket_missing(
        self, moto: None
    ) -> None:
        s3 = create_clients(AwsSettings(region="us-east-1")).s3

        result = ensure_bucket_task.fn(s3, BUCKET, "us-east-1", "dev", dry_run=True)

        assert (result.action, result.exists) == ("would_create", False)
        assert result.versioning == "unknown"

    def test_stops_after_one_read_naming_the_bucket_when_it_is_missing_and_creation_is_off(
        self, moto: None
    ) -> None:
        with (
            audit_requests() as audit,
            pytest.raises(MissingBucket, match=r"bucket 'baseline-test-bucket' does not exist"),
        ):
            s3 = create_clients(AwsSettings(region="us-east-1")).s3
            ensure_bucket_task.fn(s3, BUCKET, "us-east-1", "dev", create=False)

        assert [call.operation for call in audit.calls] == ["GetBucketVersioning"]
        assert MissingBucket.exit_code == 1

    def test_converges_an_existing_bucket_but_creates_no_missing_one_when_creation_is_off(
        self, moto: None
    ) -> None:
        s3 = create_clients(AwsSettings(region="us-east-1")).s3
        s3.create_bucket(Bucket=BUCKET)

        result = ensure_bucket_task.fn(s3, BUCKET, "us-east-1", "dev", create=False, converge=True)

        assert result.action == "changed"
        assert "tags" in result.changes
        with pytest.raises(MissingBucket):
            ensure_bucket_task.fn(s3, "not-there", "us-east-1", "dev", create=False, converge=True)
        assert "not-there" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
