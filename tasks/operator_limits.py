"""The operator's limits come from the work pool alone: a run or deployment that sets them is
refused."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from tasks.errors import SafetyRefusal
from tasks.settings import environment_variables, operator_limits


def limit_variables() -> frozenset[str]:
    """The environment variables of the operator's limits (tasks/settings.py, `OperatorLimit`)."""
    return frozenset(name for limit in operator_limits() for name in environment_variables(limit))


def set_in(job_variables: Mapping[str, Any] | None) -> set[str]:
    """The limit variables a set of job variables would put in a flow run's environment
    (Prefect merges a deployment's and a run's `env` over the pool's, key by key)."""
    variables = dict(job_variables or {})
    env = variables.get("env")
    names = set(env) if isinstance(env, Mapping) else set()
    names |= {key.removeprefix("env.") for key in variables if key.startswith("env.")}
    return names & limit_variables()


def check_job_variables(
    run: Mapping[str, Any] | None, deployment: Mapping[str, Any] | None
) -> None:
    """Refuse a flow run whose own or deployment's job variables set an operator's limit.

    Raises:
        SafetyRefusal: naming the variables; nothing has been read or deleted yet.
    """
    overridden = sorted(set_in(run) | set_in(deployment))
    if overridden:
        raise SafetyRefusal(
            "operator_limits",
            0,
            0,
            reason=f"the run's job variables set {', '.join(overridden)}: the operator's limits "
            "come from the work pool alone",
        )


def check_this_flow_run() -> None:
    """`check_job_variables` for the flow run this process runs, read from its server (nothing
    to check outside a deployment's run)."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    if run_id is None:
        return
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(str(run_id)))
        deployment = client.read_deployment(run.deployment_id) if run.deployment_id else None
    check_job_variables(run.job_variables, deployment.job_variables if deployment else None)
