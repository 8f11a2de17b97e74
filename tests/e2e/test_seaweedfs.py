"""Against a real S3 server (SeaweedFS): deleting while listing with exact request counts, the
1000-key limit, and a saved plan whose changed key survives through its ETag condition."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools.prefect_server import PrefectServer
from tests.e2e.conftest import Cli
from tests.support.audit import audit_requests
from tests.support.servers import S3Server, seaweedfs

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


def fill(server: S3Server, bucket: str, old: int, young: int) -> datetime:
    """Put `old` objects, then `young` ones a moment later, under bench/, and old ones beside
    it. SeaweedFS cannot backdate: returns the run's as_of, 30 days after a moment between
    the two batches, so that with 30 days the cutoff falls exactly between them."""
    s3 = server.client()
    s3.create_bucket(Bucket=bucket)

    def put(key: str) -> None:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, [f"bench/old-{n:05d}" for n in range(old)] + ["bench-keep/old"]))
        time.sleep(1.5)
        between = datetime.now(UTC) - timedelta(seconds=0.7)
        time.sleep(1.5)
        list(pool.map(put, [f"bench/new-{n:05d}" for n in range(young)]))
    return between + timedelta(days=30)


def keys(server: S3Server, bucket: str) -> set[str]:
    found: set[str] = set()
    for page in server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found.update(obj["Key"] for obj in page.get("Contents", []))
    return found


@pytest.fixture
def on_weed(weed: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    for name, value in weed.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ALLOW_FUTURE_AS_OF", "true")
    return weed


def test_deletes_while_listing_with_two_requests_per_1000_when_no_guard_is_set(
    on_weed: S3Server, prefect_harness: None
) -> None:
    from flows.s3_housekeeping import s3_housekeeping

    bucket = f"stream-{uuid.uuid4().hex[:8]}"
    as_of = fill(on_weed, bucket, old=3000, young=400)

    with audit_requests() as audit:
        report = s3_housekeeping(
            bucket=bucket,
            prefix="bench/",
            older_than_days=30,
            as_of=as_of,
            dry_run=False,
            create_bucket=False,
        )

    deletes = audit.of("DeleteObjects")
    assert len(audit.of("ListObjectsV2")) == 4  # ceil(3,400 / 1000)
    assert len(deletes) == 3  # ceil(3,000 / 1000)
    assert all(len(call.params["Delete"]["Objects"]) <= 1000 for call in deletes)
    assert all("ETag" in entry for call in deletes for entry in call.params["Delete"]["Objects"])
    assert (report.matched, report.deleted, report.failed) == (3000, 3000, 0)
    remaining = keys(on_weed, bucket)
    assert remaining == {f"bench/new-{n:05d}" for n in range(400)} | {"bench-keep/old"}


def test_saved_plan_skips_a_key_changed_after_planning(
    weed: S3Server, prefect_api: PrefectServer, tmp_path: Path
) -> None:
    bucket = f"plan-{uuid.uuid4().hex[:8]}"
    as_of = fill(weed, bucket, old=1200, young=10)
    cli = Cli(
        {
            **os.environ,
            **weed.environment(),
            "ALLOW_FUTURE_AS_OF": "true",
            "PREFECT_API_URL": prefect_api.api_url,
            "PREFECT_HOME": str(tmp_path / "prefect-home"),
            "MANIFEST_LOCATION": str(tmp_path / "plans"),
        }
    )
    common = [
        "run",
        "--bucket",
        bucket,
        "--prefix",
        "bench/",
        "--older-than-days",
        "30",
        "--no-create-bucket",
    ]
    dry_report = tmp_path / "dry.json"

    dry = cli(*common, "--as-of", as_of.isoformat(), "--report-json", str(dry_report))
    assert dry.code == 0, dry.stderr
    plan = json.loads(dry_report.read_text())["manifest"]
    changed = "bench/old-00042"
    weed.client().put_object(Bucket=bucket, Key=changed, Body=b"rewritten after planning")
    report_path = tmp_path / "apply.json"

    # The same cutoff as the plan's: a later one is refused (the plan would delete what the
    # run keeps).
    applied = cli(
        *common,
        "--as-of",
        as_of.isoformat(),
        "--plan",
        plan,
        "--execute",
        "--report-json",
        str(report_path),
    )

    assert applied.code == 0, applied.stderr
    report: dict[str, Any] = json.loads(report_path.read_text())
    assert (report["matched"], report["deleted"], report["skipped_changed"]) == (1200, 1199, 1)
    # No listing of the prefix: the plan's keys are only confirmed, 1,000 neighbours a request.
    assert report["requests"].get("ListObjectsV2", 0) == 2
    remaining = keys(weed, bucket)
    assert remaining == {changed, "bench-keep/old"} | {f"bench/new-{n:05d}" for n in range(10)}


def test_inventory_rows_for_objects_rewritten_or_gone_since_are_kept_or_counted_when_applied(
    on_weed: S3Server, prefect_harness: None
) -> None:
    from flows.s3_housekeeping import s3_housekeeping
    from tests.support.inventory import put_inventory, row

    bucket = f"inventory-{uuid.uuid4().hex[:8]}"
    s3 = on_weed.client()
    s3.create_bucket(Bucket=bucket)
    stored = {}

    def put(key: str) -> None:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
        stored[key] = s3.head_object(Bucket=bucket, Key=key)

    def as_listed(key: str) -> dict[str, str]:
        moment = stored[key]["LastModified"].strftime("%Y-%m-%dT%H:%M:%S.000Z")
        etag, size = stored[key]["ETag"].strip('"'), str(stored[key]["ContentLength"])
        return row(key, ETag=etag, Size=size, LastModifiedDate=moment)

    # SeaweedFS cannot backdate: the cutoff falls between the old objects and bench/young, 30
    # days before the run's reference time, as fill() does; the rows say what S3 would.
    for key in ("bench/a", "bench/b", "bench/rewritten", "bench/gone"):
        put(key)
    time.sleep(1.5)
    as_of = datetime.now(UTC) - timedelta(seconds=0.7) + timedelta(days=30)
    time.sleep(1.5)
    put("bench/young")
    written = put_inventory(
        s3,
        bucket,
        bucket,
        [
            [as_listed("bench/a"), as_listed("bench/b")],
            [as_listed("bench/rewritten"), as_listed("bench/gone"), as_listed("bench/young")],
        ],
    )
    s3.put_object(Bucket=bucket, Key="bench/rewritten", Body=b"rewritten after the inventory")
    s3.delete_object(Bucket=bucket, Key="bench/gone")

    report = s3_housekeeping(
        bucket=bucket,
        prefix="bench/",
        older_than_days=30,
        as_of=as_of,
        inventory=written.manifest_uri,
        dry_run=False,
        create_bucket=False,
    )

    assert (report.matched, report.deleted, report.skipped_changed, report.failed) == (4, 3, 1, 0)
    assert report.already_gone == 1  # bench/gone: no longer listed, so not even sent
    assert {key for key in keys(on_weed, bucket) if key.startswith("bench/")} == {
        "bench/rewritten",
        "bench/young",
    }


def test_protect_tags_with_keep_and_exclude_rules_on_a_real_server(
    on_weed: S3Server, prefect_harness: None
) -> None:
    """Tags as a real server keeps them, read only for the 6 objects the other rules would
    delete; the newest of folder b kept, the tagged one of folder a, the excluded one."""
    from flows.s3_housekeeping import s3_housekeeping

    bucket = f"tags-{uuid.uuid4().hex[:8]}"
    s3 = on_weed.client()
    s3.create_bucket(Bucket=bucket)
    for key in ("a/1", "a/2", "a/3", "a/4", "b/1", "b/2", "b/3", "x.keep"):
        tagging = "keep=yes&team=data" if key == "a/2" else "team=data"
        s3.put_object(Bucket=bucket, Key=f"bench/{key}", Body=b"x", Tagging=tagging)
    time.sleep(1.5)
    between = datetime.now(UTC) - timedelta(seconds=0.7)
    time.sleep(1.5)
    s3.put_object(Bucket=bucket, Key="bench/a/new", Body=b"x")

    with audit_requests() as audit:
        report = s3_housekeeping(
            bucket=bucket,
            prefix="bench/",
            older_than_days=30,
            as_of=between + timedelta(days=30),
            dry_run=False,
            create_bucket=False,
            protect_tags=["keep=yes"],
            exclude=["*.keep"],
            keep_newest=1,
            group_by="depth:1",
        )

    assert keys(on_weed, bucket) == {f"bench/{k}" for k in ("a/2", "a/new", "b/3", "x.keep")}
    assert report.kept == {"exclude": 1, "keep_newest": 1, "protect_tag": 1}
    asked = sorted(call.params["Key"] for call in audit.of("GetObjectTagging"))
    assert asked == [f"bench/{k}" for k in ("a/1", "a/2", "a/3", "a/4", "b/1", "b/2")]
