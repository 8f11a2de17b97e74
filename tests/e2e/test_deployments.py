"""prefect.yaml applied to a real Prefect server, run by a real process worker against moto."""

from __future__ import annotations

import json

import pytest

from deployments.bootstrap import ROOT, deployment_specs, pool_environments
from tasks.fleet.targets import load_targets
from tests.support.stack import DEMO_KEPT, DEMO_OLD, Stack

pytestmark = pytest.mark.e2e

DEPLOYMENTS = [spec["name"] for spec in deployment_specs()]
#: The fleet's run and its child deployment (docs/guides/fleets.md).
FLEET, FLEET_CHILD = "s3-housekeeping-fleet", "s3-housekeeping-fleet-child"
#: One environment's s3_housekeeping runs: every deployment but the fleet's.
ENVIRONMENT_SPECS = [
    spec for spec in deployment_specs() if spec["name"] not in {FLEET, FLEET_CHILD}
]


class TestDeployed:
    def test_every_deployment_exists_with_its_settings_when_prefect_yaml_is_applied(
        self, stack: Stack
    ) -> None:
        assert {d["name"] for d in stack.post("deployments/filter", {})} == set(DEPLOYMENTS)
        for spec in ENVIRONMENT_SPECS:
            deployment = stack.deployment(spec["name"])
            environment = spec["parameters"]["environment"]

            assert deployment["work_pool_name"] == f"s3-housekeeping-{environment}"
            assert deployment["enforce_parameter_schema"] is True
            assert deployment["global_concurrency_limit"]["limit"] == 1
            assert deployment["concurrency_options"]["collision_strategy"] == "ENQUEUE"
            assert stack.get(f"work_pools/{deployment['work_pool_name']}")["concurrency_limit"] == 1
            assert set(deployment["tags"]) >= {"s3-housekeeping", environment}
            assert deployment["description"]
            assert deployment["parameters"] == spec["parameters"]
            # The flow run's environment is the pool's, fixed: no deployment sets its own.
            assert "env" not in deployment["job_variables"]
            pool = stack.get(f"work_pools/{deployment['work_pool_name']}")
            template = pool["base_job_template"]
            env = template["job_configuration"]["env"]
            assert env["ENVIRONMENT"] == environment
            assert {"LOG_LEVEL", "PREFECT_LOGGING_CONFIG_PATH"} <= set(env)
            assert env["ALLOWED_CREDENTIALS_BLOCKS"] == spec["parameters"]["aws_credentials_block"]
            assert "env" not in template["variables"]["properties"]
            (pull,) = deployment["pull_steps"]
            # Resolved when deployed: the checkout `prefect deploy` ran in, which the worker runs.
            directory = pull["prefect.deployments.steps.set_working_directory"]["directory"]
            assert directory == str(ROOT)

    def test_fleet_and_its_children_are_deployed_on_pools_that_run_several_when_applied(
        self, stack: Stack
    ) -> None:
        child, fleet = stack.deployment(FLEET_CHILD), stack.deployment(FLEET)
        child_pool = stack.get(f"work_pools/{child['work_pool_name']}")
        fleet_pool = stack.get(f"work_pools/{fleet['work_pool_name']}")
        flow_name, deployment_name = fleet["parameters"]["child_deployment"].split("/")

        # Children of different buckets at once: no limit of 1 on the deployment or its pool.
        assert child["global_concurrency_limit"] is None
        assert child_pool["concurrency_limit"] is None
        assert child["schedules"] == [] and child["parameters"] == {}
        assert child["enforce_parameter_schema"] is True
        # The fleet names the child deployment as deployed, and by default only plans.
        assert deployment_name == child["name"]
        assert stack.get(f"flows/{child['flow_id']}")["name"] == flow_name
        assert fleet["parameters"]["dry_run"] is True
        assert fleet["enforce_parameter_schema"] is True
        assert fleet["global_concurrency_limit"]["limit"] == 1
        # The fleet waits on a pool of its own, which a waiting fleet does not fill up.
        assert fleet_pool["name"] != child_pool["name"]
        assert fleet_pool["concurrency_limit"] is None
        # Each pool's environment is work_pools.yaml's, fixed; the operator's limits in it.
        for pool in (child_pool, fleet_pool):
            template = pool["base_job_template"]
            assert template["job_configuration"]["env"] == pool_environments()[pool["name"]]
            assert "env" not in template["variables"]["properties"]
            assert template["job_configuration"]["env"]["ALLOWED_TARGETS"]
        for deployment in (child, fleet):
            assert "env" not in deployment["job_variables"]
        # The credentials block the targets name was made with the others.
        targets = load_targets(ROOT / fleet["parameters"]["targets"]).targets
        named = {target.parameters["aws_credentials_block"] for target in targets}
        blocks = stack.post(
            "block_documents/filter", {"block_documents": {"name": {"any_": sorted(named)}}}
        )
        assert {b["name"] for b in blocks} == named

    def test_scheduled_deployments_have_a_cron_and_a_timezone_when_applied(
        self, stack: Stack
    ) -> None:
        for spec in deployment_specs():
            schedules = stack.deployment(spec["name"])["schedules"]
            expected = [(s["cron"], s["timezone"]) for s in spec["schedules"]]

            assert [
                (s["schedule"]["cron"], s["schedule"]["timezone"]) for s in schedules
            ] == expected
            assert all(s["active"] for s in schedules)
        assert stack.deployment("s3-housekeeping-prod")["parameters"]["dry_run"] is True
        assert stack.deployment("s3-housekeeping-prod-manual")["schedules"] == []

    def test_parameter_schema_has_help_text_and_choices_when_deployed(self, stack: Stack) -> None:
        schema = stack.deployment("s3-housekeeping-dev")["parameter_openapi_schema"]
        properties = schema["properties"]

        assert all(p.get("description") for p in properties.values()), "a parameter lacks help"
        assert properties["environment"]["anyOf"][0]["enum"] == ["dev", "staging", "prod"]
        assert properties["older_than_days"]["anyOf"][0] == {
            "type": "integer",
            "minimum": 1,
            "maximum": 36500,
        }
        assert "pattern" in properties["notify_topic_arn"]["anyOf"][0]


class TestRunningADeployment:
    def test_old_objects_are_gone_and_artifacts_exist_when_run_with_dry_run_false(
        self, stack: Stack
    ) -> None:
        bucket = stack.seeded_bucket("deployed")

        run_id = stack.run_deployment(
            "s3-housekeeping-dev",
            bucket=bucket,
            prefix="tmp/",
            older_than_days=30,
            dry_run=False,
        )
        try:
            run = stack.wait_for_state(run_id, {"COMPLETED"})
        finally:
            stack.cancel(run_id)

        assert run["parameters"]["dry_run"] is False
        assert stack.keys(bucket) == DEMO_KEPT
        artifacts = stack.artifacts(run_id)
        assert {
            "s3-housekeeping-report",
            "s3-housekeeping-plan",
            "s3-housekeeping-manifest",
            "s3-housekeeping-progress",
        } <= set(artifacts)
        assert artifacts["s3-housekeeping-report"]["type"] == "markdown"
        assert "completed" in artifacts["s3-housekeeping-report"]["data"]
        plan_rows = artifacts["s3-housekeeping-plan"]["data"]
        assert {row["key"] for row in _rows(plan_rows)} == DEMO_OLD
        manifest = artifacts["s3-housekeeping-manifest"]
        assert manifest["type"] == "markdown"  # Prefect stores a link artifact as markdown
        assert "file://" in manifest["data"] and ".jsonl.gz" in manifest["data"]
        assert artifacts["s3-housekeeping-progress"]["data"] == 100
        (event,) = stack.events(run_id)
        assert event["event"] == "s3-housekeeping.run.completed"
        assert event["payload"]["counts"]["deleted"] == len(DEMO_OLD)
        assert event["resource"]["s3-housekeeping.bucket"] == bucket

    @pytest.mark.parametrize(
        "invalid",
        [
            pytest.param({"older_than_days": 0}, id="days-0"),
            pytest.param({"environment": "qa"}, id="environment-qa"),
            pytest.param({"notify_topic_arn": "not-an-arn"}, id="topic"),
        ],
    )
    def test_server_refuses_the_run_before_it_exists_when_a_parameter_is_invalid(
        self, stack: Stack, invalid: dict[str, object]
    ) -> None:
        deployment = stack.deployment("s3-housekeeping-dev")
        before = _run_count(stack, deployment["id"])
        params = [f"--param={k}={v}" for k, v in invalid.items()]

        result = stack.prefect("deployment", "run", "s3-housekeeping/s3-housekeeping-dev", *params)

        output = " ".join((result.stdout + result.stderr).split())
        assert result.returncode != 0
        assert "Validation failed" in output, output
        assert next(iter(invalid)) in output, output
        assert _run_count(stack, deployment["id"]) == before


def _rows(data: object) -> list[dict[str, object]]:
    rows = json.loads(data) if isinstance(data, str) else data
    assert isinstance(rows, list)
    return rows


def _run_count(stack: Stack, deployment_id: str) -> int:
    return int(stack.post("flow_runs/count", {"deployments": {"id": {"any_": [deployment_id]}}}))
