"""One process as the executor: a dry run has no consumer; an executing run journals from the start,
and what a plan cut short held is on disk."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tasks.aws import AwsClients, create_clients
from tasks.cleanup import plan_request
from tasks.errors import AwsApiError
from tasks.execution.local import InThisProcess
from tasks.s3.bucket_lock import BucketLock, new_lease
from tasks.s3.progress import Progress
from tasks.settings import RunSettings, load_settings
from tests.support.faults import fail_calls_after
from tests.support.moto_backend import bulk_put
from tests.support.plans import readable_lines

pytestmark = pytest.mark.usefixtures("prefect_harness")

BUCKET = "in-this-process-bucket"


@pytest.fixture
def filled(aws: AwsClients, as_of: datetime) -> None:
    """3000 old objects of 7 bytes in three folders."""
    aws.s3.create_bucket(Bucket=BUCKET)
    keys = [f"data/day-{day}/k{n:04d}" for day in (1, 2, 3) for n in range(1000)]
    bulk_put(BUCKET, keys, as_of - timedelta(days=90), body=b"7 bytes")


def settings_for(as_of: datetime, dry_run: bool) -> RunSettings:
    return load_settings({"bucket": BUCKET, "prefix": "data/", "as_of": as_of, "dry_run": dry_run})


def executor(
    aws: AwsClients, settings: RunSettings, tmp_path: Path, lock: BucketLock | None
) -> InThisProcess:
    request = plan_request(settings, None, True)
    return InThisProcess(settings, aws, request, tmp_path, Progress(), lock)


def test_a_dry_run_has_no_consumer_and_applies_nothing(
    aws: AwsClients, filled: None, as_of: datetime, tmp_path: Path
) -> None:
    with executor(aws, settings_for(as_of, True), tmp_path, None) as here:
        plan = here.plan(streaming=False)
        with pytest.raises(RuntimeError, match="applies nothing"):
            here.apply(plan, streamed=False)
        settled = here.settled()

    assert (plan.matched, here.journal, settled.planned) == (3000, None, 0)


def test_an_executing_run_journals_before_it_plans_and_deletes_while_listing(
    aws: AwsClients, filled: None, as_of: datetime, tmp_path: Path
) -> None:
    settings = settings_for(as_of, False)
    with (
        BucketLock(aws.s3, BUCKET, new_lease("run-here", "data/", 600)) as lock,
        executor(aws, settings, tmp_path, lock) as here,
    ):
        assert here.journal is not None and Path(here.journal).is_file()
        plan = here.plan(streaming=True)
        result = here.apply(plan, streamed=True)

    assert (result.planned, result.deleted) == (3000, 3000)
    assert aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="data/")["KeyCount"] == 0


def test_names_the_plan_on_disk_and_what_it_held_when_the_listing_fails_midway(
    aws: AwsClients, filled: None, as_of: datetime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIST_CONCURRENCY", "1")  # the folder, day-1, then day-2 fails
    settings = settings_for(as_of, False)
    with (
        fail_calls_after("s3.ListObjectsV2", 2, "InternalError", 500, times=100),
        BucketLock(aws.s3, BUCKET, new_lease("run-here", "data/", 600)) as lock,
        executor(create_clients(settings.aws()), settings, tmp_path, lock) as here,
        pytest.raises(AwsApiError),
    ):
        here.plan(streaming=True)

    cut = here.planned_so_far()
    assert cut.matched == 1000 and cut.manifest is not None and Path(cut.manifest).is_file()
    # What it had read, and the bytes of what it held: a report that adds up.
    assert cut.scanned >= cut.matched
    held = [line for line in readable_lines(Path(cut.manifest)) if "key" in line]
    assert cut.matched_bytes == sum(line["size"] for line in held) == 7 * 1000
    assert here.settled().planned <= cut.matched
