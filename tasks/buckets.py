"""ensure_bucket: create the bucket if missing, converge it to a secure baseline, idempotently."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, cast

from botocore.exceptions import ClientError
from prefect import task

from tasks.errors import (
    ConfigError,
    MissingBucket,
    PermissionDeniedError,
    error_code,
    translated_aws_errors,
)
from tasks.retry import aws_task_options

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

BucketAction = Literal[
    "created", "changed", "unchanged", "drifted", "skipped", "would_create", "would_change"
]
MANAGED_BY = "s3-housekeeping"
BLOCK_ALL_PUBLIC_ACCESS = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
MISSING_BUCKET_CODES = frozenset({"404", "NoSuchBucket", "NotFound"})


@dataclass(frozen=True)
class BucketResult:
    """What ensure_bucket did: `changes` names the settings that differed from the baseline
    (written, unless the bucket was only read: dry run, or drift without `converge`);
    `versioning` is the bucket's versioning status as GetBucketVersioning reports it."""

    bucket: str
    action: BucketAction
    changes: list[str] = field(default_factory=list)
    versioning: str = "unknown"

    @property
    def exists(self) -> bool:
        """False only in a dry run that found the bucket missing (and so did not create it)."""
        return self.action != "would_create"


def ensure_bucket(
    s3: S3Client,
    bucket: str,
    region: str,
    environment: str,
    expected_owner: str | None = None,
    kms_key_id: str | None = None,
    dry_run: bool = False,
    converge: bool = False,
    create: bool = True,
) -> BucketResult:
    """Create the bucket with the baseline when it is missing: Block Public Access, default
    encryption and the ManagedBy/Environment tags. On an existing bucket, report where it
    differs from the baseline ("drifted") and write the baseline only when asked (`converge`):
    a cleanup job must not re-encrypt or re-tag someone's bucket as a side effect. A second
    call changes nothing.

    Args:
        s3: an S3 client from the factory in tasks/aws.py.
        bucket: the bucket name (already validated).
        region: where to create it; us-east-1 takes no LocationConstraint.
        environment: the value of the Environment tag.
        expected_owner: 12-digit account that must own the bucket, when known.
        kms_key_id: SSE-KMS key for default encryption; None keeps any encryption already set
            and otherwise sets SSE-S3.
        dry_run: read only; report what would be created or changed ("would_create",
            "would_change") without sending a single mutating request.
        converge: bring an existing bucket to the baseline; otherwise only report its drift.
        create: create a missing bucket; False: a missing bucket is an error.

    Raises:
        MissingBucket: the bucket is missing and `create` is False.
    """
    owner: dict[str, Any] = {"ExpectedBucketOwner": expected_owner} if expected_owner else {}
    exists = _bucket_exists(s3, bucket, owner)
    if not exists and not create:
        raise MissingBucket(bucket)
    # Only read and report: in a dry run, and on an existing bucket unless asked to converge.
    report_only = dry_run or (exists and not converge)
    steps: list[tuple[str, Callable[[], bool]]] = [
        (
            "public_access_block",
            lambda: _converge_public_access_block(s3, bucket, owner, report_only),
        ),
        ("encryption", lambda: _converge_encryption(s3, bucket, owner, kms_key_id, report_only)),
        ("tags", lambda: _converge_tags(s3, bucket, owner, environment, report_only)),
    ]
    action: BucketAction
    if not exists:
        if dry_run:
            action, changes = "would_create", [name for name, _ in steps]
            logger.info(
                "Bucket %s is missing; a real run would create it",
                bucket,
                extra={"bucket": bucket, "bucket_action": action},
            )
            return BucketResult(bucket=bucket, action=action, changes=changes)
        created = _create_bucket(s3, bucket, region)
    else:
        created = False
    changes = [name for name, step in steps if step()]
    if created:
        action = "created"
    elif not changes:
        action = "unchanged"
    elif not converge:
        action = "drifted"
    else:
        action = "would_change" if dry_run else "changed"
    logger.info(
        "Bucket %s %s",
        bucket,
        action,
        extra={"bucket": bucket, "bucket_action": action, "changes": changes},
    )
    return BucketResult(bucket=bucket, action=action, changes=changes)


def _bucket_exists(s3: S3Client, bucket: str, owner: dict[str, Any]) -> bool:
    """HeadBucket: True when it exists and is ours to use, False on 404."""
    try:
        s3.head_bucket(Bucket=bucket, **owner)
    except ClientError as exc:
        code = error_code(exc)
        if code in MISSING_BUCKET_CODES:
            return False
        if code in {"403", "AccessDenied"}:
            raise PermissionDeniedError(
                f"bucket '{bucket}' exists but is not accessible"
                + (" or is owned by another account" if owner else "")
            ) from None
        if code in {"301", "PermanentRedirect"}:
            where = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            actual = where.get("x-amz-bucket-region", "another region")
            raise ConfigError(
                f"bucket '{bucket}' is in {actual}, not the configured region"
            ) from None
        raise
    return True


def _create_bucket(s3: S3Client, bucket: str, region: str) -> bool:
    """CreateBucket; True if this call created it, False if an earlier attempt already had."""
    arguments: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        arguments["CreateBucketConfiguration"] = {"LocationConstraint": region}
    logger.info("Creating bucket %s in %s", bucket, region, extra={"bucket": bucket})
    try:
        s3.create_bucket(**arguments)
    except ClientError as exc:
        code = error_code(exc)
        if code == "BucketAlreadyOwnedByYou":
            # A create whose response was lost and that botocore retried lands here.
            return False
        if code == "BucketAlreadyExists":
            raise PermissionDeniedError(
                f"bucket name '{bucket}' is taken by another account; choose another name"
            ) from None
        raise
    return True


def _converge_public_access_block(
    s3: S3Client, bucket: str, owner: dict[str, Any], dry_run: bool
) -> bool:
    try:
        current = s3.get_public_access_block(Bucket=bucket, **owner)
        settings = current["PublicAccessBlockConfiguration"]
    except ClientError as exc:
        if error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
            raise
        settings = {}
    if all(settings.get(flag) for flag in BLOCK_ALL_PUBLIC_ACCESS):
        return False
    if dry_run:
        return True
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration=cast(Any, BLOCK_ALL_PUBLIC_ACCESS),
        **owner,
    )
    return True


def _converge_encryption(
    s3: S3Client, bucket: str, owner: dict[str, Any], kms_key_id: str | None, dry_run: bool
) -> bool:
    try:
        current = s3.get_bucket_encryption(Bucket=bucket, **owner)
        rules = current["ServerSideEncryptionConfiguration"]["Rules"]
    except ClientError as exc:
        if error_code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
            raise
        rules = []
    defaults = [rule.get("ApplyServerSideEncryptionByDefault", {}) for rule in rules]
    if kms_key_id is None:
        # Any default encryption meets the baseline; never downgrade a bucket's KMS setting.
        if any(d.get("SSEAlgorithm") for d in defaults):
            return False
        wanted: dict[str, Any] = {"SSEAlgorithm": "AES256"}
    else:
        if any(
            d.get("SSEAlgorithm") == "aws:kms" and d.get("KMSMasterKeyID") == kms_key_id
            for d in defaults
        ):
            return False
        wanted = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key_id}
    if dry_run:
        return True
    rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": wanted}
    if kms_key_id is not None:
        rule["BucketKeyEnabled"] = True  # fewer KMS requests, lower cost
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration=cast(Any, {"Rules": [rule]}),
        **owner,
    )
    return True


def _converge_tags(
    s3: S3Client, bucket: str, owner: dict[str, Any], environment: str, dry_run: bool
) -> bool:
    try:
        tag_set = s3.get_bucket_tagging(Bucket=bucket, **owner)["TagSet"]
    except ClientError as exc:
        if error_code(exc) not in {"NoSuchTagSet", "NoSuchTagSetError"}:
            raise
        tag_set = []
    current = {tag["Key"]: tag["Value"] for tag in tag_set}
    wanted = {"ManagedBy": MANAGED_BY, "Environment": environment}
    if all(current.get(key) == value for key, value in wanted.items()):
        return False
    if dry_run:
        return True
    # PutBucketTagging replaces the whole set: keep the tags others put there.
    merged = {**current, **wanted}
    s3.put_bucket_tagging(
        Bucket=bucket,
        Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in merged.items()]},
        **owner,
    )
    return True


def versioning_status(s3: S3Client, bucket: str, owner: str | None = None) -> str:
    """ "Enabled", "Suspended" or "Disabled" (never versioned)."""
    arguments: dict[str, Any] = {"Bucket": bucket}
    if owner:
        arguments["ExpectedBucketOwner"] = owner
    status = s3.get_bucket_versioning(**arguments).get("Status")
    return str(status) if status else "Disabled"


@task(name="ensure-bucket", **aws_task_options())
def ensure_bucket_task(
    s3: S3Client,
    bucket: str,
    region: str,
    environment: str,
    expected_owner: str | None = None,
    kms_key_id: str | None = None,
    dry_run: bool = False,
    create: bool = True,
    converge: bool = False,
) -> BucketResult:
    """Create the bucket with its baseline if missing (unless `create` is false: then a
    missing one is an error); on an existing one, report its drift from the baseline and write
    Block Public Access, encryption and tags only when `converge`; read its versioning. In a
    dry run, only read and report."""
    with translated_aws_errors(f"bucket '{bucket}'"):
        # Without `create` the baseline is read and written only when asked to converge:
        # otherwise the step's one request is the versioning's (the policy's least).
        if create or converge:
            result = ensure_bucket(
                s3,
                bucket,
                region,
                environment,
                expected_owner,
                kms_key_id,
                dry_run,
                converge,
                create,
            )
        else:
            result = BucketResult(bucket=bucket, action="skipped")
        if not result.exists:
            return result
        try:
            versioning = versioning_status(s3, bucket, expected_owner)
        except ClientError as exc:
            # Without `create`, reading the versioning is the step's only request.
            if not create and error_code(exc) == "NoSuchBucket":
                raise MissingBucket(bucket) from None
            raise
        return replace(result, versioning=versioning)
