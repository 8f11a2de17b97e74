"""How a fleet runs a target's child: in its own process, or as a run of a deployment."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from tasks.fleet_targets import Target
from tasks.record.artifacts import OUTCOME_KEY
from tasks.record.fleet_report import COUNTS, EXIT_BY_STATUS, UNEXPECTED, TargetOutcome
from tasks.record.report import RunReport

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

logger = logging.getLogger(__name__)

RunChild = Callable[[Target, dict[str, Any]], TargetOutcome]


def in_process() -> RunChild:
    """Children as subflows of the fleet's run, in its process."""

    def run(target: Target, overrides: dict[str, Any]) -> TargetOutcome:
        from flows.s3_housekeeping import s3_housekeeping

        parameters = {**target.parameters, **overrides}
        state = cast("State[Any]", s3_housekeeping(**parameters, return_state=True))
        result = state.result(raise_on_failure=False)
        if isinstance(result, RunReport):
            outcome = TargetOutcome.of_report(target.name, target.line, result, 0)
        else:  # a refused or failed target is an outcome
            error = result if isinstance(result, BaseException) else RuntimeError(state.name)
            outcome = TargetOutcome.of_error(
                target.name, target.line, target.bucket, target.prefix, error
            )
        return _with_run(outcome, str(state.state_details.flow_run_id))

    return run


def on_work_pool(deployment: str, run_key: str) -> RunChild:
    """Children as runs of `deployment`, taken by its work pool's workers. Each is submitted
    with an idempotency key made of `run_key`, the target and the phase, so submitting it
    again (a re-run of the same fleet) finds the run already made instead of starting one."""

    def run(target: Target, overrides: dict[str, Any]) -> TargetOutcome:
        from prefect.deployments import run_deployment

        phase = "apply" if overrides.get("plan") else ("dry-run" if overrides["dry_run"] else "run")
        child = run_deployment(
            name=deployment,
            parameters={**target.parameters, **overrides},
            idempotency_key=f"s3-housekeeping-fleet/{run_key}/{target.name}/{phase}",
            timeout=None,  # wait for the child's end
            poll_interval=2,
            as_subflow=True,
        )
        return outcome_of_deployed(target, child)

    return run


def outcome_of_deployed(target: Target, child: Any) -> TargetOutcome:
    """A deployed child's outcome: its report, from the outcome artifact it left, and its exit
    code from its report's status, or from the error it ended with."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[child.id]))
        )
    data = next((a.data for a in found if a.key == OUTCOME_KEY), None)
    state = child.state
    error_name = error_named_in(state.message or "") if state is not None else ""
    if isinstance(data, list) and data and isinstance(data[0], dict):
        row = data[0]
        status = str(row.get("status", "failed"))
        code = EXIT_BY_STATUS.get(status, exit_code_of(error_name))
        outcome = TargetOutcome(
            name=target.name,
            bucket=target.bucket,
            prefix=target.prefix,
            line=target.line,
            status=status,
            exit_code=code,
            counts={name: int(row.get(name) or 0) for name in COUNTS},
            manifest=row.get("manifest") or None,
            message=str(row.get("message", "")),
        )
    else:
        status = "failed" if state is None or not state.is_completed() else "completed"
        outcome = TargetOutcome(
            target.name,
            target.bucket,
            target.prefix,
            target.line,
            status,
            0 if status == "completed" else exit_code_of(error_name),
            message=error_name or (state.name if state is not None else "no state"),
        )
    return _with_run(outcome, str(child.id))


def error_named_in(message: str) -> str:
    """The error class a failed run's state message names ("...: ConfigError: ..."), if it is
    one of ours."""
    from tasks import errors

    for part in message.replace(":", " ").split():
        found = getattr(errors, part, None)
        if isinstance(found, type) and issubclass(found, errors.HousekeepingError):
            return part
    return ""


def exit_code_of(error_name: str) -> int:
    from tasks import errors

    found = getattr(errors, error_name, None) if error_name else None
    if isinstance(found, type) and issubclass(found, errors.HousekeepingError):
        return int(found.exit_code)
    return UNEXPECTED


def _with_run(outcome: TargetOutcome, run_id: str) -> TargetOutcome:
    """The outcome with its child run's id and, when the UI's address is known, its link."""
    from prefect.settings import PREFECT_UI_URL

    ui = PREFECT_UI_URL.value()
    url = f"{ui}/runs/flow-run/{run_id}" if ui else None
    return replace(outcome, flow_run_id=run_id, flow_run_url=url)
