"""The exception tree of s3-housekeeping; each class carries the CLI exit code it maps to.

    HousekeepingError (99)
    ├── ConfigError (1)             invalid configuration or input, missing or malformed secret
    │   └── MissingBucket (1)       the bucket does not exist and may not be created
    ├── CredentialsError (2)        AWS credentials missing, invalid or expired
    ├── NetworkError (3)            endpoint unreachable or timed out after retries
    ├── PermissionDeniedError (4)   access denied, or bucket owned by another account
    ├── AwsApiError (5)             any other AWS API error
    ├── SafetyRefusal (6)           a guard refused the run; nothing was deleted
    └── PartialFailure (7)          some planned deletions did not happen

Messages name resources (bucket, secret name, operation) and AWS error codes, never values that
could be secret: exception text ends up in Prefect's database as the run's state message.

Below the tree: which botocore errors are transient, and the one translator from botocore's
exceptions to these, which every task applies at its boundary (`translated_aws_errors`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ProxyConnectionError,
    ReadTimeoutError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)
from botocore.exceptions import (
    ConnectTimeoutError as BotoConnectTimeoutError,
)

logger = logging.getLogger(__name__)

CREDENTIAL_ERROR_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "InvalidToken",
        "RequestExpired",
        "SignatureDoesNotMatch",
        "TokenRefreshRequired",
        "UnrecognizedClientException",
    }
)
PERMISSION_ERROR_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "AllAccessDisabled", "Forbidden", "403"}
)
#: A bucket, key or secret the run named does not exist: a configuration problem.
NOT_FOUND_ERROR_CODES = frozenset(
    {"NoSuchBucket", "NoSuchKey", "NotFound", "404", "ResourceNotFoundException"}
)
TRANSIENT_ERROR_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "500",
        "502",
        "503",
        "504",
    }
)
#: Per-key codes inside a DeleteObjects 200 response that a later attempt may clear.
TRANSIENT_DELETE_CODES = frozenset({"SlowDown", "InternalError", "ServiceUnavailable"})
NETWORK_EXCEPTIONS: tuple[type[BotoCoreError], ...] = (
    EndpointConnectionError,
    BotoConnectTimeoutError,
    ReadTimeoutError,
    ConnectionClosedError,
    ProxyConnectionError,
)
CREDENTIAL_EXCEPTIONS: tuple[type[BotoCoreError], ...] = (
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
    ProfileNotFound,
)


class HousekeepingError(Exception):
    """Base of every error this project raises on purpose."""

    exit_code: int = 99
    #: Whether retrying the same step may succeed (read by the shared retry condition).
    transient: bool = False

    def __reduce__(self) -> tuple[Any, ...]:
        # An error raised on a Dask worker comes back pickled; the subclasses' own __init__
        # arguments are not their message, so they are rebuilt from message and attributes.
        return (_rebuilt, (type(self), self.args, self.__dict__))


def _rebuilt(
    cls: type[HousekeepingError], args: tuple[Any, ...], state: dict[str, Any]
) -> HousekeepingError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ConfigError(HousekeepingError):
    """The run's configuration or input is invalid; `problems` lists every finding."""

    exit_code = 1

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or []
        details = "".join(f"\n  - {problem}" for problem in self.problems)
        super().__init__(f"{message}{details}")


class MissingBucket(ConfigError):
    """The run's bucket does not exist, and the run may not create it (create_bucket off)."""

    def __init__(self, bucket: str) -> None:
        super().__init__(f"bucket '{bucket}' does not exist, and create_bucket is off")
        self.bucket = bucket


class CredentialsError(HousekeepingError):
    """AWS credentials are missing, invalid or expired."""

    exit_code = 2


class NetworkError(HousekeepingError):
    """The endpoint could not be reached or did not answer in time."""

    exit_code = 3
    transient = True


class PermissionDeniedError(HousekeepingError):
    """AWS refused the call, or the bucket belongs to another account."""

    exit_code = 4


class AwsApiError(HousekeepingError):
    """Any other AWS API error; `code` is AWS's error code."""

    exit_code = 5

    def __init__(self, message: str, code: str = "", transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.transient = transient


class SafetyRefusal(HousekeepingError):
    """A guard refused the run before the first delete; nothing was deleted."""

    exit_code = 6

    def __init__(
        self, guard: str, planned: float, limit: float, report: Any = None, reason: str = ""
    ) -> None:
        reason = reason or f"the plan holds {planned} and the limit is {limit}"
        super().__init__(f"refused by {guard}: {reason}; nothing was deleted")
        self.guard = guard
        self.planned = planned
        self.limit = limit
        self.report = report


class PartialFailure(HousekeepingError):
    """Some planned deletions did not happen; raised once, after every batch was tried."""

    exit_code = 7

    def __init__(self, failed: int, planned: int, report: Any = None) -> None:
        super().__init__(f"{failed} of {planned} planned deletions failed")
        self.failed = failed
        self.planned = planned
        self.report = report


class FleetFailure(HousekeepingError):
    """A fleet ended with at least one target not done; its exit code is the worst target's,
    and its report says which."""

    def __init__(self, report: Any) -> None:
        super().__init__(f"fleet {report.status}: {report.message}")
        self.exit_code = report.exit_code
        self.report = report


def shown_text(text: str) -> str:
    """Text from outside (a file's content, a path) as a message may show it: every character
    that is not printable (controls, line breaks, invisible format characters such as bidi
    controls, and lone surrogates, which no UTF-8 output can carry) as a \\uXXXX escape.
    What is left prints on a terminal and travels in Prefect's state messages."""
    return "".join(
        character
        if character.isprintable()
        else (
            f"\\u{ord(character):04x}" if ord(character) <= 0xFFFF else f"\\U{ord(character):08x}"
        )
        for character in text
    )


def attach_report(error: BaseException, report: Any) -> None:
    """Attach the run's report to the exception that ends it: the command writes it
    (--report-json), and the hooks announce its counts."""
    error.report = report  # type: ignore[attr-defined]


def boto3_error() -> type[Exception]:
    """boto3's own exception base, imported when an error is judged: importing boto3 costs
    0.1 s, which a command whose input is wrong does not pay before it answers."""
    from boto3.exceptions import Boto3Error

    return Boto3Error


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError, or an empty string."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_transient(exc: BaseException) -> bool:
    """True for throttling, 5xx, timeouts and connection errors; False for everything else."""
    if isinstance(exc, HousekeepingError):
        return exc.transient
    if isinstance(exc, NETWORK_EXCEPTIONS):
        return True
    if isinstance(exc, ClientError):
        if error_code(exc) in TRANSIENT_ERROR_CODES:
            return True
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return isinstance(status, int) and status >= 500
    return False


def translate_aws_error(exc: Exception, action: str) -> HousekeepingError:
    """Map a boto3/botocore exception to the project's tree by class and error code.

    Args:
        exc: the exception botocore raised.
        action: what was attempted, naming only the resource, e.g. "HeadBucket on bucket 'b'".
    """
    if isinstance(exc, HousekeepingError):
        return exc
    if isinstance(exc, boto3_error()) and isinstance(exc.__context__, ClientError | BotoCoreError):
        # boto3's transfers (upload_file) wrap the botocore error that stopped them.
        return translate_aws_error(exc.__context__, action)
    if isinstance(exc, ProfileNotFound):
        return profile_not_found(exc.kwargs.get("profile", ""))
    if isinstance(exc, CREDENTIAL_EXCEPTIONS):
        return CredentialsError(f"{action}: AWS credentials not usable ({type(exc).__name__})")
    if isinstance(exc, NETWORK_EXCEPTIONS):
        endpoint = endpoint_named(exc)
        return NetworkError(
            f"{action}: endpoint {endpoint + ' ' if endpoint else ''}unreachable or timed out "
            f"({type(exc).__name__})"
        )
    code = error_code(exc)
    if code in CREDENTIAL_ERROR_CODES:
        return CredentialsError(f"{action}: AWS credentials rejected ({code})")
    if code in PERMISSION_ERROR_CODES:
        return PermissionDeniedError(f"{action}: permission denied ({code})")
    if code in NOT_FOUND_ERROR_CODES:
        return ConfigError(f"{action}: not found ({code})")
    name = code or type(exc).__name__
    return AwsApiError(f"{action}: AWS error {name}", code=code, transient=is_transient(exc))


def profile_not_found(profile: str) -> CredentialsError:
    """A named AWS profile that no AWS config file holds: the credentials cannot be found."""
    return CredentialsError(
        f"AWS profile '{shown_text(profile)}' not found in the AWS config files "
        "(AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE; by default ~/.aws/config and "
        "~/.aws/credentials)"
    )


def endpoint_named(exc: BotoCoreError) -> str:
    """The scheme, host and port a network error could not reach (never a user or password an
    address might hold), or an empty string."""
    address = getattr(exc, "kwargs", {}).get("endpoint_url") or ""
    try:
        parts = urlsplit(str(address))
        port = parts.port
    except ValueError:
        return ""
    if not parts.hostname:
        return ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}"


@contextmanager
def translated_aws_errors(resource: str) -> Iterator[None]:
    """The boundary of a task: a botocore exception raised inside leaves as the project's,
    named by its operation and `resource` (e.g. "bucket 'b'"), logged once, with no context
    that could carry a value.
    """
    try:
        yield
    except (ClientError, BotoCoreError, boto3_error()) as exc:
        cause = exc.__context__ if isinstance(exc, boto3_error()) else exc
        operation = cause.operation_name if isinstance(cause, ClientError) else ""
        action = f"{operation} on {resource}" if operation else resource
        logger.error("%s failed: %s", action, error_code(exc) or type(exc).__name__)
        raise translate_aws_error(exc, action) from None
