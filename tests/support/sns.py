"""An SNS topic with an SQS queue subscribed, in moto: what a run's notices look like on arrival."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3


def subscribed_queue(make_client: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """An SNS topic in us-east-1 with an SQS queue subscribed (raw delivery off: the SNS
    envelope arrives, as an email or a chat integration would see it). `make_client` makes
    the clients (default: boto3's, for moto in this process)."""
    make = make_client or (lambda service: boto3.client(service, region_name="us-east-1"))
    sns, sqs = make("sns"), make("sqs")
    topic_arn = sns.create_topic(Name="s3-housekeeping-notices")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="notices")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return {"topic_arn": topic_arn, "sqs": sqs, "queue_url": queue_url}


def subscribed_queue_over_http(aws: Any) -> tuple[str, dict[str, Any]]:
    """The same, in a moto server (a LocalAws): the topic's ARN and the queue."""
    queue = subscribed_queue(aws.client)
    return queue["topic_arn"], queue


def received(queue: dict[str, Any]) -> list[dict[str, Any]]:
    """The SNS envelopes in the queue."""
    answer = queue["sqs"].receive_message(QueueUrl=queue["queue_url"], MaxNumberOfMessages=10)
    return [json.loads(message["Body"]) for message in answer.get("Messages", [])]
