"""A run spread over shards on a Dask cluster: each shard lists a piece of the prefix into a
plan part on a worker, and later applies that part there; the run merges the parts into one
plan, checks it and decides once.

What travels to a worker is an order (the shard, the target, what the run's AWS identity is
called, where its part goes), never a key or a secret: a worker builds its own clients with
its own identity. What comes back is small: counts, the part's address and digest, the pieces
it handed on. A shard that runs twice (Dask reruns the tasks of a worker it lost) writes the
same part again, or sends deletes that the ETag conditions make harmless.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.aws import AwsSettings, create_clients
from tasks.cleanup import (
    PlanRequest,
    changed_since_checked,
    check_digest,
    check_digest_given,
    journaled_deletes,
    planned_objects,
    record_plan,
    send,
    vetting_of,
    with_inventory,
)
from tasks.errors import ConfigError, SafetyRefusal, translated_aws_errors
from tasks.s3 import plan_store
from tasks.s3.bucket_lock import LeaseWatch
from tasks.s3.deletion import ApplyResult, DeleteTarget
from tasks.s3.inventory import Inventory
from tasks.s3.journal import journal_name, read_journal
from tasks.s3.keep import MAX_GROUPS, Ranked
from tasks.s3.kept_list import kept_list_name, opened_kept_list
from tasks.s3.key_ranges import KeyRange
from tasks.s3.listing import (
    PAGES_BEFORE_SPLITTING,
    ListedObject,
    Rest,
    Shard,
    list_shard,
    list_versions_shard,
)
from tasks.s3.manifest import (
    FIRST_ROWS,
    PlannedObject,
    PlanSummary,
    PlanTarget,
    file_sha256,
    read_objects,
)
from tasks.s3.plan_index import SUFFIX as INDEX_SUFFIX
from tasks.s3.plan_index import Part, PlanIndex, is_index, write_index
from tasks.s3.progress import Progress
from tasks.s3.saved_plan import load_index, load_parts, load_plan
from tasks.s3.selection import HeldSelection, Selection, inventory_listing
from tasks.s3.vetting import Vetting

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from prefect.futures import PrefectWrappedFuture
    from prefect.task_runners import TaskRunner

logger = logging.getLogger(__name__)

#: How often the run looks at its shards' futures.
POLL_S = 0.05


def this_worker() -> str:
    """Who ran a shard: the machine and the process."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class ShardOrder:
    """What a worker needs to plan one shard."""

    shard: Shard
    aws: AwsSettings
    target: PlanTarget
    cutoff: datetime
    #: Where the run's plans are kept (a directory every worker sees, or an s3:// prefix).
    location: str
    part_name: str
    shard_size: int
    #: Whether it may hand on half of what it has left (the run has idle workers).
    may_split: bool
    #: The run's first shard splits only once it has shown the prefix is not small.
    first: bool = False
    #: A shard of a plan made from an S3 Inventory: the inventory, with the one data file
    #: this shard reads (then `shard` is not listed).
    inventory: Inventory | None = None
    #: The most groups the keep rules track at once.
    max_groups: int = MAX_GROUPS
    #: Whether the bucket has Object Lock on (the run asked once), and how many objects a
    #: worker asks about at once.
    object_lock: bool = False
    vet_concurrency: int = 8
    #: The name of the part's kept list (list_kept), beside the part; None for none.
    kept_list_name: str | None = None


@dataclass(frozen=True)
class PartPlan:
    """A planned shard: its part and what it handed on."""

    part: Part
    follow_ups: tuple[Shard, ...]
    worker: str
    requests: dict[str, int]
    #: What the keep rules still hold when the shard's listing ends (a group may go on in
    #: another shard): at most the sum of the keep counts a group, settled by the run.
    held: tuple[tuple[str, Ranked], ...] = ()
    #: Where the part's kept list is, when one was asked for.
    kept_list: str | None = None


@dataclass(frozen=True)
class ApplyOrder:
    """What a worker needs to apply one part."""

    part: Part
    aws: AwsSettings
    target: PlanTarget
    #: Where the part's journal goes: beside the part.
    journal: str
    #: The run holding the bucket's lease: the worker checks it still does.
    run_id: str
    delete_concurrency: int
    throttle_budget_s: float
    #: A part of a saved plan: checked line by line like a saved plan (its age included)
    #: before anything is sent.
    saved_max_age: timedelta | None = None


@dataclass(frozen=True)
class PartApplied:
    """An applied part: one outcome per planned object."""

    result: ApplyResult
    worker: str
    requests: dict[str, int]


def plan_part(order: ShardOrder) -> PartPlan:
    """List one shard into its plan part: until the shard is done, until it has listed
    `shard_size` keys, or until it has split; what is left is handed back as follow-ups."""
    clients = create_clients(order.aws)
    target = order.target
    base: dict[str, Any] = {"Bucket": target.bucket}
    if target.owner:
        base["ExpectedBucketOwner"] = target.owner
    follow_ups: list[Shard] = []
    rest = Rest(None)
    state = {"pages": 0, "split": False}

    def spare() -> int:
        wait_pages = PAGES_BEFORE_SPLITTING if order.first else 1
        return int(order.may_split and not state["split"] and state["pages"] >= wait_pages)

    def hand_on(shard: Shard) -> None:
        follow_ups.append(shard)
        if shard.prefix == order.shard.prefix and shard.keys != KeyRange():
            state["split"] = True

    def listed() -> Iterator[ListedObject]:
        count = 0
        # Versions come key by key (a key's history decides what is noncurrent): their
        # shards are key ranges, never folders.
        lister = list_shard if target.versions == "current" else list_versions_shard
        pages = lister(clients.s3, base, order.shard, order.shard_size, spare, hand_on, rest=rest)
        for page in pages:
            state["pages"] += 1
            yield from page
            count += len(page)
            if rest.shard is not None and (state["split"] or count >= order.shard_size):
                follow_ups.append(rest.shard)
                return

    with TemporaryDirectory(prefix="s3-housekeeping-shard-") as scratch, ExitStack() as stack:
        part_file = plan_store.new_plan_file(
            order.location, target.bucket, order.part_name, Path(scratch)
        )
        kept_file, kept_list = None, None
        if order.kept_list_name is not None:
            kept_file, kept_list = opened_kept_list(
                stack, order.location, target, order.kept_list_name, Path(scratch)
            )
        with translated_aws_errors(f"bucket '{target.bucket}'"):
            source = (
                inventory_listing(clients.s3, order.inventory, target)
                if order.inventory is not None
                else listed()
            )
            vetting = Vetting.of(clients.s3, target, order.object_lock, order.vet_concurrency)
            selection = Selection(
                source,
                target,
                order.cutoff,
                max_groups=order.max_groups,
                settled=False,
                vetting=vetting,
                kept_list=kept_list,
            )
            plan = record_plan(selection, part_file.path, target, None)
            plan_store.keep(clients.s3, part_file)
            stack.close()  # the kept list is complete
            if kept_file is not None:
                plan_store.keep(clients.s3, kept_file)
    part = part_of(part_file.location, plan, order.shard.keys.start_after)
    return PartPlan(
        part,
        tuple(follow_ups),
        this_worker(),
        clients.requests.snapshot(),
        tuple(selection.held),
        kept_file.location if kept_file is not None else None,
    )


def apply_part(order: ApplyOrder) -> PartApplied:
    """Delete one part's objects (DeleteObjects, ETag-conditional) while the run holds the
    bucket, writing the part's journal beside it."""
    clients = create_clients(order.aws)
    target = order.target
    with TemporaryDirectory(prefix="s3-housekeeping-shard-") as scratch:
        with translated_aws_errors(f"plan '{order.part.location}'"):
            copy = plan_store.fetch(clients.s3, order.part.location, Path(scratch))
        if file_sha256(copy) != order.part.sha256:
            summary = PlanSummary(order.part.location, target, 0, 0, 0, sha256=order.part.sha256)
            raise changed_since_checked(summary)
        if order.saved_max_age is not None:
            load_plan(copy, target, order.saved_max_age)
        watch = LeaseWatch(clients.s3, target.bucket, order.run_id, target.owner)
        with (
            translated_aws_errors(f"bucket '{target.bucket}'"),
            journaled_deletes(
                clients.s3,
                DeleteTarget(target.bucket, target.owner),
                target.prefix,
                order.part.location,
                plan_store.kept_at(order.journal, Path(scratch)),
                order.delete_concurrency,
                order.throttle_budget_s,
                watch.check,
            ) as deletes,
        ):
            # A part of a saved plan, or of an inventory's rows, is asked of the server again.
            fresh = order.saved_max_age is not None or target.inventory is not None
            send(planned_objects(copy, target, deletes, order.part.start_after, fresh), deletes)
            result = deletes.close()
    return PartApplied(result, this_worker(), clients.requests.snapshot())


@task(name="plan-shard", cache_policy=NO_CACHE)
def plan_part_task(order: ShardOrder) -> PartPlan:
    """List one shard of the prefix into a plan part; changes nothing in AWS but the upload of
    the part when plans are kept in S3."""
    return plan_part(order)


@task(name="apply-shard", cache_policy=NO_CACHE)
def apply_part_task(order: ApplyOrder) -> PartApplied:
    """Delete one part's planned objects (DeleteObjects, ETag-conditional)."""
    return apply_part(order)


@dataclass
class ShardedPlan:
    """The run's plan made in shards: the index, its parts, who listed them, their requests."""

    summary: PlanSummary
    parts: list[Part]
    workers: set[str] = field(default_factory=set)
    requests: Counter[str] = field(default_factory=Counter)


def plan_in_shards(
    runner: TaskRunner[Any],
    aws: AwsSettings,
    request: PlanRequest,
    scratch: Path,
    s3: S3Client,
    parallelism: int,
    on_part: Callable[[Part], None] | None = None,
) -> ShardedPlan:
    """Plan the prefix shard by shard on the runner's workers, handing each follow-up to the
    next free one, then write the index of the parts where the plan goes. `on_part` sees each
    part as soon as it is planned (to apply it while the listing goes on)."""
    target = request.target
    stem = request.name.removesuffix(".jsonl.gz")
    numbers = itertools.count(1)
    pending: dict[PrefectWrappedFuture[PartPlan, Any], ShardOrder] = {}

    def submit(shard: Shard, first: bool = False, inventory: Inventory | None = None) -> None:
        name = f"{stem}.parts/part-{next(numbers):06d}.jsonl.gz"
        order = ShardOrder(
            shard,
            aws,
            target,
            request.cutoff,
            request.location,
            name,
            request.shard_size,
            may_split=len(pending) < parallelism,
            first=first,
            inventory=inventory,
            max_groups=request.max_groups,
            object_lock=object_lock,
            vet_concurrency=request.vet_concurrency,
            kept_list_name=kept_list_name(name) if request.list_kept else None,
        )
        pending[runner.submit(plan_part_task, {"order": order})] = order

    target, inventory = with_inventory(s3, target)
    vetting = vetting_of(s3, request, target, inventory, ask_now=True)
    object_lock = vetting is not None and bool(vetting.object_lock)
    if inventory is not None and target.versions == "current":  # one shard a data file
        for data_file in inventory.files:
            submit(Shard(target.prefix), inventory=replace(inventory, files=(data_file,)))
    elif inventory is not None:
        # A key's versions may lie in several data files, and its whole history decides what
        # its plan leaves: the rows of every file are put in key order by one shard.
        submit(Shard(target.prefix), inventory=inventory)
    else:
        submit(Shard(target.prefix, delimited=target.versions == "current"), first=True)
    parts: list[Part] = []
    held: list[tuple[str, Ranked]] = []
    kept_lists: list[str] = []
    workers: set[str] = set()
    requests: Counter[str] = Counter()
    while pending:
        for future in finished(pending):
            del pending[future]
            planned = future.result()
            forget(future)
            parts.append(planned.part)
            if on_part is not None:
                on_part(planned.part)
            workers.add(planned.worker)
            requests.update(planned.requests)
            held += planned.held
            if planned.kept_list is not None:
                kept_lists.append(planned.kept_list)
            for shard in planned.follow_ups:
                submit(shard)
    if held:
        # A group may have gone on from one shard into others: what their keep rules still
        # held is decided here, together, into one more part.
        name = f"{stem}.parts/part-{next(numbers):06d}.jsonl.gz"
        settled, settled_kept = settled_part(s3, request, target, name, held, scratch, vetting)
        parts.append(settled)
        if settled_kept is not None:
            kept_lists.append(settled_kept)
        if on_part is not None:
            on_part(settled)
    index_name = request.name.removesuffix(".jsonl.gz") + INDEX_SUFFIX
    index = plan_store.new_plan_file(request.location, target.bucket, index_name, scratch)
    totals = write_index(index.path, target, parts)
    if inventory is not None:
        # Rows are the inventory's word: every part is read and checked as a saved plan's are
        # before the first is applied (a row repeated across data files is in two parts).
        folder = scratch / "parts"
        folder.mkdir(exist_ok=True)
        with translated_aws_errors(f"plan '{index.location}'"):
            load_parts(
                PlanIndex(target, parts, totals),
                lambda part: plan_store.fetch(s3, part.location, folder),
                request.max_plan_age,
            )
    with translated_aws_errors(f"plan '{index.location}'"):
        plan_store.keep(s3, index)
    summary = PlanSummary(
        manifest=index.location,
        target=target,
        scanned=totals.scanned,
        matched=totals.matched,
        matched_bytes=totals.matched_bytes,
        unrecoverable_keys=totals.unrecoverable_keys,
        kept=totals.kept,
        first_rows=first_rows(s3, parts, scratch),
        copy=index.path,
        sha256=file_sha256(index.path),
        kept_list=(
            merged_kept_list(s3, request, target, kept_lists, scratch)
            if request.list_kept
            else None
        ),
    )
    logger.info(
        "Planned %d of %d objects in %d shards on %d workers",
        totals.matched,
        totals.scanned,
        len(parts),
        len(workers),
        extra={"shards": len(parts), "workers": sorted(workers)},
    )
    return ShardedPlan(summary, parts, workers, requests)


def settled_part(
    s3: S3Client,
    request: PlanRequest,
    target: PlanTarget,
    name: str,
    held: list[tuple[str, Ranked]],
    scratch: Path,
    vetting: Vetting | None,
) -> tuple[Part, str | None]:
    """The part of the objects the shards' keep rules held that no rule keeps once their
    groups are seen whole, written and kept where the other parts are; and, with list_kept,
    where the kept list of what they keep is."""
    part_file = plan_store.new_plan_file(request.location, target.bucket, name, scratch)
    with ExitStack() as stack:
        kept_file, kept_list = None, None
        if request.list_kept:
            kept_file, kept_list = opened_kept_list(
                stack, request.location, target, kept_list_name(name), scratch
            )
        selection = HeldSelection(
            held, target, request.cutoff, request.max_groups, vetting, kept_list
        )
        plan = record_plan(selection, part_file.path, target, None)
    with translated_aws_errors(f"plan '{part_file.location}'"):
        plan_store.keep(s3, part_file)
        if kept_file is not None:
            plan_store.keep(s3, kept_file)
    return part_of(part_file.location, plan, None), kept_file.location if kept_file else None


def merged_kept_list(
    s3: S3Client, request: PlanRequest, target: PlanTarget, parts: list[str], scratch: Path
) -> str:
    """The parts' kept lists, one after another, as one kept list beside the plan's index (the
    file one process writes): where it is kept."""
    folder = scratch / "kept-lists"
    folder.mkdir(exist_ok=True)
    with ExitStack() as stack:
        kept_file, kept_list = opened_kept_list(
            stack, request.location, target, kept_list_name(request.name), scratch
        )
        for location in parts:
            with translated_aws_errors(f"plan '{location}'"):
                kept_list.add_lines_of(plan_store.fetch(s3, location, folder))
    with translated_aws_errors(f"plan '{kept_file.location}'"):
        plan_store.keep(s3, kept_file)
    return kept_file.location


def part_of(location: str, plan: PlanSummary, start_after: str | None) -> Part:
    """A recorded part's entry in the plan's index."""
    return Part(
        location,
        plan.sha256,
        plan.scanned,
        plan.matched,
        plan.matched_bytes,
        plan.unrecoverable_keys,
        start_after,
        plan.kept,
    )


class PartApplier:
    """Sends parts to the workers to apply, as they come (while the listing goes on) or all
    at once after the decision, and sums their outcomes."""

    def __init__(
        self,
        runner: TaskRunner[Any],
        aws: AwsSettings,
        target: PlanTarget,
        run_id: str,
        delete_concurrency: int,
        throttle_budget_s: float,
        saved_max_age: timedelta | None = None,
    ) -> None:
        self.runner, self.aws, self.target, self.run_id = runner, aws, target, run_id
        self.delete_concurrency, self.throttle_budget_s = delete_concurrency, throttle_budget_s
        self.saved_max_age = saved_max_age
        self.futures: list[PrefectWrappedFuture[PartApplied, Any]] = []
        self.parts: list[Part] = []

    def submit(self, part: Part) -> None:
        """Have a worker apply the part (nothing to do for a part with no planned object)."""
        if not part.matched:
            return
        order = ApplyOrder(
            part,
            self.aws,
            self.target,
            journal_beside(part),
            self.run_id,
            self.delete_concurrency,
            self.throttle_budget_s,
            self.saved_max_age,
        )
        self.futures.append(self.runner.submit(apply_part_task, {"order": order}))
        self.parts.append(part)

    def wait(self, timeout_s: float) -> bool:
        """Wait until every part sent has ended (applied, or stopped by its lease watch), at
        most `timeout_s`; whether they all have."""
        deadline = time.monotonic() + timeout_s
        for future in self.futures:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            future.wait(timeout=remaining)
        return all(future.wrapped_future.done() for future in self.futures)

    def settled(self) -> ApplyResult:
        """The outcomes known when the run stops early: those of the parts applied; a part
        sent and not finished counts as planned with no outcome (the report calls its objects
        Unconfirmed), a part never sent not at all (NotSent)."""
        total = ApplyResult()
        for future, part in zip(self.futures, self.parts, strict=True):
            known = None
            # A part that failed has its own error; its objects' outcomes are unknown.
            if future.wrapped_future.done():
                with suppress(Exception):
                    known = future.result(timeout=0).result
            total = merged(total, known or ApplyResult(planned=part.matched))
        return total

    def results(
        self, progress: Progress | None = None
    ) -> tuple[ApplyResult, set[str], Counter[str]]:
        """Wait for every part sent: one outcome per planned object, summed over the parts;
        the workers that applied them and the requests they sent. Parts are read as they end,
        so a part's error stops the run at once, not after the parts sent before it.
        `progress` counts each part's outcomes as it is read."""
        total = ApplyResult()
        workers: set[str] = set()
        requests: Counter[str] = Counter()
        pending = dict(zip(self.futures, self.parts, strict=True))
        while pending:
            future = next((f for f in pending if f.wrapped_future.done()), None)
            if future is None:
                time.sleep(POLL_S)
                continue
            part = pending.pop(future)
            try:
                applied = future.result()
            except SafetyRefusal as refusal:
                # Refused by its worker before any of its objects was sent (changed since it
                # was checked): those objects fail by the guard's name; the others stand.
                refused = ApplyResult(planned=part.matched)
                refused.failed_by_code[refusal.guard] = part.matched
                total = merged(total, refused)
                continue
            if progress is not None:
                progress.add(planned=applied.result.planned, deleted=applied.result.deleted)
            total = merged(total, applied.result)
            workers.add(applied.worker)
            requests.update(applied.requests)
        return total, workers, requests


def saved_in_shards(
    s3: S3Client, location: str, request: PlanRequest, scratch: Path
) -> ShardedPlan:
    """The saved plan made in shards at `location`, checked against this run, with the parts
    an earlier apply finished left out (their journals end with every object accounted for)."""
    check_digest_given(request)
    with translated_aws_errors(f"plan '{location}'"):
        copy = plan_store.fetch(s3, location, scratch)
        check_digest(copy, request)
        if not is_index(copy):
            raise ConfigError(
                f"plan '{location}' was made in one process: apply it without dask_address"
            )
        index = load_index(copy, request.target, request.max_plan_age)
        folder = scratch / "parts"
        folder.mkdir(exist_ok=True)
        # Every part is read and checked here, before the first goes to a worker: the counts
        # the guards and the approval see are those of the parts' lines, not the index's word.
        rows = load_parts(
            index, lambda part: plan_store.fetch(s3, part.location, folder), request.max_plan_age
        )
        parts = [part for part in index.parts if not already_applied(s3, part, scratch)]
    # The run's own owner (a secret's is not in the file) goes on every request.
    target = replace(index.target, owner=request.target.owner)
    summary = PlanSummary(
        manifest=location,
        target=target,
        scanned=index.totals.scanned,
        matched=index.totals.matched,
        matched_bytes=index.totals.matched_bytes,
        unrecoverable_keys=index.totals.unrecoverable_keys,
        kept=index.totals.kept,
        first_rows=rows,
        copy=copy,
        sha256=file_sha256(copy),
    )
    return ShardedPlan(summary, parts)


def check_unchanged(s3: S3Client, parts: list[Part], scratch: Path) -> None:
    """Every part is still the file that was checked (and shown to a person): read again just
    before the first is sent, since parts live where every worker can read them, not in the
    run's private folder.

    Raises:
        SafetyRefusal: a part's SHA-256 is no longer the one planned; nothing has been deleted.
    """
    folder = scratch / "unchanged"
    folder.mkdir(exist_ok=True)
    for part in parts:
        with translated_aws_errors(f"plan '{part.location}'"):
            copy = plan_store.fetch(s3, part.location, folder)
        try:
            if file_sha256(copy) != part.sha256:
                raise SafetyRefusal(
                    "plan_digest",
                    0,
                    0,
                    reason=f"the plan's part '{part.location}' changed after it was checked: "
                    f"its SHA-256 is no longer {part.sha256}",
                )
        finally:
            copy.unlink(missing_ok=True)


def already_applied(s3: S3Client, part: Part, scratch: Path) -> bool:
    """Whether an earlier apply of this part accounted for every one of its objects."""
    folder = scratch / "journals"
    folder.mkdir(exist_ok=True)
    try:
        journal = read_journal(plan_store.fetch(s3, journal_beside(part), folder))
    except ConfigError:
        return False  # never applied
    end = journal[-1] if journal else {}
    if not end.get("end") or end.get("failed_by_code"):
        return False
    return bool(end.get("planned") == part.matched == end["deleted"] + end["skipped_changed"])


def journal_beside(part: Part) -> str:
    """Where a part's journal goes: beside it, PART.journal.jsonl."""
    folder, _, name = part.location.rpartition("/")
    return f"{folder}/{journal_name(name)}" if folder else journal_name(name)


def merged(one: ApplyResult, other: ApplyResult) -> ApplyResult:
    return replace(
        one,
        planned=one.planned + other.planned,
        deleted=one.deleted + other.deleted,
        already_gone=one.already_gone + other.already_gone,
        skipped_changed=one.skipped_changed + other.skipped_changed,
        failed_by_code=one.failed_by_code + other.failed_by_code,
        throttled_s=max(one.throttled_s, other.throttled_s),
    )


def finished(
    pending: dict[PrefectWrappedFuture[PartPlan, Any], ShardOrder],
) -> list[PrefectWrappedFuture[PartPlan, Any]]:
    """The futures that are done, waiting a little until one is."""
    while True:
        # The wrapped (Dask or thread) future says it without asking the Prefect API.
        done = [future for future in pending if future.wrapped_future.done()]
        if done:
            return done
        time.sleep(POLL_S)


def forget(future: PrefectWrappedFuture[Any, Any]) -> None:
    """Let the cluster drop a result the run has read. Dask computes again the tasks of a
    worker it loses while their results are still wanted: a shard planned again would
    rewrite its part while the part is being applied."""
    release = getattr(future.wrapped_future, "release", None)  # a Dask future's, not a thread's
    if release is not None:
        release()


def first_rows(s3: S3Client, parts: list[Part], scratch: Path) -> list[PlannedObject]:
    """The plan's first rows, for the artifacts, the report and the approval, read from its
    first parts."""
    rows: list[PlannedObject] = []
    (scratch / "first-rows").mkdir(exist_ok=True)
    for part in parts:
        if not part.matched:
            continue
        copy = plan_store.fetch(s3, part.location, scratch / "first-rows")
        rows += itertools.islice(read_objects(copy), FIRST_ROWS - len(rows))
        if len(rows) >= FIRST_ROWS:
            break
    return rows
