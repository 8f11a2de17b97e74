"""A run spread over a Dask cluster: a scheduler and two workers started from the command line,
each with its own AWS identity, against a moto server behind a proxy that records who sent what."""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deployments.local_aws import LocalAws
from devtools.dask_cluster import DaskCluster, dask_cluster
from devtools.prefect_server import PrefectServer
from tests.e2e.conftest import Cli
from tests.support.fault_proxy import FaultProxy
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
    with dask_cluster(workdir, environments) as running:
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
    old |= {f"data/flat-{n:06d}" for n in range(0, 9000, 2)}
    young = {f"data/flat-{n:06d}" for n in range(1, 9000, 2)} | {"data/day-1/new"}
    beside = {f"data-keep/old-{n}" for n in range(20)}
    bulk_put(bucket, sorted(old | beside), OLD)
    bulk_put(bucket, sorted(young), YOUNG)
    return old, young | beside


def keys(s3_endpoint: LocalAws, bucket: str) -> set[str]:
    from moto.s3.models import s3_backends

    from deployments.local_aws import LOCAL_ACCOUNT_ID

    return set(s3_backends[LOCAL_ACCOUNT_ID]["aws"].buckets[bucket].keys.keys())


def test_workers_list_and_delete_exactly_the_old_objects_when_given_a_dask_address(
    moto_http: LocalAws,
    proxy: FaultProxy,
    cluster: DaskCluster,
    prefect_api: PrefectServer,
    tmp_path: Path,
) -> None:
    bucket = f"dask-{uuid.uuid4().hex[:8]}"
    old, remaining = fill(moto_http, bucket)
    cli = Cli(
        {
            **aws_environment(CLIENT_KEY, proxy.url, tmp_path / "home"),
            "PREFECT_API_URL": prefect_api.api_url,
            "MANIFEST_LOCATION": str(tmp_path / "plans"),
            "SHARD_SIZE": "1000",
        }
    )
    report_path = tmp_path / "report.json"
    before = len(proxy.exchanges)

    ran = cli(
        "run",
        *("--bucket", bucket, "--prefix", "data/", "--older-than-days", "30"),
        *("--dask-address", cluster.address, "--no-create-bucket", "--execute"),
        *("--report-json", str(report_path)),
    )

    assert ran.code == 0, ran.stderr[-3000:]
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
