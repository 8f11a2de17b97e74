"""An executing run's hold on its bucket: the lease in the bucket, and where a Prefect server is
present, the bucket's global concurrency limit too."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.settings import PREFECT_API_URL

from tasks.errors import SafetyRefusal, translated_aws_errors
from tasks.record.events import emit_run_event
from tasks.record.notifications import notify, topic_region
from tasks.record.outcome import RunOutcome
from tasks.s3.bucket_lock import BucketLock, HeldLease, new_lease
from tasks.settings import RunSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

#: The shortest wait for the slot: the lease already keeps other runs out, so the slot is free
#: unless a run left it behind, and a busy server may take seconds to hand it out.
SLOT_GRACE_S = 60.0


@task(name="lock-bucket", cache_policy=NO_CACHE)
def lock_bucket_task(s3: S3Client, settings: RunSettings, owner: str | None) -> BucketLock:
    """Take the bucket's lease for this run (waiting up to `lock_wait_minutes`); it is renewed
    in the background until released.

    Raises:
        BucketLocked: another run holds it (exit 6; nothing was deleted).
    """
    lease = new_lease(
        str(flow_run.get_id() or uuid.uuid4()), settings.prefix, settings.lock_expiry_minutes * 60
    )
    lock = BucketLock(s3, settings.bucket, lease, owner, wait_s=settings.lock_wait_minutes * 60)
    with translated_aws_errors(f"bucket '{settings.bucket}' (its lock)"):
        lock.acquire()
    if lock.took_over is not None:
        announce_crashed_holder(settings, lock.took_over)
    return lock


def announce_crashed_holder(settings: RunSettings, held: HeldLease) -> None:
    """Say that the run whose expired lease this one took over crashed or was killed: a process
    killed outright runs no hook of its own, and a process worker runs none for it either."""
    holder = held.lease
    outcome = RunOutcome(
        status="crashed",
        bucket=settings.bucket,
        prefix=holder.prefix,
        environment=settings.environment,
        dry_run=False,
        message=f"run {holder.run_id} held the bucket's lock since {holder.since} and stopped "
        f"renewing it {held.idle_s:.0f} s ago: it crashed or was killed; its journal beside its "
        "plan says what it sent",
        flow_run_id=holder.run_id,
    )
    logger.warning(outcome.message)
    emit_run_event(outcome)
    if settings.notify_topic_arn:
        topic = settings.notify_topic_arn
        notify(outcome, topic, settings.aws(region=topic_region(topic)))


def concurrency_limit_name(bucket: str) -> str:
    return f"s3-housekeeping-bucket-{bucket}"


@contextmanager
def bucket_concurrency(settings: RunSettings) -> Iterator[None]:
    """Hold the bucket's global concurrency limit (one slot of one) while a Prefect server is
    configured (PREFECT_API_URL): the UI's Concurrency page then shows which run holds which
    bucket. A run without a server (a temporary local API) relies on the lease alone.

    Raises:
        SafetyRefusal: another run holds the slot past `lock_wait_minutes`.
    """
    if not PREFECT_API_URL.value():
        yield  # a temporary local API: no other run could see the limit
        return
    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency

    name = concurrency_limit_name(settings.bucket)
    with get_client(sync_client=True) as client:
        # Idempotent: creates the limit with one slot, or leaves an existing one's limit at 1.
        client.upsert_global_concurrency_limit_by_name(name, limit=1)
    wait_s = max(SLOT_GRACE_S, settings.lock_wait_minutes * 60)
    with ExitStack() as held:
        try:
            # The slot's lease lasts as the bucket's does: a killed run frees both together.
            held.enter_context(
                concurrency(
                    name,
                    occupy=1,
                    timeout_seconds=wait_s,
                    strict=True,
                    lease_duration=settings.lock_expiry_minutes * 60,
                )
            )
        except TimeoutError:
            raise SafetyRefusal(
                "bucket_lock",
                0,
                0,
                reason=f"another run holds the Prefect concurrency limit '{name}'",
            ) from None
        yield
