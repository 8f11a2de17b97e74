"""The s3_housekeeping flow: validate, fetch the secret, ensure the bucket, plan, then apply."""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.hooks import announce_outcome, announced_if_stopped
from flows.parameters import setting_parameters
from tasks.aws import AwsClients, create_clients
from tasks.buckets import ensure_bucket_task
from tasks.cleanup import deletes_while_listing, plan_request
from tasks.errors import PartialFailure, SafetyRefusal, attach_report
from tasks.execution.executor import Executor, executor_for
from tasks.guards.approval import request_approval
from tasks.guards.limits import Guards, check_guards
from tasks.guards.locking import bucket_held
from tasks.guards.operator_limits import check_this_flow_run
from tasks.guards.prefix import check_prefix
from tasks.record.artifacts import ProgressArtifact, publish_plan, publish_report
from tasks.record.report import RunReport
from tasks.s3.progress import Progress
from tasks.secrets_manager import expected_owner, fetch_secret
from tasks.settings import RunSettings, load_settings


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
        owner_from = "parameter" if settings.expected_bucket_owner else "secret"
        request = plan_request(settings, owner, bucket.exists, owner_from)
        scratch = Path(run.enter_context(TemporaryDirectory(prefix="s3-housekeeping-")))
        shown = ProgressArtifact()
        progress = Progress(listeners=[shown])
        # Deletes start while the listing goes on unless a guard or a person must see the
        # whole plan first, or it comes from a file; a dry run cuts them off.
        streaming = deletes_while_listing(settings)
        executor: Executor | None = None
        try:
            # A prefix that spans folders is said, or refused before anything else is done.
            if bucket.exists and (note := check_prefix(clients.s3, settings, owner)):
                report.notes.append(note)
            # The bucket's lock first (another run's is a refusal), held to the last delete.
            lock = (
                None
                if settings.dry_run
                else run.enter_context(bucket_held(clients.s3, settings, owner))
            )
            executor = run.enter_context(
                executor_for(settings, clients, request, scratch, progress, lock)
            )
            report.journal = executor.journal
            if streaming:
                shown.start(f"Deleting under s3://{settings.bucket}/{settings.prefix}")
            plan = executor.plan(streaming)
            report.record_plan(plan)
            report.workers, report.notes = sorted(executor.workers), report.notes + executor.notes
            publish_plan(plan, settings.dry_run, settings.older_than_days)
            check_guards(plan, Guards.of(settings))
            if settings.dry_run:
                report.record_dry_run()
                return finish(report, clients, executor)
            if settings.require_approval and plan.matched:
                timeout_s = settings.approval_timeout_minutes * 60
                request_approval(plan, timeout_s, record=report.record_approval)
            if not streaming:
                shown.start(f"Deleting {plan.matched} planned objects")
            result = executor.apply(plan, streamed=streaming)
        except SafetyRefusal as refusal:
            report.record_refusal(refusal)
            refusal.report = finish(report, clients, executor)
            raise
        except BaseException as error:  # a signal too: the run was cancelled or terminated
            if executor is not None and not settings.dry_run:  # deletes may have been sent
                report.record_failure(executor.settled(), error, executor.planned_so_far())
                attach_report(error, finish(report, clients, executor))
            raise
        report.record_apply(result)
        if result.failed:
            raise PartialFailure(result.failed, result.planned, finish(report, clients, executor))
        return finish(report, clients, executor)


def finish(report: RunReport, clients: AwsClients, executor: Executor | None) -> RunReport:
    """Close the report with the run's request counts (and those its workers sent from other
    machines), log it, and publish it as an artifact."""
    elsewhere = executor.requests if executor is not None else Counter[str]()
    if executor is not None:
        report.workers = sorted(set(report.workers) | executor.workers)
    report.close(dict(Counter(clients.requests.snapshot()) + elsewhere))
    get_run_logger().info(
        "Run finished (%s): %s", report.status, report.message, extra={"report": report.to_dict()}
    )
    publish_report(report)
    return report
