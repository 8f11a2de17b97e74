"""The validated run configuration: flow parameters, then environment variables, then defaults."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal

import botocore
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from tasks.errors import ConfigError

Environment = Literal["dev", "staging", "prod"]
VersionsMode = Literal["current", "noncurrent", "all"]
#: A paused run waits for approval at most a week.
APPROVAL_TIMEOUT_MAX_MINUTES = 7 * 24 * 60

#: Flow parameter -> the environment variables it falls back to, first match wins.
PARAMETER_ENV_VARS: dict[str, tuple[str, ...]] = {
    "bucket": ("S3_BUCKET",),
    "prefix": ("CLEANUP_PREFIX",),
    "older_than_days": ("CLEANUP_OLDER_THAN_DAYS",),
    "dry_run": ("DRY_RUN",),
    "environment": ("ENVIRONMENT",),
    "region": ("AWS_DEFAULT_REGION", "AWS_REGION"),
    "aws_credentials_block": ("AWS_CREDENTIALS_BLOCK",),
    "role_arn": ("ASSUME_ROLE_ARN",),
    "secret_name": ("SECRET_NAME",),
    "expected_bucket_owner": ("EXPECTED_BUCKET_OWNER",),
    "create_bucket": (),
    "max_deletions": ("MAX_DELETIONS",),
    "as_of": (),
    "plan": (),
    "versions": ("CLEANUP_VERSIONS",),
    "max_delete_bytes": ("MAX_DELETE_BYTES",),
    "max_delete_percent": ("MAX_DELETE_PERCENT",),
    "manifest_location": ("MANIFEST_LOCATION", "MANIFEST_DIR"),
    "max_plan_age_hours": ("MAX_PLAN_AGE_HOURS",),
    "require_approval": ("REQUIRE_APPROVAL",),
    "approval_timeout_minutes": ("APPROVAL_TIMEOUT_MINUTES",),
    "notify_topic_arn": ("SNS_TOPIC_ARN",),
}
#: Settings that only come from the environment (deployment-wide, not per run).
ENVIRONMENT_SETTINGS: dict[str, str] = {
    "delete_concurrency": "DELETE_CONCURRENCY",
    "list_concurrency": "LIST_CONCURRENCY",
    "aws_max_attempts": "AWS_MAX_ATTEMPTS",
    "aws_retry_mode": "AWS_RETRY_MODE",
    "task_retries": "TASK_RETRIES",
    "secret_required_keys": "SECRET_REQUIRED_KEYS",
    "allow_future_as_of": "ALLOW_FUTURE_AS_OF",
}

#: Settings whose environment value is taken as written, blanks included.
VERBATIM_SETTINGS = frozenset({"prefix"})
BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
BUCKET_CHARACTERS = re.compile(r"[a-z0-9.-]+")
PREFIX_MAX_BYTES = 1024
#: Clock skew tolerated for `as_of`; a later reference time would make young objects look old.
AS_OF_MAX_FUTURE = timedelta(minutes=5)
ACCOUNT_ID = re.compile(r"[0-9]{12}")
BLOCK_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
IAM_NAME = r"[A-Za-z0-9_+=,.@-]"
# Control characters (C0, DEL, C1) cannot all travel in DeleteObjects' XML body, and never belong
# in a prefix.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Anything shaped like an IPv4 address, leading zeros and out-of-range numbers included.
IPV4_SHAPED = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
REGION_CHARACTERS = re.compile(r"[a-z0-9-]+")


@cache
def aws_partitions() -> dict[str, re.Pattern[str]]:
    """Partition name -> region pattern, from the endpoint data botocore ships."""
    data_file = Path(botocore.__file__).parent / "data" / "partitions.json"
    partitions = json.loads(data_file.read_text())["partitions"]
    # ASCII: botocore's patterns use \w, which Python would otherwise read as any letter.
    return {p["id"]: re.compile(p["regionRegex"], re.ASCII) for p in partitions}


def partition_of_region(region: str) -> str | None:
    """The AWS partition whose region pattern matches, or None."""
    if not REGION_CHARACTERS.fullmatch(region):
        return None
    for partition, pattern in aws_partitions().items():
        if pattern.fullmatch(region):
            return partition
    return None


def bucket_name_problems(name: str) -> list[str]:
    """Every S3 general-purpose bucket naming rule the name breaks (empty when valid)."""
    problems = []
    if not 3 <= len(name) <= 63:
        problems.append("must be 3 to 63 characters long")
    if not BUCKET_CHARACTERS.fullmatch(name):
        problems.append("may hold only lowercase letters, digits, dots and hyphens")
    if name and not (name[0].isalnum() and name[-1].isalnum()):
        problems.append("must start and end with a letter or digit")
    if ".." in name:
        problems.append("must not contain two adjacent dots")
    if IPV4_SHAPED.fullmatch(name):
        problems.append("must not be formatted as an IP address")
    problems += [
        f"must not start with '{p}'" for p in BUCKET_RESERVED_PREFIXES if name.startswith(p)
    ]
    problems += [f"must not end with '{s}'" for s in BUCKET_RESERVED_SUFFIXES if name.endswith(s)]
    return problems


def prefix_problems(prefix: str) -> list[str]:
    """Every rule the cleanup prefix breaks (empty when valid)."""
    problems = []
    if not prefix:
        problems.append("must not be empty (an empty prefix is the whole bucket)")
    if len(prefix.encode("utf-8")) > PREFIX_MAX_BYTES:
        problems.append(f"must be at most {PREFIX_MAX_BYTES} bytes in UTF-8")
    if prefix.startswith("/"):
        problems.append("must not start with '/' (S3 keys have no leading slash)")
    if ".." in prefix.split("/"):
        problems.append("must not contain a '..' segment")
    if CONTROL_CHARACTERS.search(prefix):
        problems.append("must not contain control characters")
    return problems


class RunConfig(BaseModel):
    """One run's validated settings. Field docs are in the flow's docstring and the README."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    bucket: str
    prefix: str
    older_than_days: int = Field(30, ge=1, le=36500)
    dry_run: bool = True
    environment: Environment = "dev"
    region: str = "us-east-1"
    aws_credentials_block: str | None = None
    role_arn: str | None = None
    secret_name: str | None = None
    expected_bucket_owner: str | None = None
    create_bucket: bool = True
    max_deletions: int | None = Field(None, ge=0)
    # Only for test servers that cannot backdate objects (SeaweedFS): declared before as_of,
    # whose validator reads it.
    allow_future_as_of: bool = False
    as_of: datetime
    plan: str | None = None
    versions: VersionsMode = "current"
    max_delete_bytes: int | None = Field(None, ge=0)
    max_delete_percent: float | None = Field(None, ge=0, le=100)
    manifest_location: str = "manifests"
    max_plan_age_hours: float = Field(24, gt=0, le=24 * 365)
    # The default is tasks.s3.deletion.DEFAULT_CONCURRENCY (not imported: this module stays light).
    delete_concurrency: int = Field(32, ge=1, le=64)
    list_concurrency: int = Field(8, ge=1, le=64)
    aws_max_attempts: int = Field(3, ge=1, le=20)
    aws_retry_mode: Literal["standard", "adaptive"] = "standard"
    task_retries: int = Field(3, ge=0, le=10)
    secret_required_keys: tuple[str, ...] = ()
    # Approval and notifications (deployments, the UI).
    require_approval: bool = False
    approval_timeout_minutes: int = Field(60, ge=1, le=APPROVAL_TIMEOUT_MAX_MINUTES)
    notify_topic_arn: str | None = None

    @property
    def cutoff(self) -> datetime:
        """Objects last modified strictly before this instant are old enough to delete."""
        return self.as_of - timedelta(days=self.older_than_days)

    @field_validator("bucket")
    @classmethod
    def _bucket_rules(cls, value: str) -> str:
        problems = bucket_name_problems(value)
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix_rules(cls, value: str) -> str:
        problems = prefix_problems(value)
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("region")
    @classmethod
    def _region_rules(cls, value: str) -> str:
        if partition_of_region(value) is None:
            raise ValueError("is not a region name of any AWS partition (e.g. us-east-1)")
        return value

    @field_validator("aws_credentials_block")
    @classmethod
    def _block_rules(cls, value: str | None) -> str | None:
        if value is not None and not BLOCK_NAME.fullmatch(value):
            raise ValueError("a block name holds only lowercase letters, digits and hyphens")
        return value

    @field_validator("role_arn")
    @classmethod
    def _role_rules(cls, value: str | None) -> str | None:
        partitions = "|".join(re.escape(p) for p in aws_partitions())
        role = rf"arn:({partitions}):iam::[0-9]{{12}}:role/(?:{IAM_NAME}+/)*{IAM_NAME}{{1,64}}"
        if value is not None and not re.fullmatch(role, value):
            raise ValueError("must be an IAM role ARN: arn:PARTITION:iam::ACCOUNT:role/NAME")
        return value

    @field_validator("secret_name")
    @classmethod
    def _secret_name_rules(cls, value: str | None) -> str | None:
        if value is None:
            return value
        arn = r"arn:[a-z-]+:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}"
        if not (SECRET_NAME.fullmatch(value) or re.fullmatch(arn, value)):
            raise ValueError(
                "must be a secret name (1-512 of letters, digits and /_+=.@-) or a secret ARN"
            )
        return value

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
            raise ValueError("must not be in the future (it would make new objects look old)")
        return aware

    @field_validator("plan", "manifest_location")
    @classmethod
    def _location_rules(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.strip():
            raise ValueError("must be a local path or an s3://bucket/... address")
        if value.startswith("s3://"):
            bucket, _, _ = value.removeprefix("s3://").partition("/")
            if bucket_name_problems(bucket):
                raise ValueError("names an invalid bucket in its s3:// address")
        return value

    @field_validator("older_than_days", "max_deletions", "max_delete_bytes", mode="before")
    @classmethod
    def _no_booleans(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("must be a whole number, not true/false")
        return value

    @field_validator("notify_topic_arn")
    @classmethod
    def _topic_rules(cls, value: str | None) -> str | None:
        if value is not None and sns_topic_problems(value):
            raise ValueError("; ".join(sns_topic_problems(value)))
        return value


def load_config(
    parameters: Mapping[str, Any],
    environ: Mapping[str, str],
    now: datetime | None = None,
) -> RunConfig:
    """Resolve every setting (parameter > environment > default) and validate them all at once.

    Args:
        parameters: the flow's parameters; None means "not set".
        environ: the process environment (passed in so tests need not patch os.environ).
        now: the reference time used when `as_of` is not set.

    Raises:
        ConfigError: listing every problem found, naming fields and sources but never values.
    """
    unknown = sorted(set(parameters) - set(PARAMETER_ENV_VARS))
    if unknown:
        raise ConfigError("unknown parameters", [f"{name}: not a parameter" for name in unknown])
    raw: dict[str, Any] = {}
    source: dict[str, str] = {}
    for name, env_vars in PARAMETER_ENV_VARS.items():
        if parameters.get(name) is not None:
            raw[name], source[name] = parameters[name], "parameter"
            continue
        for env_var in env_vars:
            value = environ.get(env_var, "")
            if value.strip():  # blank means unset
                # Surrounding blanks are dropped, except in a prefix, where they are part of it.
                raw[name] = value if name in VERBATIM_SETTINGS else value.strip()
                source[name] = env_var
                break
    for name, env_var in ENVIRONMENT_SETTINGS.items():
        if environ.get(env_var, "").strip():
            raw[name], source[name] = environ[env_var].strip(), env_var
    raw.setdefault("as_of", now or datetime.now(UTC))
    problems = cross_field_problems(raw, source)
    config: RunConfig | None = None
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        # Only messages leave this block: the ValidationError itself holds the raw values.
        problems = [_describe(e, source) for e in exc.errors(include_input=False)] + problems
    if problems or config is None:
        raise ConfigError("invalid configuration", problems)
    return config


def cross_field_problems(raw: Mapping[str, Any], source: Mapping[str, str]) -> list[str]:
    """Rules that join two settings, checked beside the per-field rules so all come at once."""
    role, region = raw.get("role_arn"), raw.get("region", "us-east-1")
    if not (isinstance(role, str) and isinstance(region, str) and role.count(":") >= 5):
        return []
    region_partition = partition_of_region(region)
    if region_partition is not None and role.split(":")[1] != region_partition:
        error = {"loc": ("role_arn",), "msg": "its partition does not match the region's partition"}
        return [_describe(error, source)]
    return []


def _describe(error: Mapping[str, Any], source: Mapping[str, str]) -> str:
    """One problem as 'field (from SOURCE): message', without the offending value."""
    field = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    origin = source.get(field)
    where = f" (from {origin})" if origin and origin != "parameter" else ""
    return f"{field or 'configuration'}{where}: {message}"


def sns_topic_problems(arn: str) -> list[str]:
    """Why this is not an SNS topic ARN (empty when it is one): arn:PARTITION:sns:REGION:
    ACCOUNT:NAME, the region in the ARN's partition, a name of 1-256 letters, digits, - and _
    (a FIFO topic's ending in .fifo)."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sns":
        return ["must be an SNS topic ARN: arn:PARTITION:sns:REGION:ACCOUNT:TOPIC"]
    _, partition, _, region, account, name = parts
    problems = []
    if partition not in aws_partitions() or partition_of_region(region) != partition:
        problems.append("names a region that is not in the ARN's AWS partition")
    if not ACCOUNT_ID.fullmatch(account):
        problems.append("must hold a 12-digit account ID")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}(\.fifo)?", name) or len(name) > 256:
        problems.append("must end with a topic name of 1-256 letters, digits, '-' and '_'")
    return problems
