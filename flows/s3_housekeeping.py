"""The s3_housekeeping flow: validate, fetch the secret, ensure the bucket, plan, then apply."""

from __future__ import annotations

import os
import time
import uuid
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.hooks import announce_outcome
from tasks.approval import request_approval
from tasks.aws import AwsClients, AwsSettings, create_clients
from tasks.buckets import ensure_bucket_task
from tasks.cleanup import (
    Guards,
    PlanSummary,
    apply_cleanup_task,
    check_guards,
    load_plan,
    plan_and_apply_task,
    plan_cleanup_task,
)
from tasks.config import RunConfig, load_config
from tasks.errors import ConfigError, PartialFailure, SafetyRefusal
from tasks.parameters import SNS_TOPIC_ARN_PATTERN, optional_int, optional_pattern
from tasks.record.artifacts import (
    ProgressArtifact,
    publish_manifest_link,
    publish_plan,
    publish_report,
)
from tasks.record.lifecycle import lifecycle_rule
from tasks.record.report import RunReport
from tasks.s3 import plan_store
from tasks.s3.deletion import ApplyResult
from tasks.s3.listing import versioning_status
from tasks.s3.manifest import PlanTarget, isoformat
from tasks.s3.progress import Progress
from tasks.secrets_manager import RunSecret, fetch_secret

VERSIONED_CURRENT_NOTE = (
    "The bucket is versioned: deleting current objects only adds delete markers and reclaims "
    "no storage. Run with versions=noncurrent to delete versions that became noncurrent "
    "before the cutoff, which is what frees space."
)


@task(name="validate-config", cache_policy=NO_CACHE)
def validate_config(parameters: dict[str, object]) -> RunConfig:
    """Resolve parameters, environment and defaults into one validated configuration."""
    return load_config(parameters, os.environ)


@flow(
    name="s3-housekeeping",
    validate_parameters=True,
    # Every ending, success or failure, emits its Prefect event and (if a topic is set) its notice.
    on_completion=[announce_outcome],
    on_failure=[announce_outcome],
)
def s3_housekeeping(
    bucket: str | None = None,
    prefix: str | None = None,
    older_than_days: Annotated[int | None, optional_int(1, 36500)] = None,
    dry_run: bool | None = None,
    environment: Literal["dev", "staging", "prod"] | None = None,
    region: str | None = None,
    aws_credentials_block: str | None = None,
    role_arn: str | None = None,
    secret_name: str | None = None,
    expected_bucket_owner: str | None = None,
    create_bucket: bool = True,
    max_deletions: Annotated[int | None, optional_int(0)] = None,
    as_of: datetime | None = None,
    plan: str | None = None,
    versions: Literal["current", "noncurrent", "all"] | None = None,
    max_delete_bytes: int | None = None,
    max_delete_percent: float | None = None,
    manifest_location: str | None = None,
    max_plan_age_hours: float | None = None,
    require_approval: bool | None = None,
    approval_timeout_minutes: Annotated[int | None, optional_int(1, 10080)] = None,
    notify_topic_arn: Annotated[str | None, optional_pattern(SNS_TOPIC_ARN_PATTERN)] = None,
) -> RunReport:
    """Delete the objects under a prefix that are older than N days, safely.

    Any parameter left empty falls back to its environment variable, then to its default.

    Args:
        bucket: Target S3 bucket (env S3_BUCKET). Required.
        prefix: Key prefix to clean, e.g. "tmp/" (env CLEANUP_PREFIX). Required; no leading "/",
            no ".." segment. "tmp" also matches "tmp-keep/": end it with "/" for a folder.
        older_than_days: Delete objects last modified more than this many days before as_of,
            1 to 36500 (env CLEANUP_OLDER_THAN_DAYS, default 30).
        dry_run: True plans and reports only; False deletes the planned objects
            (env DRY_RUN, default true).
        environment: dev, staging or prod: the bucket's Environment tag (env ENVIRONMENT,
            default dev).
        region: The bucket's AWS region (env AWS_DEFAULT_REGION, default us-east-1).
        aws_credentials_block: Name of a prefect-aws AWS Credentials block; empty uses the
            default AWS chain: environment, profile, instance or task role
            (env AWS_CREDENTIALS_BLOCK).
        role_arn: IAM role to assume; its credentials refresh during long runs
            (env ASSUME_ROLE_ARN).
        secret_name: Secrets Manager secret (a JSON object) for the run; may hold kms_key_id
            and expected_bucket_owner (env SECRET_NAME).
        expected_bucket_owner: 12-digit account ID; a bucket owned by any other account is
            refused (env EXPECTED_BUCKET_OWNER).
        create_bucket: Create the bucket if missing and converge Block Public Access, default
            encryption and tags (default true).
        max_deletions: Refuse the run, deleting nothing, if the plan holds more objects
            (env MAX_DELETIONS; empty means no limit).
        as_of: Reference time for the age cutoff (default: now). Not in the future.
        plan: A saved plan (manifest) to apply instead of listing: a local path or
            s3://bucket/key. Only its objects are deleted, each only if unchanged; refused if
            made for another target or older than max_plan_age_hours.
        versions: Which versions to delete: current (default; in a versioned bucket this only
            adds delete markers), noncurrent (versions that became noncurrent before the
            cutoff: reclaims storage) or all (every version and delete marker older than the
            cutoff) (env CLEANUP_VERSIONS).
        max_delete_bytes: Refuse the run, deleting nothing, if the plan holds more bytes
            (env MAX_DELETE_BYTES).
        max_delete_percent: Refuse the run, deleting nothing, if the plan holds more than this
            percentage of the objects listed under the prefix (env MAX_DELETE_PERCENT).
        manifest_location: Where plans are written: a local directory or an s3://bucket/prefix
            (env MANIFEST_LOCATION, default "manifests").
        max_plan_age_hours: The oldest saved plan that may be applied, in hours
            (env MAX_PLAN_AGE_HOURS, default 24).
        require_approval: Before deleting, show the plan and pause until a person approves it
            in the UI; a rejection or no answer deletes nothing (env REQUIRE_APPROVAL,
            default false).
        approval_timeout_minutes: How long a run waits for approval before it gives up,
            deleting nothing, 1 to 10080 (env APPROVAL_TIMEOUT_MINUTES, default 60).
        notify_topic_arn: SNS topic told (a short JSON summary) when a run deletes something,
            is refused or fails (env SNS_TOPIC_ARN; empty: no notice).
    """
    started = time.monotonic()
    logger = get_run_logger()
    parameters: dict[str, object] = {
        "bucket": bucket,
        "prefix": prefix,
        "older_than_days": older_than_days,
        "dry_run": dry_run,
        "environment": environment,
        "region": region,
        "aws_credentials_block": aws_credentials_block,
        "role_arn": role_arn,
        "secret_name": secret_name,
        "expected_bucket_owner": expected_bucket_owner,
        "create_bucket": create_bucket,
        "max_deletions": max_deletions,
        "as_of": as_of,
        "plan": plan,
        "versions": versions,
        "max_delete_bytes": max_delete_bytes,
        "max_delete_percent": max_delete_percent,
        "manifest_location": manifest_location,
        "max_plan_age_hours": max_plan_age_hours,
        "require_approval": require_approval,
        "approval_timeout_minutes": approval_timeout_minutes,
        "notify_topic_arn": notify_topic_arn,
    }
    config = validate_config(parameters)
    # Scratch files of this run (a downloaded plan) are removed however it ends.
    with ExitStack() as scratch:
        clients = create_clients(aws_settings(config))
        retries = config.task_retries
        secret = (
            fetch_secret.with_options(retries=retries)(
                clients.secretsmanager, config.secret_name, config.secret_required_keys
            )
            if config.secret_name
            else None
        )
        owner = resolve_owner(config, secret)
        report = RunReport(
            status="dry_run" if config.dry_run else "completed",
            bucket=config.bucket,
            prefix=config.prefix,
            region=config.region,
            environment=config.environment,
            cutoff=isoformat(config.cutoff),
            dry_run=config.dry_run,
            versions=config.versions,
            lifecycle_rule=lifecycle_rule(config.prefix, config.older_than_days, config.versions),
        )
        bucket_exists = True
        if config.create_bucket:
            bucket_result = ensure_bucket_task.with_options(retries=retries)(
                clients.s3,
                config.bucket,
                config.region,
                config.environment,
                owner,
                secret.kms_key_id if secret else None,
                config.dry_run,
            )
            report.bucket_action, report.bucket_changes = (
                bucket_result.action,
                bucket_result.changes,
            )
            bucket_exists = bucket_result.exists
        if bucket_exists:
            report.versioning = versioning_status(clients.s3, config.bucket, owner)
            if report.versioning != "Disabled" and config.versions == "current":
                report.notes.append(VERSIONED_CURRENT_NOTE)

        target = PlanTarget(
            bucket=config.bucket,
            region=config.region,
            prefix=config.prefix,
            cutoff=report.cutoff,
            created_at=isoformat(datetime.now(UTC)),
            owner=owner,
            versions=config.versions,
        )
        guards = Guards(config.max_deletions, config.max_delete_bytes, config.max_delete_percent)
        progress = Progress()
        progress_artifact = ProgressArtifact()
        progress.listeners.append(progress_artifact)
        result: ApplyResult | None = None
        staging, upload_to = plan_store.staging_path(
            config.manifest_location, config.bucket, manifest_name(config)
        )
        if config.plan:
            saved = load_plan(
                plan_store.fetch(clients.s3, config.plan, scratch),
                target,
                timedelta(hours=config.max_plan_age_hours),
            )
            report.plan_source, report.cutoff = config.plan, saved.target.cutoff
            the_plan = replace(saved, manifest=config.plan)
            local_plan = saved
        elif must_plan_first(config, guards):
            local_plan = plan_cleanup_task.with_options(retries=retries)(
                clients.s3,
                target,
                config.cutoff,
                staging,
                bucket_exists,
                config.list_concurrency,
                progress,
            )
            the_plan = published(clients, local_plan, upload_to)
        else:
            # Nothing needs the whole plan before the first delete: delete while listing.
            progress_artifact.start(f"Deleting under s3://{config.bucket}/{config.prefix}")
            local_plan, result = plan_and_apply_task.with_options(retries=0)(
                clients.s3,
                target,
                config.cutoff,
                staging,
                config.list_concurrency,
                config.delete_concurrency,
                progress,
            )
            the_plan = published(clients, local_plan, upload_to)
        record_plan(report, the_plan)
        publish_plan(the_plan, config.dry_run, config.older_than_days)
        publish_manifest_link(the_plan)
        try:
            check_guards(the_plan, guards)
        except SafetyRefusal as refusal:
            report.status, report.message = "refused", str(refusal)
            refusal.report = finish(report, clients, started)
            raise
        if config.dry_run:
            report.message = (
                f"dry run: {the_plan.matched} objects would be deleted; nothing was deleted"
            )
            logger.info(report.message, extra={"matched": the_plan.matched, "dry_run": True})
            return finish(report, clients, started)

        if config.require_approval and result is None and the_plan.matched:
            try:
                request_approval(the_plan, config.approval_timeout_minutes * 60)
            except SafetyRefusal as refusal:
                report.status, report.message = "refused", str(refusal)
                refusal.report = finish(report, clients, started)
                raise
        if result is None:
            progress_artifact.start(f"Deleting {the_plan.matched} planned objects")
            result = apply_cleanup_task.with_options(retries=0)(
                clients.s3, local_plan, config.delete_concurrency, progress
            )
        record_apply(report, result)
        if result.failed:
            report.status = "partial_failure"
            report.message = f"{result.failed} of {result.planned} planned deletions failed"
            raise PartialFailure(result.failed, result.planned, finish(report, clients, started))
        report.message = f"deleted {result.deleted} of {result.planned} planned objects"
        return finish(report, clients, started)


def must_plan_first(config: RunConfig, guards: Guards) -> bool:
    """Whether the whole plan must exist before the first delete: in a dry run, and whenever a
    guard must see the plan's totals, or a person must approve it. Otherwise deletes start while
    the listing goes on."""
    return config.dry_run or guards.any or config.require_approval


def aws_settings(config: RunConfig) -> AwsSettings:
    """The client factory's settings for this run: a connection for every worker."""
    return AwsSettings(
        region=config.region,
        credentials_block=config.aws_credentials_block,
        role_arn=config.role_arn,
        max_attempts=config.aws_max_attempts,
        retry_mode=config.aws_retry_mode,
        max_pool_connections=config.delete_concurrency + config.list_concurrency + 2,
    )


def resolve_owner(config: RunConfig, secret: RunSecret | None) -> str | None:
    """The expected bucket owner from the parameter or the secret; they must agree."""
    from_secret = secret.expected_bucket_owner if secret else None
    if config.expected_bucket_owner and from_secret and config.expected_bucket_owner != from_secret:
        raise ConfigError(
            "expected_bucket_owner: the parameter and the secret name different accounts"
        )
    return config.expected_bucket_owner or from_secret


def manifest_name(config: RunConfig) -> str:
    """One gzip JSON Lines file per run, named for the reference time and the run."""
    run_id = flow_run.get_id() or uuid.uuid4().hex
    return f"{config.as_of.strftime('%Y%m%dT%H%M%SZ')}-{run_id}.jsonl.gz"


def published(clients: AwsClients, plan: PlanSummary, upload_to: str | None) -> PlanSummary:
    """The plan as it is kept: uploaded to S3 when manifest_location is an s3:// prefix."""
    location = plan_store.publish(clients.s3, Path(plan.manifest), upload_to)
    return replace(plan, manifest=location)


def record_plan(report: RunReport, plan: PlanSummary) -> None:
    """Copy the plan's totals into the report."""
    report.scanned, report.matched = plan.scanned, plan.matched
    report.matched_bytes, report.manifest = plan.matched_bytes, plan.manifest


def record_apply(report: RunReport, result: ApplyResult) -> None:
    """Copy the apply's outcomes into the report."""
    report.deleted, report.skipped_changed = result.deleted, result.skipped_changed
    report.failed, report.failed_by_code = result.failed, dict(result.failed_by_code)


def finish(report: RunReport, clients: AwsClients, started: float) -> RunReport:
    """Stamp the request counts and duration, log the summary, publish the report artifact."""
    report.requests = clients.requests.snapshot()
    report.duration_s = round(time.monotonic() - started, 3)
    get_run_logger().info(
        "Run finished (%s): %s", report.status, report.message, extra={"report": report.to_dict()}
    )
    publish_report(report)
    return report
