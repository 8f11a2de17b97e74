"""Which AWS errors are transient: the one retry condition shared by every AWS task."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from tasks.errors import NETWORK_EXCEPTIONS, HousekeepingError, error_code

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


def retry_on_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect `retry_condition_fn`: retry the task only when its failure was transient."""
    try:
        state.result()
    except Exception as exc:  # the state's exception, re-raised by result()
        return is_transient(exc)
    return False


def aws_task_options() -> dict[str, Any]:
    """The Prefect options every AWS-touching task shares: retries with exponential backoff and
    jitter on transient errors only, and no caching (idempotency comes from AWS state)."""
    from prefect.cache_policies import NO_CACHE
    from prefect.tasks import exponential_backoff

    return {
        "retries": 3,
        "retry_delay_seconds": exponential_backoff(backoff_factor=2),
        "retry_jitter_factor": 0.5,
        "retry_condition_fn": retry_on_transient,
        "cache_policy": NO_CACHE,
    }
