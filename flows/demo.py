"""`s3-housekeeping demo`: the whole job against an embedded local AWS, from bucket to report."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deployments.local_aws import (
    DEMO_OBJECTS,
    LOCAL_ACCOUNT_ID,
    local_aws,
    patched_environ,
    seed_objects,
)

BUCKET = "s3-housekeeping-demo"
PREFIX = "tmp/"
OLDER_THAN_DAYS = 30
SECRET_NAME = "s3-housekeeping/demo"  # noqa: S105 - a name, not a value


def say(text: str = "") -> None:
    """Demo narration goes to stderr; stdout carries the JSON log lines."""
    print(text, file=sys.stderr, flush=True)


def run_demo() -> dict[str, Any]:
    """Start local AWS, create the secret, run the flow three times, return the final report."""
    from flows.s3_housekeeping import s3_housekeeping

    as_of = datetime.now(UTC)
    # Plans go where a real run's would (MANIFEST_DIR, default ./manifests), to be looked at.
    with local_aws() as aws, patched_environ(aws.environment()):
        say(f"Local AWS (moto) listening on {aws.endpoint_url}")
        aws.client("secretsmanager").create_secret(
            Name=SECRET_NAME,
            SecretString=json.dumps(
                {"expected_bucket_owner": LOCAL_ACCOUNT_ID, "api_token": "demo-only-value"}
            ),
        )
        common: dict[str, Any] = {
            "bucket": BUCKET,
            "prefix": PREFIX,
            "older_than_days": OLDER_THAN_DAYS,
            "secret_name": SECRET_NAME,
            "environment": "dev",
        }
        say("\n== 1. First run: creates the bucket with its baseline (nothing in it to delete)")
        first = s3_housekeeping(**common, dry_run=False)
        say(f"   bucket {first.bucket}: {first.bucket_action} ({', '.join(first.bucket_changes)})")

        seed_objects(aws, BUCKET, as_of)
        say(f"\n== 2. Put {len(DEMO_OBJECTS)} objects of various ages in and beside {PREFIX}")
        for key, age_days in DEMO_OBJECTS.items():
            say(f"   {age_days:>4} days  {key}")

        say(f"\n== 3. Dry run: what would be deleted (older than {OLDER_THAN_DAYS} days)")
        plan = s3_housekeeping(**common, dry_run=True, as_of=as_of)
        say_plan(plan.manifest, plan.matched, plan.matched_bytes, plan.scanned)

        say("\n== 4. Executing run")
        report = s3_housekeeping(**common, dry_run=False, as_of=as_of)
        say(json.dumps(report.to_dict(), indent=2))

        s3 = aws.client("s3")
        remaining = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
        say("\n== 5. What is left in the bucket")
        for key in remaining:
            say(f"   {key}")
        say(f"\nStopping local AWS. Demo done: {report.deleted} deleted, {len(remaining)} kept.")
        final: dict[str, Any] = report.to_dict()
        return final


def say_plan(manifest: str | None, matched: int, matched_bytes: int, scanned: int) -> None:
    """Print the plan the dry run wrote: counts, bytes and each planned key."""
    from tasks.s3.manifest import read_objects

    say(f"   would delete {matched} of {scanned} objects, {matched_bytes} bytes; plan: {manifest}")
    if manifest:
        for entry in read_objects(Path(manifest)):
            say(f"   - {entry.key}  ({entry.size} bytes, last modified {entry.last_modified})")
