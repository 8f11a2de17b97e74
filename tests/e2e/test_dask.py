"""A run spread over a Dask cluster: a scheduler and two workers started from the command line,
each with its own AWS identity, against a moto server behind a proxy that records who sent what."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deployments.local_aws import LocalAws
from devtools.dask_cluster import DaskCluster, dask_cluster
from devtools.prefect_server import PrefectServer
from devtools.processes import BIN
from tests.e2e.conftest import Cli
from tests.support.fault_proxy import FaultProxy, FaultRule
from tests.support.moto_backend import bulk_put

pytestmark = pytest.mark.e2e

WORKER_KEYS = ("worker-one-fake-access-key", "worker-two-fake-access-key")
CLIENT_KEY = "client-fake-access-key"
OLD = datetime.now(UTC) - timedelta(days=60)
YOUNG = datetime.now(UTC) - timedelta(days=1)


def aws_environment(access_key: str, endpoint: str, home: Path) -> dict[str, str]:
    """An identity of its own (obviously fake keys), pointed at the proxy."""
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": f"{access_key}-secret",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "PREFECT_HOME": str(home),
    }


@pytest.fixture(scope="module")
def proxy(moto_http: LocalAws) -> Iterator[FaultProxy]:
    with FaultProxy(moto_http.endpoint_url) as running:
        yield running


@pytest.fixture(scope="module")
def cluster(
    proxy: FaultProxy, prefect_api: PrefectServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaskCluster]:
    workdir = tmp_path_factory.mktemp("dask")
    environments = [
        {
            **aws_environment(key, proxy.url, workdir / f"home-{n}"),
            "PREFECT_API_URL": prefect_api.api_url,
        }
        for n, key in enumerate(WORKER_KEYS)
    ]
    with dask_cluster(workdir, environments, threads=2) as running:
        yield running


def fill(s3_endpoint: LocalAws, bucket: str) -> tuple[set[str], set[str]]:
    """A prefix with two folders and a large flat part, old and young mixed, and old objects
    beside it; returns (the old keys under the prefix, every key that must remain)."""
    import boto3

    boto3.client(
        "s3",
        endpoint_url=s3_endpoint.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="fill-fake-access-key",
        aws_secret_access_key="fill-fake-secret-key",
    ).create_bucket(Bucket=bucket)
    old = {f"data/day-{d}/part-{n:05d}" for d in (1, 2) for n in range(1200)}
    old |= {f"data/flat-{n:06d}" for n in range(0, 6000, 2)}
    young = {f"data/flat-{n:06d}" for n in range(1, 6000, 2)} | {"data/day-1/new"}
    beside = {f"data-keep/old-{n}" for n in range(20)}
    bulk_put(bucket, sorted(old | beside), OLD)
    bulk_put(bucket, sorted(young), YOUNG)
    return old, young | beside


def client_environment(proxy: FaultProxy, prefect_api: PrefectServer, home: Path) -> dict[str, str]:
    return {
        **aws_environment(CLIENT_KEY, proxy.url, home / "home"),
        "PREFECT_API_URL": prefect_api.api_url,
        "MANIFEST_LOCATION": str(home / "plans"),
        "SHARD_SIZE": "1000",
    }


def run_arguments(bucket: str, address: str, report: Path, execute: bool = True) -> list[str]:
    return [
        *("run", "--bucket", bucket, "--prefix", "data/", "--older-than-days", "30"),
        *("--dask-address", address, "--no-create-bucket", "--report-json", str(report)),
        *(["--execute"] if execute else []),
    ]


def keys(s3_endpoint: LocalAws, bucket: str) -> set[str]:
    from moto.s3.models import s3_backends

    from deployments.local_aws import LOCAL_ACCOUNT_ID

    return set(s3_backends[LOCAL_ACCOUNT_ID]["aws"].buckets[bucket].keys.keys())


def test_workers_plan_then_apply_the_saved_plan_deleting_exactly_the_old_objects(
    moto_http: LocalAws,
    proxy: FaultProxy,
    cluster: DaskCluster,
    prefect_api: PrefectServer,
    tmp_path: Path,
) -> None:
    bucket = f"dask-{uuid.uuid4().hex[:8]}"
    old, remaining = fill(moto_http, bucket)
    cli = Cli(client_environment(proxy, prefect_api, tmp_path))
    dry_path, report_path = tmp_path / "dry.json", tmp_path / "report.json"
    before = len(proxy.exchanges)

    dry = cli(*run_arguments(bucket, cluster.address, dry_path, execute=False))
    assert dry.code == 0, dry.stderr[-3000:]
    plan = json.loads(dry_path.read_text())["manifest"]
    applied = cli(*run_arguments(bucket, cluster.address, report_path), "--plan", plan)

    assert applied.code == 0, applied.stderr[-3000:]
    assert plan.endswith(".index.jsonl")
    report = json.loads(report_path.read_text())
    assert (report["status"], report["matched"], report["deleted"]) == (
        "completed",
        len(old),
        len(old),
    )
    assert keys(moto_http, bucket) == remaining
    sent = Counter((e.access_key, e.operation) for e in proxy.exchanges[before:])
    for key in WORKER_KEYS:
        assert sent[(key, "ListObjectsV2")] > 0, sent
        assert sent[(key, "DeleteObjects")] > 0, sent
    assert sent[(CLIENT_KEY, "DeleteObjects")] == 0
    assert sent[(CLIENT_KEY, "ListObjectsV2")] == 0
    assert len(report["workers"]) == 2
    # The requests of every machine are in the report.
    assert report["requests"]["DeleteObjects"] == sum(
        count for (_, operation), count in sent.items() if operation == "DeleteObjects"
    )


def test_every_planned_object_is_accounted_for_and_a_rerun_finishes_when_a_worker_dies(
    moto_http: LocalAws,
    proxy: FaultProxy,
    prefect_api: PrefectServer,
    tmp_path: Path,
) -> None:
    bucket = f"dask-killed-{uuid.uuid4().hex[:8]}"
    old, remaining = fill(moto_http, bucket)
    environments = [
        {
            **aws_environment(key, proxy.url, tmp_path / f"home-{n}"),
            "PREFECT_API_URL": prefect_api.api_url,
        }
        for n, key in enumerate(WORKER_KEYS)
    ]
    environment = client_environment(proxy, prefect_api, tmp_path)
    first_report, second_report = tmp_path / "first.json", tmp_path / "second.json"
    # Each batch of deletes takes a second, so the worker dies with batches in flight.
    proxy.rules = [FaultRule("DeleteObjects", "slow", burst=(1, 8), delay_s=1.0)]
    try:
        with dask_cluster(tmp_path / "dask", environments, threads=2) as doomed:
            before = len(proxy.exchanges)
            run = subprocess.Popen(
                [
                    str(BIN / "s3-housekeeping"),
                    *run_arguments(bucket, doomed.address, first_report),
                ],
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert wait_for_delete_by(proxy, WORKER_KEYS[0], before, 120), "no delete was sent"
            doomed.workers[0].send_signal(signal.SIGKILL)
            stdout, stderr = run.communicate(timeout=240)
            assert run.returncode in (0, 7), stderr[-3000:] + failure(stdout)

            first = json.loads(first_report.read_text())
            outcomes = first["deleted"] + first["skipped_changed"] + first["failed"]
            assert first["matched"] == len(old) and outcomes == first["matched"]
            proxy.rules = []

            again = Cli(environment)(*run_arguments(bucket, doomed.address, second_report))
    finally:
        proxy.rules = []

    assert again.code == 0, again.stderr[-3000:]
    assert keys(moto_http, bucket) == remaining


def wait_for_delete_by(proxy: FaultProxy, access_key: str, after: int, timeout_s: float) -> bool:
    """Wait until a DeleteObjects signed with `access_key` has been answered."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        exchanges = proxy.exchanges[after:]
        if any(e.access_key == access_key and e.operation == "DeleteObjects" for e in exchanges):
            return True
        time.sleep(0.05)
    return False


def failure(logs: str) -> str:
    """The error records of a run's JSON log lines (for a failed assertion's message)."""
    lines = [line for line in logs.splitlines() if '"ERROR"' in line or "Traceback" in line]
    return "\n".join(lines)[-6000:]
