"""The one Prefect event and the one SNS notice of a fleet run: its totals and its worst target."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

from tasks.aws import AwsSettings, create_sns_client
from tasks.aws_names import CONTROL_CHARACTERS
from tasks.errors import error_code
from tasks.fleet.report import FleetReport
from tasks.record.notifications import SUBJECT_MAX_CHARS, topic_region

logger = logging.getLogger(__name__)

EVENT_PREFIX = "s3-housekeeping.fleet"
#: Targets listed by name in an event or a notice; the artifact table has them all.
LISTED_TARGETS = 50


def fleet_summary(report: FleetReport) -> dict[str, Any]:
    """JSON-ready and small: the totals, the worst target, and each target's status."""
    return {
        "source": "s3-housekeeping",
        "status": report.status,
        "exit_code": report.exit_code,
        "worst_target": report.worst_target,
        "targets_file": report.targets_file,
        "group": report.group,
        "dry_run": report.dry_run,
        "totals": report.totals,
        "message": report.message,
        "approval": asdict(report.approval) if report.approval else None,
        "targets": [
            {"name": o.name, "status": o.status, "exit_code": o.exit_code}
            for o in report.targets[:LISTED_TARGETS]
        ],
    }


def fleet_event_name(report: FleetReport) -> str:
    """e.g. s3-housekeeping.fleet.completed (a dry run too), .refused, .partial-failure."""
    suffix = "completed" if report.status == "dry_run" else report.status.replace("_", "-")
    return f"{EVENT_PREFIX}.{suffix}"


def emit_fleet_event(report: FleetReport) -> Any:
    """The fleet's event, with its summary as the payload. Never raises."""
    from prefect.events import emit_event

    try:
        return emit_event(
            event=fleet_event_name(report),
            resource={
                "prefect.resource.id": f"s3-housekeeping.fleet.{report.targets_file}",
                "prefect.resource.name": f"s3-housekeeping fleet {report.targets_file}",
            },
            payload=fleet_summary(report),
        )
    except Exception as exc:
        logger.warning("Could not emit the fleet's event: %s", type(exc).__name__)
        return None


def notify_fleet(report: FleetReport, topic_arn: str) -> bool:
    """Publish the fleet's summary to the topic (with the default AWS chain, in the topic's
    region); True when sent. Never raises: the fleet's outcome stands."""
    subject = f"s3-housekeeping fleet {report.status}: {report.targets_file}"
    try:
        sns = create_sns_client(AwsSettings(region=topic_region(topic_arn)))
        answer = sns.publish(
            TopicArn=topic_arn,
            Subject=CONTROL_CHARACTERS.sub(" ", subject)[:SUBJECT_MAX_CHARS],
            Message=json.dumps(fleet_summary(report), sort_keys=True),
            MessageAttributes={"status": {"DataType": "String", "StringValue": report.status}},
        )
    except Exception as exc:
        logger.warning(
            "Could not notify %s of the fleet (%s): %s",
            topic_arn,
            report.status,
            error_code(exc) or type(exc).__name__,
        )
        return False
    message_id = answer["MessageId"]
    logger.info("Notified %s of the fleet", topic_arn, extra={"sns_message_id": message_id})
    return True


def announce_fleet(report: FleetReport, topic_arn: str | None) -> None:
    """The fleet's event, and its notice when a topic is set. Never raises."""
    emit_fleet_event(report)
    if topic_arn:
        notify_fleet(report, topic_arn)
