"""How a run ended, from its report or its exception: the one summary events and notices carry."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from tasks.errors import HousekeepingError
from tasks.record.decision import Approval
from tasks.record.report import RunReport
from tasks.settings import raw_setting

#: The address of a Prefect API that dies with this process, set while a run uses one: the
#: command's own temporary API (flows/temporary_api.py; tasks/guards/locking.py says what
#: else it changes).
SHORT_LIVED_API = "S3_HOUSEKEEPING_SHORT_LIVED_API_URL"


def kept_link(url: str | None) -> str | None:
    """A run's address in the Prefect UI, unless its API is the command's temporary one: that
    is gone once the command ends, and so would the page be."""
    return None if os.environ.get(SHORT_LIVED_API) else url


OutcomeStatus = Literal[
    "dry_run", "completed", "refused", "partial_failure", "failed", "crashed", "cancelled"
]
COUNTS = ("scanned", "matched", "matched_bytes", "deleted", "skipped_changed", "failed")
MESSAGE_MAX_CHARS = 500


@dataclass(frozen=True)
class RunOutcome:
    """Counts and names only: never a secret, never the list of keys."""

    status: OutcomeStatus
    bucket: str
    prefix: str
    environment: str
    dry_run: bool
    counts: dict[str, int] = field(default_factory=dict)
    failed_by_code: dict[str, int] = field(default_factory=dict)
    manifest: str | None = None
    message: str = ""
    #: A person's answer, when the run asked for one (the name as typed, not verified).
    approval: Approval | None = None
    error: str | None = None
    flow_run_id: str | None = None
    flow_run_url: str | None = None

    @property
    def deleted(self) -> int:
        return self.counts.get("deleted", 0)

    @property
    def worth_notifying(self) -> bool:
        """A run that deleted something, refused, or failed: what someone must know about."""
        worrying = {"refused", "partial_failure", "failed", "crashed", "cancelled"}
        return self.status in worrying or self.deleted > 0

    def summary(self) -> dict[str, Any]:
        """JSON-ready, small (well under SNS's 256 KB and Prefect's event size limit)."""
        return {"source": "s3-housekeeping", **asdict(self)}


def from_report(report: RunReport, run_id: str | None, run_url: str | None) -> RunOutcome:
    """The outcome of a run that produced its report (also carried by refusals and partial
    failures)."""
    return RunOutcome(
        status=report.status,
        bucket=report.bucket,
        prefix=report.prefix,
        environment=report.environment,
        dry_run=report.dry_run,
        counts={name: int(getattr(report, name)) for name in COUNTS},
        failed_by_code=dict(report.failed_by_code),
        manifest=report.manifest,
        message=report.message[:MESSAGE_MAX_CHARS],
        approval=report.approval,
        flow_run_id=run_id,
        flow_run_url=run_url,
    )


def from_failure(
    error: BaseException,
    parameters: Mapping[str, Any],
    run_id: str | None,
    run_url: str | None,
) -> RunOutcome:
    """The outcome of a run that failed before it had a report: its target is read as the run
    would read it (the parameters, else their environment variables), unvalidated; the message
    is ours only, since another library's exception text could hold a value."""
    report = getattr(error, "report", None)
    if isinstance(report, RunReport):
        return from_report(report, run_id, run_url)

    def setting(name: str) -> str:
        return str(raw_setting(name, parameters) or "")

    message = str(error) if isinstance(error, HousekeepingError) else "unexpected error"
    return RunOutcome(
        status="failed",
        bucket=setting("bucket"),
        prefix=setting("prefix"),
        environment=setting("environment") or "dev",
        dry_run=_dry_run(parameters),
        message=message[:MESSAGE_MAX_CHARS],
        error=type(error).__name__,
        flow_run_id=run_id,
        flow_run_url=run_url,
    )


def _dry_run(parameters: Mapping[str, Any]) -> bool:
    """Whether the run was a dry run, as it would have read it; true when that cannot be told
    (the default, and what deletes nothing)."""
    try:
        return TypeAdapter(bool).validate_python(raw_setting("dry_run", parameters))
    except ValidationError:
        return True
