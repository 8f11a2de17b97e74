"""Each versions mode on a versioned bucket, with exact version listings before and after."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tasks.aws import AwsClients, AwsSettings, create_clients
from tasks.cleanup import plan_cleanup
from tasks.s3.manifest import PlanSummary, PlanTarget, PlanTotals, isoformat, read_totals
from tests.support.audit import audit_requests
from tests.support.moto_backend import backdate_versions
from tests.support.plans import apply_plan

BUCKET = "versioned-test-bucket"
#: (key, version id) -> whether that version is a delete marker.
Versions = dict[tuple[str, str], bool]


def days_ago(as_of: datetime, days: int) -> datetime:
    return as_of - timedelta(days=days)


@pytest.fixture
def history(aws: AwsClients, as_of: datetime) -> Versions:
    """A versioned bucket; the cutoff is 30 days before as_of.

    temp/a: versions 100, 60 and 40 days old (the last is current).
    temp/b: versions 100 and 10 days old (current is young).
    temp/c: a version 100 days old, then a delete marker 50 days old (current).
    keep/d: versions 100 and 90 days old, beside the prefix.
    """
    aws.s3.create_bucket(Bucket=BUCKET)
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    ages = {"temp/a": [100, 60, 40], "temp/b": [100, 10], "temp/c": [100, 50], "keep/d": [100, 90]}
    for key, key_ages in ages.items():
        for _ in key_ages:
            aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"body")
    aws.s3.delete_object(Bucket=BUCKET, Key="temp/c")  # its second "version" is a marker
    aws.s3.delete_object(Bucket=BUCKET, Key="keep/d")
    backdate_versions(BUCKET, "keep/d", [days_ago(as_of, d) for d in (100, 90, 80)])
    for key in ("temp/a", "temp/b"):
        backdate_versions(BUCKET, key, [days_ago(as_of, d) for d in ages[key]])
    # temp/c got two puts and a marker: drop the second put so it is [version, marker].
    second = aws.s3.list_object_versions(Bucket=BUCKET, Prefix="temp/c")["Versions"]
    newest_put = max(second, key=lambda v: v["LastModified"])["VersionId"]
    aws.s3.delete_object(Bucket=BUCKET, Key="temp/c", VersionId=newest_put)
    backdate_versions(BUCKET, "temp/c", [days_ago(as_of, d) for d in (100, 50)])
    return snapshot(aws)


def snapshot(aws: AwsClients) -> Versions:
    """Every version and delete marker in the bucket."""
    listed = aws.s3.list_object_versions(Bucket=BUCKET)
    found: Versions = {}
    for version in listed.get("Versions", []):
        found[(version["Key"], version["VersionId"])] = False
    for marker in listed.get("DeleteMarkers", []):
        found[(marker["Key"], marker["VersionId"])] = True
    return found


def run_mode(aws: AwsClients, as_of: datetime, versions: str, tmp_path: Path) -> int:
    plan = plan_mode(aws, as_of, versions, tmp_path)
    with audit_requests() as audit:
        audited = create_clients(AwsSettings(region="us-east-1"))
        result = apply_plan(audited.s3, plan)
    assert result.failed == 0
    assert len(audit.of("DeleteObjects")) == 1  # one batch: about 2 requests per 1000
    return result.deleted


def ids_of(history: Versions, key: str) -> list[str]:
    return [version_id for (k, version_id) in history if k == key]


class TestVersionsModes:
    def test_current_mode_adds_delete_markers_and_keeps_every_version(
        self,
        aws: AwsClients,
        history: Versions,
        as_of: datetime,
        tmp_path: Path,
    ) -> None:
        deleted = run_mode(aws, as_of, "current", tmp_path)

        after = snapshot(aws)
        assert deleted == 1  # temp/a's current version, 40 days old
        assert set(history) < set(after)  # nothing removed
        added = {key: is_marker for key, is_marker in after.items() if key not in history}
        assert [(key, is_marker) for (key, _), is_marker in added.items()] == [("temp/a", True)]

    def test_noncurrent_mode_deletes_versions_superseded_before_the_cutoff(
        self,
        aws: AwsClients,
        history: Versions,
        as_of: datetime,
        tmp_path: Path,
    ) -> None:
        deleted = run_mode(aws, as_of, "noncurrent", tmp_path)

        after = snapshot(aws)
        a_versions = ids_of(history, "temp/a")
        # temp/a: the 100- and 60-day versions were superseded 60 and 40 days ago: gone.
        # temp/b: its old version was superseded 10 days ago: kept.
        # temp/c: the version under the 50-day-old marker: gone; the marker stays current.
        assert deleted == 3
        assert len(ids_of(after, "temp/a")) == 1 and ids_of(after, "temp/a")[0] in a_versions
        assert sorted(ids_of(after, "temp/b")) == sorted(ids_of(history, "temp/b"))
        assert [after[k] for k in after if k[0] == "temp/c"] == [True]  # the marker only
        assert sorted(ids_of(after, "keep/d")) == sorted(ids_of(history, "keep/d"))
        assert set(after) < set(history)

    def test_all_mode_deletes_every_version_and_marker_older_than_the_cutoff(
        self,
        aws: AwsClients,
        history: Versions,
        as_of: datetime,
        tmp_path: Path,
    ) -> None:
        deleted = run_mode(aws, as_of, "all", tmp_path)

        after = snapshot(aws)
        # temp/a: all three (100, 60, 40 days); temp/b: the 100-day one; temp/c: both.
        assert deleted == 6
        assert ids_of(after, "temp/a") == [] and ids_of(after, "temp/c") == []
        b_left = ids_of(after, "temp/b")
        assert len(b_left) == 1 and b_left[0] in ids_of(history, "temp/b")
        assert sorted(ids_of(after, "keep/d")) == sorted(ids_of(history, "keep/d"))


def plan_mode(aws: AwsClients, as_of: datetime, versions: str, tmp_path: Path) -> PlanSummary:
    cutoff = as_of - timedelta(days=30)
    target = PlanTarget(
        bucket=BUCKET,
        region="us-east-1",
        prefix="temp/",
        cutoff=isoformat(cutoff),
        created_at=isoformat(as_of),
        versions=versions,
    )
    return plan_cleanup(aws.s3, target, cutoff, tmp_path / f"{versions}.jsonl")


def undelete(aws: AwsClients, key: str) -> str:
    """Remove the key's delete marker, making its newest version current again; returns it."""
    listed = aws.s3.list_object_versions(Bucket=BUCKET, Prefix=key)
    marker = listed["DeleteMarkers"][0]["VersionId"]
    aws.s3.delete_object(Bucket=BUCKET, Key=key, VersionId=marker)
    return aws.s3.head_object(Bucket=BUCKET, Key=key)["VersionId"]


class TestUndeleteBetweenPlanAndApply:
    def test_a_planned_version_made_current_again_is_kept_and_counted_changed(
        self, aws: AwsClients, history: Versions, as_of: datetime, tmp_path: Path
    ) -> None:
        plan = plan_mode(aws, as_of, "noncurrent", tmp_path)
        assert [row.key for row in plan.first_rows] == ["temp/a", "temp/a", "temp/c"]
        current_again = undelete(aws, "temp/c")

        with audit_requests() as audit:
            result = apply_plan(create_clients(AwsSettings(region="us-east-1")).s3, plan)

        sent = [
            (entry["Key"], entry.get("VersionId"))
            for call in audit.of("DeleteObjects")
            for entry in call.params["Delete"]["Objects"]
        ]
        assert ("temp/c", current_again) not in sent
        assert aws.s3.head_object(Bucket=BUCKET, Key="temp/c")["VersionId"] == current_again
        assert (result.planned, result.deleted, result.skipped_changed) == (3, 2, 1)
        assert len(audit.of("ListObjectVersions")) == 1  # the plan joined with a fresh listing

    def test_a_version_deleted_since_the_plan_counts_changed_and_is_not_sent(
        self, aws: AwsClients, history: Versions, as_of: datetime, tmp_path: Path
    ) -> None:
        plan = plan_mode(aws, as_of, "noncurrent", tmp_path)
        oldest_a = min(
            aws.s3.list_object_versions(Bucket=BUCKET, Prefix="temp/a")["Versions"],
            key=lambda version: version["LastModified"],
        )["VersionId"]
        aws.s3.delete_object(Bucket=BUCKET, Key="temp/a", VersionId=oldest_a)

        with audit_requests() as audit:
            result = apply_plan(create_clients(AwsSettings(region="us-east-1")).s3, plan)

        sent = {
            entry.get("VersionId")
            for call in audit.of("DeleteObjects")
            for entry in call.params["Delete"]["Objects"]
        }
        assert oldest_a not in sent
        assert (result.planned, result.deleted, result.skipped_changed) == (3, 2, 1)

    def test_all_mode_deletes_by_plan_without_a_second_listing(
        self, aws: AwsClients, history: Versions, as_of: datetime, tmp_path: Path
    ) -> None:
        plan = plan_mode(aws, as_of, "all", tmp_path)

        with audit_requests() as audit:
            result = apply_plan(create_clients(AwsSettings(region="us-east-1")).s3, plan)

        assert audit.of("ListObjectVersions") == []
        assert result.deleted == 6


class TestUnrecoverableKeys:
    @pytest.mark.parametrize(
        ("versions", "lost"),
        # noncurrent: temp/c keeps only its delete marker. all: temp/a and temp/c lose every
        # version; temp/b keeps its young one. current: versions are never deleted.
        [("current", 0), ("noncurrent", 1), ("all", 2)],
    )
    def test_the_plan_counts_keys_left_with_no_version_holding_data(
        self,
        aws: AwsClients,
        history: Versions,
        as_of: datetime,
        tmp_path: Path,
        versions: str,
        lost: int,
    ) -> None:
        plan = plan_mode(aws, as_of, versions, tmp_path)

        assert plan.unrecoverable_keys == lost
        assert read_totals(Path(plan.manifest)) == PlanTotals(
            plan.scanned, plan.matched, plan.matched_bytes, lost
        )
