"""The run report: one typed result per run, returned, written as JSON and shown as an artifact."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ReportStatus = Literal["dry_run", "completed", "partial_failure", "refused"]


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
    deleted: int = 0
    skipped_changed: int = 0
    failed: int = 0
    failed_by_code: dict[str, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    manifest: str | None = None
    plan_source: str | None = None
    lifecycle_rule: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

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
            "deleted": self.deleted,
            "skipped (changed since listing)": self.skipped_changed,
            "failed": self.failed,
            "failed by code": ", ".join(f"{k}: {v}" for k, v in self.failed_by_code.items()) or "-",
            "requests": ", ".join(f"{k}: {v}" for k, v in self.requests.items()) or "-",
            "manifest": f"`{self.manifest}`" if self.manifest else "-",
            "duration (s)": self.duration_s,
        }
        lines += [f"| {name} | {value} |" for name, value in rows.items()]
        if self.message:
            lines += ["", self.message]
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
