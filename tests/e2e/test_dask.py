"""A run spread over a Dask cluster: a scheduler and two workers started from the command line,
each with its own AWS identity, against a moto server behind a proxy that records who sent what."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

import pytest

from deployments.local_aws import LocalAws
from devtools.dask_cluster import DaskCluster, dask_cluster
from devtools.prefect_server import PrefectServer
from devtools.processes import BIN
from tasks.s3.bucket_lock import LOCK_KEY, Lease
from tasks.s3.kept_list import read_kept_list
from tasks.s3.manifest import read_objects
from tests.e2e.conftest import Cli
from tests.support.fault_proxy import FaultProxy, FaultRule
from tests.support.moto_backend import backdate_versions, bulk_put

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


def filler(s3_endpoint: LocalAws) -> Any:
    """A client of the S3 server with the identity that fills its buckets (no proxy between)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="fill-fake-access-key",
        aws_secret_access_key="fill-fake-secret-key",
    )


def fill(s3_endpoint: LocalAws, bucket: str) -> tuple[set[str], set[str]]:
    """A prefix with two folders and a large flat part, old and young mixed, and old objects
    beside it; returns (the old keys under the prefix, every key that must remain)."""
    filler(s3_endpoint).create_bucket(Bucket=bucket)
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


def run_arguments(
    bucket: str, address: str | None, report: Path, execute: bool = True
) -> list[str]:
    """A run of data/ in the bucket: on the Dask cluster at `address`, or in one process."""
    return [
        *("run", "--bucket", bucket, "--prefix", "data/", "--older-than-days", "30"),
        *("--no-create-bucket", "--report-json", str(report)),
        *(("--dask-address", address) if address else ()),
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


def fill_versions(s3_endpoint: LocalAws, bucket: str) -> None:
    """A versioned bucket: 800 keys under data/ with three versions each, superseded 58 and 59
    days ago, every tenth deleted (a delete marker on top), and old versions beside it."""
    s3 = filler(s3_endpoint)
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for key in [f"data/k{n:04d}" for n in range(800)] + ["data-keep/k"]:
        bulk_put(bucket, [key] * 3, OLD)
        deleted = key.endswith("0")
        if deleted:
            s3.delete_object(Bucket=bucket, Key=key)
        moments = [OLD + timedelta(days=day) for day in range(3 + deleted)]
        backdate_versions(bucket, key, moments)


def versions_left(s3_endpoint: LocalAws, bucket: str) -> list[tuple[str, str, bool]]:
    from moto.s3.models import s3_backends

    from deployments.local_aws import LOCAL_ACCOUNT_ID

    stored = s3_backends[LOCAL_ACCOUNT_ID]["aws"].buckets[bucket].keys
    left = []
    for key in stored:
        versions = stored.getlist(key)  # oldest first
        left += [
            (key, type(version).__name__, position == len(versions) - 1)
            for position, version in enumerate(versions)
        ]
    return sorted(left)


def test_noncurrent_versions_on_the_workers_end_as_in_one_process(
    moto_http: LocalAws,
    proxy: FaultProxy,
    cluster: DaskCluster,
    prefect_api: PrefectServer,
    tmp_path: Path,
) -> None:
    on_dask, in_one = (f"dask-ver-{uuid.uuid4().hex[:8]}" for _ in range(2))
    fill_versions(moto_http, on_dask)
    fill_versions(moto_http, in_one)
    cli = Cli(client_environment(proxy, prefect_api, tmp_path))
    before = len(proxy.exchanges)

    spread = cli(
        *run_arguments(on_dask, cluster.address, tmp_path / "dask.json"),
        *("--versions", "noncurrent"),
    )
    sent = Counter((e.access_key, e.operation) for e in proxy.exchanges[before:])
    single = cli(*run_arguments(in_one, None, tmp_path / "one.json"), *("--versions", "noncurrent"))

    assert spread.code == 0, spread.stderr[-3000:]
    assert single.code == 0, single.stderr[-3000:]
    fields = ("status", "scanned", "matched", "deleted", "skipped_changed", "unrecoverable_keys")
    dask_report = json.loads((tmp_path / "dask.json").read_text())
    one_report = json.loads((tmp_path / "one.json").read_text())
    assert [dask_report[f] for f in fields] == [one_report[f] for f in fields]
    # 800 keys: two noncurrent versions each, three for the 80 deleted (left without data).
    assert (dask_report["matched"], dask_report["unrecoverable_keys"]) == (1680, 80)
    left = versions_left(moto_http, on_dask)
    assert left == versions_left(moto_http, in_one)
    assert [entry for entry in left if entry[0].startswith("data/")] == [
        (f"data/k{n:04d}", "FakeDeleteMarker" if n % 10 == 0 else "FakeKey", True)
        for n in range(800)
    ]
    # The workers listed and deleted the versions; the run's own process did neither.
    workers = {key for key, operation in sent if operation == "ListObjectVersions"}
    assert workers and workers <= set(WORKER_KEYS)
    assert {key for key, operation in sent if operation == "DeleteObjects"} <= set(WORKER_KEYS)
    assert sent[(CLIENT_KEY, "DeleteObjects")] == sent[(CLIENT_KEY, "ListObjectVersions")] == 0


def fill_backups(s3_endpoint: LocalAws, bucket: str, start: datetime | None = None) -> set[str]:
    """Two databases' backups, 1,500 each, one every 2 hours back from `start` (31 days ago;
    so each spans 125 days), in folders larger than a shard: each folder, a group, is cut
    between shards. The first also has a young backup. Returns every key."""
    filler(s3_endpoint).create_bucket(Bucket=bucket)
    start = start or datetime.now(UTC) - timedelta(days=31)
    everything = set()
    for database in ("db-a", "db-b"):
        for n in range(1500):
            key = f"data/{database}/dump-{n:05d}.sql"
            bulk_put(bucket, [key], start - timedelta(hours=2 * n))
            everything.add(key)
    bulk_put(bucket, ["data/db-a/dump-new.sql"], YOUNG)
    return everything | {"data/db-a/dump-new.sql"}


def test_keep_rules_on_the_workers_delete_what_one_process_would(
    moto_http: LocalAws,
    proxy: FaultProxy,
    cluster: DaskCluster,
    prefect_api: PrefectServer,
    tmp_path: Path,
) -> None:
    """Groups straddle shards: what the shards' keep rules still hold is settled by the run
    into one more part, and the workers delete exactly what one process plans. The kept list,
    made of the parts' (the shards' excluded objects, the settled part's kept newest), is the
    one process's."""
    on_dask, in_one = (f"dask-keep-{uuid.uuid4().hex[:8]}" for _ in range(2))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=31)  # both buckets alike
    everything = fill_backups(moto_http, on_dask, start)
    fill_backups(moto_http, in_one, start)
    cli = Cli(client_environment(proxy, prefect_api, tmp_path))
    rules = ("--keep-newest", "3", "--keep-daily", "5", "--keep-monthly", "3")
    rules += ("--group-by", "depth:1", "--exclude", "**/dump-014??.sql", "--list-kept")

    single = cli(*run_arguments(in_one, None, tmp_path / "one.json", execute=False), *rules)
    spread = cli(*run_arguments(on_dask, cluster.address, tmp_path / "dask.json"), *rules)

    assert single.code == 0, single.stderr[-3000:]
    assert spread.code == 0, spread.stderr[-3000:]
    one_report = json.loads((tmp_path / "one.json").read_text())
    dask_report = json.loads((tmp_path / "dask.json").read_text())
    planned = {entry.key for entry in read_objects(Path(one_report["manifest"]))}
    assert keys(moto_http, on_dask) == everything - planned
    # Which days and months hold the newest depends on the hour the test runs; the newest do
    # not: the young backup and 2 more of db-a, 3 of db-b.
    assert dask_report["kept"] == one_report["kept"]
    assert dask_report["kept"]["keep_newest"] == 5
    assert sum(dask_report["kept"].values()) == 3000 - len(planned)
    assert dask_report["deleted"] == len(planned) > 2700  # 200 excluded
    # The last part is the settled one: it lists nothing and plans what the shards held.
    index = [json.loads(line) for line in Path(dask_report["manifest"]).read_text().splitlines()]
    settled = [line["part"] for line in index if "part" in line][-1]
    assert settled["scanned"] == 0 and settled["matched"] > 0
    one_kept = read_kept_list(Path(one_report["kept_list"]))
    dask_kept = read_kept_list(Path(dask_report["kept_list"]))
    assert dask_report["kept_list"] == dask_report["manifest"].replace(
        ".index.jsonl", ".kept.jsonl.gz"
    )
    assert sorted(dask_kept, key=itemgetter("key")) == sorted(one_kept, key=itemgetter("key"))
    assert Counter(line["reason"] for line in dask_kept) == dask_report["kept"]
    assert dask_report["kept"]["exclude"] == 200


def test_a_run_refused_by_another_runs_lock_writes_its_report_and_sends_no_work(
    moto_http: LocalAws,
    proxy: FaultProxy,
    cluster: DaskCluster,
    prefect_api: PrefectServer,
    tmp_path: Path,
) -> None:
    bucket = f"dask-lock-{uuid.uuid4().hex[:8]}"
    old, remaining = fill(moto_http, bucket)
    lease = Lease("run-elsewhere", "data/", "2026-11-29T08:00:00Z", expiry_s=600)
    moto_http.client("s3").put_object(
        Bucket=bucket, Key=LOCK_KEY, Body=json.dumps(asdict(lease)).encode()
    )
    cli = Cli(client_environment(proxy, prefect_api, tmp_path))
    before = len(proxy.exchanges)

    refused = cli(*run_arguments(bucket, cluster.address, tmp_path / "report.json"))

    assert refused.code == 6, refused.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "refused" and "locked by run run-elsewhere" in report["message"]
    assert keys(moto_http, bucket) == old | remaining | {LOCK_KEY}
    sent = Counter(e.operation for e in proxy.exchanges[before:])
    assert sent["DeleteObjects"] == sent["ListObjectsV2"] == 0


@pytest.mark.parametrize("answers", [False, True], ids=["closed-port", "silent-port"])
def test_a_run_exits_3_naming_the_scheduler_when_no_scheduler_answers_there(
    answers: bool,
    moto_http: LocalAws,
    proxy: FaultProxy,
    prefect_api: PrefectServer,
    tmp_path: Path,
) -> None:
    bucket = f"dask-gone-{uuid.uuid4().hex[:8]}"
    moto_http.client("s3").create_bucket(Bucket=bucket)
    old = {f"data/old-{n}" for n in range(5)}
    bulk_put(bucket, sorted(old), OLD)
    environment = {
        **client_environment(proxy, prefect_api, tmp_path),
        "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "3s",
    }
    with socket.socket() as port:
        port.bind(("127.0.0.1", 0))
        if answers:  # accepts connections (the kernel's backlog) and never says a word
            port.listen(8)
        address = f"tcp://127.0.0.1:{port.getsockname()[1]}"
        if not answers:
            port.close()
        started = time.monotonic()
        run = Cli(environment)(*run_arguments(bucket, address, tmp_path / "report.json"))
        took_s = time.monotonic() - started

    assert run.code == 3, run.stderr[-3000:]
    assert f"s3-housekeeping: Dask scheduler {address} unreachable: " in run.stderr
    assert took_s < 60
    # The bucket's lock, taken before the cluster is reached, was given back.
    assert keys(moto_http, bucket) == old


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
