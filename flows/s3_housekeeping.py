"""The s3_housekeeping flow: validate, fetch the secret, ensure the bucket, plan, then apply."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.hooks import announce_outcome, announced_if_stopped
from flows.parameters import setting_parameters
from tasks.approval import request_approval
from tasks.aws import AwsClients, create_clients
from tasks.buckets import ensure_bucket_task
from tasks.cleanup import (
    Guards,
    PlanRequest,
    apply_cleanup_task,
    check_guards,
    deletes_while_listing,
    deleting,
    journal_file,
    new_plan_location,
    plan_cleanup_task,
    plan_request,
)
from tasks.dask_runner import dask_runner
from tasks.errors import PartialFailure, SafetyRefusal, attach_report
from tasks.locking import bucket_concurrency, lock_bucket_task
from tasks.operator_limits import check_this_flow_run
from tasks.record.artifacts import ProgressArtifact, publish_plan, publish_report
from tasks.record.report import RunReport
from tasks.s3.deletion import DeletePipeline
from tasks.s3.progress import Progress
from tasks.secrets_manager import expected_owner, fetch_secret
from tasks.settings import RunSettings, load_settings
from tasks.sharding import PartApplier, plan_in_shards, saved_in_shards

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@task(name="validate-config", cache_policy=NO_CACHE)
def validate_config(parameters: dict[str, Any]) -> RunSettings:
    """Resolve parameters, environment and defaults into one validated configuration, within
    the operator's limits (which only the work pool may set)."""
    settings = load_settings(parameters)
    check_this_flow_run()
    return settings


@flow(
    name="s3-housekeeping",
    validate_parameters=True,
    # Every ending emits its Prefect event and (if a topic is set) its notice.
    on_completion=[announce_outcome],
    on_failure=[announce_outcome],
    # A cancelled run is announced from inside (announced_if_stopped): a worker's own
    # cancellation hooks may not run (prefect#17259). A crash can only be told from outside.
    on_crashed=[announce_outcome],
)
@setting_parameters
def s3_housekeeping(**parameters: Any) -> RunReport:
    """Delete the objects under a prefix that are older than N days, safely.

    Any parameter left empty falls back to its environment variable, then to its default.
    """
    settings = validate_config(parameters)
    report = RunReport.begin(settings)
    clients = create_clients(settings.aws())
    with announced_if_stopped(report, parameters), ExitStack() as run:
        secret = None
        if settings.secret_name:
            secret = fetch_secret.with_options(retries=settings.task_retries)(
                clients.secretsmanager, settings.secret_name, settings.secret_required_keys
            )
        owner = expected_owner(settings.expected_bucket_owner, secret)
        bucket = ensure_bucket_task.with_options(retries=settings.task_retries)(
            clients.s3,
            settings.bucket,
            settings.region,
            settings.environment,
            owner,
            secret.kms_key_id if secret else None,
            dry_run=settings.dry_run,
            create=settings.create_bucket,
            converge=settings.converge_baseline,
        )
        report.record_bucket(bucket)

        shown = ProgressArtifact()
        progress = Progress(listeners=[shown])
        scratch = Path(run.enter_context(TemporaryDirectory(prefix="s3-housekeeping-")))
        owner_from = "parameter" if settings.expected_bucket_owner else "secret"
        request = plan_request(settings, owner, bucket.exists, owner_from)
        if settings.dask_address:
            return run_in_shards(settings, clients, request, scratch, owner, report)
        # The delete consumer; a dry run cuts it. It starts while the listing goes on unless
        # a guard or a person must see the whole plan first.
        deletes = None
        streaming = deletes_while_listing(settings)
        try:
            if not settings.dry_run:  # the bucket's lock first: another run's is a refusal
                deletes = run.enter_context(
                    consumer(clients.s3, settings, request, scratch, owner, progress, report)
                )
            if streaming:
                shown.start(f"Deleting under s3://{settings.bucket}/{settings.prefix}")
            plan = plan_cleanup_task(
                clients.s3, request, scratch, deletes if streaming else None, progress
            )
            report.record_plan(plan)
            publish_plan(plan, settings.dry_run, settings.older_than_days)
            check_guards(plan, Guards.of(settings))
            if deletes is None:
                report.record_dry_run()
                return finish(report, clients)
            if settings.require_approval and plan.matched:
                request_approval(plan, settings.approval_timeout_minutes * 60)
            if not streaming:
                shown.start(f"Deleting {plan.matched} planned objects")
            result = apply_cleanup_task(plan, deletes, sent_while_planning=streaming)
        except SafetyRefusal as refusal:
            report.record_refusal(refusal)
            refusal.report = finish(report, clients)
            raise
        except BaseException as error:  # a signal too: the run was cancelled or terminated
            if deletes is not None:  # deletes may have been sent: say which, and how many
                matched_so_far = progress.snapshot().matched  # if the plan did not finish
                report.record_failure(deletes.settle(), error, matched_so_far)
                cut_short = new_plan_location(request)
                if report.manifest is None and Path(cut_short).is_file():
                    report.manifest = cut_short  # a plan cut short: what it held is on disk
                attach_report(error, finish(report, clients))
            raise
        report.record_apply(result)
        if result.failed:
            raise PartialFailure(result.failed, result.planned, finish(report, clients))
        return finish(report, clients)


@contextmanager
def consumer(
    s3: S3Client,
    settings: RunSettings,
    request: PlanRequest,
    scratch: Path,
    owner: str | None,
    progress: Progress,
    report: RunReport,
) -> Iterator[DeletePipeline]:
    """An executing run's delete consumer, holding the bucket from planning to the last delete
    (across an approval wait), with its journal. The lock is released last."""
    with ExitStack() as held:
        lock = lock_bucket_task(s3, settings, owner)
        held.callback(lock.release)
        held.enter_context(bucket_concurrency(settings))
        journal = journal_file(request, scratch)
        report.journal = journal.location
        yield held.enter_context(deleting(s3, settings, request, journal, owner, progress, lock))


def run_in_shards(
    settings: RunSettings,
    clients: AwsClients,
    request: PlanRequest,
    scratch: Path,
    owner: str | None,
    report: RunReport,
) -> RunReport:
    """The plan and the apply spread over a Dask cluster's workers (tasks/sharding.py), with
    the same guards, approval, lock and report as in one process. Parts are applied as they
    are planned unless a guard or a person must see the whole plan first."""
    requests: Counter[str] = Counter()
    applier: PartApplier | None = None
    with ExitStack() as held:
        try:
            run_id = ""
            if not settings.dry_run:
                lock = lock_bucket_task(clients.s3, settings, owner)
                held.callback(lock.release)
                held.enter_context(bucket_concurrency(settings))
                run_id = lock.lease.run_id
            runner = held.enter_context(dask_runner(settings.dask_address))
            aws = settings.aws()
            applier = PartApplier(
                runner,
                aws,
                request.target,
                run_id,
                settings.delete_concurrency,
                settings.delete_throttle_budget_minutes * 60,
                request.max_plan_age if settings.plan else None,
            )
            streaming = deletes_while_listing(settings)
            if settings.plan:
                plan = saved_in_shards(clients.s3, settings.plan, request, scratch)
                left = sum(part.matched for part in plan.parts)
                if left < plan.summary.matched:
                    report.notes.append(
                        f"{plan.summary.matched - left} planned objects are in parts an "
                        f"earlier apply of this plan finished; this run applies the {left} left"
                    )
            else:
                plan = plan_in_shards(
                    runner,
                    aws,
                    request,
                    scratch,
                    clients.s3,
                    settings.list_concurrency,
                    on_part=applier.submit if streaming else None,
                )
            requests.update(plan.requests)
            report.record_plan(plan.summary)
            report.workers = sorted(plan.workers)
            publish_plan(plan.summary, settings.dry_run, settings.older_than_days)
            check_guards(plan.summary, Guards.of(settings))
            if settings.dry_run:
                report.record_dry_run()
                return finish(report, clients, requests)
            if settings.require_approval and plan.summary.matched:
                request_approval(plan.summary, settings.approval_timeout_minutes * 60)
            if not streaming:
                for part in plan.parts:
                    applier.submit(part)
            result, workers, applied = applier.results()
        except SafetyRefusal as refusal:
            report.record_refusal(refusal)
            refusal.report = finish(report, clients, requests)
            raise
        except BaseException as error:  # a worker's error, or the run was stopped
            if applier is not None and not settings.dry_run:  # parts may have been applied
                report.record_failure(applier.settled(), error)
                attach_report(error, finish(report, clients, requests))
            raise
    requests.update(applied)
    report.workers = sorted(set(report.workers) | workers)
    report.record_apply(result)
    if result.failed:
        raise PartialFailure(result.failed, result.planned, finish(report, clients, requests))
    return finish(report, clients, requests)


def finish(
    report: RunReport, clients: AwsClients, elsewhere: Counter[str] | None = None
) -> RunReport:
    """Close the report with the run's request counts (and those its shards sent from other
    machines), log it, and publish it as an artifact."""
    report.close(dict(Counter(clients.requests.snapshot()) + (elsewhere or Counter())))
    get_run_logger().info(
        "Run finished (%s): %s", report.status, report.message, extra={"report": report.to_dict()}
    )
    publish_report(report)
    return report
