"""An executing run's hold on its bucket: the lease in the bucket, and where a Prefect server is
present, the bucket's global concurrency limit too."""

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

from tasks.errors import SafetyRefusal, translated_aws_errors
from tasks.s3.bucket_lock import BucketLock, new_lease
from tasks.settings import RunSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)


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
    return lock


def concurrency_limit_name(bucket: str) -> str:
    return f"s3-housekeeping-bucket-{bucket}"


@contextmanager
def bucket_concurrency(settings: RunSettings) -> Iterator[None]:
    """Hold the bucket's global concurrency limit (one slot of one) while a Prefect server is
    configured (PREFECT_API_URL): the UI's Concurrency page then shows which run holds which
    bucket. A run without a server relies on the lease alone.

    Raises:
        SafetyRefusal: another run holds the slot past `lock_wait_minutes`.
    """
    if not os.environ.get("PREFECT_API_URL"):
        yield
        return
    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency

    name = concurrency_limit_name(settings.bucket)
    with get_client(sync_client=True) as client:
        # Idempotent: creates the limit with one slot, or leaves an existing one's limit at 1.
        client.upsert_global_concurrency_limit_by_name(name, limit=1)
    wait_s = max(1.0, settings.lock_wait_minutes * 60)
    with ExitStack() as held:
        try:
            held.enter_context(concurrency(name, occupy=1, timeout_seconds=wait_s, strict=True))
        except TimeoutError:
            raise SafetyRefusal(
                "bucket_lock",
                0,
                0,
                reason=f"another run holds the Prefect concurrency limit '{name}'",
            ) from None
        yield
