"""A fleet run's report: one row per target (its child run's outcome), the totals, the worst."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from tasks.errors import HousekeepingError
from tasks.record.decision import Approval
from tasks.record.report import RunReport

#: The counts a target's child run reports, summed in the fleet's totals.
COUNTS = (
    "scanned",
    "matched",
    "matched_bytes",
    "deleted",
    "already_gone",
    "skipped_changed",
    "failed",
)
#: How bad an exit code is in a fleet, worse first: an unexpected error; configuration,
#: credentials, network, permission or other AWS errors; a partial failure; a refusal; success.
SEVERITY = {99: 4, 1: 3, 2: 3, 3: 3, 4: 3, 5: 3, 7: 2, 6: 1, 0: 0}
#: A child run's report status, as its exit code (a failed one's comes from its error).
EXIT_BY_STATUS = {"dry_run": 0, "completed": 0, "refused": 6, "partial_failure": 7}
#: A child run that ended without saying why (crashed, cancelled, lost): an unexpected error.
UNEXPECTED = 99


@dataclass(frozen=True)
class TargetOutcome:
    """How one target's child run ended: counts and names only, never a secret."""

    name: str
    bucket: str
    prefix: str
    line: int
    status: str
    exit_code: int
    region: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    manifest: str | None = None
    #: The SHA-256 of the plan file: what an approval shows and an apply must find.
    manifest_sha256: str | None = None
    message: str = ""
    flow_run_id: str | None = None
    flow_run_url: str | None = None
    #: The Prefect worker that ran it (children on a work pool).
    worker: str | None = None

    @classmethod
    def of_report(cls, name: str, line: int, report: RunReport, exit_code: int) -> TargetOutcome:
        """The outcome of a child run that produced its report."""
        return cls(
            name=name,
            bucket=report.bucket,
            prefix=report.prefix,
            line=line,
            status=report.status,
            exit_code=exit_code,
            region=report.region,
            counts={count: int(getattr(report, count)) for count in COUNTS},
            manifest=report.manifest,
            manifest_sha256=report.manifest_sha256,
            message=report.message,
        )

    @classmethod
    def of_error(
        cls, name: str, line: int, bucket: str, prefix: str, error: BaseException
    ) -> TargetOutcome:
        """The outcome of a child run that raised: its report if the error carries one, else
        our own message only (another library's text could hold a value)."""
        code = error.exit_code if isinstance(error, HousekeepingError) else UNEXPECTED
        report = getattr(error, "report", None)
        if isinstance(report, RunReport):
            return cls.of_report(name, line, report, code)
        message = str(error) if isinstance(error, HousekeepingError) else type(error).__name__
        return cls(name, bucket, prefix, line, "failed", code, message=message)


def worst(outcomes: list[TargetOutcome]) -> TargetOutcome | None:
    """The first target, in the file's order, with the worst exit code; None if all are 0."""
    bad = [outcome for outcome in outcomes if outcome.exit_code != 0]
    if not bad:
        return None
    return max(bad, key=lambda outcome: SEVERITY.get(outcome.exit_code, SEVERITY[UNEXPECTED]))


@dataclass
class FleetReport:
    """The fleet's result: every target's outcome, the totals and the worst outcome, whose
    exit code is the fleet's."""

    targets_file: str
    dry_run: bool
    group: str | None = None
    child_deployment: str | None = None
    status: str = "completed"
    exit_code: int = 0
    #: The target whose outcome is the fleet's exit code, when it is not 0.
    worst_target: str | None = None
    totals: dict[str, int] = field(default_factory=dict)
    targets: list[TargetOutcome] = field(default_factory=list)
    message: str = ""
    #: The one answer given for every target, when the fleet asked for one.
    approval: Approval | None = None
    duration_s: float = 0.0
    started: float = field(default_factory=time.monotonic, repr=False)

    def record_approval(self, approval: Approval) -> None:
        self.approval = approval

    def close(self, outcomes: list[TargetOutcome]) -> FleetReport:
        """Record every target's outcome; the report is final."""
        self.targets = outcomes
        self.totals = {count: sum(o.counts.get(count, 0) for o in outcomes) for count in COUNTS}
        by_status: dict[str, int] = {}
        for outcome in outcomes:
            by_status[outcome.status] = by_status.get(outcome.status, 0) + 1
        self.totals["targets"] = len(outcomes)
        found = worst(outcomes)
        if found is None:
            self.status, self.exit_code = ("dry_run" if self.dry_run else "completed"), 0
        else:
            self.exit_code, self.worst_target = found.exit_code, found.name
            self.status = {6: "refused", 7: "partial_failure"}.get(found.exit_code, "failed")
        counted = ", ".join(f"{n} {status}" for status, n in sorted(by_status.items()))
        self.message = f"{len(outcomes)} targets: {counted}"
        if found is not None:
            self.message += f"; worst: {found.name} (exit {found.exit_code}: {found.status})"
        self.duration_s = round(time.monotonic() - self.started, 3)
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        exported = asdict(self)
        del exported["started"]
        return exported

    def rows(self) -> list[dict[str, Any]]:
        """One row per target, for the UI's table."""
        return [
            {
                "target": o.name,
                "line": o.line,
                "status": o.status,
                "exit code": o.exit_code,
                **{count: o.counts.get(count, 0) for count in COUNTS},
                "manifest": o.manifest or "",
                "run": o.flow_run_url or o.flow_run_id or "",
                "worker": o.worker or "",
                "message": o.message,
            }
            for o in self.targets
        ]

    def to_markdown(self) -> str:
        """A short summary for the Prefect UI."""
        verb = "would delete" if self.dry_run else "deleted"
        done = self.totals.get("matched" if self.dry_run else "deleted", 0)
        lines = [
            f"# s3-housekeeping fleet: {self.status}",
            "",
            f"`{self.targets_file}`" + (f", group `{self.group}`" if self.group else "") + ": "
            f"{len(self.targets)} targets, {verb} **{done}** objects. {self.message}.",
            "",
            "| target | status | exit | matched | deleted | skipped | failed | run |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for o in self.targets:
            run = f"[{o.flow_run_id}]({o.flow_run_url})" if o.flow_run_url else o.flow_run_id
            lines.append(
                f"| `s3://{o.bucket}/{o.prefix}` ({o.name}) | {o.status} | {o.exit_code} | "
                f"{o.counts.get('matched', 0)} | {o.counts.get('deleted', 0)} | "
                f"{o.counts.get('skipped_changed', 0)} | {o.counts.get('failed', 0)} | "
                f"{run or '-'} |"
            )
        if self.approval is not None:
            lines += ["", self.approval.to_markdown()]
        return "\n".join(lines) + "\n"
