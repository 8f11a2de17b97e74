"""Every definition loads: each entrypoint named in prefect.yaml is a flow taking its parameters."""

from __future__ import annotations

import inspect
import re
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
#: The fleet (docs/guides/fleets.md): its run, and the deployment it submits one run to per
#: target of its targets file.
FLEET, FLEET_CHILD = "s3-housekeeping-fleet", "s3-housekeeping-fleet-child"
#: One environment's s3_housekeeping runs: every deployment but the fleet's.
ENVIRONMENT_DEPLOYMENTS = [d for d in DEPLOYMENTS if d["name"] not in {FLEET, FLEET_CHILD}]


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
    assert {d["parameters"]["environment"] for d in ENVIRONMENT_DEPLOYMENTS} == ENVIRONMENTS


@pytest.mark.parametrize("deployment", ENVIRONMENT_DEPLOYMENTS, ids=lambda d: d["name"])
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
    assert all(
        d["parameters"].get("require_approval", False) is False for d in ENVIRONMENT_DEPLOYMENTS[:3]
    )


# --- prefect.yaml: the fleet ---------------------------------------------------------------


def test_child_deployment_runs_targets_side_by_side_when_defined() -> None:
    from deployments.bootstrap import POOL_CONCURRENCY_LIMIT, POOL_CONCURRENCY_LIMITS

    child = by_name(FLEET_CHILD)
    pool = child["work_pool"]["name"]

    assert child["entrypoint"] == "flows/s3_housekeeping.py:s3_housekeeping"
    assert child["enforce_parameter_schema"] is True
    assert child["schedules"] == []  # started by a fleet only
    assert not child.get("parameters")  # each run gets its target's, from the fleet
    assert "job_variables" not in child["work_pool"]
    # Several children at once, each on its own bucket (the flow's lock keeps two runs off
    # one bucket): neither the deployment nor its pool runs one at a time.
    assert child.get("concurrency_limit") is None
    assert POOL_CONCURRENCY_LIMITS.get(pool, POOL_CONCURRENCY_LIMIT) is None
    # Its own pool: never an environment's, whose limit of 1 would run the fleet one by one.
    assert pool not in {d["work_pool"]["name"] for d in ENVIRONMENT_DEPLOYMENTS}
    assert {"s3-housekeeping", "fleet"} <= set(child["tags"]) and child["description"].strip()


def test_fleet_is_a_dry_run_of_the_child_deployment_on_a_pool_of_its_own_when_defined(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    fleet, child = by_name(FLEET), by_name(FLEET_CHILD)
    child_flow = load_flow_from_entrypoint(child["entrypoint"])

    assert fleet["entrypoint"] == "flows/fleet.py:s3_housekeeping_fleet"
    assert fleet["enforce_parameter_schema"] is True
    assert fleet["parameters"]["dry_run"] is True  # deletes only on purpose
    # "FLOW/DEPLOYMENT", as run_deployment finds it: the child's flow and deployment names.
    assert fleet["parameters"]["child_deployment"] == f"{child_flow.name}/{child['name']}"
    assert (ROOT / fleet["parameters"]["targets"]).is_file()
    assert fleet["schedules"] and all(s["active"] for s in fleet["schedules"])
    # It waits for its children: on their pool it would hold a slot one of them needs.
    assert fleet["work_pool"]["name"] != child["work_pool"]["name"]
    assert "job_variables" not in fleet["work_pool"]
    assert fleet["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
    assert {"s3-housekeeping", "fleet"} <= set(fleet["tags"]) and fleet["description"].strip()


def test_example_targets_validate_within_the_childrens_limits_when_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tasks.fleet.targets import load_targets

    fleet, child = by_name(FLEET), by_name(FLEET_CHILD)
    path = ROOT / fleet["parameters"]["targets"]
    limits = POOLS[child["work_pool"]["name"]]

    targets = load_targets(path).targets
    # Read again as a child run would be: with its pool's environment, operator's limits and all.
    for name, value in limits.items():
        monkeypatch.setenv(name, value)
    assert load_targets(path).targets == targets

    assert len({t.parameters["region"] for t in targets}) == 2
    assert {t.parameters.get("role_arn") is None for t in targets} == {True, False}
    assert all(t.parameters["aws_credentials_block"] for t in targets)
    assert all(t.parameters["create_bucket"] is False for t in targets)
    # Placeholders only: no real account's id.
    accounts = set(re.findall(r"(?<![0-9])[0-9]{12}(?![0-9])", path.read_text()))
    assert accounts == {"111111111111", "222222222222"}


def test_fleet_runs_are_held_to_the_childrens_limits_when_their_pools_are_read() -> None:
    from tasks.guards.operator_limits import limit_variables

    fleet_pool = POOLS[by_name(FLEET)["work_pool"]["name"]]
    child_pool = POOLS[by_name(FLEET_CHILD)["work_pool"]["name"]]

    assert {"ALLOWED_TARGETS", "ALLOWED_CREDENTIALS_BLOCKS"} <= set(child_pool)
    # A fleet checks its targets file with them, and runs children in process without a
    # child_deployment: the same limits there.
    assert {k: v for k, v in fleet_pool.items() if k in limit_variables()} == {
        k: v for k, v in child_pool.items() if k in limit_variables()
    }


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
