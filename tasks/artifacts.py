"""The Prefect artifacts a run leaves: the plan (totals and first rows) and the report."""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from tasks.cleanup import PlanSummary, summary_rows
from tasks.report import RunReport

PLAN_KEY = "s3-housekeeping-plan"
REPORT_KEY = "s3-housekeeping-report"


def publish_plan(plan: PlanSummary, dry_run: bool) -> None:
    """A table of the first planned objects, described by the plan's totals."""
    target = plan.target
    mode = "dry run: nothing will be deleted" if dry_run else "will be deleted"
    description = (
        f"Plan for s3://{target.bucket}/{target.prefix}, objects last modified before "
        f"{target.cutoff} ({mode}): {plan.matched} of {plan.scanned} listed objects, "
        f"{plan.matched_bytes} bytes. First {len(plan.first_rows)} rows below; the full plan "
        f"is the manifest {plan.manifest}."
    )
    create_table_artifact(
        key=PLAN_KEY,
        table=summary_rows(plan),
        description=description,
    )


def publish_report(report: RunReport) -> None:
    """The run report as markdown."""
    create_markdown_artifact(
        key=REPORT_KEY,
        markdown=report.to_markdown(),
        description=f"s3-housekeeping {report.status}: s3://{report.bucket}/{report.prefix}",
    )
