"""One process as the executor: the plan listed on threads into one manifest, applied here."""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

from tasks.aws import AwsClients
from tasks.cleanup import (
    PlanRequest,
    apply_cleanup_task,
    deleting,
    journal_file,
    new_plan_location,
    plan_cleanup_task,
)
from tasks.s3.bucket_lock import BucketLock
from tasks.s3.deletion import ApplyResult, DeletePipeline
from tasks.s3.manifest import PlannedSoFar, PlanSummary
from tasks.s3.progress import Progress
from tasks.settings import RunSettings


class InThisProcess:
    """The run's parts in this process: its listing's pieces on threads, one manifest, and a
    delete pipeline (with its journal) that starts while the listing goes on, or reads the
    checked plan back once a guard or a person has seen it whole."""

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
        self.journal: str | None = None
        self.workers: set[str] = set()
        self.requests: Counter[str] = Counter()
        self.notes: list[str] = []
        self._deletes: DeletePipeline | None = None
        self._held = ExitStack()

    def __enter__(self) -> InThisProcess:
        if self.lock is not None:  # an executing run: its delete consumer, and its journal
            journal = journal_file(self.request, self.scratch)
            self.journal = journal.location
            owner = self.request.target.owner
            self._deletes = self._held.enter_context(
                deleting(
                    self.clients.s3,
                    self.settings,
                    self.request,
                    journal,
                    owner,
                    self.progress,
                    self.lock,
                )
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # The batches sent finish and the journal ends with its totals.
        self._held.__exit__(exc_type, exc, traceback)

    def plan(self, streaming: bool) -> PlanSummary:
        deletes = self._deletes if streaming else None
        return plan_cleanup_task(
            self.clients.s3, self.request, self.scratch, deletes, self.progress
        )

    def apply(self, plan: PlanSummary, streamed: bool) -> ApplyResult:
        if self._deletes is None:
            raise RuntimeError("a dry run applies nothing")
        return apply_cleanup_task(plan, self._deletes, sent_while_planning=streamed)

    def settled(self) -> ApplyResult:
        return self._deletes.settle() if self._deletes is not None else ApplyResult()

    def planned_so_far(self) -> PlannedSoFar:
        location = new_plan_location(self.request)
        counted = self.progress.snapshot()
        # A plan cut short: what it held is on disk (its lines are written before they go).
        return PlannedSoFar(
            scanned=counted.listed,
            matched=counted.matched,
            matched_bytes=counted.matched_bytes,
            manifest=location if Path(location).is_file() else None,
        )
