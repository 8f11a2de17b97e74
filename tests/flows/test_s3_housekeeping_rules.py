"""Retention rules through the flow, on in-process moto: each rule alone and together, what
they keep counted by reason, and a saved plan bound to its rules."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deployments.local_aws import backdate
from flows.s3_housekeeping import s3_housekeeping
from tasks.aws import AwsClients
from tasks.errors import ConfigError, SafetyRefusal
from tasks.s3.kept_list import read_kept_list
from tasks.s3.manifest import read_objects
from tasks.settings import load_settings
from tests.support.moto_backend import backdate_versions

pytestmark = pytest.mark.usefixtures("prefect_harness")

BUCKET = "rules-flow-bucket"
#: key -> (age in days, size, storage class)
OBJECTS = {
    "logs/app/1.log": (90, 100, "STANDARD"),
    "logs/app/2.log.keep": (90, 100, "STANDARD"),
    "logs/db/dump.sql.gz": (90, 5000, "STANDARD_IA"),
    "logs/tiny.txt": (90, 3, "STANDARD"),
    "logs/app/new.log": (1, 100, "STANDARD"),
    "other/old.log": (90, 100, "STANDARD"),
}


@pytest.fixture
def seeded(aws: AwsClients, as_of: datetime) -> None:
    aws.s3.create_bucket(Bucket=BUCKET)
    for key, (days, size, storage_class) in OBJECTS.items():
        aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"x" * size, StorageClass=storage_class)
        backdate(BUCKET, key, as_of - timedelta(days=days))


def keys(aws: AwsClients) -> set[str]:
    return {o["Key"] for o in aws.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def run(as_of: datetime, **overrides: Any) -> Any:
    parameters: dict[str, Any] = {
        "bucket": BUCKET,
        "prefix": "logs/",
        "older_than_days": 30,
        "as_of": as_of,
        "create_bucket": False,
    }
    return s3_housekeeping(**(parameters | overrides))


OLD = {"logs/app/1.log", "logs/app/2.log.keep", "logs/db/dump.sql.gz", "logs/tiny.txt"}


@pytest.mark.parametrize(
    ("rules", "deleted", "kept"),
    [
        ({"max_size": "1KiB"}, OLD - {"logs/db/dump.sql.gz"}, {"size": 1}),
        ({"storage_classes": ["STANDARD_IA"]}, {"logs/db/dump.sql.gz"}, {"storage_class": 3}),
        (
            {"include": ["app/*", "*.txt"], "exclude": ["**/*.keep"], "min_size": 50},
            {"logs/app/1.log"},
            {"exclude": 1, "include": 1, "size": 1},
        ),
    ],
    # Each rule's own meaning is proved on random listings (tests/tasks/s3/); these runs
    # prove the flow applies them, sizes with units and classes as S3 reports them.
    ids=["max-size", "storage-class", "combined"],
)
def test_deletes_only_what_the_rules_leave_and_counts_the_rest_by_reason(
    aws: AwsClients,
    seeded: None,
    as_of: datetime,
    rules: dict[str, Any],
    deleted: set[str],
    kept: dict[str, int],
) -> None:
    report = run(as_of, dry_run=False, **rules)

    assert set(OBJECTS) - keys(aws) == deleted
    assert (report.deleted, report.kept) == (len(deleted), kept)
    # Rules only keep more: the young object and the one outside the prefix always stay.
    assert {"logs/app/new.log", "other/old.log"} <= keys(aws)


def test_a_dry_runs_plan_applies_only_under_the_rules_it_was_made_with(
    aws: AwsClients, seeded: None, as_of: datetime
) -> None:
    rules = {"exclude": ["**/*.keep"], "min_size": "10"}
    planned = run(as_of, **rules)

    with pytest.raises(SafetyRefusal, match="plan_rules"):
        run(as_of, dry_run=False, plan=planned.manifest, exclude=["**/*.keep"])
    assert keys(aws) == set(OBJECTS)

    applied = run(as_of, dry_run=False, plan=planned.manifest, **rules)

    assert applied.deleted == 2
    assert set(OBJECTS) - keys(aws) == {"logs/app/1.log", "logs/db/dump.sql.gz"}


def test_each_plan_line_names_the_rule_that_selected_it(
    aws: AwsClients, seeded: None, as_of: datetime
) -> None:
    """Under include patterns, the first one matching; under rules that only keep, the age;
    without rules, nothing (the header says every line is there by its age)."""
    included = run(as_of, include=["db/**", "**/*.log", "**"], exclude=["**/*.keep"])
    only_keeping = run(as_of, min_size="10")
    without = run(as_of)

    assert rules_named(included.manifest) == {
        "logs/app/1.log": "include:**/*.log",
        "logs/db/dump.sql.gz": "include:db/**",
        "logs/tiny.txt": "include:**",
    }
    assert set(rules_named(only_keeping.manifest).values()) == {"age"}
    assert set(rules_named(without.manifest).values()) == {None}


def rules_named(manifest: str) -> dict[str, str | None]:
    return {entry.key: entry.rule for entry in read_objects(Path(manifest))}


def test_says_no_lifecycle_rule_can_do_a_run_with_patterns(
    aws: AwsClients, seeded: None, as_of: datetime
) -> None:
    with_sizes = run(as_of, min_size="10", max_size="1MiB")
    with_patterns = run(as_of, include=["app/**"])

    assert with_sizes.lifecycle_rule["Filter"] == {
        "And": {"Prefix": "logs/", "ObjectSizeGreaterThan": 9, "ObjectSizeLessThan": 1048577}
    }
    assert with_patterns.lifecycle_rule == {}
    assert any("include: an S3 lifecycle rule cannot" in note for note in with_patterns.notes)


@pytest.mark.parametrize(
    ("rules", "says"),
    [
        ({"include": ["app/[a"]}, "include"),
        ({"min_size": "ten"}, "min_size"),
        ({"min_size": "2KB", "max_size": "1KB"}, "max_size: must not be below min_size"),
        ({"storage_classes": ["COLD"]}, "storage_classes"),
    ],
)
def test_refuses_rules_it_cannot_use_before_any_aws_request(
    rules: dict[str, Any], says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        load_settings({"bucket": BUCKET, "prefix": "logs/", **rules})


BACKUPS = {
    # key -> age in days: daily dumps of two databases, the first stopped 40 days ago.
    **{f"logs/db1/{day:03d}.sql": 40 + day for day in range(6)},
    **{f"logs/db2/{day:03d}.sql": day * 10 for day in range(6)},
}


@pytest.fixture
def backups(aws: AwsClients, as_of: datetime) -> None:
    aws.s3.create_bucket(Bucket=BUCKET)
    for key, days in BACKUPS.items():
        aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
        backdate(BUCKET, key, as_of - timedelta(days=days, hours=1))


def test_keep_newest_per_folder_keeps_a_stopped_databases_last_backups(
    aws: AwsClients, backups: None, as_of: datetime
) -> None:
    """db1's backups are all older than the cutoff: its 2 newest stay all the same. db2 has 3
    young ones (0, 10 and 20 days): its old ones go."""
    report = run(as_of, dry_run=False, keep_newest=2, group_by="depth:1")

    assert set(BACKUPS) - keys(aws) == {
        "logs/db1/002.sql",
        "logs/db1/003.sql",
        "logs/db1/004.sql",
        "logs/db1/005.sql",
        "logs/db2/003.sql",
        "logs/db2/004.sql",
        "logs/db2/005.sql",
    }
    assert (report.deleted, report.kept) == (7, {"keep_newest": 2})
    assert report.lifecycle_rule == {}
    assert any("keep_newest: an S3 lifecycle rule cannot" in note for note in report.notes)


def test_time_from_key_ages_backups_by_the_date_in_their_names(
    aws: AwsClients, as_of: datetime
) -> None:
    """Copied yesterday (LastModified young), named for 2020: still young, never deleted.
    Copied long ago, named for 2020: deleted; named for tomorrow: kept and counted."""
    aws.s3.create_bucket(Bucket=BUCKET)
    tomorrow = (as_of + timedelta(days=1)).strftime("%Y-%m-%d")
    ages = {"logs/2020-01-02.sql": 1, "logs/2020-01-01.sql": 90, f"logs/{tomorrow}.sql": 90}
    ages["logs/undated.sql"] = 90
    for key, days in ages.items():
        aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
        backdate(BUCKET, key, as_of - timedelta(days=days))

    dated = r"(?P<year>\d{4})-(?P<month>\d\d)-(?P<day>\d\d)"
    report = run(as_of, dry_run=False, time_from_key=dated)

    assert set(ages) - keys(aws) == {"logs/2020-01-01.sql"}
    assert report.kept == {"time_from_key": 2}


def test_keep_newest_in_versions_mode_keeps_the_newest_noncurrent_versions(
    aws: AwsClients, as_of: datetime
) -> None:
    """As lifecycle's NewerNoncurrentVersions: of 5 noncurrent versions, the 2 newest stay."""
    aws.s3.create_bucket(Bucket=BUCKET)
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    for n in range(6):
        aws.s3.put_object(Bucket=BUCKET, Key="logs/state.json", Body=str(n).encode())
    backdate_versions(
        BUCKET, "logs/state.json", [as_of - timedelta(days=100 - n) for n in range(6)]
    )

    report = run(as_of, dry_run=False, versions="noncurrent", keep_newest=2)

    left = aws.s3.list_object_versions(Bucket=BUCKET, Prefix="logs/")["Versions"]
    bodies = sorted(
        aws.s3.get_object(Bucket=BUCKET, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
        for v in left
    )
    assert bodies == [b"3", b"4", b"5"]  # the current one and the 2 newest noncurrent
    assert (report.deleted, report.kept) == (3, {"keep_newest": 2})


def test_a_saved_plan_is_refused_under_other_keep_rules(
    aws: AwsClients, backups: None, as_of: datetime
) -> None:
    planned = run(as_of, keep_newest=2, group_by="depth:1")

    with pytest.raises(SafetyRefusal, match="plan_rules"):
        run(
            as_of,
            dry_run=False,
            plan=planned.manifest,
            plan_sha256=planned.manifest_sha256,
            keep_newest=1,
            group_by="depth:1",
        )
    assert keys(aws) == set(BACKUPS)


def test_names_every_problem_of_bad_keep_rules_at_once() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(
            {
                "bucket": BUCKET,
                "prefix": "logs/",
                "keep_newest": -1,
                "keep_daily": 2,
                "group_by": r"^(\w+)/",
                "time_from_key": r"(?P<month>\d\d)",
            }
        )
    message = str(refused.value)
    assert "keep_newest" in message
    assert "group_by" in message and "(?P<group>" in message
    assert "time_from_key" in message and "(?P<year>" in message


@pytest.mark.parametrize(
    ("rules", "says"),
    [
        ({"group_by": "depth:1"}, "groups only matter to a keep rule"),
        ({"keep_newest": 1, "group_by": "depth:0"}, "depth:N takes N from 1"),
        ({"time_from_key": "(?P<year>"}, "is not a regular expression"),
        ({"keep_newest": 1, "group_by": "depth:1", "versions": "all"}, "versions current"),
    ],
)
def test_refuses_keep_rules_it_cannot_use(rules: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(says)):
        load_settings({"bucket": BUCKET, "prefix": "logs/", **rules})


def test_protect_tags_keep_tagged_objects_asking_only_about_what_would_go(
    aws: AwsClients, seeded: None, as_of: datetime
) -> None:
    """Tags are read for the 3 objects the other rules would delete (not the young one, not
    the one outside the prefix, not the one exclude keeps), one request each."""
    aws.s3.put_object_tagging(
        Bucket=BUCKET,
        Key="logs/app/1.log",
        Tagging={"TagSet": [{"Key": "retain", "Value": "legal"}]},
    )
    aws.s3.put_object_tagging(
        Bucket=BUCKET, Key="logs/tiny.txt", Tagging={"TagSet": [{"Key": "keep", "Value": "x"}]}
    )
    aws.s3.put_object_tagging(
        Bucket=BUCKET,
        Key="logs/db/dump.sql.gz",
        Tagging={"TagSet": [{"Key": "retain", "Value": "no"}]},
    )

    report = run(as_of, dry_run=False, protect_tags=["retain=legal", "keep"], exclude=["**/*.keep"])

    assert set(OBJECTS) - keys(aws) == {"logs/db/dump.sql.gz"}
    assert report.kept == {"exclude": 1, "protect_tag": 2}
    assert report.requests["GetObjectTagging"] == 3
    assert report.lifecycle_rule == {}


def test_object_lock_keeps_objects_under_retention_or_a_legal_hold(
    aws: AwsClients, as_of: datetime
) -> None:
    aws.s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    for key in ("logs/retained", "logs/held", "logs/free"):
        aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
        backdate(BUCKET, key, as_of - timedelta(days=90))
    aws.s3.put_object_retention(
        Bucket=BUCKET,
        Key="logs/retained",
        Retention={"Mode": "GOVERNANCE", "RetainUntilDate": datetime.now(UTC) + timedelta(days=9)},
    )
    aws.s3.put_object_legal_hold(Bucket=BUCKET, Key="logs/held", LegalHold={"Status": "ON"})

    report = run(as_of, dry_run=False)

    current = {o["Key"] for o in aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="logs/")["Contents"]}
    assert current == {"logs/retained", "logs/held"}
    assert (report.deleted, report.kept) == (1, {"locked": 2})
    assert report.requests["GetObjectLockConfiguration"] == 1
    assert report.requests["HeadObject"] == 3


def test_the_kept_list_names_each_kept_object_with_its_rule(
    aws: AwsClients, backups: None, as_of: datetime, tmp_path: Path
) -> None:
    """borg's --list-kept: beside the plan, each candidate a rule kept, and nothing else."""
    report = run(
        as_of,
        keep_newest=2,
        group_by="depth:1",
        exclude=["db1/005.sql"],
        list_kept=True,
        manifest_location=str(tmp_path),
    )

    assert report.kept_list == report.manifest.removesuffix(".jsonl.gz") + ".kept.jsonl.gz"
    listed = read_kept_list(Path(report.kept_list))
    assert sorted((line["key"], line["reason"]) for line in listed) == [
        ("logs/db1/000.sql", "keep_newest"),
        ("logs/db1/001.sql", "keep_newest"),
        ("logs/db1/005.sql", "exclude"),
    ]
    assert all(line["size"] == 1 and line["last_modified"] for line in listed)
    assert report.kept == {"keep_newest": 2, "exclude": 1}


def test_the_kept_list_says_what_holds_a_locked_object(
    aws: AwsClients, as_of: datetime, tmp_path: Path
) -> None:
    aws.s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    aws.s3.put_object(Bucket=BUCKET, Key="logs/held", Body=b"x")
    backdate(BUCKET, "logs/held", as_of - timedelta(days=90))
    aws.s3.put_object_legal_hold(Bucket=BUCKET, Key="logs/held", LegalHold={"Status": "ON"})

    report = run(as_of, list_kept=True, manifest_location=str(tmp_path))

    [line] = read_kept_list(Path(report.kept_list))
    assert (line["key"], line["reason"], line["detail"]) == ("logs/held", "locked", "legal hold")
    assert report.matched == 0


def test_a_plan_under_keep_rules_is_applied_only_with_its_digest(
    aws: AwsClients, backups: None, as_of: datetime
) -> None:
    """A line a keep rule keeps cannot be told from one it releases without the whole group:
    only the plan reviewed, bound by its SHA-256, is applied."""
    rules = {"keep_newest": 2, "group_by": "depth:1"}
    planned = run(as_of, **rules)

    with pytest.raises(SafetyRefusal, match=r"keep_newest.*SHA-256"):
        run(as_of, dry_run=False, plan=planned.manifest, **rules)
    assert keys(aws) == set(BACKUPS)

    applied = run(
        as_of, dry_run=False, plan=planned.manifest, plan_sha256=planned.manifest_sha256, **rules
    )
    assert applied.deleted == planned.matched == 7
