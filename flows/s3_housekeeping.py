"""The s3_housekeeping flow: validate, fetch the secret, ensure the bucket, plan, then apply."""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from tasks.artifacts import publish_plan, publish_report
from tasks.aws import AwsClients, AwsSettings, create_clients
from tasks.buckets import ensure_bucket_task
from tasks.cleanup import (
    ApplyResult,
    PlanSummary,
    apply_cleanup_task,
    check_guards,
    plan_cleanup_task,
)
from tasks.config import RunConfig, load_config
from tasks.errors import ConfigError, PartialFailure, SafetyRefusal
from tasks.manifest import PlanTarget, isoformat
from tasks.report import RunReport
from tasks.secrets_manager import RunSecret, fetch_secret


@task(name="validate-config", cache_policy=NO_CACHE)
def validate_config(parameters: dict[str, object]) -> RunConfig:
    """Resolve parameters, environment and defaults into one validated configuration."""
    return load_config(parameters, os.environ)


@flow(name="s3-housekeeping", validate_parameters=True)
def s3_housekeeping(
    bucket: str | None = None,
    prefix: str | None = None,
    older_than_days: int | None = None,
    dry_run: bool | None = None,
    environment: Literal["dev", "staging", "prod"] | None = None,
    region: str | None = None,
    aws_credentials_block: str | None = None,
    role_arn: str | None = None,
    secret_name: str | None = None,
    expected_bucket_owner: str | None = None,
    create_bucket: bool = True,
    max_deletions: int | None = None,
    as_of: datetime | None = None,
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
    }
    config = validate_config(parameters)
    clients = create_clients(aws_settings(config))
    secret = (
        fetch_secret.with_options(retries=config.task_retries)(
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
    )
    bucket_exists = True
    if config.create_bucket:
        bucket_result = ensure_bucket_task.with_options(retries=config.task_retries)(
            clients.s3,
            config.bucket,
            config.region,
            config.environment,
            owner,
            secret.kms_key_id if secret else None,
            config.dry_run,
        )
        report.bucket_action, report.bucket_changes = bucket_result.action, bucket_result.changes
        bucket_exists = bucket_result.exists

    target = PlanTarget(
        bucket=config.bucket,
        region=config.region,
        prefix=config.prefix,
        cutoff=report.cutoff,
        created_at=isoformat(datetime.now(config.as_of.tzinfo)),
        owner=owner,
    )
    plan = plan_cleanup_task.with_options(retries=config.task_retries)(
        clients.s3, target, config.cutoff, manifest_path(config), bucket_exists
    )
    record_plan(report, plan)
    publish_plan(plan, config.dry_run)
    try:
        check_guards(plan, config.max_deletions)
    except SafetyRefusal as refusal:
        report.status, report.message = "refused", str(refusal)
        refusal.report = finish(report, clients, started)
        raise
    if config.dry_run:
        report.message = f"dry run: {plan.matched} objects would be deleted; nothing was deleted"
        logger.info(report.message, extra={"matched": plan.matched, "dry_run": True})
        return finish(report, clients, started)

    result = apply_cleanup_task.with_options(retries=0)(clients.s3, Path(plan.manifest), target)
    record_apply(report, result)
    if result.failed:
        report.status = "partial_failure"
        report.message = f"{result.failed} of {result.planned} planned deletions failed"
        raise PartialFailure(result.failed, result.planned, finish(report, clients, started))
    report.message = f"deleted {result.deleted} of {result.planned} planned objects"
    return finish(report, clients, started)


def aws_settings(config: RunConfig) -> AwsSettings:
    """The client factory's settings for this run."""
    return AwsSettings(
        region=config.region,
        credentials_block=config.aws_credentials_block,
        role_arn=config.role_arn,
        max_attempts=config.aws_max_attempts,
        retry_mode=config.aws_retry_mode,
    )


def resolve_owner(config: RunConfig, secret: RunSecret | None) -> str | None:
    """The expected bucket owner from the parameter or the secret; they must agree."""
    from_secret = secret.expected_bucket_owner if secret else None
    if config.expected_bucket_owner and from_secret and config.expected_bucket_owner != from_secret:
        raise ConfigError(
            "expected_bucket_owner: the parameter and the secret name different accounts"
        )
    return config.expected_bucket_owner or from_secret


def manifest_path(config: RunConfig) -> Path:
    """Where this run's plan is written: one gzip JSON Lines file per run."""
    run_id = flow_run.get_id() or uuid.uuid4().hex
    stamp = config.as_of.strftime("%Y%m%dT%H%M%SZ")
    return config.manifest_dir / config.bucket / f"{stamp}-{run_id}.jsonl.gz"


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
