"""Every run setting, declared once: name, type, bounds, environment variables, default and help.

`RunSettings` is the one declaration. The flow's parameters (and so the UI's form and the
deployments' schema), the command line's `run` options and the settings reference are made from it
(flows/parameters.py; flows/cli.py, whose `settings` command prints the tables). pydantic-settings
resolves each setting: the flow parameter, else the first of its environment variables that is
set and not blank, else the default. Every problem is reported at once, before any AWS call,
naming the setting and where its value came from, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from tasks.aws_names import (
    ACCOUNT_ID,
    BLOCK_NAME,
    SNS_TOPIC_ARN_PATTERN,
    bucket_name_problems,
    prefix_problems,
    region_problems,
    role_arn_problems,
    secret_name_problems,
    sns_topic_problems,
)
from tasks.aws_settings import READ_TIMEOUT_S, AwsSettings
from tasks.errors import ConfigError
from tasks.retry import MAX_TASK_RETRIES
from tasks.s3.keep import KEEP_RULES, MAX_GROUPS
from tasks.s3.key_fields import group_by_problems, time_from_key_problems
from tasks.s3.patterns import pattern_problems
from tasks.s3.rules import MAX_KEEP, STORAGE_CLASSES, Rules
from tasks.s3.sizes import parse_size
from tasks.s3.uris import S3Uri, is_s3_uri, parse_s3_uri
from tasks.s3.vetting import protect_tag_problems

Environment = Literal["dev", "staging", "prod"]
VersionsMode = Literal["current", "noncurrent", "all"]
#: Clock skew tolerated for `as_of`; a later reference time would make young objects look old.
AS_OF_MAX_FUTURE = timedelta(minutes=5)
#: A location that names a scheme (http://, S3://, file:/ ...): only a lowercase s3:// is one.
OTHER_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/")
#: A SHA-256 as hexadecimal digits (plan files are named by it in reports and approvals).
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
#: A Dask scheduler's address: a protocol Dask speaks, a host (or [IPv6]) and a port.
DASK_ADDRESS = re.compile(r"(?:tcp|tls|ws|wss)://(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):[0-9]{1,5}")


@dataclass(frozen=True)
class Parameter:
    """Marks a setting that is also a flow parameter (a field of the UI's form) and an option of
    `s3-housekeeping run`; `flags` are extra spellings of the option, kept for compatibility."""

    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verbatim:
    """Marks a setting whose environment value is taken as written, surrounding blanks included
    (in a prefix they are part of it)."""


@dataclass(frozen=True)
class OperatorLimit:
    """Marks a setting only the operator may set: read from the worker's environment alone,
    which the work pool fixes (deployments/work_pools.yaml). It is never a flow parameter
    (`load_settings` refuses it as one), and a run or deployment whose job variables set it is
    refused (tasks/guards/operator_limits.py)."""


@dataclass(frozen=True)
class LimitedBy:
    """Marks a flow parameter whose values the operator chooses: a run may give it one of the
    values of the operator's limit `limit`, or the value the operator set in the parameter's own
    environment variable, and nothing else (`_within_operator_choice`, below). An empty limit
    leaves a run no choice of its own."""

    limit: str


@dataclass(frozen=True)
class Size:
    """Marks a size in bytes that may be written with a unit ("10MiB", "1GB"): the command
    line and the UI's form take it as text or a number (tasks/s3/sizes.py reads it)."""


#: The markers a setting's declaration may carry besides its type's constraints.
MARKERS = (Parameter, Verbatim, OperatorLimit, LimitedBy, Size)


def env(*names: str) -> AliasChoices:
    """The environment variables a setting falls back to, first match wins."""
    return AliasChoices(*names)


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source with this project's two rules: a blank variable
    counts as unset, and a value loses its surrounding blanks unless its setting is verbatim.
    A setting declares its variables; one without any is never read from the environment."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls, case_sensitive=True)
        self.env_vars = {
            name: value for name, value in self.env_vars.items() if value and value.strip()
        }

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field.validation_alias is None:
            return None, field_name, False
        value, key, is_complex = super().get_field_value(field, field_name)
        if isinstance(value, str) and not is_verbatim(field):
            value = value.strip()
        return value, key, is_complex


class RunSettings(BaseSettings):
    """One run's validated settings. Each field's description is its help text, in the UI, on
    the command line and in the documentation."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        case_sensitive=True,
        # Errors name the setting (not its environment variable) and never hold the value.
        loc_by_alias=False,
        hide_input_in_errors=True,
        validate_by_name=True,
        validate_by_alias=True,
    )

    # The operator's limits: from the worker's environment only (the work pool's fixed job
    # environment, see deployments/work_pools.yaml), never a run's parameters, which can only
    # tighten them. Declared first: the validators of the settings they limit read them.
    allowed_targets: Annotated[tuple[str, ...], NoDecode, OperatorLimit()] = Field(
        (),
        validation_alias=env("ALLOWED_TARGETS"),
        description="Operator's limit: comma-separated BUCKET/PREFIX a run may clean (its bucket "
        "equal, its prefix starting with PREFIX); empty: any.",
    )
    allowed_credentials_blocks: Annotated[tuple[str, ...], NoDecode, OperatorLimit()] = Field(
        (),
        validation_alias=env("ALLOWED_CREDENTIALS_BLOCKS"),
        description="Operator's limit: comma-separated credentials blocks a run may use (then "
        "it must name one); empty: any, or none.",
    )
    enforce_approval: Annotated[bool, OperatorLimit()] = Field(
        False,
        validation_alias=env("ENFORCE_APPROVAL"),
        description="Operator's limit: every executing run waits for a person's approval, "
        "whatever its require_approval says.",
    )
    max_deletions_ceiling: Annotated[int | None, OperatorLimit()] = Field(
        None,
        ge=0,
        validation_alias=env("MAX_DELETIONS_CEILING"),
        description="Operator's limit: the most objects a run may delete; a run's "
        "max_deletions can only be lower.",
    )
    # A cluster's answers are unpickled by the run: a cluster is inside the run's trust
    # boundary, so which ones a run may use is the operator's to say.
    allowed_dask_addresses: Annotated[tuple[str, ...], NoDecode, OperatorLimit()] = Field(
        (),
        validation_alias=env("ALLOWED_DASK_ADDRESSES"),
        description="Operator's limit: comma-separated Dask schedulers a run's dask_address may "
        "name, besides DASK_SCHEDULER_ADDRESS itself; empty: none of a run's own.",
    )
    bucket: Annotated[str, Parameter()] = Field(
        validation_alias=env("S3_BUCKET"), description="Target S3 bucket. Required."
    )
    prefix: Annotated[str, Parameter(), Verbatim()] = Field(
        validation_alias=env("CLEANUP_PREFIX"),
        description='Key prefix to clean, e.g. "tmp/". Required; at most 1024 bytes, no leading '
        '"/", no ".." segment. "tmp" also matches "tmp-keep/": end it with "/" for a folder.',
    )
    ambiguous_prefix: Annotated[Literal["warn", "refuse"], Parameter()] = Field(
        "warn",
        validation_alias=env("AMBIGUOUS_PREFIX"),
        description='A prefix without a trailing "/" that matches more than one folder ("tmp" '
        'matching "tmp/" and "tmp-keep/"): warn (a note in the report) or refuse before '
        "listing, deleting nothing (exit 6).",
    )
    # The retention rules (tasks/s3/rules.py): they only ever keep more than age and prefix.
    include: Annotated[tuple[str, ...], NoDecode, Parameter()] = Field(
        (),
        validation_alias=env("CLEANUP_INCLUDE"),
        description='Glob patterns on the key below the prefix ("*" within a folder, "**" '
        'across folders, "?", "[...]"): only an object one matches may be deleted; empty: '
        "any. Separated by commas in the environment.",
    )
    exclude: Annotated[tuple[str, ...], NoDecode, Parameter()] = Field(
        (),
        validation_alias=env("CLEANUP_EXCLUDE"),
        description="Glob patterns on the key below the prefix, as include: an object one "
        "matches is kept, whatever include says. Separated by commas in the environment.",
    )
    min_size: Annotated[int | None, Parameter(), Size()] = Field(
        None,
        validation_alias=env("CLEANUP_MIN_SIZE"),
        description='Keep objects smaller than this many bytes ("512", "10MiB", "1GB").',
    )
    max_size: Annotated[int | None, Parameter(), Size()] = Field(
        None,
        validation_alias=env("CLEANUP_MAX_SIZE"),
        description='Keep objects larger than this many bytes ("512", "10MiB", "1GB").',
    )
    storage_classes: Annotated[tuple[str, ...], NoDecode, Parameter()] = Field(
        (),
        validation_alias=env("CLEANUP_STORAGE_CLASSES"),
        description="Delete only objects of these storage classes (STANDARD, STANDARD_IA, "
        "GLACIER, ...); empty: any. Separated by commas in the environment.",
    )
    protect_tags: Annotated[tuple[str, ...], NoDecode, Parameter()] = Field(
        (),
        validation_alias=env("CLEANUP_PROTECT_TAGS"),
        description='Object tags that keep an object: "key=value", or "key" for any value. '
        "Read (GetObjectTagging) only for the objects every other rule would delete. "
        "Separated by commas in the environment.",
    )
    keep_newest: Annotated[int, Parameter()] = Field(
        0,
        ge=0,
        le=MAX_KEEP,
        validation_alias=env("CLEANUP_KEEP_NEWEST"),
        description="Keep the newest this many objects of each group (group_by), however old; "
        "in a versions mode, the newest versions of each key. 0: none.",
    )
    keep_daily: Annotated[int, Parameter()] = Field(
        0,
        ge=0,
        le=MAX_KEEP,
        validation_alias=env("CLEANUP_KEEP_DAILY"),
        description="Keep the newest object of each of the last this many days (UTC) that have "
        "one, in each group, however old. 0: none.",
    )
    keep_weekly: Annotated[int, Parameter()] = Field(
        0,
        ge=0,
        le=MAX_KEEP,
        validation_alias=env("CLEANUP_KEEP_WEEKLY"),
        description="As keep_daily, for ISO weeks.",
    )
    keep_monthly: Annotated[int, Parameter()] = Field(
        0,
        ge=0,
        le=MAX_KEEP,
        validation_alias=env("CLEANUP_KEEP_MONTHLY"),
        description="As keep_daily, for months.",
    )
    keep_yearly: Annotated[int, Parameter()] = Field(
        0,
        ge=0,
        le=MAX_KEEP,
        validation_alias=env("CLEANUP_KEEP_YEARLY"),
        description="As keep_daily, for years.",
    )
    group_by: Annotated[str, Parameter(), Verbatim()] = Field(
        "",
        validation_alias=env("CLEANUP_GROUP_BY"),
        description='How the keep rules group keys: "depth:N" (the first N folders below the '
        'prefix) or a regular expression with a named group "group"; empty: the whole prefix '
        "is one group. A key a regular expression does not match is kept.",
    )
    time_from_key: Annotated[str, Parameter(), Verbatim()] = Field(
        "",
        validation_alias=env("CLEANUP_TIME_FROM_KEY"),
        description="A regular expression whose named groups year, month, day (hour, minute, "
        "second) give an object's time, for the cutoff and the keep rules; empty: "
        "LastModified. A key it does not match is kept; LastModified still bounds the age.",
    )
    list_kept: Annotated[bool, Parameter()] = Field(
        False,
        validation_alias=env("LIST_KEPT"),
        description="Also write the kept list beside the plan (PLAN.kept.jsonl.gz): each object "
        "old enough that a rule kept, with the rule (on a cluster, each part's too, in "
        "PLAN.parts/).",
    )
    max_groups: Annotated[int, Parameter()] = Field(
        MAX_GROUPS,
        ge=1,
        le=100_000_000,
        validation_alias=env("CLEANUP_MAX_GROUPS"),
        description="The most groups the keep rules track at once (each holds at most the sum "
        "of the keep counts, about 400 bytes an object): past it a run stops, deleting nothing "
        "more.",
    )
    older_than_days: Annotated[int, Parameter()] = Field(
        30,
        ge=1,
        le=36500,
        validation_alias=env("CLEANUP_OLDER_THAN_DAYS"),
        description="Delete objects last modified more than this many days before as_of, "
        "1 to 36500.",
    )
    dry_run: Annotated[bool, Parameter()] = Field(
        True,
        validation_alias=env("DRY_RUN"),
        description="True plans and reports only; False deletes the planned objects.",
    )
    environment: Annotated[Environment, Parameter()] = Field(
        "dev",
        validation_alias=env("ENVIRONMENT"),
        description="dev, staging or prod: the bucket's Environment tag.",
    )
    region: Annotated[str, Parameter()] = Field(
        "us-east-1",
        validation_alias=env("AWS_DEFAULT_REGION", "AWS_REGION"),
        description="The bucket's AWS region.",
    )
    aws_credentials_block: Annotated[str | None, Parameter(flags=("--credentials-block",))] = Field(
        None,
        validation_alias=env("AWS_CREDENTIALS_BLOCK"),
        description="Name of a prefect-aws AWS Credentials block; empty uses the default "
        "AWS chain: environment, profile, instance or task role.",
    )
    role_arn: Annotated[str | None, Parameter()] = Field(
        None,
        validation_alias=env("ASSUME_ROLE_ARN"),
        description="IAM role to assume; its credentials refresh 15 minutes before they expire.",
    )
    secret_name: Annotated[str | None, Parameter()] = Field(
        None,
        validation_alias=env("SECRET_NAME"),
        description="Secrets Manager secret (a JSON object) for the run; may hold kms_key_id and "
        "expected_bucket_owner.",
    )
    expected_bucket_owner: Annotated[str | None, Parameter()] = Field(
        None,
        validation_alias=env("EXPECTED_BUCKET_OWNER"),
        description="12-digit account ID; a bucket owned by any other account is refused.",
    )
    create_bucket: Annotated[bool, Parameter()] = Field(
        True,
        description="Create the bucket if missing, with Block Public Access, default encryption "
        "and tags; off, a missing bucket stops the run (exit 1). The command line creates "
        "one only with --create-bucket: a typo there must not make a bucket.",
    )
    converge_baseline: Annotated[bool, Parameter()] = Field(
        False,
        validation_alias=env("CONVERGE_BASELINE"),
        description="On an existing bucket, write the baseline (Block Public Access, default "
        "encryption, tags) where the bucket differs; false reports the drift only. A bucket "
        "the run creates always gets it.",
    )
    max_deletions: Annotated[int | None, Parameter()] = Field(
        None,
        ge=0,
        validation_alias=env("MAX_DELETIONS"),
        description="Refuse the run, deleting nothing, if the plan holds more objects; empty: "
        "no limit.",
    )
    # Only for test servers that cannot backdate objects (SeaweedFS): declared before as_of,
    # whose validator reads it.
    allow_future_as_of: bool = Field(
        False,
        validation_alias=env("ALLOW_FUTURE_AS_OF"),
        description="Accept an as_of in the future: only for test servers that cannot backdate "
        "objects (a future reference time makes new objects look old).",
    )
    as_of: Annotated[datetime, Parameter()] = Field(
        default_factory=lambda: datetime.now(UTC),
        description="Reference time for the age cutoff (ISO 8601; no zone means UTC; default: "
        "now). Not in the future.",
    )
    plan: Annotated[str | None, Parameter()] = Field(
        None,
        description="A saved plan (manifest) to apply instead of listing: a local path or "
        "s3://bucket/key. Only its objects are deleted, each only if unchanged; refused if "
        "made for another target or older than max_plan_age_hours.",
    )
    plan_sha256: Annotated[str | None, Parameter()] = Field(
        None,
        description="The SHA-256 the saved plan must have (a dry run's report gives it as "
        "manifest_sha256): a plan file changed since it was reviewed is refused. A fleet sets it "
        "to the plan a person approved.",
    )
    versions: Annotated[VersionsMode, Parameter()] = Field(
        "current",
        validation_alias=env("CLEANUP_VERSIONS"),
        description="Which versions to delete: current (in a versioned bucket this only adds "
        "delete markers), noncurrent (versions that became noncurrent before the cutoff: "
        "reclaims storage) or all (every version and delete marker older than the cutoff).",
    )
    inventory: Annotated[str | None, Parameter()] = Field(
        None,
        validation_alias=env("INVENTORY_MANIFEST"),
        description="An S3 Inventory to plan from instead of listing: the s3:// address of its "
        "manifest.json (CSV, or Parquet where pyarrow is installed). Rows are filtered by "
        "prefix, cutoff and versions; an object changed since is skipped by its ETag. With a "
        "saved plan, that plan must have been made from this inventory.",
    )
    max_delete_bytes: Annotated[int | None, Parameter()] = Field(
        None,
        ge=0,
        validation_alias=env("MAX_DELETE_BYTES"),
        description="Refuse the run, deleting nothing, if the plan holds more bytes.",
    )
    max_delete_percent: Annotated[float | None, Parameter()] = Field(
        None,
        ge=0,
        le=100,
        validation_alias=env("MAX_DELETE_PERCENT"),
        description="Refuse the run, deleting nothing, if the plan holds more than this "
        "percentage of the objects listed under the prefix.",
    )
    manifest_location: Annotated[str, Parameter()] = Field(
        "manifests",
        validation_alias=env("MANIFEST_LOCATION", "MANIFEST_DIR"),
        description="Where plans are written: a local directory or an s3://bucket/prefix.",
    )
    dask_address: Annotated[str | None, Parameter(), LimitedBy("allowed_dask_addresses")] = Field(
        None,
        validation_alias=env("DASK_SCHEDULER_ADDRESS"),
        description="A Dask scheduler (tcp://host:8786) to spread the run's shards over: its "
        "workers list, plan and delete with their own AWS identity; empty: this process's "
        "threads. The operator's choice: a run may name only the worker's DASK_SCHEDULER_ADDRESS "
        "or one of its ALLOWED_DASK_ADDRESSES.",
    )
    max_plan_age_hours: Annotated[float, Parameter()] = Field(
        24,
        gt=0,
        le=24 * 365,
        validation_alias=env("MAX_PLAN_AGE_HOURS"),
        description="The oldest saved plan that may be applied, in hours.",
    )
    require_approval: Annotated[bool, Parameter()] = Field(
        False,
        validation_alias=env("REQUIRE_APPROVAL"),
        description="Before deleting, show the plan and pause until a person approves it in the "
        "UI; a rejection or no answer deletes nothing.",
    )
    approval_timeout_minutes: Annotated[int, Parameter()] = Field(
        60,
        ge=1,
        le=7 * 24 * 60,
        validation_alias=env("APPROVAL_TIMEOUT_MINUTES"),
        description="How long a run waits for approval before it gives up, deleting nothing, "
        "1 to 10080 (a week).",
    )
    lock_wait_minutes: Annotated[float, Parameter()] = Field(
        0,
        ge=0,
        le=24 * 60,
        validation_alias=env("LOCK_WAIT_MINUTES"),
        description="An executing run holds its bucket's lock from planning to the end of the "
        "deletes; when another run holds it, wait this long for it (0: refuse at once, exit 6).",
    )
    notify_topic_arn: Annotated[str | None, Parameter()] = Field(
        None,
        validation_alias=env("SNS_TOPIC_ARN"),
        # The form checks the shape; the validator below checks partition, region and name.
        json_schema_extra={"pattern": SNS_TOPIC_ARN_PATTERN},
        description="SNS topic told (a short JSON summary) when a run deletes something, is "
        "refused or fails; empty: no notice.",
    )
    # Deployment-wide settings: from the environment only, never a run's parameters.
    delete_concurrency: int = Field(
        32,
        ge=1,
        le=64,
        validation_alias=env("DELETE_CONCURRENCY"),
        description="Most DeleteObjects batches in flight at once; a run starts at 8 and adds "
        "one per clean batch, and a SlowDown answer halves it.",
    )
    delete_throttle_budget_minutes: float = Field(
        10,
        ge=0,
        le=24 * 60,
        validation_alias=env("DELETE_THROTTLE_BUDGET_MINUTES"),
        description="How long a batch keeps trying keys the server throttles (SlowDown), from "
        "its first SlowDown answer, before they count as failed.",
    )
    lock_expiry_minutes: float = Field(
        10,
        ge=1,
        le=24 * 60,
        validation_alias=env("LOCK_EXPIRY_MINUTES"),
        description="A bucket's lock is renewed every third of this; one not renewed for this "
        "long (its run crashed) frees itself. A run that cannot renew its own stops deleting.",
    )
    list_concurrency: int = Field(
        8,
        ge=1,
        le=64,
        validation_alias=env("LIST_CONCURRENCY"),
        description="Sub-prefixes and key ranges listed at once.",
    )
    shard_size: int = Field(
        20_000,
        ge=1_000,
        le=10_000_000,
        validation_alias=env("SHARD_SIZE"),
        description="About how many keys a shard lists before the rest of a large flat prefix "
        "is handed on to another worker (and, on Dask, the most a shard's part holds).",
    )
    aws_max_attempts: int = Field(
        3,
        ge=1,
        le=20,
        validation_alias=env("AWS_MAX_ATTEMPTS"),
        description="Attempts per AWS request (botocore).",
    )
    aws_read_timeout_seconds: int = Field(
        READ_TIMEOUT_S,
        ge=1,
        le=3600,
        validation_alias=env("AWS_READ_TIMEOUT_SECONDS"),
        description="Seconds botocore waits for an answer before it sends the request again "
        "(one of AWS_MAX_ATTEMPTS); raise it for a slow S3-compatible server.",
    )
    aws_retry_mode: Literal["standard", "adaptive"] = Field(
        "standard",
        validation_alias=env("AWS_RETRY_MODE"),
        description="standard or adaptive (client-side rate limiting).",
    )
    task_retries: int = Field(
        3,
        ge=0,
        le=MAX_TASK_RETRIES,
        validation_alias=env("TASK_RETRIES"),
        description="Prefect retries of the secret and bucket steps after a transient failure "
        "(throttling, 5xx, timeouts, connection errors).",
    )
    secret_required_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        validation_alias=env("SECRET_REQUIRED_KEYS"),
        description="Comma-separated keys the secret must hold.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The flow's parameters, then the environment; no .env or secrets files.
        return init_settings, _Environment(settings_cls)

    @property
    def cutoff(self) -> datetime:
        """Objects last modified strictly before this instant are old enough to delete."""
        return self.as_of - timedelta(days=self.older_than_days)

    def aws(self, region: str | None = None) -> AwsSettings:
        """The client factory's settings for this run: a connection for every worker."""
        return AwsSettings(
            region=region or self.region,
            credentials_block=self.aws_credentials_block,
            role_arn=self.role_arn,
            max_attempts=self.aws_max_attempts,
            retry_mode=self.aws_retry_mode,
            read_timeout_s=self.aws_read_timeout_seconds,
            max_pool_connections=self.delete_concurrency + self.list_concurrency + 2,
        )

    @field_validator("bucket")
    @classmethod
    def _bucket_rules(cls, value: str) -> str:
        return _checked(value, bucket_name_problems(value))

    @field_validator("prefix")
    @classmethod
    def _prefix_rules(cls, value: str) -> str:
        return _checked(value, prefix_problems(value))

    @field_validator("region")
    @classmethod
    def _region_rules(cls, value: str) -> str:
        return _checked(value, region_problems(value))

    @field_validator("aws_credentials_block")
    @classmethod
    def _block_rules(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not BLOCK_NAME.fullmatch(value):
            raise ValueError("a block name holds only lowercase letters, digits and hyphens")
        allowed = info.data.get("allowed_credentials_blocks") or ()
        if allowed and value not in allowed:
            raise ValueError(
                "is not a credentials block this environment may use (ALLOWED_CREDENTIALS_BLOCKS)"
            )
        return value

    @field_validator("prefix")
    @classmethod
    def _allowed_target(cls, value: str, info: ValidationInfo) -> str:
        allowed = info.data.get("allowed_targets") or ()
        bucket = info.data.get("bucket")
        if allowed and bucket is not None and not within(bucket, value, allowed):
            raise ValueError(
                "is not under a bucket and prefix this environment may clean (ALLOWED_TARGETS)"
            )
        return value

    @field_validator(
        "allowed_targets",
        "allowed_credentials_blocks",
        "allowed_dask_addresses",
        "include",
        "exclude",
        "storage_classes",
        "protect_tags",
        mode="before",
    )
    @classmethod
    def _split_limits(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("include", "exclude")
    @classmethod
    def _pattern_rules(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        prefix = info.data.get("prefix", "")
        problems = [
            f"[{index}] {problem}"
            for index, pattern in enumerate(value)
            for problem in pattern_problems(pattern, prefix)
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("min_size", "max_size", mode="before")
    @classmethod
    def _read_size(cls, value: object) -> object:
        return None if value is None or value == "" else parse_size(value)  # type: ignore[arg-type]

    @field_validator("max_size")
    @classmethod
    def _size_bounds(cls, value: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("min_size")
        if value is not None and low is not None and low > value:
            raise ValueError("must not be below min_size (no size would be deleted)")
        return value

    @field_validator("storage_classes")
    @classmethod
    def _storage_class_rules(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in STORAGE_CLASSES]
        if unknown:
            raise ValueError(
                f"holds what is not an S3 storage class ({', '.join(STORAGE_CLASSES)})"
            )
        return value

    @field_validator("group_by")
    @classmethod
    def _group_by_rules(cls, value: str, info: ValidationInfo) -> str:
        problems = group_by_problems(value)
        if value and not problems and not any(info.data.get(name) for name in KEEP_RULES):
            problems = ["groups only matter to a keep rule (keep_newest, keep_daily, ...)"]
        return _checked(value, problems)

    @field_validator("protect_tags")
    @classmethod
    def _protect_tag_rules(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        problems = [
            f"[{index}] {problem}"
            for index, tag in enumerate(value)
            for problem in protect_tag_problems(tag)
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("time_from_key")
    @classmethod
    def _time_from_key_rules(cls, value: str) -> str:
        return _checked(value, time_from_key_problems(value))

    @field_validator("versions")
    @classmethod
    def _versions_rules(cls, value: str, info: ValidationInfo) -> str:
        for name in ("group_by", "time_from_key"):
            if value != "current" and info.data.get(name):
                raise ValueError(
                    f"{value} keeps versions per key, by LastModified: {name} applies to "
                    "versions current"
                )
        return value

    @property
    def rules(self) -> Rules:
        """The retention rules the run applies to each old-enough object."""
        return Rules(
            self.include,
            self.exclude,
            self.min_size,
            self.max_size,
            self.storage_classes,
            keep_newest=self.keep_newest,
            keep_daily=self.keep_daily,
            keep_weekly=self.keep_weekly,
            keep_monthly=self.keep_monthly,
            keep_yearly=self.keep_yearly,
            group_by=self.group_by,
            time_from_key=self.time_from_key,
            protect_tags=self.protect_tags,
        )

    @field_validator("allowed_dask_addresses")
    @classmethod
    def _allowed_dask_addresses_rules(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not all(DASK_ADDRESS.fullmatch(address) for address in value):
            raise ValueError("must be Dask scheduler addresses like tcp://host:8786")
        return value

    def within_operator_limits(self) -> RunSettings:
        """These settings with the run's own limits tightened to the operator's: approval
        enforced for an executing run, max_deletions no higher than the ceiling."""
        tightened: dict[str, Any] = {}
        if self.enforce_approval and not self.dry_run and not self.require_approval:
            tightened["require_approval"] = True
        ceiling = self.max_deletions_ceiling
        if ceiling is not None and (self.max_deletions is None or self.max_deletions > ceiling):
            tightened["max_deletions"] = ceiling
        return self.model_copy(update=tightened) if tightened else self

    @field_validator("role_arn")
    @classmethod
    def _role_rules(cls, value: str | None, info: ValidationInfo) -> str | None:
        # The region is declared first: when it is valid, the role must be in its partition.
        if value is None:
            return value
        return _checked(value, role_arn_problems(value, info.data.get("region")))

    @field_validator("secret_name")
    @classmethod
    def _secret_name_rules(cls, value: str | None) -> str | None:
        return value if value is None else _checked(value, secret_name_problems(value))

    @field_validator("expected_bucket_owner")
    @classmethod
    def _owner_rules(cls, value: str | None) -> str | None:
        if value is not None and not ACCOUNT_ID.fullmatch(value):
            raise ValueError("must be a 12-digit AWS account ID")
        return value

    @field_validator("secret_required_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(key.strip() for key in value.split(",") if key.strip())
        return value

    @field_validator("as_of")
    @classmethod
    def _as_of_rules(cls, value: datetime, info: ValidationInfo) -> datetime:
        # A date without a zone is read as UTC, the zone S3 reports LastModified in.
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        future_allowed = info.data.get("allow_future_as_of", False)
        if not future_allowed and aware > datetime.now(UTC) + AS_OF_MAX_FUTURE:
            raise ValueError(
                "must not be in the future (it would make new objects look old), unless "
                "ALLOW_FUTURE_AS_OF=true, for a test server that cannot backdate objects"
            )
        try:
            cutoff = aware - timedelta(days=info.data.get("older_than_days", 0))
        except OverflowError:
            raise ValueError("is so early that the cutoff would fall before the year 1") from None
        if future_allowed and cutoff > datetime.now(UTC) + AS_OF_MAX_FUTURE:
            raise ValueError(
                "may be in the future with ALLOW_FUTURE_AS_OF, but its cutoff (as_of minus "
                "older_than_days) may not: objects written now would look old (e.g. as_of one "
                "day ahead with older_than_days 1 plans what was written before now)"
            )
        return aware

    @field_validator("allow_future_as_of")
    @classmethod
    def _test_servers_only(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("environment") == "prod":
            raise ValueError("is for test servers that cannot backdate objects, never in prod")
        return value

    @field_validator("inventory")
    @classmethod
    def _inventory_rules(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if not is_s3_uri(value) or not parse_s3_uri(value).key:
            raise ValueError("must be the s3://bucket/key address of an inventory's manifest.json")
        if info.data.get("versions") == "noncurrent":
            raise ValueError(
                "cannot plan noncurrent versions: an inventory does not say when a version "
                "stopped being current (plan them by listing)"
            )
        return value

    @field_validator("plan_sha256")
    @classmethod
    def _plan_digest_rules(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if not SHA256_HEX.fullmatch(value):
            raise ValueError("must be a SHA-256: 64 hexadecimal digits")
        if info.data.get("plan") is None:
            raise ValueError("needs a saved plan (plan): it is the digest that plan must have")
        return value.lower()

    @field_validator("dask_address")
    @classmethod
    def _dask_address_rules(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if not DASK_ADDRESS.fullmatch(value):
            raise ValueError("must be a Dask scheduler address like tcp://host:8786")
        return _within_operator_choice(value, info)

    @field_validator("plan", "manifest_location")
    @classmethod
    def _location_rules(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if not value.strip():
            raise ValueError("must be a local path or an s3://bucket/... address")
        if OTHER_SCHEME.match(value) and not is_s3_uri(value):
            raise ValueError("must be a local path or an address starting with s3:// (lowercase)")
        if not is_s3_uri(value):
            return value
        uri = parse_s3_uri(value)
        if bucket_name_problems(uri.bucket):
            raise ValueError("names an invalid bucket in its s3:// address")
        if info.field_name == "plan" and not uri.key.strip("/"):
            raise ValueError("must name the plan's key: s3://bucket/key")
        if info.field_name == "manifest_location" and plans_under_prefix(uri, info.data):
            raise ValueError(
                "puts the plans under the prefix this run cleans (a later run would delete them)"
            )
        return value

    @field_validator(
        "older_than_days",
        "max_deletions",
        "max_delete_bytes",
        "max_delete_percent",
        "max_plan_age_hours",
        "approval_timeout_minutes",
        mode="before",
    )
    @classmethod
    def _no_booleans(cls, value: object) -> object:
        # pydantic would read true as 1: a limit or a timeout of 1 nobody asked for.
        if isinstance(value, bool):
            raise ValueError("must be a number, not true/false")
        return value

    @field_validator("notify_topic_arn")
    @classmethod
    def _topic_rules(cls, value: str | None) -> str | None:
        return value if value is None else _checked(value, sns_topic_problems(value))


def _within_operator_choice(value: str, info: ValidationInfo) -> str:
    """A value of a parameter `LimitedBy` an operator's limit, if the operator allows it: one of
    the limit's values, or the one the operator set in the parameter's environment variable
    (where a value from the environment always is)."""
    name = str(info.field_name)
    limit = str(limited_by(RunSettings.model_fields[name]))
    if value in (info.data.get(limit) or ()) or value == environment_value(name):
        return value
    own = " or ".join(environment_variables(name))
    raise ValueError(
        f"is not one the operator allows here: {own}, or one of "
        f"{', '.join(environment_variables(limit))}"
    )


def within(bucket: str, prefix: str, allowed: tuple[str, ...]) -> bool:
    """Whether a run's bucket and prefix fall under one of the operator's BUCKET/PREFIX."""
    for target in allowed:
        allowed_bucket, _, allowed_prefix = target.partition("/")
        if bucket == allowed_bucket and prefix.startswith(allowed_prefix):
            return True
    return False


def plans_under_prefix(location: S3Uri, validated: Mapping[str, Any]) -> bool:
    """Whether plans kept under this s3:// location would land under the cleaned prefix of the
    bucket a run cleans (the bucket and the prefix are validated before the location).

    Plans are written at LOCATION/BUCKET/NAME: the prefix covers some of them when it covers
    that folder, or reaches into it (a prefix ending in "BUCKET/2" covers plans named 2...).
    """
    bucket, prefix = validated.get("bucket"), validated.get("prefix")
    if location.bucket != bucket or not prefix:
        return False
    folder = location.join(str(bucket)).key + "/"
    return folder.startswith(prefix) or prefix.startswith(folder)


def _checked(value: str, problems: list[str]) -> str:
    if problems:
        raise ValueError("; ".join(problems))
    return value


def is_parameter(field: FieldInfo) -> bool:
    return any(isinstance(marker, Parameter) for marker in field.metadata)


def is_operator_limit(field: FieldInfo) -> bool:
    return any(isinstance(marker, OperatorLimit) for marker in field.metadata)


def limited_by(field: FieldInfo) -> str | None:
    """The operator's limit that chooses a parameter's values (`LimitedBy`), if one does."""
    return next((mark.limit for mark in field.metadata if isinstance(mark, LimitedBy)), None)


def operator_chosen() -> tuple[str, ...]:
    """The parameters whose values the operator chooses, in declaration order."""
    return tuple(name for name, f in parameters().items() if limited_by(f) is not None)


def operator_limits() -> tuple[str, ...]:
    """The settings only the operator may set, in declaration order."""
    return tuple(name for name, f in RunSettings.model_fields.items() if is_operator_limit(f))


def is_verbatim(field: FieldInfo) -> bool:
    return any(isinstance(marker, Verbatim) for marker in field.metadata)


def parameters() -> dict[str, FieldInfo]:
    """The settings that are flow parameters, in declaration order."""
    return {name: f for name, f in RunSettings.model_fields.items() if is_parameter(f)}


def environment_variables(name: str) -> tuple[str, ...]:
    """The environment variables a setting falls back to, in order (none for some)."""
    alias = RunSettings.model_fields[name].validation_alias
    if not isinstance(alias, AliasChoices):
        return ()
    return tuple(str(choice) for choice in alias.choices)


def all_environment_variables() -> tuple[str, ...]:
    """Every environment variable that some setting reads."""
    return tuple(var for name in RunSettings.model_fields for var in environment_variables(name))


def load_settings(parameters_given: Mapping[str, Any], now: datetime | None = None) -> RunSettings:
    """Resolve every setting (parameter > environment > default) and validate them all at once.

    Args:
        parameters_given: the flow's parameters; None means "not set".
        now: the reference time used when `as_of` is not set (default: the clock).

    Raises:
        ConfigError: listing every problem found, naming settings and sources but never values.
    """
    unknown = sorted(set(parameters_given) - set(parameters()))
    if unknown:
        raise ConfigError("unknown parameters", [_not_a_parameter(name) for name in unknown])
    given = {name: value for name, value in parameters_given.items() if value is not None}
    if now is not None:
        given.setdefault("as_of", now)
    try:
        return RunSettings(**given).within_operator_limits()
    except ValidationError as exc:
        # Only messages leave this block: the ValidationError itself holds the raw values.
        problems = [_describe(error, given) for error in exc.errors(include_input=False)]
    raise ConfigError("invalid configuration", problems)


def _not_a_parameter(name: str) -> str:
    if name in RunSettings.model_fields and is_operator_limit(RunSettings.model_fields[name]):
        where = ", ".join(environment_variables(name))
        return f"{name}: not a parameter: an operator's limit, from the worker's {where} alone"
    return f"{name}: not a parameter"


def raw_setting(name: str, parameters_given: Mapping[str, Any]) -> Any:
    """A setting as a run would read it, unvalidated: the parameter, else its environment
    variable, else None. For a run whose settings failed validation (its notice and event)."""
    if parameters_given.get(name) is not None:
        return parameters_given[name]
    return environment_value(name)


def environment_value(name: str) -> Any:
    """A setting's value in this process's environment (the worker's, which the work pool
    fixes), unvalidated; None when none of its variables is set."""
    value, _, _ = _Environment(RunSettings).get_field_value(RunSettings.model_fields[name], name)
    return value


def _describe(error: Mapping[str, Any], given: Mapping[str, Any]) -> str:
    """One problem as 'setting (from SOURCE): message', without the offending value."""
    name = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing" and name in RunSettings.model_fields:
        variables = " or ".join(environment_variables(name))
        message = f"required (a parameter{f', or {variables}' if variables else ''})"
    source = None if name in given or name not in RunSettings.model_fields else _source(name)
    where = f" (from {source})" if source else ""
    return f"{name or 'configuration'}{where}: {message}"


def _source(name: str) -> str | None:
    """The environment variable a setting's value came from, if one did."""
    environ = _Environment(RunSettings).env_vars
    return next((var for var in environment_variables(name) if var in environ), None)


def default_text(field: FieldInfo) -> str:
    """A setting's default as the help and the documentation show it."""
    if field.is_required():
        return "(required)"
    if field.default_factory is not None:
        return "now"
    if field.default is None or field.default == ():
        return "none"
    if isinstance(field.default, bool):
        return str(field.default).lower()
    return f"{field.default}"
