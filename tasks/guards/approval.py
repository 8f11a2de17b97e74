"""Approval before deleting: publish the plan, pause for a person's decision, refuse unless yes."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from prefect.artifacts import create_markdown_artifact
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field, ValidationError

from tasks.errors import SafetyRefusal
from tasks.fleet.report import FleetReport, TargetOutcome
from tasks.record.decision import NAME_MAX_CHARS, REASON_MAX_CHARS, Approval
from tasks.s3.manifest import PlanSummary
from tasks.s3.rules import kept_text

logger = logging.getLogger(__name__)

APPROVAL_KEY = "s3-housekeeping-approval"
#: How many planned keys the approval request lists (the plan artifact has more, the manifest all).
FIRST_KEYS = 10
#: How often a paused run asks the server whether it was resumed: an answer takes effect within
#: two seconds, for one small read each time (Prefect's default is ten).
POLL_INTERVAL_S = 2
#: What a name may not hold: controls and line breaks, and the invisible characters that hide
#: or reorder text (soft hyphen, bidi controls, zero-width characters, the byte order mark).
#: Written for every engine that checks the pattern: the server (Python's re), pydantic (Rust).
HIDDEN = r"\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
#: A name: at least one character that is neither a space nor hidden, and nothing hidden.
NAME_PATTERN = rf"^[^{HIDDEN}]*[^\s{HIDDEN}][^{HIDDEN}]*$"


class ApprovalInput(RunInput):
    """The form a paused run shows in the Prefect UI.

    Trust boundary: whoever can reach the Prefect API can answer it, under any name. The name
    is required (the server refuses an answer without one, either way) and recorded as typed,
    never verified: Prefect's open-source server knows no users (docs/guides/approval.md).
    """

    approve: bool = Field(
        default=False,
        description="Switch on to delete the planned objects; leave off to reject the plan.",
    )
    approver: str = Field(
        min_length=1,
        max_length=NAME_MAX_CHARS,
        pattern=NAME_PATTERN,
        description="Your name, required to approve or reject: recorded in the run's report, "
        "event and notice as you type it (the server cannot check who you are).",
    )
    reason: str = Field(
        default="",
        max_length=REASON_MAX_CHARS,
        description="Why: kept in the run's logs, report, event and notice.",
    )


def human_bytes(size: int) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def duration(seconds: int) -> str:
    """600 -> '10 minutes'; 5 -> '5 seconds'."""
    if seconds % 60:
        return f"{seconds} seconds"
    minutes = seconds // 60
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def shown_key(key: str) -> str:
    """A key as the approval shows it inside a code span: non-ASCII, control characters and
    backticks escaped (\\uXXXX), so that no key can end the span or the line and write the text
    a person reads before saying yes."""
    return json.dumps(key)[1:-1].replace("`", "\\u0060")


def approval_request(plan: PlanSummary, timeout_s: int) -> str:
    """The plan as a person must see it before saying yes: counts, bytes, first keys, manifest."""
    target = plan.target
    keys = [
        f"- `{shown_key(row.key)}` ({row.size} bytes, {row.last_modified})"
        for row in plan.first_rows
    ]
    shown = keys[:FIRST_KEYS]
    more = plan.matched - len(shown)
    lines = [
        "## Approve this cleanup?",
        "",
        f"Delete **{plan.matched}** objects (**{human_bytes(plan.matched_bytes)}**) from "
        f"`s3://{target.bucket}/{target.prefix}` ({target.region}, {target.versions} versions), "
        f"last modified before **{target.cutoff}**; {plan.scanned} objects were listed.",
        "",
        *(
            [f"Old enough but kept by the retention rules: {kept_text(plan.kept)}.", ""]
            if plan.kept
            else []
        ),
        f"First {len(shown)} planned objects:" if shown else "No object listed in the plan.",
        "",
        *shown,
        *([f"- ... and {more} more"] if more > 0 else []),
        "",
        *unrecoverable(plan),
        f"The whole plan (the exact set that may be deleted) is the manifest `{plan.manifest}`, "
        f"SHA-256 `{plan.sha256}`: the run deletes from that file only.",
        "",
        "Type your name (required either way: it is recorded as typed, not verified), switch "
        "**Approve** on and submit to delete them; submit it off, with a reason, to reject. "
        f"Without an answer within {duration(timeout_s)} nothing is deleted.",
    ]
    return "\n".join(lines)


def unrecoverable(plan: PlanSummary) -> list[str]:
    """What a versions plan destroys for good: keys left with no version holding data."""
    if plan.target.versions == "current":
        return []
    if not plan.unrecoverable_keys:
        return ["Every key keeps at least one version holding data.", ""]
    return [
        f"**{plan.unrecoverable_keys}** keys will have no version holding data left: they "
        "cannot be restored after this run.",
        "",
    ]


Record = Callable[[Approval], None]


def request_approval(plan: PlanSummary, timeout_s: int, record: Record) -> Approval:
    """Pause the flow run until a person approves the plan in the UI; return their approval.

    Publishes the request as a markdown artifact and as the pause form's description.

    Args:
        plan: the plan to approve; its manifest is the exact set that may be deleted.
        timeout_s: how long to wait for an answer.
        record: given the decision, whatever it is, before a refusal is raised (the report's).

    Raises:
        SafetyRefusal: rejected, or no answer within the timeout; nothing has been deleted.
    """
    description = approval_request(plan, timeout_s)
    return decision(description, plan.matched, plan.matched_bytes, timeout_s, record)


def request_fleet_approval(
    fleet: FleetReport, plans: list[TargetOutcome], timeout_s: int
) -> Approval:
    """Pause the fleet's run until a person approves every target's plan at once; return their
    approval, recorded in the fleet's report. Raises SafetyRefusal as `request_approval` does."""
    matched = sum(plan.counts.get("matched", 0) for plan in plans if plan.exit_code == 0)
    size = sum(plan.counts.get("matched_bytes", 0) for plan in plans if plan.exit_code == 0)
    description = fleet_approval_request(fleet, plans, timeout_s)
    return decision(description, matched, size, timeout_s, fleet.record_approval)


def fleet_approval_request(fleet: FleetReport, plans: list[TargetOutcome], timeout_s: int) -> str:
    """The fleet's request: one row per target, its plan's counts and manifest."""
    lines = [
        f"# Approve the fleet's deletes ({fleet.targets_file})",
        "",
        f"Every target below was planned (a dry run). Approving deletes what each plan holds, "
        f"applied as that plan, file for file: a plan whose SHA-256 is no longer the one shown "
        f"here is refused. Rejecting, or no answer within "
        f"{duration(timeout_s)}, deletes nothing. Your name is required either way: it is "
        f"recorded as typed, not verified.",
        "",
        "| target | objects | size | manifest | SHA-256 |",
        "|---|---|---|---|---|",
    ]
    for plan in plans:
        # A prefix or a manifest's name is shown escaped: it must not rewrite the request.
        where = f"`s3://{plan.bucket}/{shown_key(plan.prefix)}`"
        if plan.exit_code != 0:
            lines.append(f"| {where} | not planned: {plan.status} | | | |")
            continue
        lines.append(
            f"| {where} | {plan.counts.get('matched', 0)} | "
            f"{human_bytes(plan.counts.get('matched_bytes', 0))} | "
            f"`{shown_key(plan.manifest or '')}` | `{plan.manifest_sha256 or ''}` |"
        )
    return "\n".join(lines) + "\n"


def decision(
    description: str, matched: int, matched_bytes: int, timeout_s: int, record: Record
) -> Approval:
    """Publish the request, pause for the answer, record it, and return an approval or refuse."""
    create_markdown_artifact(
        key=APPROVAL_KEY,
        markdown=description,
        description=f"Waiting for approval to delete {matched} objects",
    )
    logger.info(
        "Waiting up to %s for approval to delete %d objects (%d bytes)",
        duration(timeout_s),
        matched,
        matched_bytes,
        extra={"matched": matched, "matched_bytes": matched_bytes},
    )
    try:
        # Only the description is set: initial data would redeclare the fields without their
        # constraints (Prefect's with_initial_data keeps a field's type and default only).
        answer = pause_flow_run(
            wait_for_input=ApprovalInput.with_initial_data(description=description),
            timeout=timeout_s,
            poll_interval=min(POLL_INTERVAL_S, timeout_s),
        )
    except FlowPauseTimeout:
        record(Approval.timed_out())
        _resume_after_timeout()
        raise SafetyRefusal(
            "approval", matched, 0, reason=f"no approval within {duration(timeout_s)}"
        ) from None
    except ValidationError:
        # The server checks an answer against the form; one that reached the run around that
        # check (a state forced to Running, an input written directly) is not an approval.
        record(Approval.answered(approve=False, by="", reason="the answer did not fit the form"))
        raise SafetyRefusal(
            "approval", matched, 0, reason="the answer did not fit the form"
        ) from None
    approval = Approval.answered(answer.approve, answer.approver, answer.reason)
    if approval.approved and not approval.by:
        # The form requires a name; an answer without one reached the run around that check.
        approval = Approval.answered(approve=False, by="", reason="approved without a name")
    record(approval)
    who = f"by {approval.by}" if approval.by else "without a name"
    said = f"{who} ({approval.reason or 'no reason given'})"
    if not approval.approved:
        logger.warning("The plan was rejected %s", said)
        raise SafetyRefusal("approval", matched, 0, reason=f"rejected {said}")
    logger.info("The plan was approved %s", said)
    return approval


def _resume_after_timeout() -> None:
    """Move the timed-out run from Paused back to Running, so that it ends with our state
    message (the server would otherwise fail it with a generic 'never resumed')."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run
    from prefect.states import Running

    run_id = flow_run.get_id()
    if run_id is None:
        return
    try:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(
                run_id, Running(message="approval timed out; nothing deleted"), force=True
            )
    except Exception as exc:  # the refusal stands whatever the state update did
        logger.warning("Could not update the run's state after the approval timeout: %s", exc)
