"""The one factory for boto3 sessions and clients: credentials, assume-role, botocore Config."""

from __future__ import annotations

import functools
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    Credentials,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import ProfileNotFound
from botocore.loaders import Loader, create_loader
from botocore.utils import parse_timestamp as botocore_parse_timestamp

# AwsSettings lives where no SDK is imported: the settings, checked before a run starts, use it.
from tasks.aws_settings import CONNECT_TIMEOUT_S as CONNECT_TIMEOUT_S
from tasks.aws_settings import READ_TIMEOUT_S as READ_TIMEOUT_S
from tasks.aws_settings import USER_AGENT as USER_AGENT
from tasks.aws_settings import AwsSettings as AwsSettings
from tasks.errors import ConfigError, profile_not_found
from tasks.log_context import SDK_LOGGERS
from tasks.s3.bulk_answers import (
    BulkAnswerParserFactory,
    handle_200_error,
    handle_200_error_unless_bulk,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient

logger = logging.getLogger(__name__)


@dataclass
class RequestCounter:
    """Counts the HTTP requests sent per operation, retries included (a botocore event hook)."""

    counts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def attach(self, client: Any) -> None:
        """Count every request this client sends from now on."""
        client.meta.events.register("request-created", self._on_request)

    def _on_request(self, operation_name: str, **_: Any) -> None:
        with self._lock:
            self.counts[operation_name] += 1

    def snapshot(self) -> dict[str, int]:
        """The counts so far, sorted by operation name."""
        with self._lock:
            return dict(sorted(self.counts.items()))


@dataclass
class AwsClients:
    """The clients of one run, sharing one session, one Config and one request counter."""

    s3: S3Client
    secretsmanager: SecretsManagerClient
    requests: RequestCounter


def quiet_aws_loggers() -> None:
    """Keep the AWS SDK loggers at WARNING or above, whatever the run's level."""
    for name in SDK_LOGGERS:
        sdk_logger = logging.getLogger(name)
        if sdk_logger.getEffectiveLevel() < logging.WARNING:
            sdk_logger.setLevel(logging.WARNING)


def botocore_config(settings: AwsSettings) -> Config:
    """Timeouts that bound every call, SDK retries with backoff, a pool sized to concurrency."""
    return Config(
        region_name=settings.region,
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=settings.read_timeout_s,
        retries={"mode": settings.retry_mode, "total_max_attempts": settings.max_attempts},
        max_pool_connections=settings.max_pool_connections,
        user_agent_extra=USER_AGENT,
    )


class _AssumedRoleProvider(CredentialProvider):
    """Hands botocore the refreshing assume-role credentials ahead of its default chain."""

    METHOD = "assume-role"
    CANONICAL_NAME = "AssumeRole"

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> Credentials:
        return self._credentials


def parse_timestamp(value: Any) -> datetime:
    """A response timestamp: ISO 8601 with a zone (S3's LastModified) by the standard library's
    C parser, anything else by botocore's own parser.

    botocore parses every timestamp with dateutil, which costs about 100 µs: more than half of
    the time spent on a ListObjectsV2 page of 1000 objects. The result is the same instant,
    timezone-aware either way.
    """
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    return botocore_parse_timestamp(value)


@functools.cache
def service_models(data_path: str | None) -> Loader:
    """botocore's reader of its data files (service models, endpoint rules), one a process:
    a session of its own reads them again, 130 ms of CPU for the S3 and Secrets Manager
    clients, and a Dask worker makes clients for every part it plans or applies."""
    return create_loader(data_path)


def core_session() -> botocore.session.Session:
    """A botocore session whose clients parse response timestamps with `parse_timestamp` and
    bulk answers (listings, DeleteObjects) with `BulkAnswerParser`, and whose data files are
    read once a process (`service_models`)."""
    core = botocore.session.Session()
    core.register_component("data_loader", service_models(core.get_config_variable("data_path")))
    factory = BulkAnswerParserFactory()
    factory.set_parser_defaults(timestamp_parser=parse_timestamp)
    core.register_component("response_parser_factory", factory)
    # The bulk answers' check for an error sent with a 200 moves into their parser (one XML
    # parse of each answer instead of two); every other S3 answer keeps botocore's.
    events = core.get_component("event_emitter")
    events.unregister("before-parse.s3.*", handle_200_error)
    events.register_first("before-parse.s3.*", handle_200_error_unless_bulk)
    return core


def base_session(settings: AwsSettings) -> tuple[boto3.Session, dict[str, Any]]:
    """The source session (block or default chain) and client overrides from the block."""
    if settings.credentials_block is None:
        return boto3.Session(botocore_session=core_session(), region_name=settings.region), {}
    block = _load_credentials_block(settings.credentials_block)
    secret = block.aws_secret_access_key
    session = boto3.Session(
        botocore_session=core_session(),
        aws_access_key_id=block.aws_access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        aws_session_token=block.aws_session_token,
        profile_name=block.profile_name,
        region_name=settings.region,
    )
    overrides: dict[str, Any] = {}
    endpoint_url = block.aws_client_parameters.endpoint_url
    if endpoint_url:
        overrides["endpoint_url"] = endpoint_url
    return session, overrides


def _load_credentials_block(name: str) -> Any:
    from prefect_aws import AwsCredentials

    try:
        return AwsCredentials.load(name)
    except ValueError:
        raise ConfigError(f"AWS credentials block '{name}' was not found") from None


def assume_role_session(
    source: boto3.Session, settings: AwsSettings, role_arn: str
) -> boto3.Session:
    """A session whose credentials come from AssumeRole and refresh 15 min before expiry.

    prefect-aws assumes a role once, so a run longer than the role session would fail with
    ExpiredToken; botocore's DeferredRefreshableCredentials call AssumeRole again when needed.
    """
    fetcher = AssumeRoleCredentialFetcher(
        client_creator=source.client,
        source_credentials=source.get_credentials(),
        role_arn=role_arn,
        extra_args={
            "RoleSessionName": settings.role_session_name,
            "DurationSeconds": settings.role_duration_seconds,
        },
    )
    credentials = DeferredRefreshableCredentials(
        method="assume-role", refresh_using=fetcher.fetch_credentials
    )
    core = core_session()
    core.get_component("credential_provider").insert_before(
        "env", _AssumedRoleProvider(credentials)
    )
    return boto3.Session(botocore_session=core, region_name=settings.region)


def create_session(settings: AwsSettings) -> tuple[boto3.Session, dict[str, Any]]:
    """The run's session: a credentials block or the default chain, then the role if any."""
    try:
        session, overrides = base_session(settings)
    except ProfileNotFound as missing:  # AWS_PROFILE, or a block's profile_name
        raise profile_not_found(missing.kwargs.get("profile", "")) from None
    if settings.role_arn:
        session = assume_role_session(session, settings, settings.role_arn)
    return session, overrides


def create_clients(settings: AwsSettings) -> AwsClients:
    """Build the S3 and Secrets Manager clients of one run, with request counting on S3."""
    quiet_aws_loggers()
    session, overrides = create_session(settings)
    config = botocore_config(settings)
    s3 = session.client("s3", config=config, **overrides)
    secretsmanager = session.client("secretsmanager", config=config, **overrides)
    requests = RequestCounter()
    requests.attach(s3)
    logger.debug(
        "AWS clients ready",
        extra={
            "region": settings.region,
            "credentials_block": settings.credentials_block,
            "assume_role": bool(settings.role_arn),
        },
    )
    return AwsClients(s3=s3, secretsmanager=secretsmanager, requests=requests)


def create_sns_client(settings: AwsSettings) -> SNSClient:
    """An SNS client for run notifications, with the run's credentials (block, chain, role)
    in `settings.region`, which must be the topic's region."""
    quiet_aws_loggers()
    session, overrides = create_session(settings)
    return session.client("sns", config=botocore_config(settings), **overrides)
