"""Every definition loads: each entrypoint named in prefect.yaml is a flow taking its parameters."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.flows import Flow, load_flow_from_entrypoint

ROOT = Path(__file__).resolve().parents[1]
DEPLOYMENTS: list[dict[str, Any]] = yaml.safe_load((ROOT / "prefect.yaml").read_text())[
    "deployments"
]
#: Each work pool's fixed environment, the operator's limits included.
POOLS: dict[str, dict[str, Any]] = yaml.safe_load(
    (ROOT / "deployments" / "work_pools.yaml").read_text()
)


def test_prefect_yaml_names_at_least_one_deployment() -> None:
    assert [d["name"] for d in DEPLOYMENTS], "prefect.yaml defines no deployment"


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_entrypoint_loads_and_takes_the_parameters_when_deployed(
    deployment: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    flow = load_flow_from_entrypoint(deployment["entrypoint"])

    assert isinstance(flow, Flow)
    accepted = set(inspect.signature(flow.fn).parameters)
    assert set(deployment.get("parameters", {})) <= accepted
    env = POOLS[deployment["work_pool"]["name"]]
    assert (ROOT / env["PREFECT_LOGGING_CONFIG_PATH"]).is_file()


# --- prefect.yaml: what every deployment must say ----------------------------------------------

ENVIRONMENTS = {"dev", "staging", "prod"}


def by_name(name: str) -> dict[str, Any]:
    (deployment,) = [d for d in DEPLOYMENTS if d["name"] == name]
    return deployment


def test_each_environment_has_a_deployment_when_prefect_yaml_is_read() -> None:
    assert {d["parameters"]["environment"] for d in DEPLOYMENTS} == ENVIRONMENTS


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_deployment_is_guarded_and_described_when_defined(deployment: dict[str, Any]) -> None:
    environment = deployment["parameters"]["environment"]

    assert deployment["enforce_parameter_schema"] is True
    assert deployment["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
    assert deployment["description"].strip()
    assert {"s3-housekeeping", environment} <= set(deployment["tags"])
    assert deployment["work_pool"]["name"] == f"s3-housekeeping-{environment}"
    assert "job_variables" not in deployment["work_pool"]  # the pool's environment is fixed
    env = POOLS[deployment["work_pool"]["name"]]
    assert env["ENVIRONMENT"] == environment
    assert env["LOG_LEVEL"] in {"DEBUG", "INFO", "WARNING"}
    assert deployment["parameters"]["aws_credentials_block"] == f"s3-housekeeping-{environment}"
    # Its own limits let the deployment run as it is written.
    assert deployment["parameters"]["aws_credentials_block"] in env["ALLOWED_CREDENTIALS_BLOCKS"]
    if "ALLOWED_TARGETS" in env:
        bucket, prefix = deployment["parameters"]["bucket"], deployment["parameters"]["prefix"]
        assert any(
            f"{bucket}/{prefix}".startswith(target.strip())
            for target in env["ALLOWED_TARGETS"].split(",")
        )


def test_prod_enforces_approval_and_a_ceiling_whatever_a_run_asks() -> None:
    prod = POOLS["s3-housekeeping-prod"]

    assert prod["ENFORCE_APPROVAL"] == "true"
    assert int(prod["MAX_DELETIONS_CEILING"]) > 0
    assert all(isinstance(value, str) for pool in POOLS.values() for value in pool.values())


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_schedules_are_cron_with_a_timezone_when_a_deployment_has_any(
    deployment: dict[str, Any],
) -> None:
    from prefect.client.schemas.schedules import CronSchedule

    for schedule in deployment["schedules"]:
        # Prefect's own model refuses an invalid cron expression or an unknown timezone.
        parsed = CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
        assert parsed.timezone == schedule["timezone"] != "UTC"


def test_prod_deletes_only_on_purpose_when_its_deployments_are_read() -> None:
    scheduled, manual = by_name("s3-housekeeping-prod"), by_name("s3-housekeeping-prod-manual")

    assert scheduled["schedules"] and scheduled["parameters"]["dry_run"] is True
    assert manual["schedules"] == []
    assert manual["parameters"]["require_approval"] is True
    assert all(d["parameters"].get("require_approval", False) is False for d in DEPLOYMENTS[:3])


def test_pull_step_holds_no_machine_path_when_read() -> None:
    text = (ROOT / "prefect.yaml").read_text()
    (step,) = yaml.safe_load(text)["pull"]

    assert step["prefect.deployments.steps.set_working_directory"]["directory"] == "{{ $PWD }}"
    assert "/home/" not in text and "/work/" not in text and "/root" not in text


def test_every_parameter_has_help_text_and_choices_are_enums_when_the_schema_is_built() -> None:
    from prefect.utilities.callables import parameter_schema

    from flows.s3_housekeeping import s3_housekeeping

    properties = parameter_schema(s3_housekeeping).model_dump()["properties"]

    missing = [name for name, spec in properties.items() if not spec.get("description")]
    assert missing == []
    assert properties["environment"]["anyOf"][0]["enum"] == ["dev", "staging", "prod"]
    assert properties["versions"]["anyOf"][0]["enum"] == ["current", "noncurrent", "all"]
