"""Logging filters: the AWS SDK kept quiet below WARNING, and records stamped with their run."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from prefect import flow, task

from tasks.log_context import SDK_LOGGERS, QuietSdkFilter, RunContextFilter

RUN_FIELDS = (
    "flow_run_id",
    "flow_run_name",
    "flow_name",
    "task_run_id",
    "task_run_name",
    "task_name",
)


def record(
    name: str = "tasks.cleanup", level: int = logging.INFO, **extra: Any
) -> logging.LogRecord:
    made = logging.LogRecord(name, level, __file__, 1, "message", None, None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def stamped(made: logging.LogRecord) -> dict[str, Any]:
    """The run fields of a record once RunContextFilter has seen it."""
    assert RunContextFilter().filter(made) is True
    return {name: getattr(made, name) for name in RUN_FIELDS if hasattr(made, name)}


class CapturingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class TestQuietSdkFilter:
    @pytest.mark.parametrize(
        "logger", [*SDK_LOGGERS, "botocore.endpoint", "urllib3.connectionpool"]
    )
    @pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO])
    def test_drops_the_record_when_an_sdk_logger_writes_below_warning(
        self, logger: str, level: int
    ) -> None:
        assert QuietSdkFilter().filter(record(logger, level)) is False

    @pytest.mark.parametrize("logger", [*SDK_LOGGERS, "s3transfer.tasks", "boto3.resources.action"])
    @pytest.mark.parametrize("level", [logging.WARNING, logging.ERROR, logging.CRITICAL])
    def test_keeps_the_record_when_an_sdk_logger_warns_or_worse(
        self, logger: str, level: int
    ) -> None:
        assert QuietSdkFilter().filter(record(logger, level)) is True

    @pytest.mark.parametrize(
        "logger",
        ["tasks.cleanup", "prefect.flow_runs", "root", "botocorex", "boto3_helper", "urllib"],
    )
    def test_keeps_debug_records_when_the_logger_is_not_the_sdks(self, logger: str) -> None:
        assert QuietSdkFilter().filter(record(logger, logging.DEBUG)) is True

    def test_drops_sdk_debug_at_the_handler_when_the_logger_level_was_lowered_later(
        self,
    ) -> None:
        handler = CapturingHandler()
        handler.addFilter(QuietSdkFilter())
        sdk, ours = logging.getLogger("botocore.test-quiet"), logging.getLogger("tasks.test-quiet")
        for logger in (sdk, ours):
            logger.addHandler(handler)
            logger.setLevel(logging.DEBUG)
        try:
            sdk.debug("request body with a signature")
            sdk.warning("retrying")
            ours.debug("our own detail")
        finally:
            for logger in (sdk, ours):
                logger.removeHandler(handler)
                logger.setLevel(logging.NOTSET)

        assert [(r.name, r.getMessage()) for r in handler.records] == [
            ("botocore.test-quiet", "retrying"),
            ("tasks.test-quiet", "our own detail"),
        ]


class TestRunContextFilterOutsideRuns:
    def test_leaves_the_record_alone_when_no_run_is_active(self) -> None:
        made = record()
        before = dict(vars(made))

        assert stamped(made) == {}
        assert vars(made) == before


@flow(name="log-context-probe")
def probe_flow() -> dict[str, dict[str, Any]]:
    """Records filtered in a flow run and in one of its task runs."""
    return {
        "flow": stamped(record()),
        "flow_preset_id": stamped(record(flow_run_id="set-by-prefect")),
        **probe_task(),
    }


@task(name="log-context-probe-task")
def probe_task() -> dict[str, dict[str, Any]]:
    return {
        "task": stamped(record()),
        "task_preset_name": stamped(record(task_name="named-by-caller")),
    }


@task(name="log-context-lone-task")
def lone_task() -> dict[str, Any]:
    return stamped(record())


@pytest.fixture(scope="module")
def probed(prefect_harness: None) -> Iterator[tuple[dict[str, dict[str, Any]], Any, list[Any]]]:
    """One probe flow run: what the filter stamped, the flow run and its task runs as the API
    knows them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    state = probe_flow(return_state=True)
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    yield state.result(), flow_run, task_runs


class TestRunContextFilterInsideRuns:
    def test_adds_the_flow_runs_fields_when_logged_in_a_flow_run(
        self, probed: tuple[dict[str, dict[str, Any]], Any, list[Any]]
    ) -> None:
        fields, flow_run, _ = probed

        assert fields["flow"] == {
            "flow_run_id": str(flow_run.id),
            "flow_run_name": flow_run.name,
            "flow_name": "log-context-probe",
        }

    def test_adds_the_flow_and_task_runs_fields_when_logged_in_a_task_run(
        self, probed: tuple[dict[str, dict[str, Any]], Any, list[Any]]
    ) -> None:
        fields, flow_run, task_runs = probed
        (task_run,) = task_runs

        assert fields["task"] == {
            "flow_run_id": str(flow_run.id),
            "flow_run_name": flow_run.name,
            "flow_name": "log-context-probe",
            "task_run_id": str(task_run.id),
            "task_run_name": task_run.name,
            "task_name": "log-context-probe-task",
        }

    def test_adds_nothing_when_the_record_already_carries_a_flow_run_id(
        self, probed: tuple[dict[str, dict[str, Any]], Any, list[Any]]
    ) -> None:
        fields, _, _ = probed

        assert fields["flow_preset_id"] == {"flow_run_id": "set-by-prefect"}

    def test_keeps_a_field_the_record_already_has_when_adding_the_others(
        self, probed: tuple[dict[str, dict[str, Any]], Any, list[Any]]
    ) -> None:
        fields, flow_run, _ = probed

        assert fields["task_preset_name"]["task_name"] == "named-by-caller"
        assert fields["task_preset_name"]["flow_run_id"] == str(flow_run.id)

    @pytest.mark.filterwarnings("ignore:Logger 'prefect.task_runs' attempted:UserWarning")
    def test_adds_no_flow_run_id_when_a_task_runs_outside_any_flow(
        self, prefect_harness: None
    ) -> None:
        fields = lone_task()

        assert fields["task_name"] == "log-context-lone-task"
        assert "flow_run_id" not in fields
