"""The bucket's lease against moto: taken with If-None-Match, renewed and released with If-Match,
refused while held, waited for, taken over once expired, and lost when another run takes it."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tasks.aws import AwsClients, AwsSettings, create_clients
from tasks.s3.bucket_lock import (
    LOCK_KEY,
    BucketLock,
    BucketLocked,
    Lease,
    LeaseWatch,
    LockLost,
    new_lease,
)
from tests.support.audit import audit_requests

BUCKET = "locked-bucket"


@pytest.fixture
def bucket(aws: AwsClients) -> str:
    aws.s3.create_bucket(Bucket=BUCKET)
    return BUCKET


def lock(aws: AwsClients, run_id: str, expiry_s: float = 600, wait_s: float = 0) -> BucketLock:
    lease = new_lease(run_id, "tmp/", expiry_s)
    return BucketLock(aws.s3, BUCKET, lease, wait_s=wait_s, poll_s=0.1)


def stored(aws: AwsClients) -> dict[str, object]:
    return dict(json.loads(aws.s3.get_object(Bucket=BUCKET, Key=LOCK_KEY)["Body"].read()))


def test_takes_the_lease_with_if_none_match_and_gives_it_back_with_if_match(
    aws: AwsClients, bucket: str
) -> None:
    with audit_requests() as audit:
        audited = create_clients(AwsSettings(region="us-east-1"))
        held = BucketLock(audited.s3, BUCKET, new_lease("run-a", "tmp/", 600))
        held.acquire()
        lease = stored(aws)
        held.release()

    assert (lease["run_id"], lease["prefix"], lease["expiry_s"]) == ("run-a", "tmp/", 600)
    put = audit.of("PutObject")[0].params
    assert (put["Key"], put["IfNoneMatch"]) == (LOCK_KEY, "*")
    assert audit.of("DeleteObject")[0].params["IfMatch"]
    assert "Contents" not in aws.s3.list_objects_v2(Bucket=BUCKET)


def test_refuses_a_second_run_naming_the_holder_and_since_when(
    aws: AwsClients, bucket: str
) -> None:
    first = lock(aws, "run-a")
    first.acquire()

    with pytest.raises(BucketLocked) as refused:
        lock(aws, "run-b").acquire()
    first.release()

    assert refused.value.exit_code == 6
    assert refused.value.guard == "bucket_lock"
    message = str(refused.value)
    assert f"bucket '{BUCKET}' is locked by run run-a (prefix 'tmp/') since " in message
    assert str(first.lease.since) in message and message.endswith("nothing was deleted")


def test_a_waiting_run_takes_the_lease_once_its_holder_gives_it_back(
    aws: AwsClients, bucket: str
) -> None:
    first = lock(aws, "run-a")
    first.acquire()
    threading.Timer(1.0, first.release).start()

    second = lock(aws, "run-b", wait_s=30)
    started = time.monotonic()
    second.acquire()
    waited = time.monotonic() - started
    holder = stored(aws)["run_id"]
    second.release()

    assert holder == "run-b"
    assert 0.8 < waited < 10


def test_a_lease_not_renewed_within_its_expiry_is_taken_over(aws: AwsClients, bucket: str) -> None:
    # A crashed run: its lease is in the bucket, and nobody renews it.
    crashed = Lease("run-crashed", "tmp/", "2026-01-01T00:00:00Z", expiry_s=1)
    aws.s3.put_object(Bucket=BUCKET, Key=LOCK_KEY, Body=json.dumps(crashed.__dict__).encode())
    time.sleep(2.2)  # LastModified and Date have whole seconds

    taker = lock(aws, "run-b")
    taker.acquire()

    assert stored(aws)["run_id"] == "run-b"
    taker.release()


def test_a_run_whose_lease_was_taken_stops_and_leaves_the_new_holders_lease(
    aws: AwsClients, bucket: str
) -> None:
    holder = lock(aws, "run-a", expiry_s=1.5)
    holder.acquire()
    # Another writer replaces the lease (as a run would after a takeover).
    other = Lease("run-b", "tmp/", "2026-01-01T00:00:00Z", 600)
    aws.s3.put_object(Bucket=BUCKET, Key=LOCK_KEY, Body=json.dumps(other.__dict__).encode())
    time.sleep(1.2)  # a renewal (every expiry / 3) meets the other ETag

    with pytest.raises(LockLost) as lost:
        holder.check()
    holder.release()

    assert lost.value.exit_code == 7
    assert "another run took it over" in str(lost.value)
    assert stored(aws)["run_id"] == "run-b"


def test_renews_the_lease_with_if_match_while_held(aws: AwsClients, bucket: str) -> None:
    with audit_requests() as audit:
        audited = create_clients(AwsSettings(region="us-east-1"))
        holder = BucketLock(audited.s3, BUCKET, new_lease("run-a", "tmp/", 1.5))
        holder.acquire()
        time.sleep(2.0)  # longer than its expiry: only renewals keep it
        holder.check()
        holder.release()

    renewals = [call.params for call in audit.of("PutObject") if "IfMatch" in call.params]
    assert len(renewals) >= 3  # every expiry / 3 = 0.5 s
    assert all(params["Key"] == LOCK_KEY for params in renewals)


class TestLeaseWatch:
    def test_lets_the_deletes_go_while_the_run_holds_the_lease(
        self, aws: AwsClients, bucket: str
    ) -> None:
        with lock(aws, "run-holding"):
            watch = LeaseWatch(aws.s3, BUCKET, "run-holding", every_s=0)
            watch.check()
            watch.check()

    def test_stops_the_deletes_when_another_run_holds_the_lease(
        self, aws: AwsClients, bucket: str
    ) -> None:
        with lock(aws, "run-other"), pytest.raises(LockLost, match="run-other holds it"):
            LeaseWatch(aws.s3, BUCKET, "run-mine").check()

    def test_stops_the_deletes_when_the_lease_is_gone(self, aws: AwsClients, bucket: str) -> None:
        with pytest.raises(LockLost, match="gone"):
            LeaseWatch(aws.s3, BUCKET, "run-mine").check()

    def test_reads_the_lease_at_most_once_in_its_interval(
        self, aws: AwsClients, bucket: str
    ) -> None:
        with lock(aws, "run-holding"):
            watch = LeaseWatch(aws.s3, BUCKET, "run-holding", every_s=3600)
            with audit_requests() as audit:
                s3 = create_clients(AwsSettings(region="us-east-1")).s3
                watch.reader.s3 = s3
                for _ in range(5):
                    watch.check()

        assert len(audit.of("GetObject")) == 1

    def test_reads_the_lease_once_when_batches_start_on_many_threads_at_once(
        self, aws: AwsClients, bucket: str
    ) -> None:
        with lock(aws, "run-holding"):
            watch = LeaseWatch(aws.s3, BUCKET, "run-holding", every_s=3600)
            with audit_requests() as audit:
                watch.reader.s3 = create_clients(AwsSettings(region="us-east-1")).s3
                start = threading.Barrier(8)

                def batch() -> None:
                    start.wait()
                    watch.check()

                threads = [threading.Thread(target=batch) for _ in range(8)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()

        assert len(audit.of("GetObject")) == 1
