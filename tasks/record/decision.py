"""A person's answer to an approval request, as the run's report, event and notice record it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from tasks.errors import shown_text
from tasks.s3.manifest import isoformat

Decision = Literal["approved", "rejected", "timed_out"]
NAME_MAX_CHARS = 100
REASON_MAX_CHARS = 500


def typed_text(text: str, limit: int) -> str:
    """Text a person typed, as it is recorded: runs of whitespace (line breaks too) made one
    space, cut at `limit`, and every character that is not printable escaped (\\uXXXX), so that
    it reads on one line and cannot hide or reorder what is around it."""
    return shown_text(" ".join(text.split())[:limit])


def code_span(text: str) -> str:
    """Recorded text inside a markdown code span: a backtick is escaped too, so that nothing a
    person typed can end the span and be read as markdown or HTML."""
    return "`" + text.replace("`", "\\u0060") + "`" if text else "-"


@dataclass(frozen=True)
class Approval:
    """Who answered, what, why and when. `by` is the name the person typed: declared, not
    verified (Prefect's open-source server knows no users); None when no name came."""

    decision: Decision
    by: str | None
    reason: str
    #: When the run read the answer (or gave up waiting), in UTC.
    at: str

    @classmethod
    def answered(cls, approve: bool, by: str, reason: str) -> Approval:
        """The answer as the form gave it, its text cleaned as `typed_text` says."""
        return cls(
            decision="approved" if approve else "rejected",
            by=typed_text(by, NAME_MAX_CHARS) or None,
            reason=typed_text(reason, REASON_MAX_CHARS),
            at=isoformat(datetime.now(UTC)),
        )

    @classmethod
    def timed_out(cls) -> Approval:
        """No answer came in time."""
        return cls(decision="timed_out", by=None, reason="", at=isoformat(datetime.now(UTC)))

    @property
    def approved(self) -> bool:
        return self.decision == "approved"

    def to_markdown(self) -> str:
        """One line for the report's artifact."""
        if self.decision == "timed_out":
            return f"**Approval**: no answer; the run gave up waiting at {self.at}."
        who = f"by {code_span(self.by)} (name as typed, not verified)" if self.by else "unnamed"
        reason = code_span(self.reason)
        return f"**Approval**: {self.decision} {who} at {self.at}; reason: {reason}."
