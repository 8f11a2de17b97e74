"""Tests for tasks.retry: which errors are transient, and the shared Prefect retry condition."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from prefect.states import Completed, Failed, exception_to_failed_state

from tasks.errors import (
    AwsApiError,
    ConfigError,
    CredentialsError,
    NetworkError,
    PermissionDeniedError,
)
from tasks.retry import TRANSIENT_ERROR_CODES, aws_task_options, is_transient, retry_on_transient

ENDPOINT = "https://example.invalid"


def client_error(code: str, status: int | None = 400) -> ClientError:
    """A ClientError as botocore raises it; status None leaves out the response metadata."""
    response: Any = {"Error": {"Code": code, "Message": "fake"}}
    if status is not None:
        response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, "DeleteObjects")


TRANSIENT = [
    pytest.param(client_error("Throttling"), id="throttling"),
    pytest.param(client_error("ThrottlingException"), id="throttling-exception"),
    pytest.param(client_error("SlowDown", 503), id="s3-slow-down"),
    pytest.param(client_error("RequestLimitExceeded"), id="request-limit-exceeded"),
    pytest.param(client_error("TooManyRequestsException", 429), id="too-many-requests"),
    pytest.param(client_error("RequestThrottledException"), id="request-throttled"),
    pytest.param(client_error("ProvisionedThroughputExceededException"), id="throughput"),
    pytest.param(client_error("RequestTimeout"), id="s3-request-timeout"),
    pytest.param(client_error("InternalError", 500), id="internal-error"),
    pytest.param(client_error("ServiceUnavailable", 503), id="service-unavailable"),
    pytest.param(client_error("SlowDown", None), id="code-without-status"),
    pytest.param(client_error("SomethingNew", 500), id="unknown-code-500"),
    pytest.param(client_error("SomethingNew", 502), id="unknown-code-502"),
    pytest.param(client_error("SomethingNew", 503), id="unknown-code-503"),
    pytest.param(client_error("SomethingNew", 504), id="unknown-code-504"),
    pytest.param(EndpointConnectionError(endpoint_url=ENDPOINT), id="endpoint-connection"),
    pytest.param(ReadTimeoutError(endpoint_url=ENDPOINT), id="read-timeout"),
    pytest.param(ConnectTimeoutError(endpoint_url=ENDPOINT), id="connect-timeout"),
    pytest.param(ConnectionClosedError(endpoint_url=ENDPOINT), id="connection-closed"),
    pytest.param(NetworkError("unreachable"), id="network-error"),
    pytest.param(AwsApiError("slow", code="SlowDown", transient=True), id="transient-api-error"),
]

PERMANENT = [
    pytest.param(client_error("AccessDenied", 403), id="access-denied"),
    pytest.param(client_error("NoSuchBucket", 404), id="no-such-bucket"),
    pytest.param(client_error("ValidationError", 400), id="validation-error"),
    pytest.param(client_error("ResourceNotFoundException", 400), id="resource-not-found"),
    pytest.param(client_error("PreconditionFailed", 412), id="precondition-failed"),
    pytest.param(client_error("SomethingNew", None), id="unknown-code-without-status"),
    pytest.param(NoCredentialsError(), id="no-credentials"),
    pytest.param(ConfigError("bad configuration"), id="config-error"),
    pytest.param(CredentialsError("expired"), id="credentials-error"),
    pytest.param(PermissionDeniedError("denied"), id="permission-error"),
    pytest.param(AwsApiError("gone", code="NoSuchBucket"), id="permanent-api-error"),
    pytest.param(ValueError("not an AWS error"), id="value-error"),
]


def failed_state_from_raise(exc: BaseException) -> Any:
    """The Failed state Prefect builds for an exception raised by a task."""
    try:
        raise exc
    except BaseException as raised:
        return asyncio.run(exception_to_failed_state(raised))


# --- is_transient ---------------------------------------------------------------------------------


@pytest.mark.parametrize("exc", TRANSIENT)
def test_is_transient_is_true_when_error_is_throttling_5xx_or_network(exc: BaseException) -> None:
    assert is_transient(exc) is True


@pytest.mark.parametrize("exc", PERMANENT)
def test_is_transient_is_false_when_error_will_not_clear_by_itself(exc: BaseException) -> None:
    assert is_transient(exc) is False


@pytest.mark.parametrize("code", sorted(TRANSIENT_ERROR_CODES))
def test_is_transient_is_true_when_code_is_listed_even_with_a_4xx_status(code: str) -> None:
    assert is_transient(client_error(code, 400)) is True


# --- retry_on_transient with real Prefect states --------------------------------------------------


@pytest.mark.parametrize("exc", TRANSIENT)
def test_retry_condition_is_true_when_failed_state_holds_transient_error(
    exc: BaseException,
) -> None:
    assert retry_on_transient(None, None, Failed(data=exc)) is True


@pytest.mark.parametrize("exc", PERMANENT)
def test_retry_condition_is_false_when_failed_state_holds_permanent_error(
    exc: BaseException,
) -> None:
    assert retry_on_transient(None, None, Failed(data=exc)) is False


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        pytest.param(client_error("SlowDown", 503), True, id="slow-down"),
        pytest.param(ReadTimeoutError(endpoint_url=ENDPOINT), True, id="read-timeout"),
        pytest.param(client_error("AccessDenied", 403), False, id="access-denied"),
        pytest.param(ConfigError("bad"), False, id="config-error"),
    ],
)
def test_retry_condition_follows_is_transient_when_state_comes_from_a_raised_exception(
    exc: BaseException, expected: bool
) -> None:
    state = failed_state_from_raise(exc)

    assert state.is_failed()
    assert retry_on_transient(None, None, state) is expected


def test_retry_condition_is_false_when_state_is_completed() -> None:
    assert retry_on_transient(None, None, Completed(data={"deleted": 3})) is False


def test_retry_condition_is_false_when_failed_state_holds_no_exception() -> None:
    assert retry_on_transient(None, None, Failed(data="not an exception")) is False


# --- the shared task options ----------------------------------------------------------------------


def test_task_options_retry_only_transient_errors_without_caching_when_built() -> None:
    from prefect.cache_policies import NO_CACHE

    options = aws_task_options()

    assert options["retries"] == 3
    assert options["retry_condition_fn"] is retry_on_transient
    assert options["cache_policy"] is NO_CACHE
    assert options["retry_jitter_factor"] == 0.5
    assert options["retry_delay_seconds"](3) == [2, 4, 8]


# --- the condition inside a real Prefect task run -------------------------------------------------


def flaky_flow(failures: list[BaseException]) -> tuple[Any, list[int]]:
    """A flow running one task with the shared options (no delay) that raises `failures` in
    turn, then succeeds; and the list of the task's attempts."""
    from prefect import flow, task

    attempts: list[int] = []

    @task(**{**aws_task_options(), "retry_delay_seconds": 0, "retry_jitter_factor": None})
    def step() -> str:
        attempts.append(len(attempts) + 1)
        if failures:
            raise failures.pop(0)
        return "done"

    @flow
    def run_step() -> str:
        return step()

    return run_step, attempts


def test_task_is_retried_until_success_when_errors_are_transient(prefect_harness: None) -> None:
    failures = [client_error("SlowDown", 503), EndpointConnectionError(endpoint_url=ENDPOINT)]
    run_step, attempts = flaky_flow(failures)

    assert run_step() == "done"
    assert attempts == [1, 2, 3]


def test_task_fails_at_once_when_error_is_permanent(prefect_harness: None) -> None:
    run_step, attempts = flaky_flow([client_error("AccessDenied", 403)])

    with pytest.raises(ClientError, match="AccessDenied"):
        run_step()
    assert attempts == [1]
