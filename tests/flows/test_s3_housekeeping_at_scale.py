"""The flow at scale: exact request counts, saved plans, plan locations, versions, guards."""

from __future__ import annotations

import gzip
import json
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flows.s3_housekeeping import s3_housekeeping
from tasks.aws import AwsClients
from tasks.errors import SafetyRefusal
from tests.support.audit import audit_requests, lock_calls, on_objects
from tests.support.moto_backend import bulk_put

pytestmark = pytest.mark.usefixtures("prefect_harness")

BUCKET = "scale-test-bucket"
READS = {"HeadObject", "GetObject", "DeleteObject"}


def seed_flat(as_of: datetime, old: int, young: int) -> None:
    """Old and young objects in a flat prefix, and 50 old ones beside it."""
    bulk_put(BUCKET, (f"flat/old-{n:05d}" for n in range(old)), as_of - timedelta(days=60))
    bulk_put(BUCKET, (f"flat/new-{n:05d}" for n in range(young)), as_of - timedelta(days=1))
    bulk_put(BUCKET, (f"flat-keep/old-{n:03d}" for n in range(50)), as_of - timedelta(days=60))


@pytest.fixture
def flat(aws: AwsClients, as_of: datetime) -> None:
    """10,000 old objects and 500 young ones in a flat prefix, and 50 old ones beside it."""
    aws.s3.create_bucket(Bucket=BUCKET)
    seed_flat(as_of, 10_000, 500)


@pytest.fixture
def small(aws: AwsClients, as_of: datetime) -> None:
    """1,500 old objects and 100 young ones in a flat prefix, and 50 old ones beside it."""
    aws.s3.create_bucket(Bucket=BUCKET)
    seed_flat(as_of, 1_500, 100)


def count(aws: AwsClients, prefix: str) -> int:
    return sum(
        page.get("KeyCount", 0)
        for page in aws.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    )


def run(as_of: datetime, **overrides: Any) -> Any:
    parameters: dict[str, Any] = {
        "bucket": BUCKET,
        "prefix": "flat/",
        "older_than_days": 30,
        "as_of": as_of,
        "create_bucket": False,
    }
    return s3_housekeeping(**(parameters | overrides))


class TestRequestCounts:
    def test_one_list_and_one_delete_per_1000_when_10000_are_matched(
        self, aws: AwsClients, flat: None, as_of: datetime
    ) -> None:
        # A guard makes the run plan first. moto cannot list and delete in one bucket at the
        # same time (its key index is not thread-safe), so deleting while listing is proven
        # against SeaweedFS in tests/e2e/test_seaweedfs.py.
        with audit_requests() as audit:
            report = run(as_of, dry_run=False, max_deletions=20_000)

        operations = [call.operation for call in on_objects(audit.calls) if call.service == "s3"]
        # ceil(10,500 / 1000) pages; key ranges listed at once add at most one request each
        # (the page that crosses a range's end, or finds it empty).
        ranges = {call.params.get("StartAfter") for call in audit.of("ListObjectsV2")}
        assert 11 <= operations.count("ListObjectsV2") <= 11 + len(ranges) - 1
        assert operations.count("DeleteObjects") == 10  # ceil(10,000 / 1000)
        assert READS.isdisjoint(operations)
        assert {call.operation for call in on_objects(audit.mutating())} == {"DeleteObjects"}
        assert lock_calls(audit) == ["PutObject", "DeleteObject"]  # taken, given back
        assert (report.matched, report.deleted, report.failed) == (10_000, 10_000, 0)
        assert report.requests["DeleteObjects"] == 10
        assert (count(aws, "flat/"), count(aws, "flat-keep/")) == (500, 50)

    def test_dry_run_sends_no_mutating_request_when_10000_are_matched(
        self, aws: AwsClients, flat: None, as_of: datetime
    ) -> None:
        with audit_requests() as audit:
            report = run(as_of)

        assert audit.mutating() == []
        assert (report.status, report.matched) == ("dry_run", 10_000)
        assert count(aws, "flat/") == 10_500


class TestSavedPlans:
    def test_applies_exactly_the_saved_plan_when_objects_appear_later(
        self, aws: AwsClients, small: None, as_of: datetime
    ) -> None:
        dry = run(as_of)
        bulk_put(BUCKET, ["flat/old-after-planning"], as_of - timedelta(days=90))

        with audit_requests() as audit:
            report = run(as_of, dry_run=False, plan=dry.manifest)

        sent = {
            entry["Key"]
            for call in audit.of("DeleteObjects")
            for entry in call.params["Delete"]["Objects"]
        }
        assert len(sent) == 1_500 and "flat/old-after-planning" not in sent
        # The plan replaces the listing; its objects are only confirmed, a batch of keys that
        # lie together to a request (tasks/s3/confirmation.py).
        assert len(audit.of("ListObjectsV2")) == 2
        assert (report.deleted, report.plan_source) == (1_500, dry.manifest)
        assert count(aws, "flat/") == 101

    def test_refuses_plan_made_for_another_prefix(
        self, aws: AwsClients, small: None, as_of: datetime
    ) -> None:
        dry = run(as_of)

        with audit_requests() as audit, pytest.raises(SafetyRefusal, match="another prefix"):
            run(as_of, prefix="flat/old-0", dry_run=False, plan=dry.manifest)
        assert audit.of("DeleteObjects") == []

    def test_refuses_plan_older_than_max_plan_age_hours(
        self, aws: AwsClients, small: None, as_of: datetime
    ) -> None:
        dry = run(as_of)
        time.sleep(1.0)

        with pytest.raises(SafetyRefusal) as refused:
            run(as_of, dry_run=False, plan=dry.manifest, max_plan_age_hours=0.0002)
        assert refused.value.guard == "max_plan_age_hours"
        assert refused.value.exit_code == 6
        assert count(aws, "flat/") == 1_600

    def test_refuses_tampered_plan_when_an_entry_is_outside_the_prefix(
        self, aws: AwsClients, small: None, as_of: datetime, tmp_path: Path
    ) -> None:
        dry = run(as_of)
        lines = gzip.decompress(Path(dry.manifest).read_bytes()).decode().splitlines()
        smuggled = json.loads(lines[1]) | {"key": "flat-keep/old-001"}
        totals = json.loads(lines[-1])
        totals["matched"] += 1
        tampered = tmp_path / "tampered.jsonl"
        tampered.write_text(
            "\n".join([*lines[:-1], json.dumps(smuggled), json.dumps(totals)]) + "\n"
        )

        with pytest.raises(SafetyRefusal, match="outside its prefix"):
            run(as_of, dry_run=False, plan=str(tampered))
        assert count(aws, "flat-keep/") == 50 and count(aws, "flat/") == 1_600

    def test_applies_the_plan_only_when_its_sha256_is_the_one_reviewed(
        self, aws: AwsClients, small: None, as_of: datetime, tmp_path: Path
    ) -> None:
        dry = run(as_of)
        lines = gzip.decompress(Path(dry.manifest).read_bytes()).decode().splitlines()
        totals = json.loads(lines[-1])
        totals["matched"] -= 1
        totals["matched_bytes"] -= json.loads(lines[1])["size"]
        edited = tmp_path / "edited.jsonl"  # one line fewer: a plan that checks out alone
        edited.write_text("\n".join([lines[0], *lines[2:-1], json.dumps(totals)]) + "\n")

        with audit_requests() as audit, pytest.raises(SafetyRefusal) as refused:
            run(as_of, dry_run=False, plan=str(edited), plan_sha256=dry.manifest_sha256)
        report = run(as_of, dry_run=False, plan=dry.manifest, plan_sha256=dry.manifest_sha256)

        assert refused.value.guard == "plan_digest"
        assert audit.of("DeleteObjects") == []
        assert (report.deleted, report.manifest_sha256) == (1_500, dry.manifest_sha256)

    def test_keeps_objects_written_since_the_cutoff_whatever_dates_a_saved_plan_gives_them(
        self, aws: AwsClients, small: None, as_of: datetime, tmp_path: Path
    ) -> None:
        # Two lines of the saved plan are edited to name young objects, with their real ETags
        # and sizes and old dates: the file checks out, and each delete's ETag would match.
        dry = run(as_of)
        lines = gzip.decompress(Path(dry.manifest).read_bytes()).decode().splitlines()
        for number, young in ((1, "flat/new-00000"), (2, "flat/new-00001")):
            lines[number] = json.dumps(json.loads(lines[number]) | {"key": young})
        edited = tmp_path / "edited.jsonl"
        edited.write_text("\n".join(lines) + "\n")

        report = run(as_of, dry_run=False, plan=str(edited))

        assert (report.deleted, report.skipped_changed) == (1_498, 2)
        assert count(aws, "flat/new-") == 100

    def test_refuses_plan_cut_short_when_it_has_no_totals(
        self, aws: AwsClients, small: None, as_of: datetime, tmp_path: Path
    ) -> None:
        dry = run(as_of)
        lines = gzip.decompress(Path(dry.manifest).read_bytes()).decode().splitlines()
        cut = tmp_path / "cut.jsonl"
        cut.write_text("\n".join(lines[:500]) + "\n")

        with pytest.raises(SafetyRefusal, match="incomplete"):
            run(as_of, dry_run=False, plan=str(cut))

    @pytest.fixture
    def scratch(self, aws: AwsClients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        """An empty folder where the runs' temporary files go, and a bucket for plans."""
        folder = tmp_path / "scratch"
        folder.mkdir()
        monkeypatch.setattr(tempfile, "tempdir", str(folder))
        aws.s3.create_bucket(Bucket="plans-bucket")
        return folder

    def test_plans_go_to_s3_and_apply_from_there_when_location_is_s3(
        self, aws: AwsClients, small: None, as_of: datetime, scratch: Path
    ) -> None:
        dry = run(as_of, manifest_location="s3://plans-bucket/runs")
        report = run(as_of, dry_run=False, plan=dry.manifest)

        assert dry.manifest.startswith(f"s3://plans-bucket/runs/{BUCKET}/")
        assert count(aws, "flat/") == 100 and report.deleted == 1_500
        stored = aws.s3.list_objects_v2(Bucket="plans-bucket")["Contents"]
        assert [obj["Key"] for obj in stored] == [dry.manifest.removeprefix("s3://plans-bucket/")]
        # Neither the staged upload nor the downloaded copy is left behind.
        assert list(scratch.iterdir()) == []

    def test_applies_a_plan_kept_in_s3_when_a_guard_makes_the_run_plan_first(
        self, aws: AwsClients, small: None, as_of: datetime, scratch: Path
    ) -> None:
        report = run(
            as_of,
            dry_run=False,
            manifest_location="s3://plans-bucket/runs",
            max_deletions=2_000,
        )

        assert (report.status, report.matched, report.deleted) == ("completed", 1_500, 1_500)
        assert report.manifest.startswith(f"s3://plans-bucket/runs/{BUCKET}/")
        assert count(aws, "flat/") == 100
        assert list(scratch.iterdir()) == []


class TestReportAdvice:
    def test_report_says_a_plain_delete_only_adds_markers_when_bucket_is_versioned(
        self, aws: AwsClients, as_of: datetime
    ) -> None:
        aws.s3.create_bucket(Bucket=BUCKET)
        aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        bulk_put(BUCKET, ["flat/a"], as_of - timedelta(days=60))

        report = run(as_of)

        assert (report.versioning, report.versions) == ("Enabled", "current")
        assert any("delete markers" in note for note in report.notes)
        assert report.lifecycle_rule == {
            "ID": "s3-housekeeping-flat",
            "Filter": {"Prefix": "flat/"},
            "Status": "Enabled",
            "Expiration": {"Days": 30},
        }
        noncurrent = run(as_of, versions="noncurrent")
        assert noncurrent.notes == []
        assert noncurrent.lifecycle_rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}

    def test_progress_artifact_reaches_100_percent_when_deletes_finish(
        self, aws: AwsClients, small: None, as_of: datetime
    ) -> None:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        state = s3_housekeeping(
            bucket=BUCKET,
            prefix="flat/",
            older_than_days=30,
            as_of=as_of,
            create_bucket=False,
            dry_run=False,
            return_state=True,
        )
        flow_run_id = state.state_details.flow_run_id

        with get_client(sync_client=True) as client:
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=["s3-housekeeping-progress"])
                )
            )
        ours = [a for a in artifacts if a.flow_run_id == flow_run_id]
        assert len(ours) == 1
        assert float(ours[0].data) == 100.0
