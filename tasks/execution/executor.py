"""The one interface of where a run's parts go, and the choice between this process and a cluster.

A run plans its parts and applies them through an executor; the flow's steps around it (the
bucket's lock, the guards, the approval, the report, what a failure leaves) are written once,
whatever executes. One process is an executor: the plan listed on threads into one manifest,
applied by a delete pipeline here. A Dask cluster is another: shards planned into parts and
applied by its workers. Which one is the run's `dask_address` alone.
"""

from __future__ import annotations

from collections import Counter
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tasks.aws import AwsClients
from tasks.s3.bucket_lock import BucketLock
from tasks.s3.deletion import ApplyResult
from tasks.s3.manifest import PlannedSoFar, PlanSummary
from tasks.s3.progress import Progress
from tasks.settings import RunSettings

if TYPE_CHECKING:
    from tasks.cleanup import PlanRequest


class Executor(Protocol):
    """Plans a run's parts and applies them; entered for the run, it holds what applying needs
    (a delete pipeline and its journal, a cluster's client) and, leaving, lets every delete
    sent finish before the bucket's lock is given back."""

    #: Where the journal of the deletes is (an executing run in one process), for the report.
    journal: str | None
    #: Who listed and deleted, when not this process (host:process of each worker).
    workers: set[str]
    #: Requests sent from elsewhere than this process's clients, by operation.
    requests: Counter[str]
    #: What the report should say of how this run's plan was applied.
    notes: list[str]

    def plan(self, streaming: bool) -> PlanSummary:
        """Make the plan (or check a saved one); with `streaming`, parts are applied while
        it is made."""
        ...

    def apply(self, plan: PlanSummary, streamed: bool) -> ApplyResult:
        """Apply the checked (and approved) plan; one outcome for every planned object."""
        ...

    def settled(self) -> ApplyResult:
        """After a failure: stop what may still delete, wait for it, and return every outcome
        known (a planned object with none is unconfirmed, or never sent)."""
        ...

    def planned_so_far(self) -> PlannedSoFar:
        """When the plan did not finish: what it had read and held, and where it is on disk."""
        ...


def executor_for(
    settings: RunSettings,
    clients: AwsClients,
    request: PlanRequest,
    scratch: Path,
    progress: Progress,
    lock: BucketLock | None,
) -> AbstractContextManager[Executor]:
    """The run's executor: a Dask cluster when it names one, else this process.

    Args:
        settings: the run's settings.
        clients: this process's clients (the run's identity).
        request: what the plan step makes.
        scratch: the run's private folder.
        progress: the counters the run shows.
        lock: the bucket's lock an executing run holds (None: a dry run).
    """
    if settings.dask_address:
        from tasks.execution.cluster import OnACluster

        cluster: AbstractContextManager[Executor] = OnACluster(
            settings, clients, request, scratch, progress, lock
        )
        return cluster
    from tasks.execution.local import InThisProcess

    here: AbstractContextManager[Executor] = InThisProcess(
        settings, clients, request, scratch, progress, lock
    )
    return here
