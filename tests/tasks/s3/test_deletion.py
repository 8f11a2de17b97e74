"""The delete pipeline: bounded concurrency, backing off under SlowDown, isolating poison keys."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tasks.aws import AwsClients, AwsSettings, create_clients
from tasks.s3.deletion import AdaptiveLimit, ApplyResult, DeletePipeline, DeleteTarget
from tasks.s3.manifest import PlannedObject
from tests.support.faults import inject_delete_errors, reject_batches_containing
from tests.support.hooks import on_every_new_client
from tests.support.moto_backend import bulk_put

BUCKET = "pipeline-test-bucket"
OLD = datetime.now(UTC) - timedelta(days=90)


def planned(aws: AwsClients, count: int) -> list[PlannedObject]:
    """Put `count` objects and return them as planned entries with their real ETags."""
    aws.s3.create_bucket(Bucket=BUCKET)
    bulk_put(BUCKET, (f"temp/k{n:05d}" for n in range(count)), OLD)
    entries = []
    for page in aws.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            entries.append(PlannedObject(obj["Key"], obj["ETag"], obj["Size"], "x", "STANDARD"))
    return entries


def batches_of(entries: list[PlannedObject], size: int = 1000) -> list[list[PlannedObject]]:
    return [entries[i : i + size] for i in range(0, len(entries), size)]


def remaining(aws: AwsClients) -> int:
    return sum(
        page.get("KeyCount", 0)
        for page in aws.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    )


class ConcurrencyProbe:
    """Counts DeleteObjects requests in flight (each held open a little) and the peak."""

    def __init__(self, hold_s: float = 0.05) -> None:
        self.hold_s = hold_s
        self.in_flight = 0
        self.peak = 0
        self._lock = threading.Lock()

    def before(self, **_: Any) -> None:
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(self.hold_s)

    def after(self, **_: Any) -> None:
        with self._lock:
            self.in_flight -= 1


def delete_counting_in_flight(
    entries: list[PlannedObject], concurrency: int, pool: int, hold_s: float = 0.05
) -> tuple[ConcurrencyProbe, ApplyResult, int]:
    """Delete through a pipeline while counting requests in flight (each held open `hold_s`);
    also returns the limit the pipeline started with."""
    probe = ConcurrencyProbe(hold_s)
    with on_every_new_client(
        [
            ("before-call.s3.DeleteObjects", probe.before),
            ("after-call.s3.DeleteObjects", probe.after),
        ]
    ):
        s3 = create_clients(AwsSettings(region="us-east-1", max_pool_connections=pool)).s3
        with DeletePipeline(s3, DeleteTarget(BUCKET), concurrency=concurrency) as pipeline:
            initial = pipeline.limit.limit
            for batch in batches_of(entries):
                pipeline.submit(batch)
            result = pipeline.close()
    return probe, result, initial


class TestConcurrency:
    @pytest.mark.parametrize("concurrency", [1, 4])
    def test_never_exceeds_the_in_flight_limit_when_batches_queue_up(
        self, aws: AwsClients, concurrency: int
    ) -> None:
        probe, result, _ = delete_counting_in_flight(planned(aws, 8000), concurrency, pool=8)

        assert probe.peak == concurrency
        assert (result.planned, result.deleted, result.failed) == (8000, 8000, 0)
        assert remaining(aws) == 0

    def test_grows_past_the_initial_limit_to_the_maximum_when_batches_are_clean(
        self, aws: AwsClients
    ) -> None:
        # Held longer than in the test above: slots free one at a time as the limit grows, and
        # a loaded machine needs the overlap to have all ten requests open at one moment.
        probe, result, initial = delete_counting_in_flight(
            planned(aws, 30_000), 10, pool=12, hold_s=0.3
        )

        assert initial == 8  # the run starts below its maximum
        assert probe.peak == 10
        assert (result.planned, result.deleted, result.failed) == (30_000, 30_000, 0)
        assert remaining(aws) == 0

    def test_refuses_a_batch_larger_than_1000_keys(self, aws: AwsClients) -> None:
        entries = planned(aws, 1001)
        with (
            DeletePipeline(aws.s3, DeleteTarget(BUCKET)) as pipeline,
            pytest.raises(ValueError, match="at most 1000"),
        ):
            pipeline.submit(entries)


class TestThrottling:
    def test_limit_halves_on_throttling_and_grows_back_by_one(self) -> None:
        limit = AdaptiveLimit(8)
        for throttled in (True, True, False, False):
            limit.acquire()
            limit.release(throttled)
        assert limit.limit == 4  # 8 -> 4 -> 2 -> 3 -> 4

    def test_limit_starts_at_the_initial_value_and_grows_to_the_maximum_when_clean(self) -> None:
        limit = AdaptiveLimit(32, initial=8)
        seen = [limit.limit]
        for _ in range(40):
            limit.acquire()
            limit.release(throttled=False)
            seen.append(limit.limit)
        assert seen[:3] == [8, 9, 10]
        assert seen[24:] == [32] * 17  # reached after 24 clean batches, never above

    def test_initial_value_never_exceeds_the_maximum(self) -> None:
        assert AdaptiveLimit(4, initial=8).limit == 4

    def test_reduces_in_flight_and_accounts_everything_when_server_throttles(
        self, aws: AwsClients
    ) -> None:
        entries = planned(aws, 6000)

        def slow_down_first_try(key: str, attempt: int) -> str | None:
            return "SlowDown" if attempt == 1 and key.endswith("7") else None

        with inject_delete_errors(slow_down_first_try) as faults:
            s3 = create_clients(AwsSettings(region="us-east-1")).s3
            with DeletePipeline(
                s3, DeleteTarget(BUCKET), concurrency=8, retry_base_delay_s=0
            ) as pipeline:
                for batch in batches_of(entries):
                    pipeline.submit(batch)
                result = pipeline.close()

        throttled = [key for key, code in faults.injected if code == "SlowDown"]
        assert len(throttled) == 600
        assert all(faults.attempts[key] == 2 for key in throttled)  # retried once, batched
        assert pipeline.limit.limit < 8
        assert (result.deleted, result.failed, result.skipped_changed) == (6000, 0, 0)
        assert remaining(aws) == 0


class TestAccounting:
    def test_counts_an_error_naming_no_planned_key_as_a_failure_when_the_answer_has_one(
        self, aws: AwsClients
    ) -> None:
        entries = planned(aws, 20)

        def foreign_error(parsed: dict[str, Any], **_: Any) -> None:
            # An error for a key this batch did not send (as a mis-encoded key would come back).
            parsed.setdefault("Errors", []).append({"Key": "temp/other", "Code": "AccessDenied"})

        with on_every_new_client([("after-call.s3.DeleteObjects", foreign_error)]):
            s3 = create_clients(AwsSettings(region="us-east-1")).s3
            with DeletePipeline(s3, DeleteTarget(BUCKET)) as pipeline:
                pipeline.submit(entries)
                result = pipeline.close()

        # It cannot be told which key it was: one of them is not counted as deleted.
        assert (result.planned, result.deleted) == (20, 19)
        assert dict(result.failed_by_code) == {"AccessDenied": 1}


class TestPoisonKeys:
    def test_isolates_a_poison_key_and_deletes_the_rest_when_a_batch_is_rejected(
        self, aws: AwsClients
    ) -> None:
        entries = planned(aws, 2500)
        poison = entries[1234].key

        with reject_batches_containing({poison}) as rejections:
            s3 = create_clients(AwsSettings(region="us-east-1")).s3
            with DeletePipeline(s3, DeleteTarget(BUCKET), concurrency=2) as pipeline:
                for batch in batches_of(entries):
                    pipeline.submit(batch)
                result = pipeline.close()

        assert dict(result.failed_by_code) == {"MalformedXML": 1}
        assert (result.planned, result.deleted) == (2500, 2499)
        # The rejected batch was halved until the key stood alone: 1000, 500, ... , 1.
        assert rejections.rejected_sizes == [1000, 500, 250, 125, 63, 32, 16, 8, 4, 2, 1]
        keys_left = {
            obj["Key"]
            for page in aws.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for obj in page.get("Contents", [])
        }
        assert keys_left == {poison}
