"""Tests for tasks.retry: the shared Prefect retry condition and policy, in real task runs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from prefect.states import Completed, Failed, exception_to_failed_state

from tasks.errors import ConfigError
from tasks.retry import MAX_TASK_RETRIES, aws_task_options, retry_on_transient
from tests.support.aws_errors import ENDPOINT, PERMANENT, TRANSIENT, client_error


def failed_state_from_raise(exc: BaseException) -> Any:
    """The Failed state Prefect builds for an exception raised by a task."""
    try:
        raise exc
    except BaseException as raised:
        return asyncio.run(exception_to_failed_state(raised))


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

    # How many retries is the run's TASK_RETRIES, given where the flow calls the task.
    assert "retries" not in options
    assert options["retry_condition_fn"] is retry_on_transient
    assert options["cache_policy"] is NO_CACHE
    assert options["retry_jitter_factor"] == 0.5
    assert options["retry_delay_seconds"][:3] == [2, 4, 8]
    assert len(options["retry_delay_seconds"]) == MAX_TASK_RETRIES


# --- the condition inside a real Prefect task run -------------------------------------------------


def flaky_flow(failures: list[BaseException]) -> tuple[Any, list[int]]:
    """A flow running one task with the shared options (no delay) that raises `failures` in
    turn, then succeeds; and the list of the task's attempts."""
    from prefect import flow, task

    attempts: list[int] = []

    @task(
        **{
            **aws_task_options(),
            "retries": 3,
            "retry_delay_seconds": 0,
            "retry_jitter_factor": None,
        }
    )
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
