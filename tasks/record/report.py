"""The run report: one typed result per run, kept up to date by the flow's steps, returned, written
as JSON and shown as an artifact."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

from tasks.errors import HousekeepingError
from tasks.record.lifecycle import lifecycle_rule
from tasks.s3.manifest import isoformat

if TYPE_CHECKING:
    from tasks.buckets import BucketResult
    from tasks.errors import SafetyRefusal
    from tasks.record.decision import Approval
    from tasks.s3.deletion import ApplyResult
    from tasks.s3.manifest import PlannedSoFar, PlanSummary
    from tasks.settings import RunSettings

ReportStatus = Literal["dry_run", "completed", "partial_failure", "refused", "failed", "cancelled"]
#: The codes of planned objects a failed run has no outcome for.
UNCONFIRMED = "Unconfirmed"  # handed to the deletes, sent or not, with no answer read
NOT_SENT = "NotSent"  # in the plan, never handed to the deletes
VERSIONED_CURRENT_NOTE = (
    "The bucket is versioned: deleting current objects only adds delete markers and reclaims "
    "no storage. Run with versions=noncurrent to delete versions that became noncurrent "
    "before the cutoff, which is what frees space."
)
#: Marks the fields that are this object's bookkeeping, not the report's contract.
INTERNAL = {"internal": True}


def lifecycle_notes(settings: RunSettings) -> list[str]:
    """Why no S3 lifecycle rule can do this run, when its retention rules prevent it."""
    blocker = settings.rules.lifecycle_blocker()
    return [f"no S3 lifecycle rule can do this run: {blocker}"] if blocker else []


def operator_notes(settings: RunSettings) -> list[str]:
    """What the operator's limits (the worker's environment) did to this run."""
    notes = []
    if settings.enforce_approval and not settings.dry_run:
        notes.append(
            "This environment requires a person's approval before any delete (ENFORCE_APPROVAL)."
        )
    if settings.max_deletions_ceiling is not None:
        notes.append(
            f"This environment caps a run at {settings.max_deletions_ceiling} deletions "
            "(MAX_DELETIONS_CEILING)."
        )
    return notes


@dataclass
class RunReport:
    """The contract of DESIGN.md's "Run report"; counts only, never a secret or a key list."""

    status: ReportStatus
    bucket: str
    prefix: str
    region: str
    environment: str
    cutoff: str
    dry_run: bool
    versions: str = "current"
    versioning: str = "unknown"
    bucket_action: str = "skipped"
    bucket_changes: list[str] = field(default_factory=list)
    scanned: int = 0
    matched: int = 0
    matched_bytes: int = 0
    #: The objects old enough that the retention rules kept, by reason (tasks/s3/rules.py
    #: REASONS); empty when no rule is set or none kept one.
    kept: dict[str, int] = field(default_factory=dict)
    #: Where each of them is listed with its reason (list_kept).
    kept_list: str | None = None
    #: Versions modes: keys the plan leaves with no version holding data (unrecoverable).
    unrecoverable_keys: int = 0
    deleted: int = 0
    #: Of `deleted`: objects the server said were already gone (NoSuchKey) when deleted.
    already_gone: int = 0
    skipped_changed: int = 0
    failed: int = 0
    failed_by_code: dict[str, int] = field(default_factory=dict)
    #: How long the server throttled the deletes (SlowDown), in seconds.
    throttled_s: float = 0.0
    requests: dict[str, int] = field(default_factory=dict)
    manifest: str | None = None
    #: The SHA-256 of the plan file that was checked, approved and applied.
    manifest_sha256: str | None = None
    #: A person's answer when the run asked for one: decision, by (the name typed), reason, at.
    approval: Approval | None = None
    #: The journal of the deletes sent and their answers (executing runs).
    journal: str | None = None
    plan_source: str | None = None
    #: A plan made from an S3 Inventory: when AWS made the inventory.
    inventory_created: str | None = None
    #: A run on a Dask cluster: the workers (host:process) that listed or deleted.
    workers: list[str] = field(default_factory=list)
    lifecycle_rule: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    message: str = ""
    started: float = field(default_factory=time.monotonic, repr=False, metadata=INTERNAL)

    @classmethod
    def begin(cls, settings: RunSettings) -> RunReport:
        """The report of a run that has just validated its settings."""
        return cls(
            status="dry_run" if settings.dry_run else "completed",
            bucket=settings.bucket,
            prefix=settings.prefix,
            region=settings.region,
            environment=settings.environment,
            cutoff=isoformat(settings.cutoff),
            dry_run=settings.dry_run,
            versions=settings.versions,
            plan_source=settings.plan or settings.inventory,
            lifecycle_rule=lifecycle_rule(
                settings.prefix, settings.older_than_days, settings.versions, settings.rules
            ),
            notes=operator_notes(settings) + lifecycle_notes(settings),
        )

    def record_bucket(self, bucket: BucketResult) -> None:
        """What the bucket step did, and whether the versions mode frees storage there."""
        self.bucket_action, self.bucket_changes = bucket.action, bucket.changes
        self.versioning = bucket.versioning
        if self.versioning in ("Enabled", "Suspended") and self.versions == "current":
            self.notes.append(VERSIONED_CURRENT_NOTE)

    def record_plan(self, plan: PlanSummary) -> None:
        """The plan's totals, where it is kept, and its cutoff (a saved plan's own)."""
        self.scanned, self.matched = plan.scanned, plan.matched
        self.matched_bytes, self.manifest = plan.matched_bytes, plan.manifest
        self.unrecoverable_keys, self.manifest_sha256 = plan.unrecoverable_keys, plan.sha256
        self.cutoff = plan.target.cutoff
        self.inventory_created = plan.target.inventory_created
        self.kept = dict(plan.kept)
        self.kept_list = plan.kept_list

    def record_approval(self, approval: Approval) -> None:
        self.approval = approval

    def record_dry_run(self) -> None:
        self.message = f"dry run: {self.matched} objects would be deleted; nothing was deleted"

    def record_refusal(self, refusal: SafetyRefusal) -> None:
        self.status, self.message = "refused", str(refusal)

    def record_apply(self, result: ApplyResult) -> None:
        """Every planned object's outcome; a failure of any makes the run a partial failure."""
        self.deleted, self.skipped_changed = result.deleted, result.skipped_changed
        self.already_gone = result.already_gone
        self.failed, self.failed_by_code = result.failed, dict(result.failed_by_code)
        self.throttled_s = result.throttled_s
        if result.failed:
            self.status = "partial_failure"
            self.message = f"{result.failed} of {result.planned} planned deletions failed"
        else:
            self.message = f"deleted {result.deleted} of {result.planned} planned objects"

    def record_failure(
        self, result: ApplyResult | None, error: BaseException, cut: PlannedSoFar
    ) -> None:
        """A run that failed after it began to plan: every outcome known so far, and for each
        planned object without one, why (Unconfirmed: handed to the deletes with no answer
        read, the server may have acted; NotSent: never sent). `cut`: what a plan that did not
        finish had read and held, and where it is."""
        self.status = "failed"
        self.scanned = max(self.scanned, cut.scanned)
        self.matched = max(self.matched, cut.matched)
        self.matched_bytes = max(self.matched_bytes, cut.matched_bytes)
        self.manifest = self.manifest or cut.manifest
        if result is not None:
            self.deleted, self.skipped_changed = result.deleted, result.skipped_changed
            self.already_gone = result.already_gone
            self.failed_by_code = dict(result.failed_by_code)
            self.throttled_s = result.throttled_s
            known = result.deleted + result.skipped_changed + result.failed
            unconfirmed = result.planned - known
            not_sent = self.matched - result.planned if self.matched > result.planned else 0
            for code, count in ((UNCONFIRMED, unconfirmed), (NOT_SENT, not_sent)):
                if count > 0:
                    self.failed_by_code[code] = count
            self.failed = sum(self.failed_by_code.values())
        reason = str(error) if isinstance(error, HousekeepingError) else type(error).__name__
        self.message = f"failed after {self.deleted} deletions: {reason}"

    def close(self, requests: dict[str, int]) -> RunReport:
        """Stamp the request counts and the duration: the report is final."""
        self.requests = requests
        self.duration_s = round(time.monotonic() - self.started, 3)
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the contract's fields."""
        internal = {f.name for f in fields(self) if f.metadata.get("internal")}
        return {name: value for name, value in asdict(self).items() if name not in internal}

    def to_markdown(self) -> str:
        """A short human-readable summary for the Prefect UI."""
        verb = "would delete" if self.dry_run else "deleted"
        done = self.matched if self.dry_run else self.deleted
        lines = [
            f"# s3-housekeeping: {self.status}",
            "",
            f"`s3://{self.bucket}/{self.prefix}` ({self.region}, {self.environment}), "
            f"objects last modified before **{self.cutoff}**: {verb} **{done}**.",
            "",
            "| measure | value |",
            "|---|---|",
        ]
        rows: dict[str, Any] = {
            "versions": f"{self.versions} (bucket versioning: {self.versioning})",
            "bucket action": self.bucket_action,
            "scanned": self.scanned,
            "matched": self.matched,
            "matched bytes": self.matched_bytes,
            "keys left without data": self.unrecoverable_keys,
            "deleted": self.deleted,
            "of which already gone": self.already_gone,
            "skipped (changed since listing)": self.skipped_changed,
            "failed": self.failed,
            "failed by code": ", ".join(f"{k}: {v}" for k, v in self.failed_by_code.items()) or "-",
            "throttled (s)": self.throttled_s,
            "requests": ", ".join(f"{k}: {v}" for k, v in self.requests.items()) or "-",
            "manifest": f"`{self.manifest}`" if self.manifest else "-",
            "manifest SHA-256": f"`{self.manifest_sha256}`" if self.manifest_sha256 else "-",
            "kept list": f"`{self.kept_list}`" if self.kept_list else "-",
            "journal": f"`{self.journal}`" if self.journal else "-",
            "duration (s)": self.duration_s,
        }
        lines += [f"| {name} | {value} |" for name, value in rows.items()]
        if self.message:
            lines += ["", self.message]
        if self.approval is not None:
            lines += ["", self.approval.to_markdown()]
        lines += [f"- {note}" for note in self.notes]
        if self.lifecycle_rule:
            lines += [
                "",
                "Equivalent S3 lifecycle rule (S3 would do this itself, in whole days):",
                "",
                "```json",
                json.dumps(self.lifecycle_rule, indent=2),
                "```",
            ]
        return "\n".join(lines) + "\n"
