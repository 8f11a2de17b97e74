"""The flow planned from an S3 Inventory instead of a listing: what it selects and reports."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from flows.s3_housekeeping import s3_housekeeping
from tasks.aws import AwsClients
from tasks.errors import ConfigError, SafetyRefusal
from tasks.s3.kept_list import read_kept_list
from tests.support.audit import audit_requests
from tests.support.inventory import (
    CREATED,
    CURRENT_FIELDS,
    VERSIONS_FIELDS,
    csv_body,
    filled_row,
    put_inventory,
    row,
)
from tests.support.moto_backend import backdate_versions, bulk_put

pytestmark = pytest.mark.usefixtures("prefect_harness")

BUCKET = "inventory-source-bucket"
REPORTS = "inventory-reports-bucket"


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class TestPlannedFromAnInventory:
    def test_plans_exactly_the_old_rows_under_the_prefix_without_listing_when_dry(
        self, aws: AwsClients, as_of: datetime
    ) -> None:
        aws.s3.create_bucket(Bucket=BUCKET)
        aws.s3.create_bucket(Bucket=REPORTS)
        old, young = stamp(as_of - timedelta(days=90)), stamp(as_of - timedelta(days=2))
        written = put_inventory(
            aws.s3,
            REPORTS,
            BUCKET,
            [
                [
                    row("logs/a.gz", LastModifiedDate=old),
                    row("logs/b c+d.gz", LastModifiedDate=old),
                ],
                [
                    row("logs/young.gz", LastModifiedDate=young),
                    row("logs-keep/old.gz", LastModifiedDate=old),
                    row("logs/ü/old.gz", LastModifiedDate=old),
                ],
            ],
        )

        with audit_requests() as audit:
            report = s3_housekeeping(
                bucket=BUCKET,
                prefix="logs/",
                older_than_days=30,
                as_of=as_of,
                inventory=written.manifest_uri,
                create_bucket=False,
            )

        assert (report.status, report.scanned, report.matched) == ("dry_run", 4, 3)
        assert report.inventory_created == CREATED.isoformat().replace("+00:00", "Z")
        assert report.plan_source == written.manifest_uri
        assert audit.of("ListObjectsV2") == [] and audit.mutating() == []
        with gzip.open(Path(report.manifest or ""), "rt") as plan:
            lines = [json.loads(line) for line in plan]
        assert lines[0]["inventory"] == written.manifest_uri
        assert sorted(line["key"] for line in lines[1:-1]) == [
            "logs/a.gz",
            "logs/b c+d.gz",
            "logs/ü/old.gz",
        ]

    def test_refuses_an_inventory_of_another_bucket_before_any_delete_when_executing(
        self, aws: AwsClients, as_of: datetime
    ) -> None:
        aws.s3.create_bucket(Bucket=BUCKET)
        aws.s3.create_bucket(Bucket=REPORTS)
        written = put_inventory(aws.s3, REPORTS, "some-other-bucket", [[row("logs/a.gz")]])

        with audit_requests() as audit, pytest.raises(ConfigError, match="other-bucket"):
            s3_housekeeping(
                bucket=BUCKET,
                prefix="logs/",
                as_of=as_of,
                inventory=written.manifest_uri,
                dry_run=False,
                create_bucket=False,
            )

        assert audit.of("DeleteObjects") == []


class TestVerifiedWholeBeforeTheFirstDelete:
    def test_deletes_nothing_when_a_row_past_the_first_batch_breaks_the_files_md5(
        self, aws: AwsClients, as_of: datetime
    ) -> None:
        # 1500 old objects and one written today; the data file's row for today's object
        # says 2020 (damage after AWS wrote it): its MD5 no longer matches the manifest's.
        aws.s3.create_bucket(Bucket=BUCKET)
        aws.s3.create_bucket(Bucket=REPORTS)
        old = as_of - timedelta(days=90)
        keys = [f"logs/{number:05d}.gz" for number in range(1500)]
        bulk_put(BUCKET, keys, old)
        aws.s3.put_object(Bucket=BUCKET, Key="logs/00500-young.gz", Body=b"")
        young = aws.s3.head_object(Bucket=BUCKET, Key="logs/00500-young.gz")["LastModified"]
        rows = [row(key, LastModifiedDate=stamp(old)) for key in keys]
        rows.insert(501, row("logs/00500-young.gz", LastModifiedDate=stamp(young)))
        written = put_inventory(aws.s3, REPORTS, BUCKET, [rows])
        damaged = [dict(entry) for entry in rows]
        damaged[501]["LastModifiedDate"] = stamp(young.replace(year=2020))
        aws.s3.put_object(
            Bucket=REPORTS,
            Key=written.data_keys[0],
            Body=csv_body([filled_row(entry, BUCKET) for entry in damaged], CURRENT_FIELDS),
        )

        with audit_requests() as audit, pytest.raises(ConfigError, match="changed or damaged"):
            s3_housekeeping(
                bucket=BUCKET,
                prefix="logs/",
                older_than_days=30,
                as_of=as_of,
                inventory=written.manifest_uri,
                dry_run=False,
                create_bucket=False,
            )

        assert audit.of("DeleteObjects") == []
        assert aws.s3.head_object(Bucket=BUCKET, Key="logs/00500-young.gz")["ETag"]
        assert aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="logs/")["KeyCount"] == 1000

    def test_refuses_a_row_repeated_in_two_data_files_and_deletes_nothing(
        self, aws: AwsClients, as_of: datetime
    ) -> None:
        aws.s3.create_bucket(Bucket=BUCKET)
        aws.s3.create_bucket(Bucket=REPORTS)
        old = as_of - timedelta(days=90)
        bulk_put(BUCKET, ["logs/a.gz", "logs/b.gz"], old)
        rows = [
            row(key, LastModifiedDate=stamp(old), Size="0") for key in ("logs/a.gz", "logs/b.gz")
        ]
        written = put_inventory(aws.s3, REPORTS, BUCKET, [rows, rows[:1]])

        with audit_requests() as audit, pytest.raises(SafetyRefusal, match="more than once"):
            s3_housekeeping(
                bucket=BUCKET,
                prefix="logs/",
                as_of=as_of,
                inventory=written.manifest_uri,
                dry_run=False,
                create_bucket=False,
            )

        assert audit.of("DeleteObjects") == []


class TestVersionsFromAnInventory:
    """An inventory promises no order: a key's versions may lie in several data files."""

    @pytest.fixture
    def versions(self, aws: AwsClients, as_of: datetime) -> list[dict[str, str]]:
        """temp/a: a version 100 days old, then a current one 10 days old; temp/b: one version
        100 days old; temp/c: a version 100 days old under a delete marker 50 days old. The
        inventory's rows of them, newest last."""
        aws.s3.create_bucket(Bucket=BUCKET)
        aws.s3.create_bucket(Bucket=REPORTS)
        aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        for key in ("temp/a", "temp/a", "temp/b", "temp/c"):
            aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"body")
        aws.s3.delete_object(Bucket=BUCKET, Key="temp/c")
        for key, ages in (("temp/a", (100, 10)), ("temp/b", (100,)), ("temp/c", (100, 50))):
            backdate_versions(BUCKET, key, [as_of - timedelta(days=d) for d in ages])
        listed = aws.s3.list_object_versions(Bucket=BUCKET)
        rows = []
        for entry in [*listed["Versions"], *listed["DeleteMarkers"]]:
            marker = "ETag" not in entry
            rows.append(
                row(
                    entry["Key"],
                    VersionId=entry["VersionId"],
                    IsLatest=str(entry["IsLatest"]).lower(),
                    IsDeleteMarker=str(marker).lower(),
                    Size="" if marker else str(entry["Size"]),
                    ETag="" if marker else entry["ETag"].strip('"'),
                    StorageClass="" if marker else "STANDARD",
                    LastModifiedDate=stamp(entry["LastModified"]),
                )
            )
        return sorted(rows, key=lambda r: (r["Key"], r["LastModifiedDate"]))

    def test_counts_the_keys_left_without_data_once_each_when_a_keys_rows_are_apart(
        self, aws: AwsClients, as_of: datetime, versions: list[dict[str, str]]
    ) -> None:
        old_a, young_a, *rest = versions  # temp/a's versions in two files, far apart
        written = put_inventory(
            aws.s3, REPORTS, BUCKET, [[old_a, *rest], [young_a]], fields=VERSIONS_FIELDS
        )

        dry = s3_housekeeping(
            bucket=BUCKET,
            prefix="temp/",
            as_of=as_of,
            versions="all",
            inventory=written.manifest_uri,
            create_bucket=False,
        )
        done = s3_housekeeping(
            bucket=BUCKET,
            prefix="temp/",
            as_of=as_of,
            versions="all",
            inventory=written.manifest_uri,
            create_bucket=False,
            dry_run=False,
        )

        assert (dry.matched, dry.unrecoverable_keys) == (4, 2)  # temp/b and temp/c
        assert (done.deleted, done.skipped_changed, done.failed) == (4, 0, 0)
        left = aws.s3.list_object_versions(Bucket=BUCKET, Prefix="temp/")
        assert [(v["Key"], v["VersionId"]) for v in left.get("Versions", [])] == [
            ("temp/a", young_a["VersionId"])
        ]
        assert left.get("DeleteMarkers", []) == []


def test_an_inventorys_lock_fields_keep_locked_objects_without_asking_s3_about_each(
    aws: AwsClients, as_of: datetime
) -> None:
    """With ObjectLockRetainUntilDate, ObjectLockMode and ObjectLockLegalHoldStatus in its
    schema, an inventory says what holds each object: no HeadObject, no
    GetObjectLockConfiguration."""
    aws.s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    aws.s3.create_bucket(Bucket=REPORTS)
    old = stamp(as_of - timedelta(days=90))
    unlocked = {
        "ObjectLockRetainUntilDate": "",
        "ObjectLockMode": "",
        "ObjectLockLegalHoldStatus": "",
    }
    rows = [
        row("logs/held", LastModifiedDate=old, **{**unlocked, "ObjectLockLegalHoldStatus": "ON"}),
        row(
            "logs/retained",
            LastModifiedDate=old,
            **{
                **unlocked,
                "ObjectLockMode": "GOVERNANCE",
                "ObjectLockRetainUntilDate": "2999-01-01T00:00:00.000Z",
            },
        ),
        row(
            "logs/expired",
            LastModifiedDate=old,
            **{
                **unlocked,
                "ObjectLockMode": "COMPLIANCE",
                "ObjectLockRetainUntilDate": "2020-01-01T00:00:00.000Z",
            },
        ),
        row("logs/free", LastModifiedDate=old, **unlocked),
    ]
    fields = (*CURRENT_FIELDS, *unlocked)
    written = put_inventory(aws.s3, REPORTS, BUCKET, [rows], fields=fields)

    with audit_requests() as audit:
        report = s3_housekeeping(
            bucket=BUCKET,
            prefix="logs/",
            older_than_days=30,
            as_of=as_of,
            inventory=written.manifest_uri,
            create_bucket=False,
            list_kept=True,
        )

    assert (report.matched, report.kept) == (2, {"locked": 2})
    kept = read_kept_list(Path(report.kept_list or ""))
    details = sorted(line.get("detail", "") for line in kept)
    assert details == ["legal hold", "retained until 2999-01-01T00:00:00+00:00"]
    assert audit.of("HeadObject") == [] and audit.of("GetObjectLockConfiguration") == []
