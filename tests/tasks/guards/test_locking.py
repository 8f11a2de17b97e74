"""An executing run's hold on its bucket: the lease task, and the Prefect concurrency limit."""

from __future__ import annotations

from datetime import datetime

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL

from tasks.aws import AwsClients
from tasks.errors import SafetyRefusal
from tasks.guards import locking
from tasks.guards.locking import (
    bucket_concurrency,
    concurrency_limit_name,
    lock_bucket_task,
)
from tasks.record.outcome import SHORT_LIVED_API
from tasks.s3.bucket_lock import LOCK_KEY
from tasks.settings import RunSettings, load_settings

pytestmark = pytest.mark.usefixtures("prefect_harness")

BUCKET = "locking-test-bucket"


def settings(as_of: datetime) -> RunSettings:
    return load_settings({"bucket": BUCKET, "prefix": "tmp/", "as_of": as_of, "dry_run": False})


def active_slots() -> int:
    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(concurrency_limit_name(BUCKET))
        except ObjectNotFound:
            return 0
        return limit.active_slots


def test_the_lease_task_names_this_flow_run_as_the_holder(aws: AwsClients, as_of: datetime) -> None:
    aws.s3.create_bucket(Bucket=BUCKET)

    @flow
    def take() -> tuple[str, str]:
        from prefect.runtime import flow_run

        lock = lock_bucket_task(aws.s3, settings(as_of), None)
        held = aws.s3.get_object(Bucket=BUCKET, Key=LOCK_KEY)["Body"].read().decode()
        lock.release()
        return held, str(flow_run.get_id())

    held, run_id = take()

    assert f'"run_id": "{run_id}"' in held
    assert "Contents" not in aws.s3.list_objects_v2(Bucket=BUCKET)


def test_holds_the_buckets_slot_and_refuses_a_second_holder(
    as_of: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locking, "SLOT_GRACE_S", 1.0)
    run = settings(as_of)

    with bucket_concurrency(run):
        assert active_slots() == 1
        with pytest.raises(SafetyRefusal) as refused, bucket_concurrency(run):
            pass
    assert active_slots() == 0
    assert refused.value.guard == "bucket_lock"
    assert (
        f"another run holds the Prefect concurrency limit '{concurrency_limit_name(BUCKET)}'"
        in str(refused.value)
    )


def test_takes_no_slot_when_the_api_dies_with_the_process(
    as_of: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As the command's temporary API says of itself: a slot taken there by a run killed now
    # would never be freed in the database the next runs share.
    monkeypatch.setenv(SHORT_LIVED_API, str(PREFECT_API_URL.value()))
    monkeypatch.setattr(locking, "SLOT_GRACE_S", 1.0)
    run = settings(as_of)

    with bucket_concurrency(run), bucket_concurrency(run):
        assert active_slots() == 0
