"""The least-privilege IAM policy of one run's configuration, as a policy document."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NotRequired, TypedDict

from tasks.aws_names import partition_of_region
from tasks.s3.bucket_lock import LOCK_FOLDER
from tasks.s3.plan_index import SUFFIX as INDEX_SUFFIX
from tasks.s3.uris import is_s3_uri, parse_s3_uri

if TYPE_CHECKING:
    from tasks.settings import RunSettings

POLICY_VERSION = "2012-10-17"
#: Where executing runs keep their lock object in the target bucket, taken, renewed and given
#: back with conditional writes.
LOCK_KEY_PREFIX = LOCK_FOLDER
#: What the bucket step reads: GetPublicAccessBlock, GetBucketEncryption and GetBucketTagging.
BASELINE_READS = (
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketTagging",
    "s3:GetEncryptionConfiguration",
)
#: What a bucket the run creates gets: CreateBucket, then PutPublicAccessBlock,
#: PutBucketEncryption and PutBucketTagging (also what `converge_baseline` writes).
BASELINE_WRITES = (
    "s3:CreateBucket",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketTagging",
    "s3:PutEncryptionConfiguration",
)


class Statement(TypedDict):
    """One Allow statement: sorted actions on a single resource, maybe with a condition."""

    Sid: str
    Effect: Literal["Allow"]
    Action: list[str]
    Resource: str
    Condition: NotRequired[dict[str, dict[str, list[str]]]]


class PolicyDocument(TypedDict):
    """An IAM identity policy document."""

    Version: str
    Statement: list[Statement]


def iam_policy(settings: RunSettings) -> PolicyDocument:
    """The identity policy a run with these settings needs, and nothing more.

    Attach it to the identity the run uses: the role of `role_arn` when there is one (its
    caller then needs only sts:AssumeRole on it), else the credentials block's or the default
    chain's. Every resource is named: the bucket, the objects under the prefix, the lock
    prefix, the plans' location, the secret and the topic; no statement has a bare "*".
    `converge_baseline` without `create_bucket` gives the baseline's reads and writes, less
    s3:CreateBucket; with it, it changes nothing (a bucket the run creates gets the same).

    Args:
        settings: a run's validated settings (the secret's values are not known here, so a
            customer managed KMS key behind the secret or the bucket is not covered).

    Raises:
        ValueError: the region belongs to no AWS partition (RunSettings refuses such a one).
    """
    partition = partition_of_region(settings.region)
    if partition is None:
        raise ValueError("the region is in no AWS partition")
    statements = [
        *bucket_statements(settings, partition),
        *delete_statements(settings, partition),
        *plan_statements(settings, partition),
    ]
    if settings.secret_name:
        secret = secret_arn(settings, partition)
        statements.append(statement("ReadTheRunSecret", ["secretsmanager:GetSecretValue"], secret))
    if settings.notify_topic_arn:
        topic = settings.notify_topic_arn
        statements.append(statement("PublishRunNotices", ["sns:Publish"], topic))
    return {"Version": POLICY_VERSION, "Statement": statements}


def bucket_statements(settings: RunSettings, partition: str) -> list[Statement]:
    """Checking, creating and reading the bucket, and listing the prefix."""
    bucket = f"arn:{partition}:s3:::{settings.bucket}"
    statements = []
    # The bucket step reads (and may write) the baseline when it may create the bucket or must
    # converge it; otherwise its one request is GetBucketVersioning.
    baseline = settings.create_bucket or settings.converge_baseline
    # HeadBucket, that step's first call, is authorized as s3:ListBucket and names no prefix,
    # so an s3:prefix condition would refuse it: with the baseline the listing cannot be
    # limited to the prefix.
    if baseline:
        statements.append(statement("HeadAndListTheBucket", ["s3:ListBucket"], bucket))
    # ListObjectsV2 (with a delimiter, then each sub-prefix) and ListObjectVersions only ever
    # name the prefix or a longer one.
    listed = [] if baseline else ["s3:ListBucket"]
    if settings.versions != "current":
        listed.append("s3:ListBucketVersions")
    if listed:
        under = {"StringLike": {"s3:prefix": [f"{literal(settings.prefix)}*"]}}
        statements.append(statement("ListUnderThePrefixOnly", listed, bucket, under))
    # GetObjectLockConfiguration: whether each object to delete must be asked about its lock.
    reads = [
        "s3:GetBucketObjectLockConfiguration",
        "s3:GetBucketVersioning",
        *(BASELINE_READS if baseline else ()),
    ]
    statements.append(statement("ReadTheBucketSettings", reads, bucket))
    statements.append(protection_statement(settings, bucket))
    if baseline and not settings.dry_run:
        writes = [w for w in BASELINE_WRITES if settings.create_bucket or w != "s3:CreateBucket"]
        sid = "CreateTheBucketWithItsBaseline" if settings.create_bucket else "WriteItsBaseline"
        statements.append(statement(sid, writes, bucket))
    return statements


def protection_statement(settings: RunSettings, bucket: str) -> Statement:
    """Asking about each object a plan would delete (tasks/s3/vetting.py): its retention and
    legal hold through HeadObject when the bucket has Object Lock on (which only the run
    finds out), its tags when protect_tags are set. Without s3:GetObjectRetention and
    s3:GetObjectLegalHold, S3 leaves a lock out of HeadObject's answer rather than refuse it."""
    versions = settings.versions != "current"
    actions = ["s3:GetObject", "s3:GetObjectLegalHold", "s3:GetObjectRetention"]
    if versions:
        actions.append("s3:GetObjectVersion")
    if settings.protect_tags:
        actions.append("s3:GetObjectVersionTagging" if versions else "s3:GetObjectTagging")
    return statement(
        "AskAboutTheLocksAndTagsOfObjectsToDelete", actions, f"{bucket}/{literal(settings.prefix)}*"
    )


def delete_statements(settings: RunSettings, partition: str) -> list[Statement]:
    """Deleting under the prefix, and holding the bucket's lock while doing so; none in a dry
    run."""
    if settings.dry_run:
        return []
    bucket = f"arn:{partition}:s3:::{settings.bucket}"
    under_prefix = f"{bucket}/{literal(settings.prefix)}*"
    if settings.versions != "current":
        # Versions are deleted by id: DeleteObjects entries with a VersionId.
        deletes = statement(
            "DeleteOldVersionsUnderThePrefix", ["s3:DeleteObjectVersion"], under_prefix
        )
    else:
        # Each current object is deleted on the condition of its listed ETag, which S3 allows
        # only to a caller that may also read the object.
        deletes = statement(
            "DeleteUnchangedObjectsUnderThePrefix",
            ["s3:DeleteObject", "s3:GetObject"],
            under_prefix,
        )
    lock = statement(
        "HoldTheRunLock",
        ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
        f"{bucket}/{literal(LOCK_KEY_PREFIX)}*",
    )
    return [deletes, lock]


def plan_statements(settings: RunSettings, partition: str) -> list[Statement]:
    """Reading a saved s3:// plan, and writing to an s3:// manifest location: new plans, and an
    executing run's journal of its deletes; none for local files. No s3:ListBucket there: the
    run never lists those keys."""
    statements = []
    if settings.plan is not None and is_s3_uri(settings.plan):
        saved = parse_s3_uri(settings.plan)
        # download_file: HeadObject, then GetObject.
        arn = f"arn:{partition}:s3:::{saved.bucket}/{literal(saved.key)}"
        statements.append(statement("ReadTheSavedPlan", ["s3:GetObject"], arn))
        if saved.key.endswith(INDEX_SUFFIX):
            # A plan made in shards: its parts (and their journals) are beside it.
            parts = saved.key.removesuffix(INDEX_SUFFIX) + ".parts"
            arn = f"arn:{partition}:s3:::{saved.bucket}/{literal(parts)}/*"
            actions = ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"]
            statements.append(statement("ApplyThePlansParts", actions, arn))
    writes = settings.plan is None or not settings.dry_run
    if writes and is_s3_uri(settings.manifest_location):
        # Both go to LOCATION/BUCKET/NAME. upload_file sends a file over 8 MB in parts, and
        # aborts the upload if a part fails: without s3:AbortMultipartUpload its parts stay.
        # On Dask, a part written by one worker is read by the run and by another worker.
        kept = parse_s3_uri(settings.manifest_location).join(settings.bucket)
        arn = f"arn:{partition}:s3:::{kept.bucket}/{literal(kept.key)}/*"
        actions = ["s3:AbortMultipartUpload", "s3:PutObject"]
        if settings.dask_address:
            actions.append("s3:GetObject")
        statements.append(statement("WritePlansAndJournals", actions, arn))
    if settings.inventory is not None:
        statements.append(inventory_statement(settings.inventory, partition))
    return statements


def inventory_statement(manifest: str, partition: str) -> Statement:
    """Reading an S3 Inventory: its manifest.json and its data files, which AWS writes under
    DESTINATION-PREFIX/SOURCE-BUCKET/CONFIG-ID/ (the manifest in a dated folder, the data files
    in data/)."""
    where = parse_s3_uri(manifest)
    folders = where.key.split("/")[:-1]
    configuration = "/".join(folders[:-1] if len(folders) >= 2 else folders)
    resource = f"{literal(configuration)}/*" if configuration else "*"
    arn = f"arn:{partition}:s3:::{where.bucket}/{resource}"
    return statement("ReadTheInventory", ["s3:GetObject"], arn)


def secret_arn(settings: RunSettings, partition: str) -> str:
    """The secret as a policy names it: an ARN as given (give the complete one), or the name
    with the six random characters Secrets Manager appends, in the run's region.

    A name is looked up in the caller's account: the role's when there is one, else the
    expected bucket owner's (the usual case; a caller in another account fails closed, denied),
    else any account. No kms:Decrypt: a secret under the AWS managed key needs none, and a
    customer managed key is not known from the settings (grant kms:Decrypt on that key).
    """
    name = str(settings.secret_name)
    if name.startswith("arn:"):
        return name
    account = (
        settings.role_arn.split(":")[4] if settings.role_arn else settings.expected_bucket_owner
    )
    return f"arn:{partition}:secretsmanager:{settings.region}:{account or '*'}:secret:{name}-??????"


def statement(
    sid: str,
    actions: list[str],
    resource: str,
    condition: dict[str, dict[str, list[str]]] | None = None,
) -> Statement:
    """An Allow statement; its actions sorted, so that two policies diff line by line."""
    made: Statement = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(set(actions)),
        "Resource": resource,
    }
    if condition:
        made["Condition"] = condition
    return made


def literal(text: str) -> str:
    """Key text as a policy matches it literally: in resources and StringLike values "*" and
    "?" are wildcards and "${" starts a variable; "${*}", "${?}" and "${$}" are the characters
    themselves."""
    return "".join(f"${{{character}}}" if character in "*?$" else character for character in text)
