"""Bounds in the flow parameters' JSON schema, which the Prefect server checks before a run exists.

Only the schema carries them (pydantic's WithJsonSchema): a local call still reaches load_config,
which reports every problem at once.
"""

from __future__ import annotations

from typing import Any

from pydantic import WithJsonSchema

#: The shape of an SNS topic ARN (config.sns_topic_problems also checks partition and region).
SNS_TOPIC_ARN_PATTERN = r"^arn:[a-z-]+:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$"


def _optional(schema: dict[str, Any]) -> WithJsonSchema:
    return WithJsonSchema({"anyOf": [schema, {"type": "null"}]})


def optional_int(minimum: int, maximum: int | None = None) -> WithJsonSchema:
    """An empty value, or a whole number from minimum to maximum."""
    schema: dict[str, Any] = {"type": "integer", "minimum": minimum}
    if maximum is not None:
        schema["maximum"] = maximum
    return _optional(schema)


def optional_pattern(pattern: str) -> WithJsonSchema:
    """An empty value, or a string matching the pattern."""
    return _optional({"type": "string", "pattern": pattern})
