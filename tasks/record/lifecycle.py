"""The S3 lifecycle rule equivalent to a run, so a recurring cleanup can be handed to S3 itself."""

from __future__ import annotations

import re
from typing import Any

from tasks.s3.rules import Rules

NOTE = (
    "S3 applies lifecycle rules itself, with no requests and no cost per object, but counts "
    "whole days from each object's creation (rounded to the next midnight UTC) and acts about "
    "once a day. PutBucketLifecycleConfiguration replaces the whole configuration: merge this "
    "rule into the bucket's existing rules."
)


def lifecycle_rule(
    prefix: str, days: int, versions: str, rules: Rules | None = None
) -> dict[str, Any]:
    """The rule (as PutBucketLifecycleConfiguration takes it) that expires what this run
    deletes: current objects, noncurrent versions, or both; {} when the run's retention rules
    cannot be one (`Rules.lifecycle_blocker` says which)."""
    rules = rules or Rules()
    if rules.lifecycle_blocker() is not None:
        return {}
    rule_id = "s3-housekeeping-" + (re.sub(r"[^A-Za-z0-9-]+", "-", prefix).strip("-") or "all")
    rule: dict[str, Any] = {
        "ID": rule_id[:255],
        "Filter": rules.lifecycle_filter(prefix),
        "Status": "Enabled",
    }
    if versions in ("current", "all"):
        rule["Expiration"] = {"Days": days}
    if versions in ("noncurrent", "all"):
        rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": days}
    return rule
