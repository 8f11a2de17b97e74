"""The Prefect artifacts a run leaves: the plan, the report, and the progress of deletes."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import cast
from urllib.parse import quote
from uuid import UUID

from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from tasks.fleet.report import COUNTS, FleetReport
from tasks.record.lifecycle import NOTE, lifecycle_rule
from tasks.record.report import RunReport
from tasks.s3.manifest import PlanSummary
from tasks.s3.progress import ProgressSnapshot
from tasks.s3.rules import Rules, kept_text
from tasks.s3.uris import is_s3_uri, parse_s3_uri

PLAN_KEY = "s3-housekeeping-plan"
MANIFEST_KEY = "s3-housekeeping-manifest"
REPORT_KEY = "s3-housekeeping-report"
#: The report's status and counts as a one-row table: what a fleet reads of a deployed child.
OUTCOME_KEY = "s3-housekeeping-outcome"
FLEET_KEY = "s3-housekeeping-fleet"
FLEET_TABLE_KEY = "s3-housekeeping-fleet-targets"
#: The report fields the outcome table holds: counts and names, never a secret.
OUTCOME_FIELDS = (
    "status",
    "bucket",
    "prefix",
    "region",
    *COUNTS,
    "manifest",
    "manifest_sha256",
    "message",
)
PROGRESS_KEY = "s3-housekeeping-progress"


def publish_plan(plan: PlanSummary, dry_run: bool, older_than_days: int) -> None:
    """A table of the first planned objects, described by the plan's totals and the
    equivalent lifecycle rule, and a link to the whole plan's manifest."""
    target = plan.target
    mode = "dry run: nothing will be deleted" if dry_run else "will be deleted"
    rule = lifecycle_rule(
        target.prefix, older_than_days, target.versions, Rules.from_header(target.rules)
    )
    kept = kept_text(plan.kept)
    advice = (
        f"Equivalent S3 lifecycle rule: `{json.dumps(rule)}`. {NOTE}"
        if rule
        else "No S3 lifecycle rule can select what its retention rules do."
    )
    description = (
        f"Plan for s3://{target.bucket}/{target.prefix} ({target.versions} versions), objects "
        f"last modified before {target.cutoff} ({mode}): {plan.matched} of {plan.scanned} "
        f"listed objects, {plan.matched_bytes} bytes. First {len(plan.first_rows)} rows below; "
        f"the full plan is the manifest {plan.manifest}."
        + (f" Old enough but kept by the retention rules: {kept}." if kept else "")
        + f"\n\n{advice}"
    )
    create_table_artifact(key=PLAN_KEY, table=plan.rows(), description=description)
    publish_manifest_link(plan)


def publish_report(report: RunReport) -> None:
    """The run report as markdown, and its outcome as a one-row table."""
    create_markdown_artifact(
        key=REPORT_KEY,
        markdown=report.to_markdown(),
        description=f"s3-housekeeping {report.status}: s3://{report.bucket}/{report.prefix}",
    )
    exported = report.to_dict()
    create_table_artifact(
        key=OUTCOME_KEY,
        table=[{name: exported[name] for name in OUTCOME_FIELDS}],
        description="The run's outcome (read by a fleet that started this run)",
    )


def publish_fleet_report(report: FleetReport) -> None:
    """The fleet's report as markdown, and a table of its targets."""
    create_markdown_artifact(
        key=FLEET_KEY,
        markdown=report.to_markdown(),
        description=f"s3-housekeeping fleet {report.status}: {report.message}",
    )
    create_table_artifact(
        key=FLEET_TABLE_KEY,
        table=report.rows(),
        description=f"Every target of {report.targets_file}, one child run each",
    )


class ProgressArtifact:
    """A progress artifact of the deletes, updated at most every `interval_s` seconds from
    whichever thread reports progress."""

    def __init__(self, interval_s: float = 2.0) -> None:
        self.interval_s = interval_s
        self._artifact_id: UUID | None = None
        self._last = float("-inf")  # the first update is shown at once
        self._lock = threading.Lock()

    def start(self, description: str) -> None:
        """Create the artifact at 0%; call it in the flow's own thread, which links it to the
        run (updates then come from the delete workers)."""
        created = create_progress_artifact(0.0, key=PROGRESS_KEY, description=description)
        self._artifact_id = cast(UUID, created)  # the sync call returns the id

    def __call__(self, snapshot: ProgressSnapshot) -> None:
        if not snapshot.planned or self._artifact_id is None:
            return
        with self._lock:
            now = time.monotonic()
            if not snapshot.finished and now - self._last < self.interval_s:
                return
            self._last = now
            percent = min(100.0, 100 * snapshot.deleted / snapshot.planned)
            description = (
                f"{snapshot.deleted} of {snapshot.planned} planned objects deleted "
                f"({snapshot.rate:.0f}/s)"
            )
            update_progress_artifact(self._artifact_id, percent, description=description)


def manifest_link(location: str, region: str) -> str:
    """Where a person opens a plan: the S3 console for an s3:// manifest, a file URI for a path
    (on the machine that ran the flow)."""
    if is_s3_uri(location):
        uri = parse_s3_uri(location)
        return (
            f"https://{region}.console.aws.amazon.com/s3/object/{quote(uri.bucket)}"
            f"?region={quote(region)}&prefix={quote(uri.key)}"
        )
    return Path(location).resolve().as_uri()


def publish_manifest_link(plan: PlanSummary) -> None:
    """A link artifact to the plan's manifest, the exact set of objects a run may delete."""
    create_link_artifact(
        key=MANIFEST_KEY,
        link=manifest_link(plan.manifest, plan.target.region),
        link_text=plan.manifest,
        description=(
            f"The plan's manifest: {plan.matched} objects ({plan.matched_bytes} bytes) under "
            f"s3://{plan.target.bucket}/{plan.target.prefix}, one JSON line each"
        ),
    )
