"""plan_cleanup and apply_cleanup: selection into a manifest, guards, then batched deletes."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from prefect import task

from tasks.errors import ConfigError, SafetyRefusal
from tasks.retry import aws_task_options
from tasks.s3.deletion import (
    DEFAULT_CONCURRENCY,
    MAX_KEYS_PER_DELETE,
    ApplyResult,
    DeletePipeline,
    DeleteTarget,
)
from tasks.s3.listing import ListedObject, list_current_objects, list_object_versions
from tasks.s3.manifest import (
    ManifestWriter,
    PlannedObject,
    PlanTarget,
    PlanTotals,
    isoformat,
    read_objects,
    read_target,
    read_totals,
)
from tasks.s3.progress import Progress

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

VersionsMode = Literal["current", "noncurrent", "all"]
#: How many planned objects the plan artifact and the report show.
FIRST_ROWS = 20


@dataclass(frozen=True)
class PlanSummary:
    """A finished plan: its totals, where its manifest is, and the first matched rows."""

    manifest: str
    target: PlanTarget
    scanned: int
    matched: int
    matched_bytes: int
    first_rows: list[PlannedObject] = field(default_factory=list)


@dataclass(frozen=True)
class Guards:
    """Blast-radius limits, checked against the whole plan before the first delete."""

    max_deletions: int | None = None
    max_delete_bytes: int | None = None
    max_delete_percent: float | None = None

    @property
    def any(self) -> bool:
        return any(
            limit is not None
            for limit in (self.max_deletions, self.max_delete_bytes, self.max_delete_percent)
        )


def is_selected(listed: ListedObject, prefix: str, cutoff: datetime, versions: str) -> bool:
    """Whether a listed object or version is old enough, under the prefix, for the mode.

    current: the current object, last modified before the cutoff (in a versioned bucket its
    delete only adds a delete marker). noncurrent: a version that stopped being current before
    the cutoff. all: any version or delete marker last modified before the cutoff.
    """
    # The server filtered by prefix; checked again because a wrong key must never pass.
    if not listed.key.startswith(prefix):
        return False
    if versions == "noncurrent":
        return listed.noncurrent_since is not None and listed.noncurrent_since < cutoff
    return listed.last_modified < cutoff


def plan_cleanup(
    s3: S3Client,
    target: PlanTarget,
    cutoff: datetime,
    manifest_path: Path,
    bucket_exists: bool = True,
    list_workers: int = 8,
    pipeline: DeletePipeline | None = None,
    progress: Progress | None = None,
) -> PlanSummary:
    """List the prefix and write every selected object (or version) to a manifest.

    Changes nothing in AWS by itself. Memory stays flat: pages are streamed and only counts are
    kept. With a `pipeline`, each full batch is also handed to it as soon as it is planned, so
    deletes run while the listing goes on (used when no guard needs the whole plan first).

    Args:
        s3: an S3 client from the factory in tasks/aws.py.
        target: bucket, region, prefix, owner and versions mode; the manifest's header.
        cutoff: timezone-aware; see `is_selected` for what is compared with it.
        manifest_path: where the plan is written (gzip when it ends in .gz).
        bucket_exists: False when a dry run found the bucket missing: the plan is empty.
        list_workers: sub-prefixes listed at once.
        pipeline: where to send batches for deletion while planning, if anywhere.
        progress: counters to update (listed, matched).
    """
    if cutoff.tzinfo is None:
        raise ValueError("cutoff must be timezone-aware")  # S3 reports LastModified in UTC
    progress = progress or Progress()
    scanned = matched = matched_bytes = 0
    first_rows: list[PlannedObject] = []
    batch: list[PlannedObject] = []
    logger.info(
        "Planning cleanup of s3://%s/%s (%s versions) older than %s",
        target.bucket,
        target.prefix,
        target.versions,
        target.cutoff,
        extra={"bucket": target.bucket, "prefix": target.prefix, "cutoff": target.cutoff},
    )
    with ManifestWriter(manifest_path, target) as manifest:
        for listed in _listing(s3, target, list_workers) if bucket_exists else ():
            scanned += 1
            selected = is_selected(listed, target.prefix, cutoff, target.versions)
            progress.add(listed=1, matched=int(selected))
            if not selected:
                continue
            entry = _planned(listed, target.versions)
            manifest.add(entry)
            matched += 1
            matched_bytes += entry.size
            if len(first_rows) < FIRST_ROWS:
                first_rows.append(entry)
            if pipeline is not None:
                batch.append(entry)
                if len(batch) == MAX_KEYS_PER_DELETE:
                    pipeline.submit(batch)
                    batch = []
        if pipeline is not None and batch:
            pipeline.submit(batch)
        manifest.finish(PlanTotals(scanned, matched, matched_bytes))
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


def _listing(s3: S3Client, target: PlanTarget, workers: int) -> Iterator[ListedObject]:
    if target.versions == "current":
        return list_current_objects(s3, target.bucket, target.prefix, target.owner, workers)
    return list_object_versions(s3, target.bucket, target.prefix, target.owner)


def _planned(listed: ListedObject, versions: str) -> PlannedObject:
    return PlannedObject(
        key=listed.key,
        etag=listed.etag,
        size=listed.size,
        last_modified=isoformat(listed.last_modified),
        storage_class=listed.storage_class,
        version_id=listed.version_id if versions != "current" else None,
        is_delete_marker=listed.is_delete_marker,
    )


def check_guards(plan: PlanSummary, guards: Guards) -> None:
    """The blast-radius limits, checked before the first delete (and in dry runs alike).

    Raises:
        SafetyRefusal: the plan is larger than a limit; nothing has been deleted.
    """
    if guards.max_deletions is not None and plan.matched > guards.max_deletions:
        raise SafetyRefusal("max_deletions", plan.matched, guards.max_deletions)
    if guards.max_delete_bytes is not None and plan.matched_bytes > guards.max_delete_bytes:
        raise SafetyRefusal(
            "max_delete_bytes",
            plan.matched_bytes,
            guards.max_delete_bytes,
            reason=f"the plan holds {plan.matched_bytes} bytes and the limit is "
            f"{guards.max_delete_bytes}",
        )
    if guards.max_delete_percent is not None and plan.scanned:
        percent = 100 * plan.matched / plan.scanned
        if percent > guards.max_delete_percent:
            raise SafetyRefusal(
                "max_delete_percent",
                round(percent, 2),
                guards.max_delete_percent,
                reason=f"the plan holds {percent:.2f}% of the {plan.scanned} objects listed "
                f"and the limit is {guards.max_delete_percent}%",
            )


def load_plan(
    manifest_path: Path,
    expected: PlanTarget,
    max_age: timedelta,
    now: datetime | None = None,
) -> PlanSummary:
    """Read back a saved plan and check it may be applied to this run's target.

    Raises:
        SafetyRefusal: made for another bucket, region, owner, prefix or versions mode; older
            than `max_age`; cut short; or holding an object outside its own prefix or cutoff.
    """
    header = read_target(manifest_path)
    mismatched = [
        name
        for name in ("bucket", "region", "owner", "prefix", "versions")
        if getattr(header, name) != getattr(expected, name)
    ]
    if mismatched:
        raise SafetyRefusal(
            "plan_target", 0, 0, reason=f"the plan was made for another {', '.join(mismatched)}"
        )
    age = (now or datetime.now(UTC)) - datetime.fromisoformat(header.created_at)
    if age > max_age:
        hours = age.total_seconds() / 3600
        raise SafetyRefusal(
            "max_plan_age_hours",
            round(hours, 2),
            max_age.total_seconds() / 3600,
            reason=f"the plan is {hours:.1f} hours old and the limit is "
            f"{max_age.total_seconds() / 3600:g} hours",
        )
    totals = read_totals(manifest_path)
    if totals is None:
        raise SafetyRefusal("plan_complete", 0, 0, reason="the plan is incomplete (no totals)")
    counted, first_rows = verify_entries(manifest_path, header)
    if counted != totals.matched:
        raise SafetyRefusal(
            "plan_complete", counted, totals.matched, reason="the plan's totals do not match it"
        )
    return PlanSummary(
        manifest=str(manifest_path),
        target=header,
        scanned=totals.scanned,
        matched=totals.matched,
        matched_bytes=totals.matched_bytes,
        first_rows=first_rows,
    )


def verify_entries(manifest_path: Path, header: PlanTarget) -> tuple[int, list[PlannedObject]]:
    """Count the plan's entries, refusing one outside its prefix or not older than its cutoff."""
    cutoff = datetime.fromisoformat(header.cutoff)
    counted = 0
    first_rows: list[PlannedObject] = []
    for number, entry in enumerate(read_objects(manifest_path), start=2):
        too_new = datetime.fromisoformat(entry.last_modified) >= cutoff
        if not entry.key.startswith(header.prefix) or too_new:
            raise SafetyRefusal(
                "plan_entries",
                0,
                0,
                reason=f"line {number} of the plan is outside its prefix or its cutoff",
            )
        counted += 1
        if len(first_rows) < FIRST_ROWS:
            first_rows.append(entry)
    return counted, first_rows


def apply_cleanup(
    s3: S3Client,
    plan: PlanSummary,
    concurrency: int = DEFAULT_CONCURRENCY,
    key_attempts: int = 3,
    retry_base_delay_s: float = 0.2,
    progress: Progress | None = None,
) -> ApplyResult:
    """Delete exactly the plan's objects: conditional DeleteObjects batches of at most 1000
    keys, a bounded number in flight, and an outcome for every one of them.

    Args:
        s3: an S3 client from the factory in tasks/aws.py.
        plan: a plan from plan_cleanup or load_plan (already checked against the run).
        concurrency: most batches in flight; halved while the server answers SlowDown.
        key_attempts: tries for keys that fail with a transient per-key code (SlowDown ...).
        retry_base_delay_s: first backoff between those tries; doubles each time, with jitter.
        progress: counters to update (deleted).
    """
    manifest = Path(plan.manifest)
    if read_target(manifest) != plan.target:
        raise ConfigError(f"manifest '{manifest}' changed since it was planned")
    target = DeleteTarget(plan.target.bucket, plan.target.owner)
    with DeletePipeline(
        s3, target, concurrency, key_attempts, retry_base_delay_s, progress
    ) as pipeline:
        for batch in _batches(read_objects(manifest), MAX_KEYS_PER_DELETE):
            pipeline.submit(batch)
        result = pipeline.close()
    log_result(result, plan.target)
    return result


def log_result(result: ApplyResult, target: PlanTarget) -> None:
    logger.info(
        "Deleted %d of %d planned objects from s3://%s/%s",
        result.deleted,
        result.planned,
        target.bucket,
        target.prefix,
        extra={
            "deleted": result.deleted,
            "skipped_changed": result.skipped_changed,
            "failed": result.failed,
            "failed_by_code": dict(result.failed_by_code),
        },
    )


def _batches(entries: Iterable[PlannedObject], size: int) -> Iterator[list[PlannedObject]]:
    iterator = iter(entries)
    while batch := list(islice(iterator, size)):
        yield batch


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
    list_workers: int = 8,
    progress: Progress | None = None,
) -> PlanSummary:
    """List the prefix and write the plan manifest; changes nothing in AWS."""
    return plan_cleanup(
        s3, target, cutoff, manifest_path, bucket_exists, list_workers, progress=progress
    )


@task(name="apply-cleanup", **aws_task_options())
def apply_cleanup_task(
    s3: S3Client,
    plan: PlanSummary,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Progress | None = None,
) -> ApplyResult:
    """Delete the planned objects (DeleteObjects, ETag-conditional); the one mutating step."""
    return apply_cleanup(s3, plan, concurrency, progress=progress)


@task(name="plan-and-apply-cleanup", **aws_task_options())
def plan_and_apply_task(
    s3: S3Client,
    target: PlanTarget,
    cutoff: datetime,
    manifest_path: Path,
    list_workers: int = 8,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Progress | None = None,
) -> tuple[PlanSummary, ApplyResult]:
    """List and delete at once: each batch is deleted as soon as it is planned. Used only when
    no guard needs the whole plan first; the manifest still records every planned object."""
    with DeletePipeline(
        s3, DeleteTarget(target.bucket, target.owner), concurrency, progress=progress
    ) as pipeline:
        plan = plan_cleanup(
            s3, target, cutoff, manifest_path, True, list_workers, pipeline, progress
        )
        result = pipeline.close()
    log_result(result, target)
    return plan, result
