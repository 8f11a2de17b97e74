"""Flow-run hooks: when a run ends, however it ends, emit its event and send its notice."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from prefect.client.schemas.objects import FlowRun, State

from tasks.aws import AwsSettings
from tasks.aws_names import sns_topic_problems
from tasks.errors import ConfigError
from tasks.record.events import emit_run_event
from tasks.record.notifications import notify, topic_region
from tasks.record.outcome import RunOutcome, from_failure, from_report
from tasks.record.report import RunReport
from tasks.settings import load_settings, raw_setting

logger = logging.getLogger(__name__)


def announce_outcome(flow: Any, flow_run: FlowRun, state: State[Any]) -> None:
    """on_completion / on_failure hook of the flow. Never raises: the outcome stands."""
    try:
        outcome = outcome_of(flow_run, state)
    except Exception as exc:
        logger.warning("Could not summarise the run's outcome: %s", type(exc).__name__)
        return
    emit_run_event(outcome)
    topic, settings = notification_target(flow_run.parameters)
    if topic is not None and settings is not None:
        notify(outcome, topic, settings)


def outcome_of(flow_run: FlowRun, state: State[Any]) -> RunOutcome:
    """The run's outcome from its final state: the report it returned or its exception."""
    run_id, run_url = str(flow_run.id), _ui_url()
    result = state.result(raise_on_failure=False)
    if isinstance(result, RunReport):
        return from_report(result, run_id, run_url)
    if isinstance(result, BaseException):
        return from_failure(result, flow_run.parameters, run_id, run_url)
    return from_failure(RuntimeError("no report"), flow_run.parameters, run_id, run_url)


def notification_target(
    parameters: Mapping[str, Any],
) -> tuple[str | None, AwsSettings | None]:
    """The topic (the parameter, else SNS_TOPIC_ARN) and the AWS settings to publish with.

    A run whose configuration is invalid still says so when its topic is valid, through the
    default AWS chain: its other settings cannot be trusted.
    """
    try:
        settings = load_settings(parameters)
    except ConfigError:
        topic = raw_setting("notify_topic_arn", parameters)
        if not isinstance(topic, str) or sns_topic_problems(topic):
            return None, None
        return topic, AwsSettings(region=topic_region(topic))
    if settings.notify_topic_arn is None:
        return None, None
    topic = settings.notify_topic_arn
    return topic, settings.aws(region=topic_region(topic))


def _ui_url() -> str | None:
    try:
        from prefect.runtime import flow_run

        url = flow_run.ui_url
        return str(url) if url else None
    except Exception:
        return None
