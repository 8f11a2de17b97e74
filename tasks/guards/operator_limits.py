"""The operator's limits, and how a flow run's process starts, come from the work pool alone: a
run or deployment whose job variables set them is refused."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from tasks.errors import SafetyRefusal
from tasks.settings import environment_variables, operator_limits

#: The job variables of a process work pool that a deployment or a run may set: none. Each other
#: one (`command`, `working_dir`, `env`, ...) is the operator's: the pool's base job template
#: fixes its value and refuses it from anyone else (deployments/bootstrap.py, `locked_template`),
#: and a run whose own or deployment's job variables set one is refused below.
OPEN_JOB_VARIABLES: frozenset[str] = frozenset()


def limit_variables() -> frozenset[str]:
    """The environment variables of the operator's limits (tasks/settings.py, `OperatorLimit`)."""
    return frozenset(name for limit in operator_limits() for name in environment_variables(limit))


def set_in(job_variables: Mapping[str, Any] | None) -> set[str]:
    """The job variables a deployment or a run sets that the work pool does not leave open.

    A mapping's keys are named one by one (`env.ENFORCE_APPROVAL`), as Prefect merges a
    deployment's and a run's `env` over the pool's key by key; a dotted key is named as given.
    Only names: a value could be a secret.
    """
    names: set[str] = set()
    for key, value in dict(job_variables or {}).items():
        if key.split(".", 1)[0] in OPEN_JOB_VARIABLES:
            continue
        if isinstance(value, Mapping) and "." not in key:
            names |= {f"{key}.{inner}" for inner in value}
        else:
            names.add(key)
    return names


def check_job_variables(
    run: Mapping[str, Any] | None, deployment: Mapping[str, Any] | None
) -> None:
    """Refuse a flow run whose own or deployment's job variables set anything the work pool
    does not leave open: its `env`, where the operator's limits are, or how its process starts.

    The pool's template already fixes them, and the server refuses them in a custom run; this
    is for a run made some other way (a flow run posted straight to the API is not checked
    against its pool, and Prefect's worker still merges its `env`). A `command` that replaced
    the flow's would never get here: that is why the template fixes it.

    Raises:
        SafetyRefusal: naming the job variables; nothing has been read or deleted yet.
    """
    overridden = sorted(set_in(run) | set_in(deployment))
    if overridden:
        raise SafetyRefusal(
            "operator_limits",
            0,
            0,
            reason=f"the run's job variables set {', '.join(overridden)}: the operator's limits "
            "and the run's process come from the work pool alone",
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
