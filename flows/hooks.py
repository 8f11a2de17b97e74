"""Flow-run hooks: when a run ends, however it ends, emit its event and send its notice."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from prefect.client.schemas.objects import FlowRun, State

from tasks.aws import AwsSettings
from tasks.aws_names import sns_topic_problems
from tasks.errors import ConfigError
from tasks.record.events import emit_run_event
from tasks.record.notifications import notify, topic_region
from tasks.record.outcome import (
    MESSAGE_MAX_CHARS,
    OutcomeStatus,
    RunOutcome,
    from_failure,
    from_report,
    kept_link,
)
from tasks.record.report import RunReport
from tasks.settings import load_settings, raw_setting

logger = logging.getLogger(__name__)


def announce_outcome(flow: Any, flow_run: FlowRun, state: State[Any]) -> None:
    """The flow's hook for its endings: completion, failure and crash. Never raises: the
    outcome stands."""
    try:
        outcome = outcome_of(flow_run, state)
    except Exception as exc:
        logger.warning("Could not summarise the run's outcome: %s", type(exc).__name__)
        return
    announce(outcome, flow_run.parameters)


@contextmanager
def announced_if_stopped(report: RunReport, parameters: Mapping[str, Any]) -> Iterator[None]:
    """Announce a run stopped by a signal (cancelled in the UI, its worker shutting down) from
    inside the run, with the counts its report holds so far, then let the signal go on."""
    try:
        yield
    except BaseException as stop:
        if isinstance(stop, Exception):
            raise
        report.status = "cancelled"
        report.message = f"stopped ({type(stop).__name__}) after {report.deleted} deletions"
        announce(from_report(report, run_id(), _ui_url()), parameters)
        raise


def run_id() -> str | None:
    from prefect.runtime import flow_run

    found = flow_run.get_id()
    return str(found) if found else None


def announce(outcome: RunOutcome, parameters: Mapping[str, Any]) -> None:
    """Emit the outcome's event and send its notice, if a topic is set. Never raises."""
    emit_run_event(outcome)
    topic, settings = notification_target(parameters)
    if topic is not None and settings is not None:
        notify(outcome, topic, settings)


def outcome_of(flow_run: FlowRun, state: State[Any]) -> RunOutcome:
    """The run's outcome from its final state: the report it returned or its exception; a run
    that crashed or was cancelled says so, with the counts of its report if it has one."""
    run_id, run_url = str(flow_run.id), _ui_url()
    try:
        result = state.result(raise_on_failure=False)
    except Exception as exc:  # a crashed run may have no result to read at all
        result = exc
    if isinstance(result, RunReport):
        outcome = from_report(result, run_id, run_url)
    else:
        error = result if isinstance(result, BaseException) else RuntimeError("no report")
        outcome = from_failure(error, flow_run.parameters, run_id, run_url)
    # A worker runs the cancellation hooks itself, with a Cancelling state, once it has
    # stopped the run's process.
    if state.is_crashed() or state.is_cancelling() or state.is_cancelled():
        how: OutcomeStatus = "crashed" if state.is_crashed() else "cancelled"
        message = state.message or f"the run {how}"
        outcome = replace(outcome, status=how, message=message[:MESSAGE_MAX_CHARS])
    return outcome


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
        return kept_link(str(url)) if url else None
    except Exception:
        return None
