"""The work pools bootstrap makes: every job variable a run could set to escape the operator's
limits is fixed by the pool's base job template and refused from anyone else."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prefect.utilities.schema_tools import ValidationError, validate
from prefect.utilities.templating import find_placeholders
from prefect.workers.process import ProcessJobConfiguration, ProcessWorker

from deployments.bootstrap import locked_template
from tasks.guards.operator_limits import OPEN_JOB_VARIABLES

POOL_ENV = {"ENVIRONMENT": "prod", "MAX_DELETIONS_CEILING": "100", "ENFORCE_APPROVAL": "true"}
#: Every job variable of Prefect's own process pool that the operator does not leave open, read
#: from the installed Prefect: one it adds later is covered too.
CLOSED = sorted(
    set(ProcessWorker.get_default_base_job_template()["variables"]["properties"])
    - OPEN_JOB_VARIABLES
)
#: What a custom run would give each, to run code of its own or shed a limit.
RUN_VALUES: dict[str, Any] = {
    "command": "sh -c 'env -u MAX_DELETIONS_CEILING -u ENFORCE_APPROVAL python -m prefect.engine'",
    "working_dir": "/srv/someone-elses-checkout",
    "env": {"ENFORCE_APPROVAL": "false", "PYTHONPATH": "/srv/someone-elses-checkout"},
    "labels": {"owner": "someone-else"},
    "stream_output": False,
}


def run_value(name: str) -> Any:
    return RUN_VALUES.get(name, "someone-elses-value")


def validate_as_the_server_does(template: dict[str, Any], job_variables: dict[str, Any]) -> None:
    """The check Prefect's server makes of a custom run's job variables against its pool
    (prefect.server.api.validation, for a flow run made from a deployment)."""
    validate(
        job_variables,
        template["variables"],
        raise_on_error=True,
        preprocess=True,
        ignore_required=False,
        allow_none_with_default=True,
    )


class TestLockedTemplate:
    def test_the_pools_environment_is_fixed_in_the_job_configuration_when_locked(self) -> None:
        template = locked_template(POOL_ENV)

        assert template["job_configuration"]["env"] == POOL_ENV
        assert template["variables"]["properties"] == {}
        assert template["variables"]["additionalProperties"] is False

    @pytest.mark.parametrize("name", CLOSED)
    def test_a_variable_is_fixed_and_no_longer_a_job_variable_when_the_pool_is_locked(
        self, name: str
    ) -> None:
        template = locked_template(POOL_ENV)

        assert name not in template["variables"]["properties"]
        named = {p.name for p in find_placeholders(template["job_configuration"])}
        assert name not in named

    @pytest.mark.parametrize("name", CLOSED)
    def test_the_server_refuses_a_run_that_sets_a_variable_when_the_pool_is_locked(
        self, name: str
    ) -> None:
        with pytest.raises(ValidationError, match=f"'{name}' was unexpected"):
            validate_as_the_server_does(locked_template(POOL_ENV), {name: run_value(name)})

    def test_the_server_refuses_a_dotted_env_key_when_the_pool_is_locked(self) -> None:
        with pytest.raises(ValidationError, match=r"'env\.ENFORCE_APPROVAL' was unexpected"):
            validate_as_the_server_does(
                locked_template(POOL_ENV), {"env.ENFORCE_APPROVAL": "false"}
            )

    def test_the_server_accepts_a_run_that_sets_none_when_the_pool_is_locked(self) -> None:
        validate_as_the_server_does(locked_template(POOL_ENV), {})


@pytest.mark.usefixtures("prefect_harness")
class TestWorkerConfiguration:
    # Prefect's worker merges a run's `env` over the pool's whatever the template says (a flow
    # run posted straight to the API is not checked against its pool): the server's schema and
    # the flow's own check (tasks/guards/operator_limits.py) refuse it instead.
    @pytest.mark.parametrize("name", [name for name in CLOSED if name != "env"])
    def test_a_variable_a_run_sets_changes_nothing_the_worker_starts_when_locked(
        self, name: str
    ) -> None:
        template = locked_template(POOL_ENV)

        def configuration(values: dict[str, Any]) -> ProcessJobConfiguration:
            return asyncio.run(ProcessJobConfiguration.from_template_and_values(template, values))

        assert configuration({name: run_value(name)}) == configuration({})
        assert configuration({}).command is None  # the worker's own engine command
        assert configuration({}).env == POOL_ENV
