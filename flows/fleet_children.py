"""How a fleet runs a target's child: in its own process, or as a run of a deployment."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote
from uuid import UUID

from tasks.errors import ConfigError
from tasks.fleet.report import COUNTS, EXIT_BY_STATUS, UNEXPECTED, TargetOutcome
from tasks.fleet.targets import Target
from tasks.record.artifacts import OUTCOME_KEY
from tasks.record.outcome import kept_link
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


def on_work_pool(deployment: str, run_key: str, timeout_s: float) -> RunChild:
    """Children as runs of `deployment`, taken by its work pool's workers.

    Each is submitted with an idempotency key made of the deployment's id, `run_key`, the
    target and the phase: a fleet run given the same key (a retry, a re-run) finds the run
    already made and waits for it instead of starting the target again. Only a run of this
    deployment is found: Prefect keeps one run per flow and key, and every deployment of
    s3-housekeeping is of one flow, so another fleet's child on another deployment, given
    the same run key, would otherwise be taken for this one's. A child not finished within
    `timeout_s` is reported failed, still running where it is.

    Raises:
        ConfigError: there is no deployment of that name.
    """
    deployment_id = deployment_named(deployment)

    def run(target: Target, overrides: dict[str, Any]) -> TargetOutcome:
        from prefect.deployments import run_deployment

        phase = "apply" if overrides.get("plan") else ("dry-run" if overrides["dry_run"] else "run")
        key = idempotency_key(run_key, target.name, phase, deployment_id)
        made = child_run_with_key(key, deployment_id)
        if made is not None:
            child = finished_run(made, timeout_s)
        else:
            child = run_deployment(
                name=deployment,
                parameters={**target.parameters, **overrides},
                idempotency_key=key,
                timeout=timeout_s,
                poll_interval=2,
                as_subflow=True,
            )
        return outcome_of_deployed(target, child)

    return run


def deployment_named(name: str) -> UUID:
    """The id of the deployment FLOW/DEPLOYMENT.

    Raises:
        ConfigError: there is none of that name.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            return client.read_deployment_by_name(name).id
        except ObjectNotFound:
            raise ConfigError(f"child deployment '{name}' not found") from None


def idempotency_key(run_key: str, target: str, phase: str, deployment_id: UUID) -> str:
    """The key of a target's child in one phase of one fleet run on one deployment; each part
    escaped, so that no two (run key, target) pairs make the same key."""
    parts = (str(deployment_id), quote(run_key, safe=""), quote(target, safe=""), phase)
    return "s3-housekeeping-fleet/" + "/".join(parts)


def child_run_with_key(key: str, deployment_id: UUID) -> Any:
    """The id of the run of the deployment already made with this idempotency key, if any."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterIdempotencyKey,
    )

    with get_client(sync_client=True) as client:
        found = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                idempotency_key=FlowRunFilterIdempotencyKey(any_=[key]),
                deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]),
            ),
            limit=1,
        )
    return found[0].id if found else None


def finished_run(run_id: Any, timeout_s: float, poll_s: float = 2) -> Any:
    """The flow run once it has ended, or as it is when `timeout_s` has passed."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while True:
            run = client.read_flow_run(run_id)
            if (run.state is not None and run.state.is_final()) or time.monotonic() > deadline:
                return run
            time.sleep(poll_s)


def outcome_of_deployed(target: Target, child: Any) -> TargetOutcome:
    """A deployed child's outcome: its report, from the outcome table it left, with the exit
    code of its report's status or of the error it ended with; a child that ended without
    leaving one is a failure, whatever its state says."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[child.id]))
        )
    row = outcome_row(next((a.data for a in found if a.key == OUTCOME_KEY), None))
    state = child.state
    error_name = error_named_in(state.message or "") if state is not None else ""
    worker = (child.labels or {}).get("prefect.worker.name")
    if row is not None:
        status = str(row.get("status", "failed"))
        outcome = TargetOutcome(
            name=target.name,
            bucket=target.bucket,
            prefix=target.prefix,
            line=target.line,
            status=status,
            exit_code=EXIT_BY_STATUS.get(status, exit_code_of(error_name)),
            region=str(row.get("region", "")),
            counts={name: int(row.get(name) or 0) for name in COUNTS},
            manifest=row.get("manifest") or None,
            manifest_sha256=row.get("manifest_sha256") or None,
            message=str(row.get("message", "")),
            worker=worker,
        )
    else:
        where = state.name if state is not None else "no state"
        final = state is not None and state.is_final()
        unfinished = f"ended {where} without a report" if final else f"still {where}"
        outcome = TargetOutcome(
            target.name,
            target.bucket,
            target.prefix,
            target.line,
            "failed",
            exit_code_of(error_name),
            message=error_name or unfinished,
            worker=worker,
        )
    return _with_run(outcome, str(child.id))


def outcome_row(data: Any) -> dict[str, Any] | None:
    """The outcome table's one row; Prefect keeps a table artifact's data as its JSON text."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return data[0]
    return None


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
    url = kept_link(f"{ui}/runs/flow-run/{run_id}") if ui else None
    return replace(outcome, flow_run_id=run_id, flow_run_url=url)
