"""Where plans are kept: a new plan's file, its upload to S3, and a saved plan fetched back."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.aws import AwsClients, AwsSettings, create_clients
from tasks.errors import ConfigError
from tasks.s3.plan_store import PlanFile, fetch, keep, new_plan_file
from tests.support.audit import audit_requests

PLAN_BUCKET = "plan-store-bucket"
TARGET_BUCKET = "cleaned-bucket"
NAME = "run-20260601.jsonl.gz"
BODY = b'{"format":"s3-housekeeping/plan-v1"}\n'


class TestNewPlanFile:
    def test_writes_under_directory_and_bucket_and_keeps_it_there_when_location_is_a_path(
        self, tmp_path: Path
    ) -> None:
        scratch = tmp_path / "scratch"

        plan = new_plan_file(str(tmp_path / "plans"), TARGET_BUCKET, NAME, scratch)

        assert plan.path == tmp_path / "plans" / TARGET_BUCKET / NAME
        assert plan.location == str(plan.path)
        assert not plan.kept_in_s3

    @pytest.mark.parametrize(
        ("location", "key"),
        [
            (f"s3://{PLAN_BUCKET}/plans/", f"plans/{TARGET_BUCKET}/{NAME}"),
            (f"s3://{PLAN_BUCKET}/plans", f"plans/{TARGET_BUCKET}/{NAME}"),
            (f"s3://{PLAN_BUCKET}", f"{TARGET_BUCKET}/{NAME}"),
        ],
    )
    def test_writes_in_scratch_and_keeps_it_under_the_prefix_when_location_is_s3(
        self, tmp_path: Path, location: str, key: str
    ) -> None:
        plan = new_plan_file(location, TARGET_BUCKET, NAME, tmp_path)

        assert plan.path == tmp_path / NAME
        assert plan.location == f"s3://{PLAN_BUCKET}/{key}"
        assert plan.kept_in_s3


class TestKeep:
    def test_sends_no_request_and_leaves_the_file_when_the_plan_is_local(
        self, aws: AwsClients, tmp_path: Path
    ) -> None:
        plan = new_plan_file(str(tmp_path / "plans"), TARGET_BUCKET, NAME, tmp_path / "scratch")
        plan.path.parent.mkdir(parents=True)
        plan.path.write_bytes(BODY)

        with audit_requests() as audit:
            keep(create_clients(AwsSettings(region="us-east-1")).s3, plan)

        assert audit.calls == []
        assert plan.path.read_bytes() == BODY

    def test_uploads_and_leaves_the_local_copy_when_the_plan_is_kept_in_s3(
        self, aws: AwsClients, tmp_path: Path
    ) -> None:
        aws.s3.create_bucket(Bucket=PLAN_BUCKET)
        plan = new_plan_file(f"s3://{PLAN_BUCKET}/plans/", TARGET_BUCKET, NAME, tmp_path)
        plan.path.write_bytes(BODY)

        # Not audited: the audit deep-copies parameters, and an upload's Body is an open file.
        keep(aws.s3, plan)

        key = f"plans/{TARGET_BUCKET}/{NAME}"
        listed = aws.s3.list_objects_v2(Bucket=PLAN_BUCKET)["Contents"]
        assert [item["Key"] for item in listed] == [key]
        assert aws.s3.get_object(Bucket=PLAN_BUCKET, Key=key)["Body"].read() == BODY
        assert plan.path.read_bytes() == BODY


class TestFetch:
    def test_copies_a_local_plan_into_the_scratch_directory_without_a_request(
        self, aws: AwsClients, tmp_path: Path
    ) -> None:
        saved = tmp_path / "saved.jsonl"
        saved.write_bytes(BODY)
        scratch = tmp_path / "scratch"
        scratch.mkdir()

        with audit_requests() as audit:
            local = fetch(create_clients(AwsSettings(region="us-east-1")).s3, str(saved), scratch)
        saved.write_bytes(b"changed after the fetch")

        assert local == scratch / "saved.jsonl"
        assert local.read_bytes() == BODY
        assert audit.calls == []

    @pytest.mark.parametrize("kind", ["missing", "directory"])
    def test_raises_config_error_when_the_local_plan_is_not_a_file(
        self, aws: AwsClients, tmp_path: Path, kind: str
    ) -> None:
        location = tmp_path / "saved.jsonl"
        if kind == "directory":
            location.mkdir()

        with pytest.raises(ConfigError, match="was not found"):
            fetch(aws.s3, str(location), tmp_path)

    def test_downloads_into_scratch_when_the_plan_is_in_s3(
        self, aws: AwsClients, tmp_path: Path
    ) -> None:
        aws.s3.create_bucket(Bucket=PLAN_BUCKET)
        aws.s3.put_object(Bucket=PLAN_BUCKET, Key=f"plans/{NAME}", Body=BODY)

        local = fetch(aws.s3, f"s3://{PLAN_BUCKET}/plans/{NAME}", tmp_path)

        assert local == tmp_path / NAME
        assert local.read_bytes() == BODY

    def test_round_trips_a_plan_when_kept_then_fetched(
        self, aws: AwsClients, tmp_path: Path
    ) -> None:
        aws.s3.create_bucket(Bucket=PLAN_BUCKET)
        plan = new_plan_file(f"s3://{PLAN_BUCKET}/plans", TARGET_BUCKET, NAME, tmp_path / "a")
        plan.path.parent.mkdir()
        plan.path.write_bytes(BODY)
        keep(aws.s3, plan)
        (tmp_path / "b").mkdir()

        local = fetch(aws.s3, plan.location, tmp_path / "b")

        assert local == tmp_path / "b" / NAME
        assert local.read_bytes() == BODY

    @pytest.mark.parametrize(
        "location",
        [f"s3://{PLAN_BUCKET}/plans/missing.jsonl", "s3://no-such-plan-bucket/plans/x.jsonl"],
        ids=["missing-key", "missing-bucket"],
    )
    def test_raises_config_error_when_the_s3_plan_does_not_exist(
        self, aws: AwsClients, tmp_path: Path, location: str
    ) -> None:
        aws.s3.create_bucket(Bucket=PLAN_BUCKET)

        with pytest.raises(ConfigError, match="was not found") as raised:
            fetch(aws.s3, location, tmp_path)

        assert raised.value.__cause__ is None
        assert raised.value.__suppress_context__


def test_plan_file_is_kept_in_s3_only_when_its_location_is_an_s3_address() -> None:
    assert PlanFile(Path("/tmp/x"), "s3://b/x").kept_in_s3
    assert not PlanFile(Path("/tmp/x"), "/tmp/x").kept_in_s3
