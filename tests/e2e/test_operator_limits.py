"""The operator's limits through a real server and worker: a custom prod run cannot loosen them,
whatever its parameters and job variables."""

from __future__ import annotations

import json
import shlex
import sys
import urllib.error
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prefect.workers.process import ProcessWorker

from deployments.local_aws import seed_objects
from tasks.guards.operator_limits import OPEN_JOB_VARIABLES
from tests.support.approval import answer
from tests.support.stack import DEMO_KEPT, DEMO_OLD, Stack

pytestmark = pytest.mark.e2e

PROD_BUCKET = "s3-housekeeping-prod"
PROD_MANUAL = "s3-housekeeping-prod-manual"
#: Every job variable of Prefect's own process pool that the operator does not leave open, read
#: from the installed Prefect: one it adds later is covered too.
CLOSED = sorted(
    set(ProcessWorker.get_default_base_job_template()["variables"]["properties"])
    - OPEN_JOB_VARIABLES
)
#: What a person asks of a custom prod run to delete at once: no approval, no cap.
UNLIMITED = {"dry_run": False, "require_approval": False, "max_deletions": 10_000_000}
#: A Dask cluster of a run's own; nothing listens there, a run is refused before it connects.
OWN_DASK = "tcp://127.0.0.1:9"


def custom_run(
    stack: Stack, name: str, parameters: dict[str, Any], job: dict[str, Any] | None = None
) -> str:
    """A "Custom run" as the UI starts one: parameters and job variables of the person's own."""
    deployment = stack.deployment(name)
    run = stack.post(
        f"deployments/{deployment['id']}/create_flow_run",
        {"parameters": parameters, "job_variables": job or {}},
    )
    return str(run["id"])


def posted_run(stack: Stack, name: str, parameters: dict[str, Any], job: dict[str, Any]) -> str:
    """A flow run of a deployment posted straight to the API (POST /flow_runs), which Prefect's
    server does not check against the work pool's job variables."""
    deployment = stack.deployment(name)
    now = datetime.now(UTC).isoformat()
    run = stack.post(
        "flow_runs/",
        {
            "flow_id": deployment["flow_id"],
            "deployment_id": deployment["id"],
            "parameters": {**deployment["parameters"], **parameters},
            "job_variables": job,
            "work_pool_name": deployment["work_pool_name"],
            "work_queue_name": deployment["work_queue_name"],
            "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": now}},
        },
    )
    return str(run["id"])


def outcome(stack: Stack, run_id: str) -> dict[str, Any]:
    """The run once it has ended or paused (a paused run would wait for approval, a completed
    one may have deleted); stopped either way."""
    try:
        return stack.wait_for_state(
            run_id, {"FAILED", "PAUSED", "COMPLETED", "CRASHED", "CANCELLED"}
        )
    finally:
        stack.cancel(run_id)


class Attack:
    """Job variables a person would set to escape the limits, each leaving a marker file if
    it runs anything of theirs: a command that writes it and then runs the flow without the
    limits, and a working directory whose `prefect` package would shadow Prefect's own for a
    process started there (`python -m` looks in its working directory first)."""

    def __init__(self, where: Path) -> None:
        self.marker = where / "the-run-ran-code-of-its-own"
        self.checkout = where / "someone-elses-checkout"
        shim = self.checkout / "prefect"
        shim.mkdir(parents=True)
        (shim / "__init__.py").write_text(
            f"import pathlib, sys\npathlib.Path({str(self.marker)!r}).touch()\nsys.exit(3)\n"
        )

    def value(self, name: str) -> Any:
        unlimited = "env -u ENFORCE_APPROVAL -u MAX_DELETIONS_CEILING -u ALLOWED_TARGETS"
        engine = f"{shlex.quote(sys.executable)} -m prefect.engine"
        values: dict[str, Any] = {
            "command": f"sh -c {shlex.quote(f'touch {self.marker} && {unlimited} {engine}')}",
            "working_dir": str(self.checkout),
            # A limit loosened for the run's own cluster.
            "env": {"ALLOWED_DASK_ADDRESSES": OWN_DASK},
            "labels": {"owner": "someone-else"},
            "stream_output": False,
        }
        return values.get(name, "someone-elses-value")

    def job_variables(self, *names: str) -> dict[str, Any]:
        return {name: self.value(name) for name in names}

    def parameters(self, *names: str) -> dict[str, Any]:
        """A custom run's parameters, and the cluster its env would allow."""
        return {**UNLIMITED, **({"dask_address": OWN_DASK} if "env" in names else {})}


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
            stack.resume(run_id, answer(False, "not approved"))
            ended = stack.wait_for_state(run_id, {"FAILED"})
        finally:
            stack.cancel(run_id)

        message = ended["state"]["message"]
        assert "refused by approval: rejected by Ana Ops (not approved)" in message
        assert stack.keys(PROD_BUCKET) == DEMO_OLD | DEMO_KEPT
        report = stack.artifacts(run_id)["s3-housekeeping-report"]["data"]
        assert "requires a person's approval before any delete (ENFORCE_APPROVAL)" in report
        assert "caps a run at 100000 deletions (MAX_DELETIONS_CEILING)" in report

    @pytest.mark.parametrize(
        ("parameters", "limit"),
        [
            pytest.param(
                {"bucket": "someone-elses-bucket"}, "ALLOWED_TARGETS", id="another-bucket"
            ),
            pytest.param({"prefix": "data/"}, "ALLOWED_TARGETS", id="another-prefix"),
            pytest.param(
                {"aws_credentials_block": "s3-housekeeping-dev"},
                "ALLOWED_CREDENTIALS_BLOCKS",
                id="another-block",
            ),
            pytest.param({"dask_address": OWN_DASK}, "ALLOWED_DASK_ADDRESSES", id="own-dask"),
        ],
    )
    def test_is_refused_before_any_aws_request_when_it_leaves_its_environment(
        self, stack: Stack, parameters: dict[str, object], limit: str
    ) -> None:
        run_id = custom_run(stack, "s3-housekeeping-prod", {"dry_run": False, **parameters})
        try:
            ended = stack.wait_for_state(run_id, {"FAILED"})
        finally:
            stack.cancel(run_id)

        message = ended["state"]["message"]
        assert "invalid configuration" in message
        assert limit in message


class TestJobVariablesOfACustomRun:
    """Every job variable of the locked pools, as a custom run would set it: the server refuses
    the run before it exists, so the worker never sees it."""

    @pytest.mark.parametrize(
        "job", [*CLOSED, "env.MAX_DELETIONS_CEILING"], ids=[*CLOSED, "env-dotted-key"]
    )
    def test_is_refused_by_the_server_when_the_pool_fixes_the_variable(
        self, stack: Stack, job: str, tmp_path: Path
    ) -> None:
        value = Attack(tmp_path).value(job) if job in CLOSED else "10000000"
        before = stack.post("flow_runs/count", {})

        with pytest.raises(urllib.error.HTTPError) as refused:
            run_id = custom_run(stack, PROD_MANUAL, UNLIMITED, {job: value})
            stack.cancel(run_id)  # reached only when the server let the run through

        assert refused.value.code == 422
        assert f"'{job}' was unexpected" in json.loads(refused.value.read())["detail"]
        assert stack.post("flow_runs/count", {}) == before


class TestJobVariablesOfARunPostedToTheApi:
    """A run posted straight to the API, its job variables unchecked by the server: those that
    say how its process starts have no effect (the pool fixes them), Prefect's worker merges
    its env over the pool's, and the run refuses itself before it reads anything."""

    @pytest.mark.parametrize(
        "names",
        [
            pytest.param(tuple(CLOSED), id="all"),
            pytest.param(("command",), id="command"),
            pytest.param(("working_dir",), id="working_dir"),
            pytest.param(("env",), id="env"),
        ],
    )
    def test_is_refused_with_the_limits_intact_and_no_code_of_its_own_run_when_it_sets(
        self, stack: Stack, names: tuple[str, ...], tmp_path: Path
    ) -> None:
        attack = Attack(tmp_path)
        seed_objects(stack.aws, PROD_BUCKET, datetime.now(UTC), create_bucket=True)
        job = attack.job_variables(*names)

        run_id = posted_run(stack, PROD_MANUAL, attack.parameters(*names), job)
        ended = outcome(stack, run_id)

        assert not attack.marker.exists()
        assert ended["state"]["type"] == "FAILED", ended["state"]
        message = ended["state"]["message"]
        assert "refused by operator_limits: the run's job variables set" in message
        for name in names:
            assert name in message
        assert stack.keys(PROD_BUCKET) - {".s3-housekeeping/lock.json"} == DEMO_OLD | DEMO_KEPT
