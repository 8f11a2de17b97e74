"""Approval before deleting: publish the plan, pause for a person's decision, refuse unless yes."""

from __future__ import annotations

import json
import logging

from prefect.artifacts import create_markdown_artifact
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from tasks.errors import SafetyRefusal
from tasks.fleet.report import FleetReport, TargetOutcome
from tasks.s3.manifest import PlanSummary

logger = logging.getLogger(__name__)

APPROVAL_KEY = "s3-housekeeping-approval"
#: How many planned keys the approval request lists (the plan artifact has more, the manifest all).
FIRST_KEYS = 10
#: How often a paused run asks the server whether it was resumed: an answer takes effect within
#: two seconds, for one small read each time (Prefect's default is ten).
POLL_INTERVAL_S = 2
REASON_MAX_CHARS = 500


class ApprovalInput(RunInput):
    """The form a paused run shows in the Prefect UI."""

    approve: bool = Field(
        default=False,
        description="Tick to delete the planned objects; leave unticked to reject the plan.",
    )
    reason: str = Field(
        default="",
        max_length=REASON_MAX_CHARS,
        description="Why: kept in the run's logs, report and notification.",
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
        f"First {len(shown)} planned objects:" if shown else "No object listed in the plan.",
        "",
        *shown,
        *([f"- ... and {more} more"] if more > 0 else []),
        "",
        *unrecoverable(plan),
        f"The whole plan (the exact set that may be deleted) is the manifest `{plan.manifest}`, "
        f"SHA-256 `{plan.sha256}`: the run deletes from that file only.",
        "",
        "Switch **Approve** on and submit to delete them; submit it off, with a reason, to reject. "
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


def request_approval(plan: PlanSummary, timeout_s: int) -> str:
    """Pause the flow run until a person approves the plan in the UI; return their reason.

    Publishes the request as a markdown artifact and as the pause form's description.

    Args:
        plan: the plan to approve; its manifest is the exact set that may be deleted.
        timeout_s: how long to wait for an answer.

    Raises:
        SafetyRefusal: rejected, or no answer within the timeout; nothing has been deleted.
    """
    return decision(approval_request(plan, timeout_s), plan.matched, plan.matched_bytes, timeout_s)


def request_fleet_approval(fleet: FleetReport, plans: list[TargetOutcome], timeout_s: int) -> str:
    """Pause the fleet's run until a person approves every target's plan at once; return their
    reason. Raises SafetyRefusal as `request_approval` does."""
    matched = sum(plan.counts.get("matched", 0) for plan in plans if plan.exit_code == 0)
    size = sum(plan.counts.get("matched_bytes", 0) for plan in plans if plan.exit_code == 0)
    return decision(fleet_approval_request(fleet, plans, timeout_s), matched, size, timeout_s)


def fleet_approval_request(fleet: FleetReport, plans: list[TargetOutcome], timeout_s: int) -> str:
    """The fleet's request: one row per target, its plan's counts and manifest."""
    lines = [
        f"# Approve the fleet's deletes ({fleet.targets_file})",
        "",
        f"Every target below was planned (a dry run). Approving deletes what each plan holds, "
        f"applied as that plan, file for file: a plan whose SHA-256 is no longer the one shown "
        f"here is refused. Rejecting, or no answer within "
        f"{duration(timeout_s)}, deletes nothing.",
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


def decision(description: str, matched: int, matched_bytes: int, timeout_s: int) -> str:
    """Publish the request, pause for the decision and return its reason, or refuse."""
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
        decision = pause_flow_run(
            wait_for_input=ApprovalInput.with_initial_data(
                description=description, approve=False, reason=""
            ),
            timeout=timeout_s,
            poll_interval=min(POLL_INTERVAL_S, timeout_s),
        )
    except FlowPauseTimeout:
        _resume_after_timeout()
        raise SafetyRefusal(
            "approval",
            matched,
            0,
            reason=f"no approval within {duration(timeout_s)}",
        ) from None
    reason = " ".join(decision.reason.split())[:REASON_MAX_CHARS]
    if not decision.approve:
        logger.warning("The plan was rejected: %s", reason or "(no reason given)")
        raise SafetyRefusal(
            "approval",
            matched,
            0,
            reason=f"rejected ({reason})" if reason else "rejected",
        )
    logger.info("The plan was approved: %s", reason or "(no reason given)")
    return reason


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
