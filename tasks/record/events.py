"""The Prefect events a run emits when it ends, with the report's counts, for automations."""

from __future__ import annotations

import logging
from typing import Any

from prefect.events import emit_event

from tasks.record.outcome import RunOutcome

logger = logging.getLogger(__name__)

EVENT_PREFIX = "s3-housekeeping.run"
#: Outcome status -> event name suffix; a dry run is a completed run too (see `dry_run`).
EVENT_BY_STATUS = {
    "dry_run": "completed",
    "completed": "completed",
    "refused": "refused",
    "partial_failure": "partial-failure",
    "failed": "failed",
    "crashed": "crashed",
    "cancelled": "cancelled",
}


def event_name(outcome: RunOutcome) -> str:
    """e.g. s3-housekeeping.run.completed."""
    return f"{EVENT_PREFIX}.{EVENT_BY_STATUS[outcome.status]}"


def event_resource(outcome: RunOutcome) -> dict[str, str]:
    """The target as a Prefect resource: automations match on its id or labels."""
    return {
        "prefect.resource.id": f"s3-housekeeping.target.{outcome.bucket}/{outcome.prefix}",
        "prefect.resource.name": f"s3://{outcome.bucket}/{outcome.prefix}",
        "s3-housekeeping.bucket": outcome.bucket,
        "s3-housekeeping.prefix": outcome.prefix,
        "s3-housekeeping.environment": outcome.environment,
    }


def emit_run_event(outcome: RunOutcome) -> Any:
    """Emit the run's event (the flow run is attached as a related resource by Prefect).

    Never raises: an event that cannot be sent must not change the run's outcome.
    """
    try:
        return emit_event(
            event=event_name(outcome),
            resource=event_resource(outcome),
            payload=outcome.summary(),
        )
    except Exception as exc:
        logger.warning("Could not emit the run's event: %s", type(exc).__name__)
        return None
