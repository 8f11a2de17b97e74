"""SNS notice of a run that deleted, refused or failed: a short JSON summary, never a secret."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from tasks.aws import AwsSettings, create_sns_client
from tasks.aws_names import CONTROL_CHARACTERS
from tasks.errors import error_code
from tasks.record.outcome import RunOutcome

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

logger = logging.getLogger(__name__)

#: SNS subjects: at most 100 characters, no line breaks or control characters.
SUBJECT_MAX_CHARS = 100


def topic_region(topic_arn: str) -> str:
    """arn:aws:sns:eu-west-1:111122223333:name -> eu-west-1 (SNS is called in that region)."""
    return topic_arn.split(":")[3]


def subject(outcome: RunOutcome) -> str:
    """One line for an email subject or a chat preview."""
    text = (
        f"s3-housekeeping {outcome.status} ({outcome.environment}): "
        f"s3://{outcome.bucket}/{outcome.prefix}"
    )
    return CONTROL_CHARACTERS.sub(" ", text)[:SUBJECT_MAX_CHARS]


def publish_outcome(sns: SNSClient, topic_arn: str, outcome: RunOutcome) -> str:
    """Publish the summary to the topic; returns SNS's message id.

    The status and environment are also message attributes, so a subscription can filter on
    them (an SNS filter policy) without parsing the body.
    """
    response = sns.publish(
        TopicArn=topic_arn,
        Subject=subject(outcome),
        Message=json.dumps(outcome.summary(), sort_keys=True),
        MessageAttributes={
            "status": {"DataType": "String", "StringValue": outcome.status},
            "environment": {"DataType": "String", "StringValue": outcome.environment},
        },
    )
    return response["MessageId"]


def notify(outcome: RunOutcome, topic_arn: str, settings: AwsSettings) -> bool:
    """Send the notice if the outcome is worth one; True when it was sent.

    Never raises: a notice that cannot be sent is logged and the run's outcome stands.

    Args:
        outcome: how the run ended.
        topic_arn: a validated SNS topic ARN.
        settings: the run's AWS settings (credentials block, role); the region is the topic's.
    """
    if not outcome.worth_notifying:
        return False
    try:
        sns = create_sns_client(replace(settings, region=topic_region(topic_arn)))
        message_id = publish_outcome(sns, topic_arn, outcome)
    except Exception as exc:
        code = error_code(exc)
        logger.warning(
            "Could not notify %s of the run (%s): %s; the run's outcome is unchanged",
            topic_arn,
            outcome.status,
            code or type(exc).__name__,
            extra={"sns_topic_arn": topic_arn},
        )
        return False
    logger.info(
        "Notified %s of the run (%s)",
        topic_arn,
        outcome.status,
        extra={"sns_topic_arn": topic_arn, "sns_message_id": message_id},
    )
    return True
