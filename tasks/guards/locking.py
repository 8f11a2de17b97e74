"""An executing run's hold on its bucket: the lease in the bucket, and where a long-lived Prefect
server is present, the bucket's global concurrency limit too."""

from __future__ import annotations

import logging
import os
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

# SHORT_LIVED_API names a Prefect API that dies with this process: the command's own temporary
# API. Such an API keeps a slot's lease in its memory, so a slot taken through it by a run that
# is killed stays taken in the database it shares with the next runs' APIs, and nothing ever
# frees it. Whoever sets it (the command, or a local user in its environment) only leaves the
# slot out: the bucket's lease still holds.
from tasks.record.outcome import SHORT_LIVED_API, RunOutcome
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
    """Hold the bucket's global concurrency limit (one slot of one) while a long-lived Prefect
    server is configured (PREFECT_API_URL): the UI's Concurrency page then shows which run
    holds which bucket, and the server frees the slot of a killed run when its lease expires.
    A run through an API that dies with it (Prefect's own temporary one, or the command's:
    SHORT_LIVED_API) relies on the bucket's lease alone.

    Raises:
        SafetyRefusal: another run holds the slot past `lock_wait_minutes`.
    """
    api_url = PREFECT_API_URL.value()
    if not api_url or api_url == os.environ.get(SHORT_LIVED_API):
        yield  # nothing would free the slot of a run killed now
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


@contextmanager
def bucket_held(s3: S3Client, settings: RunSettings, owner: str | None) -> Iterator[BucketLock]:
    """An executing run's hold on its bucket, from planning to the last delete (across an
    approval wait): the lease, then the concurrency slot; given back in the reverse order,
    the lease last.

    Raises:
        BucketLocked: another run holds the bucket (exit 6; nothing was deleted).
    """
    lock = lock_bucket_task(s3, settings, owner)
    try:
        with bucket_concurrency(settings):
            yield lock
    finally:
        lock.release()
