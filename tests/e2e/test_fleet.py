"""A fleet on a work pool: one child run per target, shared by two workers, found again by key.

A real Prefect server, prefect.yaml's child deployment on its pool (the pool's environment from
work_pools.yaml, its ALLOWED_TARGETS pointed at this test's buckets), two process workers
started with `--limit 1`, moto over HTTP; the fleet itself runs as `s3-housekeeping fleet`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from deployments.blocks import apply_block, block_settings
from deployments.bootstrap import ROOT, ensure_work_pools, pool_environments, prefect
from deployments.local_aws import LocalAws, seed_objects
from devtools.prefect_server import PrefectServer, PrefectWorker
from devtools.processes import wait_until
from tests.e2e.conftest import Cli
from tests.support.stack import DEMO_KEPT, DEMO_OLD, Stack, worker_environment

pytestmark = pytest.mark.e2e

POOL = "s3-housekeeping-fleet"
CHILD = "s3-housekeeping-fleet-child"
#: How the fleet names the child deployment: FLOW/DEPLOYMENT.
CHILD_DEPLOYMENT = f"s3-housekeeping/{CHILD}"
WORKERS = ("fleet-worker-1", "fleet-worker-2")
BUCKETS = tuple(f"fleet-e2e-{n}" for n in range(1, 5))
RUN_KEY = "e2e-1"


@dataclass(frozen=True)
class Fleet:
    """The pool and its workers on the server, moto, and the fleet command pointed at them."""

    server: Stack
    cli: Cli
    targets: Path
    child_id: str

    def run(self, report: Path) -> dict[str, Any]:
        """`s3-housekeeping fleet --execute` with the child deployment and RUN_KEY; its report."""
        result = self.cli(
            "fleet",
            "--targets",
            str(self.targets),
            "--execute",
            "--child-deployment",
            CHILD_DEPLOYMENT,
            "--run-key",
            RUN_KEY,
            "--report-json",
            str(report),
        )
        assert result.code == 0, result.stdout + result.stderr
        written: dict[str, Any] = json.loads(report.read_text())
        return written

    def child_runs(self) -> list[dict[str, Any]]:
        """Every flow run of the child deployment, oldest first."""
        body = {
            "deployments": {"id": {"any_": [self.child_id]}},
            "sort": "EXPECTED_START_TIME_ASC",
            "limit": 50,
        }
        return list(self.server.post("flow_runs/filter", body))


def targets_file(path: Path) -> Path:
    """Every test bucket's tmp/, through the credentials block the pool allows."""
    (block,) = pool_environments()[POOL]["ALLOWED_CREDENTIALS_BLOCKS"].split(",")
    lines = [
        "defaults:",
        "  older_than_days: 30",
        "  region: us-east-1",
        "  create_bucket: false",
        f"  aws_credentials_block: {block}",
        "targets:",
    ]
    for bucket in BUCKETS:
        lines += [f"  - bucket: {bucket}", "    prefix: tmp/"]
    path.write_text("\n".join(lines) + "\n")
    return path


def online_workers(server: Stack) -> set[str]:
    found = server.post(f"work_pools/{POOL}/workers/filter", {})
    return {worker["name"] for worker in found if worker.get("status") == "ONLINE"}


@pytest.fixture(scope="module")
def fleet(
    prefect_api: PrefectServer, moto_http: LocalAws, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    """The child deployment applied from prefect.yaml, its pool polled by two named workers."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    home = tmp_path_factory.mktemp("fleet")
    # Workers look for runs every second (worker_environment): a freed one takes the next soon.
    env = worker_environment(prefect_api.api_url, home)
    pool_env = {
        **pool_environments()[POOL],
        "ALLOWED_TARGETS": ",".join(f"{bucket}/tmp/" for bucket in BUCKETS),
    }
    now = datetime.now(UTC)
    for bucket in BUCKETS:
        seed_objects(moto_http, bucket, now, create_bucket=True)
    with temporary_settings({PREFECT_API_URL: prefect_api.api_url}):
        ensure_work_pools([POOL], {POOL: pool_env})
        for block in pool_env["ALLOWED_CREDENTIALS_BLOCKS"].split(","):
            apply_block(block, block_settings("prod", moto_http.environment()))
    prefect("--no-prompt", "deploy", "--name", CHILD, env=env)
    server = Stack(api_url=prefect_api.api_url, aws=moto_http, env=env, home=home)
    cli = Cli(
        {
            **moto_http.environment(),
            **env,
            "PREFECT_HOME": str(home / "fleet-prefect-home"),
            "MANIFEST_DIR": str(home / "fleet-manifests"),
        }
    )
    with ExitStack() as running:
        for name in WORKERS:
            log = home / "logs" / f"{name}.log"
            running.enter_context(PrefectWorker(POOL, env, log, ROOT, worker_name=name, limit=1))
        wait_until(lambda: online_workers(server) >= set(WORKERS), 120, f"{WORKERS} on {POOL}")
        targets = targets_file(home / "targets.yaml")
        yield Fleet(server, cli, targets, server.deployment(CHILD)["id"])


@pytest.fixture(scope="module")
def first(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The fleet's first run, with --execute: its report."""
    return fleet.run(tmp_path_factory.mktemp("first") / "fleet.json")


class TestFleetOnAWorkPool:
    def test_deletes_exactly_each_buckets_old_objects_when_executed(
        self, fleet: Fleet, first: dict[str, Any]
    ) -> None:
        assert (first["status"], first["exit_code"], first["worst_target"]) == (
            "completed",
            0,
            None,
        )
        assert first["child_deployment"] == CHILD_DEPLOYMENT
        outcomes = first["targets"]
        assert [o["name"] for o in outcomes] == [f"{bucket}/tmp/" for bucket in BUCKETS]
        for outcome in outcomes:
            assert (outcome["status"], outcome["exit_code"]) == ("completed", 0)
            # Read back from the child's outcome artifact.
            counts = (outcome["counts"].get("matched"), outcome["counts"].get("deleted"))
            assert counts == (len(DEMO_OLD), len(DEMO_OLD)), outcome
        assert first["totals"]["deleted"] == len(DEMO_OLD) * len(BUCKETS)
        for bucket in BUCKETS:
            # The young objects under tmp/ and the objects beside it; the lock released.
            assert fleet.server.keys(bucket) == DEMO_KEPT

    def test_children_are_runs_of_the_child_deployment_taken_by_both_workers_when_executed(
        self, fleet: Fleet, first: dict[str, Any]
    ) -> None:
        runs = {run["id"]: run for run in fleet.child_runs()}

        assert set(runs) == {o["flow_run_id"] for o in first["targets"]}
        assert {run["state"]["type"] for run in runs.values()} == {"COMPLETED"}
        assert sorted(run["parameters"]["bucket"] for run in runs.values()) == list(BUCKETS)
        assert all(run["parameters"]["dry_run"] is False for run in runs.values())
        # A worker labels each flow run it submits with its name, before it starts it.
        workers = [run["labels"].get("prefect.worker.name") for run in runs.values()]
        assert set(workers) == set(WORKERS), workers
        # The fleet's report says which worker ran each child.
        assert {o["worker"] for o in first["targets"]} == set(WORKERS)

    def test_finds_its_children_instead_of_starting_them_again_when_run_with_the_same_key(
        self, fleet: Fleet, first: dict[str, Any], tmp_path: Path
    ) -> None:
        before = {run["id"]: run["state"]["id"] for run in fleet.child_runs()}

        again = fleet.run(tmp_path / "fleet.json")

        # No new child run, and none of them run again (each keeps its final state).
        assert {run["id"]: run["state"]["id"] for run in fleet.child_runs()} == before
        assert len(before) == len(BUCKETS)
        assert again["status"] == first["status"]
        assert again["totals"] == first["totals"]
        shown = ("name", "status", "exit_code", "counts", "flow_run_id")
        assert [{k: o[k] for k in shown} for o in again["targets"]] == [
            {k: o[k] for k in shown} for o in first["targets"]
        ]
