"""The operator's limits through a real server and worker: a custom prod run cannot loosen them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from deployments.local_aws import seed_objects
from tests.support.stack import DEMO_KEPT, DEMO_OLD, Stack

pytestmark = pytest.mark.e2e

PROD_BUCKET = "s3-housekeeping-prod"


def custom_run(stack: Stack, name: str, parameters: dict[str, object], **job: object) -> str:
    """A "Custom run" as the UI starts one: parameters and job variables of the person's own."""
    deployment = stack.deployment(name)
    run = stack.post(
        f"deployments/{deployment['id']}/create_flow_run",
        {"parameters": parameters, "job_variables": job},
    )
    return str(run["id"])


class TestCustomProdRun:
    def test_still_pauses_for_approval_and_deletes_nothing_when_it_turns_approval_off(
        self, stack: Stack
    ) -> None:
        seed_objects(stack.aws, PROD_BUCKET, datetime.now(UTC), create_bucket=True)
        run_id = custom_run(
            stack,
            "s3-housekeeping-prod-manual",
            {"dry_run": False, "require_approval": False, "max_deletions": 10_000_000},
        )
        try:
            stack.wait_for_state(run_id, {"PAUSED"})
            assert stack.keys(PROD_BUCKET) - {".s3-housekeeping/lock.json"} == DEMO_OLD | DEMO_KEPT
            stack.resume(run_id, {"approve": False, "reason": "not approved"})
            ended = stack.wait_for_state(run_id, {"FAILED"})
        finally:
            stack.cancel(run_id)

        assert "refused by approval: rejected (not approved)" in ended["state"]["message"]
        assert stack.keys(PROD_BUCKET) == DEMO_OLD | DEMO_KEPT
        report = stack.artifacts(run_id)["s3-housekeeping-report"]["data"]
        assert "requires a person's approval before any delete (ENFORCE_APPROVAL)" in report
        assert "caps a run at 100000 deletions (MAX_DELETIONS_CEILING)" in report

    @pytest.mark.parametrize(
        "job_variables",
        [
            pytest.param({"env": {"ENFORCE_APPROVAL": "false"}}, id="env"),
            pytest.param({"env.MAX_DELETIONS_CEILING": "10000000"}, id="dotted-key"),
        ],
    )
    def test_is_refused_when_its_job_variables_set_an_operators_limit(
        self, stack: Stack, job_variables: dict[str, object]
    ) -> None:
        # Prefect merges a run's env over the pool's, key by key: the run checks its own.
        seed_objects(stack.aws, PROD_BUCKET, datetime.now(UTC), create_bucket=True)
        parameters = {"dry_run": False, "require_approval": False}
        run_id = custom_run(stack, "s3-housekeeping-prod-manual", parameters, **job_variables)
        try:
            ended = stack.wait_for_state(run_id, {"FAILED"})
        finally:
            stack.cancel(run_id)

        message = ended["state"]["message"]
        assert "refused by operator_limits: the run's job variables set" in message
        assert "the operator's limits come from the work pool alone" in message
        assert stack.keys(PROD_BUCKET) == DEMO_OLD | DEMO_KEPT

    @pytest.mark.parametrize(
        "parameters",
        [
            pytest.param({"bucket": "someone-elses-bucket"}, id="another-bucket"),
            pytest.param({"prefix": "data/"}, id="another-prefix"),
            pytest.param({"aws_credentials_block": "s3-housekeeping-dev"}, id="another-block"),
        ],
    )
    def test_is_refused_before_any_aws_request_when_it_leaves_its_environment(
        self, stack: Stack, parameters: dict[str, object]
    ) -> None:
        run_id = custom_run(stack, "s3-housekeeping-prod", {"dry_run": False, **parameters})
        try:
            ended = stack.wait_for_state(run_id, {"FAILED"})
        finally:
            stack.cancel(run_id)

        message = ended["state"]["message"]
        assert "invalid configuration" in message
        assert "ALLOWED_TARGETS" in message or "ALLOWED_CREDENTIALS_BLOCKS" in message
