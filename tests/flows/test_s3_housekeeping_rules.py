"""Retention rules through the flow, on in-process moto: each rule alone and together, what
they keep counted by reason, and a saved plan bound to its rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from deployments.local_aws import backdate
from flows.s3_housekeeping import s3_housekeeping
from tasks.aws import AwsClients
from tasks.errors import ConfigError, SafetyRefusal
from tasks.settings import load_settings

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
