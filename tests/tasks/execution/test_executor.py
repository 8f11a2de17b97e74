"""One path for one process and a cluster: the same input through both executors calls the same
product functions, but for the executor's own, and ends in the same report."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from flows.s3_housekeeping import s3_housekeeping
from tasks.aws import AwsClients
from tests.support.calls import product_calls
from tests.support.moto_backend import bulk_put

pytestmark = pytest.mark.usefixtures("prefect_harness")

BUCKET = "one-path-bucket"
#: What only one process calls: its executor, its listing's own threads, its one manifest and
#: its delete pipeline's check of the lock it holds (names, or the start of names).
IN_THIS_PROCESS = (
    "tasks.execution.local.",
    "tasks.execution.executor.",
    "tasks.cleanup.make_plan",
    "tasks.cleanup.plan_cleanup",
    "tasks.cleanup.apply_cleanup",
    "tasks.cleanup.deleting",
    "tasks.cleanup.journal_file",
    "tasks.cleanup.new_plan_location",
    "tasks.s3.listing.list_current_objects",
    "tasks.s3.listing._ParallelListing.",
    "tasks.s3.selection.listing",
    "tasks.s3.plan_store.private_copy",
    "tasks.s3.bucket_lock.BucketLock.check",
    "tasks.s3.manifest.PlanSummary.from_a_listing",
    "tasks.s3.manifest.PlanSummary.path",
    # One process asks whether the bucket has Object Lock when the first object would go; a
    # cluster asks before its first shard, and hands the answer to its workers.
    "tasks.s3.vetting.Vetting.vetted",
)
#: What only a cluster calls: its executor and shards, the index of the parts, the workers'
#: watch of the lease, and the check that the run may name the cluster it names.
ON_A_CLUSTER = (
    "tasks.execution.cluster.",
    "tasks.execution.executor.",
    "tasks.execution.shards.",
    "tasks.execution.dask_runner.",
    "tasks.s3.plan_index.",
    "tasks.s3.plan_store.fetch",
    "tasks.s3.plan_store.kept_at",
    "tasks.s3.private_files.check_plan_file",
    "tasks.s3.bucket_lock.LeaseWatch.",
    "tasks.s3.bucket_lock.BucketLock._read",
    "tasks.s3.bucket_lock.HeldLease.",
    "tasks.s3.bucket_lock._server_time",
    "tasks.settings._within_operator_choice",
    "tasks.settings.environment_value",
    "tasks.settings.limited_by",
)
#: What both share, among the rest: the selection, the manifest, the delete pipeline and its
#: journal, the plan read back, a shard's listing.
SHARED_ENGINE = {
    "tasks.s3.selection.Selection.__iter__",
    "tasks.cleanup.record_plan",
    "tasks.s3.manifest.ManifestWriter.add",
    "tasks.s3.manifest.ManifestWriter.finish",
    "tasks.cleanup.journaled_deletes",
    "tasks.cleanup.planned_objects",
    "tasks.cleanup.send",
    "tasks.s3.deletion.DeletePipeline._delete_batch",
    "tasks.s3.journal.Journal.sending",
    "tasks.s3.listing.list_shard",
    "tasks.guards.locking.bucket_held",
    "tasks.guards.limits.check_guards",
}
#: The report's fields that say what a run did (not where, nor how long).
OUTCOME = (
    "status",
    "scanned",
    "matched",
    "matched_bytes",
    "deleted",
    "already_gone",
    "skipped_changed",
    "failed",
    "failed_by_code",
    "cutoff",
    "bucket_action",
)


@pytest.fixture
def twin_prefixes(aws: AwsClients, as_of: datetime) -> None:
    """Two prefixes filled alike: 1,700 old objects in folders and flat (the flat part more
    than a shard), 30 young, and old ones beside each."""
    aws.s3.create_bucket(Bucket=BUCKET)
    for prefix in ("here/", "there/"):
        old = [f"{prefix}day-{d}/k{n:04d}" for d in (1, 2) for n in range(300)]
        old += [f"{prefix}flat-{n:05d}" for n in range(1100)]
        bulk_put(BUCKET, old, as_of - timedelta(days=90))
        bulk_put(BUCKET, [f"{prefix}young-{n:03d}" for n in range(30)], as_of)
        bulk_put(BUCKET, [f"{prefix[:-1]}-keep/old"], as_of - timedelta(days=90))


def run(prefix: str, as_of: datetime, **options: Any) -> Any:
    return s3_housekeeping(
        bucket=BUCKET,
        prefix=prefix,
        older_than_days=30,
        as_of=as_of,
        dry_run=False,
        create_bucket=False,
        # The whole plan first: moto's key index cannot be listed and changed at once.
        max_deletions=10_000,
        **options,
    )


def test_both_executors_call_the_same_functions_but_their_own_and_end_alike(
    aws: AwsClients, twin_prefixes: None, as_of: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import LocalCluster

    monkeypatch.setenv("SHARD_SIZE", "1000")  # the prefix is listed in several shards
    run("nothing/", as_of)  # modules loaded and caches filled alike for both runs below
    with product_calls() as here_called:
        here = run("here/", as_of)
    with (
        product_calls() as there_called,
        # Started inside the block: its worker threads are then watched too.
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            protocol="tcp",
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
    ):
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        there = run("there/", as_of)

    # One path: every function either run calls is the other's too, but where parts run.
    assert {n for n in here_called if not n.startswith(IN_THIS_PROCESS)} == {
        n for n in there_called if not n.startswith(ON_A_CLUSTER)
    }
    assert here_called & there_called >= SHARED_ENGINE
    assert {name: getattr(here, name) for name in OUTCOME} == {
        name: getattr(there, name) for name in OUTCOME
    }
    # Workers are named host:process; this cluster's are threads of this one.
    assert (here.matched, here.deleted, here.workers, bool(there.workers)) == (1700, 1700, [], True)
