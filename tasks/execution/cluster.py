"""A Dask cluster as the executor: shards planned into parts and applied by its workers."""

from __future__ import annotations

import logging
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

from tasks.aws import AwsClients
from tasks.cleanup import PlanRequest
from tasks.execution.dask_runner import dask_runner
from tasks.execution.shards import (
    PartApplier,
    ShardedPlan,
    check_unchanged,
    plan_in_shards,
    saved_in_shards,
)
from tasks.s3.bucket_lock import WATCH_EVERY_S, BucketLock
from tasks.s3.deletion import ApplyResult
from tasks.s3.manifest import PlannedSoFar, PlanSummary
from tasks.s3.progress import Progress
from tasks.settings import RunSettings

logger = logging.getLogger(__name__)

#: How long a stopping run waits for its workers' deletes to end, beyond their lease watch's
#: period: a batch in flight is answered, or given up, within botocore's read timeout.
STOP_GRACE_S = 60.0


class OnACluster:
    """The run's parts on a Dask cluster's workers, each with its own AWS identity: the run
    hands each shard to the next free worker, writes the index of the parts, and has the
    workers apply them (each part as soon as it is planned when nothing must see the whole
    plan first)."""

    def __init__(
        self,
        settings: RunSettings,
        clients: AwsClients,
        request: PlanRequest,
        scratch: Path,
        progress: Progress,
        lock: BucketLock | None,
    ) -> None:
        self.settings, self.clients, self.request = settings, clients, request
        self.scratch, self.progress, self.lock = scratch, progress, lock
        self.journal: str | None = None  # each part's journal is beside it
        self.workers: set[str] = set()
        self.requests: Counter[str] = Counter()
        self.notes: list[str] = []
        self._planned: ShardedPlan | None = None
        self._applier: PartApplier | None = None
        self._held = ExitStack()

    def __enter__(self) -> OnACluster:
        runner = self._held.enter_context(dask_runner(self.settings.dask_address))
        self._applier = PartApplier(
            runner,
            self.settings.aws(),
            self.request.target,
            self.lock.lease.run_id if self.lock is not None else "",
            self.settings.delete_concurrency,
            self.settings.delete_throttle_budget_minutes * 60,
            self.request.max_plan_age if self.settings.plan else None,
        )
        self._runner = runner
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._held.__exit__(exc_type, exc, traceback)

    def plan(self, streaming: bool) -> PlanSummary:
        applier = self._applied()
        if self.settings.plan:
            plan = saved_in_shards(self.clients.s3, self.settings.plan, self.request, self.scratch)
            left = sum(part.matched for part in plan.parts)
            if left < plan.summary.matched:
                self.notes.append(
                    f"{plan.summary.matched - left} planned objects are in parts an earlier "
                    f"apply of this plan finished; this run applies the {left} left"
                )
        else:
            plan = plan_in_shards(
                self._runner,
                self.settings.aws(),
                self.request,
                self.scratch,
                self.clients.s3,
                self.settings.list_concurrency,
                on_part=applier.submit if streaming else None,
            )
        self._planned = plan
        self.requests.update(plan.requests)
        self.workers |= plan.workers
        return plan.summary

    def apply(self, plan: PlanSummary, streamed: bool) -> ApplyResult:
        applier = self._applied()
        if not streamed and self._planned is not None:
            # The parts a guard or a person saw are read again before the first is sent.
            check_unchanged(self.clients.s3, self._planned.parts, self.scratch)
            for part in self._planned.parts:
                applier.submit(part)
        result, workers, requests = applier.results(self.progress)
        self.progress.finish()
        self.workers |= workers
        self.requests.update(requests)
        return result

    def settled(self) -> ApplyResult:
        applier = self._applied()
        if self.lock is not None and applier.futures:
            # No worker may delete once the bucket is given back: the lease says the run is
            # stopping, each worker's watch sees it before its next batch, and the run waits.
            self.lock.stop_deleting()
            if not applier.wait(WATCH_EVERY_S + STOP_GRACE_S):
                logger.warning("Parts still running on the cluster after the run stopped")
        return applier.settled()

    def planned_so_far(self) -> PlannedSoFar:
        return PlannedSoFar()  # the parts planned are in the index only once every shard is done

    def _applied(self) -> PartApplier:
        if self._applier is None:
            raise RuntimeError("the cluster executor is used before it is entered")
        return self._applier
