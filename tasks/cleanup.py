"""The cleanup pipeline, from plan to delete, and its two tasks.

One path: the listing (or a saved plan) produces planned objects, the manifest records them, and
a delete consumer sends them in batches. A dry run is the same pipeline with the consumer cut.
When a guard or a person must see the whole plan first, the consumer waits for it and reads it
back from the manifest; otherwise it starts while the listing goes on.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from tasks.collector import startup_objects_frozen
from tasks.errors import ConfigError, SafetyRefusal, translated_aws_errors
from tasks.guards.limits import Guards
from tasks.s3 import plan_store
from tasks.s3.bucket_lock import BucketLock
from tasks.s3.confirmation import confirmed
from tasks.s3.deletion import ApplyResult, DeletePipeline, DeleteTarget
from tasks.s3.inventory import Inventory, check_versions_mode, read_inventory
from tasks.s3.journal import Journal, journal_name
from tasks.s3.keep import MAX_GROUPS
from tasks.s3.kept_list import KeptList, kept_list_name, opened_kept_list
from tasks.s3.listing import SHARD_SIZE, list_object_versions
from tasks.s3.manifest import (
    ManifestWriter,
    PlannedObject,
    PlanSummary,
    PlanTally,
    PlanTarget,
    PlanTotals,
    file_sha256,
    isoformat,
    read_objects,
)
from tasks.s3.plan_index import is_index
from tasks.s3.plan_store import PlanFile
from tasks.s3.progress import Progress
from tasks.s3.rules import Rules
from tasks.s3.saved_plan import load_plan, needs_its_digest, verify_entries
from tasks.s3.selection import Selection, listing
from tasks.s3.still_selected import still_selected
from tasks.s3.vetting import Vetting, object_lock_enabled
from tasks.settings import RunSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanRequest:
    """What the plan step makes: a new plan of the target, or a check of a saved one."""

    target: PlanTarget
    #: Timezone-aware; objects last modified strictly before it are old enough.
    cutoff: datetime
    #: Where a new plan is kept: a local directory or an s3:// prefix.
    location: str
    #: The file name of a new plan.
    name: str
    #: A saved plan to apply instead of listing (a path or an s3:// address).
    saved_plan: str | None = None
    #: The SHA-256 the saved plan must have: the plan a person reviewed or approved.
    saved_plan_sha256: str | None = None
    max_plan_age: timedelta = timedelta(hours=24)
    #: False when a dry run found the bucket missing: the plan is empty.
    bucket_exists: bool = True
    list_workers: int = 8
    shard_size: int = SHARD_SIZE
    #: The most groups the keep rules track at once.
    max_groups: int = MAX_GROUPS
    #: Objects asked about (tags, Object Lock) at once: the run's delete concurrency.
    vet_concurrency: int = 8
    #: Write the kept list beside a new plan (tasks/s3/kept_list.py).
    list_kept: bool = False


def plan_request(
    settings: RunSettings, owner: str | None, bucket_exists: bool, owner_from: str | None = None
) -> PlanRequest:
    """The plan step's request for this run: its target, cutoff and where its plan goes.
    `owner_from` says where the owner came from ("parameter" or "secret")."""
    run_id = flow_run.get_id() or uuid.uuid4().hex
    return PlanRequest(
        target=PlanTarget(
            bucket=settings.bucket,
            region=settings.region,
            prefix=settings.prefix,
            cutoff=isoformat(settings.cutoff),
            created_at=isoformat(datetime.now(UTC)),
            owner=owner,
            versions=settings.versions,
            owner_from=owner_from if owner else None,
            inventory=settings.inventory,
            rules=settings.rules.as_header(),
        ),
        cutoff=settings.cutoff,
        location=settings.manifest_location,
        # One gzip JSON Lines file per run, named for the reference time and the run.
        name=f"{settings.as_of.strftime('%Y%m%dT%H%M%SZ')}-{run_id}.jsonl.gz",
        saved_plan=settings.plan,
        saved_plan_sha256=settings.plan_sha256,
        max_plan_age=timedelta(hours=settings.max_plan_age_hours),
        bucket_exists=bucket_exists,
        list_workers=settings.list_concurrency,
        shard_size=settings.shard_size,
        max_groups=settings.max_groups,
        vet_concurrency=settings.delete_concurrency,
        list_kept=settings.list_kept,
    )


def deletes_while_listing(settings: RunSettings) -> bool:
    """Whether the deletes start while the listing goes on: in an executing run of a new plan,
    made by listing, that no guard and no person must see whole first. A plan from any other
    source (a saved plan, an S3 Inventory's data files) is verified whole first: a data file's
    MD5 can only be checked once it has been read to its end."""
    must_see_the_whole_plan = Guards.of(settings).any or settings.require_approval
    from_a_listing = settings.plan is None and settings.inventory is None
    return from_a_listing and not (must_see_the_whole_plan or settings.dry_run)


def new_plan_location(request: PlanRequest) -> str:
    """Where this run's new plan is kept: a local path or an s3:// address."""
    # The scratch directory only matters for a file uploaded to S3 later; its address does not.
    return plan_store.new_plan_file(
        request.location, request.target.bucket, request.name, Path()
    ).location


def journal_file(request: PlanRequest, scratch: Path) -> PlanFile:
    """Where the run's journal goes: beside its new plan, PLAN.journal.jsonl."""
    name = journal_name(request.name)
    return plan_store.new_plan_file(request.location, request.target.bucket, name, scratch)


@contextmanager
def deleting(
    s3: S3Client,
    settings: RunSettings,
    request: PlanRequest,
    journal_at: PlanFile,
    owner: str | None = None,
    progress: Progress | None = None,
    lock: BucketLock | None = None,
) -> Iterator[DeletePipeline]:
    """The delete consumer of an executing run, writing its journal (uploaded as the run goes
    when plans are kept in S3). However the block ends, the batches already sent finish and the
    journal ends with the totals."""
    with journaled_deletes(
        s3,
        DeleteTarget(request.target.bucket, owner),
        request.target.prefix,
        request.saved_plan or new_plan_location(request),
        journal_at,
        settings.delete_concurrency,
        settings.delete_throttle_budget_minutes * 60,
        lock.check if lock is not None else None,
        progress,
    ) as pipeline:
        yield pipeline


@contextmanager
def journaled_deletes(
    s3: S3Client,
    target: DeleteTarget,
    prefix: str,
    plan: str,
    journal_at: PlanFile,
    concurrency: int,
    throttle_budget_s: float,
    before_each_request: Callable[[], None] | None = None,
    progress: Progress | None = None,
) -> Iterator[DeletePipeline]:
    """A delete pipeline for the plan at `plan`, with its journal at `journal_at` (uploaded as
    it goes when kept in S3); `before_each_request` may stop it (the bucket's lock). However
    the block ends, the batches already sent finish and the journal ends with the totals."""
    journal = Journal(journal_at.path, {"bucket": target.bucket, "prefix": prefix, "plan": plan})
    pipeline = DeletePipeline(
        s3,
        target,
        concurrency,
        progress=progress,
        throttle_budget_s=throttle_budget_s,
        before_each_request=before_each_request,
        journal=journal,
    )
    with plan_store.kept_as_it_goes(s3, journal_at, journal.changed), startup_objects_frozen():
        try:
            yield pipeline
        finally:
            result = pipeline.settle()
            journal.finish(
                {
                    "planned": result.planned,
                    "deleted": result.deleted,
                    "already_gone": result.already_gone,
                    "skipped_changed": result.skipped_changed,
                    "failed_by_code": dict(result.failed_by_code),
                }
            )
            journal.close()


def plan_cleanup(
    s3: S3Client,
    target: PlanTarget,
    cutoff: datetime,
    manifest_path: Path,
    bucket_exists: bool = True,
    list_workers: int = 8,
    deletes: DeletePipeline | None = None,
    progress: Progress | None = None,
    shard_size: int = SHARD_SIZE,
    inventory: Inventory | None = None,
    max_groups: int = MAX_GROUPS,
    vetting: Vetting | None = None,
    kept_list: KeptList | None = None,
) -> PlanSummary:
    """List the prefix (or read the target's inventory) and write every selected object (or
    version) to a manifest.

    Changes nothing in AWS by itself. Memory stays flat: pages are streamed and only counts are
    kept. With `deletes`, each planned object is also handed to it as soon as it is recorded, so
    deletes run while the listing goes on.

    Args:
        s3: an S3 client from the factory in tasks/aws.py.
        target: bucket, region, prefix, owner and versions mode; the manifest's header.
        cutoff: timezone-aware; see `tasks.s3.selection.is_selected` for what is compared.
        manifest_path: where the plan is written (gzip when it ends in .gz).
        bucket_exists: False when a dry run found the bucket missing: the plan is empty.
        list_workers: sub-prefixes and key ranges listed at once.
        deletes: the consumer to feed while planning, if any.
        progress: counters to update (listed, matched).
        shard_size: about how many keys a worker lists before it hands on a large prefix's
            rest.
        inventory: the target's S3 Inventory, read instead of listing.
        max_groups: the most groups the keep rules track at once.
        vetting: what S3 is asked of each object every other rule would delete.
        kept_list: where each object a rule keeps is listed, if anywhere.
    """
    logger.info(
        "Planning cleanup of s3://%s/%s (%s versions) older than %s",
        target.bucket,
        target.prefix,
        target.versions,
        target.cutoff,
        extra={"bucket": target.bucket, "prefix": target.prefix, "cutoff": target.cutoff},
    )
    listed = listing(s3, target, list_workers, shard_size, inventory) if bucket_exists else ()
    selection = Selection(
        listed, target, cutoff, progress, max_groups, vetting=vetting, kept_list=kept_list
    )
    plan = record_plan(selection, manifest_path, target, deletes)
    logger.info(
        "Planned %d of %d objects (%d bytes) under s3://%s/%s",
        plan.matched,
        plan.scanned,
        plan.matched_bytes,
        target.bucket,
        target.prefix,
        extra={
            "scanned": plan.scanned,
            "matched": plan.matched,
            "matched_bytes": plan.matched_bytes,
            "manifest": plan.manifest,
        },
    )
    return plan


def record_plan(
    selection: Selection, path: Path, target: PlanTarget, deletes: DeletePipeline | None
) -> PlanSummary:
    """Write each planned object to the manifest, then hand it to the consumer, if there is one;
    end the manifest with the totals."""
    tally = PlanTally()
    with ManifestWriter(path, target) as manifest, startup_objects_frozen():
        if deletes is not None:
            # What is sent is on disk first: a run killed mid-batch leaves it in its plan.
            deletes.before_submit = manifest.flush
        try:
            for entry in selection:
                manifest.add(entry)
                tally.add(entry)
                if deletes is not None:
                    deletes.add(entry)
        finally:
            if deletes is not None:
                deletes.before_submit = None  # the complete plan is on disk once closed
        lost, kept = selection.unrecoverable_keys, dict(selection.kept)
        manifest.finish(
            PlanTotals(selection.scanned, tally.matched, tally.matched_bytes, lost, kept)
        )
    summary = tally.summary(str(path), target, selection.scanned, lost, kept)
    return replace(summary, sha256=file_sha256(path))


def apply_cleanup(
    plan: PlanSummary, deletes: DeletePipeline, sent_while_planning: bool = False
) -> ApplyResult:
    """The consumer's end of the pipeline: send the plan's objects, read back from its
    manifest, unless they were sent while it was made; wait for every batch; return an
    outcome for every planned object (deleted, skipped because it changed, or failed).

    Raises:
        SafetyRefusal: the manifest file is no longer the plan that was checked (and approved).
    """
    if not sent_while_planning:
        if file_sha256(plan.path) != plan.sha256:
            raise changed_since_checked(plan)
        send(
            planned_objects(plan.path, plan.target, deletes, fresh=not plan.from_a_listing), deletes
        )
    result = deletes.close()
    logger.info(
        "Deleted %d of %d planned objects from s3://%s/%s",
        result.deleted,
        result.planned,
        plan.target.bucket,
        plan.target.prefix,
        extra={
            "deleted": result.deleted,
            "already_gone": result.already_gone,
            "skipped_changed": result.skipped_changed,
            "failed": result.failed,
            "failed_by_code": dict(result.failed_by_code),
        },
    )
    return result


def planned_objects(
    path: Path,
    target: PlanTarget,
    deletes: DeletePipeline,
    start_after: str | None = None,
    fresh: bool = False,
) -> Iterator[PlannedObject]:
    """The objects of the plan (or plan part) at `path` to send, checked against the server
    where the plan alone cannot be trusted with them; what no longer qualifies is counted
    (changed, or gone already) and kept.

    A plan of noncurrent versions is always joined with a fresh listing: a version whose key
    was undeleted since is current again. A plan that is not this run's own listing (`fresh`:
    a saved plan, an inventory's rows) is confirmed too, whatever its mode: its file could
    date an object written today as old. A part's keys all come after `start_after`: a fresh
    listing of versions starts there.
    """
    entries = read_objects(path)
    cutoff = datetime.fromisoformat(target.cutoff)
    if target.versions == "current":
        if not fresh:
            return entries
        return confirmed(
            deletes.s3,
            target.bucket,
            target.prefix,
            target.owner,
            cutoff,
            entries,
            gone=deletes.gone_already,
            changed=deletes.skip_changed,
        )
    if target.versions == "all" and not fresh:
        return entries
    listing = list_object_versions(
        deletes.s3, target.bucket, target.prefix, target.owner, start_after
    )
    return still_selected(
        entries, listing, target.prefix, cutoff, target.versions, deletes.skip_changed
    )


def changed_since_checked(plan: PlanSummary) -> SafetyRefusal:
    return SafetyRefusal(
        "plan_digest",
        0,
        0,
        reason=f"the plan '{plan.manifest}' changed after it was checked: its SHA-256 is no "
        f"longer {plan.sha256}",
    )


def send(entries: Iterable[PlannedObject], deletes: DeletePipeline) -> None:
    """Hand every planned object to the consumer, in order."""
    for entry in entries:
        deletes.add(entry)


def make_plan(
    s3: S3Client,
    request: PlanRequest,
    scratch: Path,
    deletes: DeletePipeline | None = None,
    progress: Progress | None = None,
) -> PlanSummary:
    """The plan step: a saved plan fetched and checked, or a new plan listed, recorded and kept
    where `request.location` says (a copy stays in `scratch` when that is S3)."""
    if request.saved_plan is not None:
        check_digest_given(request)
        with translated_aws_errors(f"plan '{request.saved_plan}'"):
            copy = plan_store.fetch(s3, request.saved_plan, scratch)
        check_digest(copy, request)
        if is_index(copy):
            raise ConfigError(
                f"plan '{request.saved_plan}' was made in shards: apply it with dask_address"
            )
        saved = load_plan(copy, request.target, request.max_plan_age)
        # The run's own owner (a secret's is not in the file) goes on every request.
        target = replace(saved.target, owner=request.target.owner)
        return replace(saved, manifest=request.saved_plan, copy=copy, target=target)
    plan_file = plan_store.new_plan_file(
        request.location, request.target.bucket, request.name, scratch
    )
    target, inventory = with_inventory(s3, request.target)
    with ExitStack() as stack:
        kept_file, kept_list = None, None
        if request.list_kept:
            kept_file, kept_list = opened_kept_list(
                stack, request.location, target, kept_list_name(request.name), scratch
            )
        plan = plan_cleanup(
            s3,
            target,
            request.cutoff,
            plan_file.path,
            request.bucket_exists,
            request.list_workers,
            deletes,
            progress,
            request.shard_size,
            inventory,
            request.max_groups,
            vetting_of(s3, request, target, inventory),
            kept_list,
        )
    with translated_aws_errors(f"plan '{plan_file.location}'"):
        plan_store.keep(s3, plan_file)
        if kept_file is not None:
            plan_store.keep(s3, kept_file)
            plan = replace(plan, kept_list=kept_file.location)
    copy = plan_store.private_copy(plan_file, scratch)
    plan = replace(plan, manifest=plan_file.location, copy=copy)
    if file_sha256(copy) != plan.sha256:
        raise changed_since_checked(plan)
    if inventory is not None:
        # Rows are the inventory's word: checked line by line as a saved plan is (a row
        # repeated, within a data file or across two, would be planned twice).
        verify_entries(copy, target)
    return plan


def vetting_of(
    s3: S3Client,
    request: PlanRequest,
    target: PlanTarget,
    inventory: Inventory | None = None,
    ask_now: bool = False,
) -> Vetting | None:
    """What a new plan asks S3 of each object it would delete: its tags when protect_tags are
    set, its retention and legal hold when the bucket has Object Lock on. Whether it has is
    one request a run: `ask_now` (a run in shards tells its workers), else when the first
    object would be deleted. An inventory with its lock fields has said already."""
    if not request.bucket_exists:
        return None
    locked = None
    if inventory is not None and inventory.has_locks:
        locked = False  # each row's lock is read from it (tasks/s3/selection.py)
    elif ask_now:
        with translated_aws_errors(f"bucket '{target.bucket}'"):
            locked = object_lock_enabled(s3, target.bucket, target.owner)
    return Vetting.of(s3, target, locked, request.vet_concurrency)


def check_digest_given(request: PlanRequest) -> None:
    """A saved plan made under rules none of its lines can be checked against alone (a keep
    rule, protect tags) is applied only as the plan reviewed: with its SHA-256. Judged by the
    run's own rules, before the file is read: a plan made under other rules is refused anyway.

    Raises:
        SafetyRefusal: no digest was given; nothing has been deleted.
    """
    rule = needs_its_digest(Rules.from_header(request.target.rules))
    if rule is not None and request.saved_plan_sha256 is None:
        raise SafetyRefusal(
            "plan_digest",
            0,
            0,
            reason=f"the plan '{request.saved_plan}' was made under {rule}, which its lines "
            "cannot be checked against one by one: apply it with its SHA-256 (plan_sha256, "
            "as its dry run printed it)",
        )


def check_digest(copy: Path, request: PlanRequest) -> None:
    """A saved plan is the one the run was told to apply, when it was told its digest.

    Raises:
        SafetyRefusal: the plan file's SHA-256 is another; nothing has been deleted.
    """
    expected = request.saved_plan_sha256
    if expected is not None and file_sha256(copy) != expected:
        raise SafetyRefusal(
            "plan_digest",
            0,
            0,
            reason=f"the plan '{request.saved_plan}' is not the one reviewed: its SHA-256 is not "
            f"{expected}",
        )


def with_inventory(s3: S3Client, target: PlanTarget) -> tuple[PlanTarget, Inventory | None]:
    """The target's S3 Inventory, read and checked for its versions mode, and the target with
    the inventory's date; the target as it is when it plans by listing."""
    if target.inventory is None:
        return target, None
    with translated_aws_errors(f"inventory '{target.inventory}'"):
        inventory = read_inventory(s3, target.inventory, target.bucket)
    check_versions_mode(inventory, target.versions)
    return replace(target, inventory_created=isoformat(inventory.created)), inventory


# The plan and the apply never retry as a whole: their requests retry inside (botocore's
# attempts for each listing page, per-key retries for deletes), and once deletes have started
# a second listing or a second send could not be told apart from the first.
@task(name="plan-cleanup", cache_policy=NO_CACHE)
def plan_cleanup_task(
    s3: S3Client,
    request: PlanRequest,
    scratch: Path,
    deletes: DeletePipeline | None = None,
    progress: Progress | None = None,
) -> PlanSummary:
    """List the prefix into a plan manifest, or check a saved plan; changes nothing in AWS but
    the upload of the manifest, unless `deletes` is given: then its planned objects are sent
    to it while the listing goes on."""
    with translated_aws_errors(f"bucket '{request.target.bucket}'"):
        return make_plan(s3, request, scratch, deletes, progress)


@task(name="apply-cleanup", cache_policy=NO_CACHE)
def apply_cleanup_task(
    plan: PlanSummary, deletes: DeletePipeline, sent_while_planning: bool = False
) -> ApplyResult:
    """Delete the planned objects (DeleteObjects, ETag-conditional): the one mutating step."""
    with translated_aws_errors(f"bucket '{plan.target.bucket}'"):
        return apply_cleanup(plan, deletes, sent_while_planning)
