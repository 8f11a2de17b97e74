"""plan_cleanup and apply_cleanup: streaming selection into a manifest, then batched deletes."""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from prefect import task

from tasks.errors import (
    AwsApiError,
    ConfigError,
    SafetyRefusal,
    error_code,
    translate_aws_error,
)
from tasks.manifest import (
    ManifestWriter,
    PlannedObject,
    PlanTarget,
    isoformat,
    read_objects,
    read_target,
)
from tasks.retry import TRANSIENT_DELETE_CODES, aws_task_options

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectTypeDef

logger = logging.getLogger(__name__)

#: DeleteObjects takes at most 1000 keys per request.
MAX_KEYS_PER_DELETE = 1000
#: How many planned objects the plan artifact and the report show.
FIRST_ROWS = 20
PRECONDITION_FAILED = "PreconditionFailed"


@dataclass(frozen=True)
class PlanSummary:
    """The outcome of plan_cleanup: totals, the manifest's path and the first matched rows."""

    manifest: str
    target: PlanTarget
    scanned: int
    matched: int
    matched_bytes: int
    first_rows: list[PlannedObject] = field(default_factory=list)


@dataclass
class ApplyResult:
    """One outcome per planned object: deleted, skipped_changed, or failed (by error code)."""

    planned: int = 0
    deleted: int = 0
    skipped_changed: int = 0
    failed_by_code: Counter[str] = field(default_factory=Counter)

    @property
    def failed(self) -> int:
        """How many planned objects could not be deleted."""
        return sum(self.failed_by_code.values())


def plan_cleanup(
    s3: S3Client,
    target: PlanTarget,
    cutoff: datetime,
    manifest_path: Path,
    bucket_exists: bool = True,
) -> PlanSummary:
    """List the prefix page by page and write every object older than the cutoff to a manifest.

    Changes nothing in AWS. Memory stays flat: pages are streamed and only counts are kept.

    Args:
        s3: an S3 client from the factory in tasks/aws.py.
        target: bucket, region, prefix and owner; written as the manifest's header.
        cutoff: timezone-aware; objects last modified strictly before it are selected.
        manifest_path: where the plan is written (gzip when it ends in .gz).
        bucket_exists: False when a dry run found the bucket missing: the plan is empty.
    """
    if cutoff.tzinfo is None:
        raise ValueError("cutoff must be timezone-aware")  # S3 reports LastModified in UTC
    scanned = matched = matched_bytes = 0
    first_rows: list[PlannedObject] = []
    logger.info(
        "Planning cleanup of s3://%s/%s older than %s",
        target.bucket,
        target.prefix,
        target.cutoff,
        extra={"bucket": target.bucket, "prefix": target.prefix, "cutoff": target.cutoff},
    )
    with ManifestWriter(manifest_path, target) as manifest:
        for listed in _list_objects(s3, target) if bucket_exists else ():
            scanned += 1
            # The server filtered by prefix; checked again because a wrong key must never pass.
            if not listed["Key"].startswith(target.prefix) or listed["LastModified"] >= cutoff:
                continue
            entry = PlannedObject(
                key=listed["Key"],
                etag=listed["ETag"],
                size=int(listed.get("Size", 0)),
                last_modified=isoformat(listed["LastModified"]),
                storage_class=listed.get("StorageClass", "STANDARD"),
            )
            manifest.add(entry)
            matched += 1
            matched_bytes += entry.size
            if len(first_rows) < FIRST_ROWS:
                first_rows.append(entry)
    logger.info(
        "Planned %d of %d objects (%d bytes) under s3://%s/%s",
        matched,
        scanned,
        matched_bytes,
        target.bucket,
        target.prefix,
        extra={
            "scanned": scanned,
            "matched": matched,
            "matched_bytes": matched_bytes,
            "manifest": str(manifest_path),
        },
    )
    return PlanSummary(
        manifest=str(manifest_path),
        target=target,
        scanned=scanned,
        matched=matched,
        matched_bytes=matched_bytes,
        first_rows=first_rows,
    )


def _list_objects(s3: S3Client, target: PlanTarget) -> Iterator[ObjectTypeDef]:
    """Every object under the prefix, one ListObjectsV2 page (1000 keys) at a time."""
    arguments: dict[str, Any] = {"Bucket": target.bucket, "Prefix": target.prefix}
    if target.owner:
        arguments["ExpectedBucketOwner"] = target.owner
    action = f"ListObjectsV2 on bucket '{target.bucket}'"
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(**arguments):
            yield from page.get("Contents", [])
    except ClientError as exc:
        if error_code(exc) == "NoSuchBucket":
            raise ConfigError(f"bucket '{target.bucket}' does not exist") from None
        logger.error("%s failed: %s", action, error_code(exc))
        raise translate_aws_error(exc, action) from None
    except BotoCoreError as exc:
        raise translate_aws_error(exc, action) from None


def check_guards(plan: PlanSummary, max_deletions: int | None) -> None:
    """The blast-radius limits, checked before the first delete (and in dry runs alike).

    Raises:
        SafetyRefusal: the plan is larger than a limit; nothing has been deleted.
    """
    if max_deletions is not None and plan.matched > max_deletions:
        raise SafetyRefusal("max_deletions", planned=plan.matched, limit=max_deletions)


def apply_cleanup(
    s3: S3Client,
    manifest_path: Path,
    expected: PlanTarget,
    key_attempts: int = 3,
    retry_base_delay_s: float = 0.2,
) -> ApplyResult:
    """Delete exactly the manifest's objects in DeleteObjects batches of at most 1000 keys,
    each key conditional on its planned ETag, and account for every one of them.

    Args:
        s3: an S3 client from the factory in tasks/aws.py.
        manifest_path: the plan written by plan_cleanup.
        expected: the run's target; a manifest made for another target is refused.
        key_attempts: tries for keys that fail with a transient per-key code (SlowDown ...).
        retry_base_delay_s: first backoff between those tries; doubles each time, with jitter.
    """
    verify_manifest(manifest_path, expected)
    result = ApplyResult()
    for batch in _batches(read_objects(manifest_path), MAX_KEYS_PER_DELETE):
        result.planned += len(batch)
        _delete_batch(s3, expected, batch, result, key_attempts, retry_base_delay_s)
    logger.info(
        "Deleted %d of %d planned objects from s3://%s/%s",
        result.deleted,
        result.planned,
        expected.bucket,
        expected.prefix,
        extra={
            "deleted": result.deleted,
            "skipped_changed": result.skipped_changed,
            "failed": result.failed,
            "failed_by_code": dict(result.failed_by_code),
        },
    )
    return result


def verify_manifest(manifest_path: Path, expected: PlanTarget) -> None:
    """Refuse a manifest made for another target, or holding an object the target excludes."""
    header = read_target(manifest_path)
    mismatched = [
        name
        for name in ("bucket", "region", "prefix", "owner", "cutoff")
        if getattr(header, name) != getattr(expected, name)
    ]
    if mismatched:
        raise ConfigError(
            f"manifest '{manifest_path}' was made for another target",
            [f"{name} differs" for name in mismatched],
        )
    cutoff = datetime.fromisoformat(expected.cutoff)
    for number, entry in enumerate(read_objects(manifest_path), start=2):
        too_new = datetime.fromisoformat(entry.last_modified) >= cutoff
        if not entry.key.startswith(expected.prefix) or too_new:
            raise ConfigError(
                f"manifest '{manifest_path}' line {number} is outside the prefix or the cutoff"
            )


def _batches(entries: Iterable[PlannedObject], size: int) -> Iterator[list[PlannedObject]]:
    iterator = iter(entries)
    while batch := list(islice(iterator, size)):
        yield batch


def _delete_batch(
    s3: S3Client,
    target: PlanTarget,
    batch: list[PlannedObject],
    result: ApplyResult,
    key_attempts: int,
    retry_base_delay_s: float,
) -> None:
    """One batch to the end: every key deleted, skipped as changed, or failed with its code."""
    pending = batch
    for attempt in range(1, key_attempts + 1):
        errors = _send_delete(s3, target, pending)
        retry: list[PlannedObject] = []
        by_key = {entry.key: entry for entry in pending}
        for key, code in errors.items():
            if code == PRECONDITION_FAILED:
                result.skipped_changed += 1
            elif code in TRANSIENT_DELETE_CODES and attempt < key_attempts:
                retry.append(by_key[key])
            else:
                result.failed_by_code[code] += 1
        result.deleted += len(pending) - len(errors)
        if not retry:
            return
        logger.warning(
            "Retrying %d keys after transient per-key errors (attempt %d of %d)",
            len(retry),
            attempt + 1,
            key_attempts,
        )
        time.sleep(retry_base_delay_s * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))  # noqa: S311
        pending = retry


def _send_delete(s3: S3Client, target: PlanTarget, batch: list[PlannedObject]) -> dict[str, str]:
    """One DeleteObjects request; returns the per-key error codes by key."""
    arguments: dict[str, Any] = {
        "Bucket": target.bucket,
        "Delete": {
            "Objects": [{"Key": entry.key, "ETag": entry.etag} for entry in batch],
            "Quiet": True,
        },
    }
    if target.owner:
        arguments["ExpectedBucketOwner"] = target.owner
    try:
        response = s3.delete_objects(**arguments)
    except ClientError as exc:
        translated = translate_aws_error(exc, f"DeleteObjects on bucket '{target.bucket}'")
        if not isinstance(translated, AwsApiError) or translated.transient:
            # Credentials, permissions, and throttling that outlived the SDK's retries stop
            # the run: later batches would fail the same way.
            raise translated from None
        # The request as a whole was rejected (MalformedXML, InvalidRequest ...).
        code = error_code(exc) or "Unknown"
        logger.error("DeleteObjects rejected a batch of %d keys: %s", len(batch), code)
        return {entry.key: code for entry in batch}
    except BotoCoreError as exc:
        raise translate_aws_error(exc, f"DeleteObjects on bucket '{target.bucket}'") from None
    planned = {entry.key for entry in batch}
    return {
        error["Key"]: error.get("Code", "Unknown")
        for error in response.get("Errors", [])
        if error.get("Key") in planned
    }


def summary_rows(plan: PlanSummary) -> list[dict[str, Any]]:
    """The plan's first rows as plain dicts (for artifacts and reports)."""
    return [asdict(row) for row in plan.first_rows]


@task(name="plan-cleanup", **aws_task_options())
def plan_cleanup_task(
    s3: S3Client,
    target: PlanTarget,
    cutoff: datetime,
    manifest_path: Path,
    bucket_exists: bool = True,
) -> PlanSummary:
    """List the prefix and write the plan manifest; changes nothing in AWS."""
    return plan_cleanup(s3, target, cutoff, manifest_path, bucket_exists)


@task(name="apply-cleanup", **aws_task_options())
def apply_cleanup_task(s3: S3Client, manifest_path: Path, expected: PlanTarget) -> ApplyResult:
    """Delete the planned objects (DeleteObjects, ETag-conditional); the one mutating step."""
    return apply_cleanup(s3, manifest_path, expected)
