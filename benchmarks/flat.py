"""`make bench-flat`: one flat prefix of N objects, all old, listed and deleted by s3-housekeeping
and its peers, side by side, through the counting proxy with --delay-ms added to every request.

Read-only rows share one filled bucket: s3-housekeeping's dry run (LIST_CONCURRENCY at its
default and at each --concurrency), the same dry run on an empty prefix (its fixed cost),
`s5cmd ls` and `aws s3 ls`. Executing rows get a freshly filled bucket each:
`s3-housekeeping run --execute` and `s5cmd rm`. Each row records wall time, requests by
operation (with how the ListObjectsV2 requests walked the key space), the tool's CPU, the
SeaweedFS server's CPU and the Prefect server's CPU over the tool's run.

With --dask, a local Dask cluster (`dask scheduler` and --dask-workers `dask worker`
processes of --dask-threads threads each, on 127.0.0.1) runs the same dry run (and its empty
prefix) and the same --execute with `--dask-address`, beside the one-process rows, on the same
data; those rows add the workers' and the scheduler's CPU, the report's `workers`, and the
plan-shard/apply-shard task runs the Prefect server recorded (count, median, max, sum).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.fill import (
    KEEP_PREFIX,
    PREFIX,
    Cutoff,
    Dataset,
    VerificationError,
    check_after,
    check_filled,
)
from benchmarks.measure import (
    Measurement,
    process_tree_cpu_s,
    run_measured,
    self_cpu_s,
    wait_until_idle,
)
from benchmarks.peers import (
    S3HK,
    Command,
    RunContext,
    aws_s3_ls,
    s3_housekeeping,
    s5cmd_ls_wildcard,
    s5cmd_rm_wildcard,
)
from benchmarks.proxy import CountingProxy
from benchmarks.report import OVERHEAD, format_row, median_runs
from benchmarks.run import (
    Result,
    Target,
    code_state,
    machine,
    read_report,
    save_results,
    tail,
    terminate,
    warm_up,
)
from benchmarks.servers import tool_environment
from devtools.dask_cluster import DaskCluster, dask_cluster
from devtools.prefect_server import PrefectServer

SERVER = "seaweedfs"
EMPTY_PREFIX = "bench-empty/"
DRY_RUN = f"{S3HK} dry run"
EXECUTE = f"{S3HK} --execute"
DASK_DRY_RUN = f"{DRY_RUN} --dask-address"
DASK_OVERHEAD = f"{S3HK} --dask-address (empty prefix)"
DASK_EXECUTE = f"{EXECUTE} --dask-address"
#: The names of the Prefect tasks a run on Dask submits per shard (tasks/execution/shards.py).
SHARD_TASKS = ("plan-shard", "apply-shard")
#: The product's default LIST_CONCURRENCY (tasks/settings.py), for the table only.
DEFAULT_LIST_CONCURRENCY = 8
#: The product's tuning variables: taken out of the tools' environment, so that the default
#: row measures the defaults whatever the shell running the bench has set.
PRODUCT_TUNING = ("LIST_CONCURRENCY", "SHARD_SIZE", "DELETE_CONCURRENCY")
#: Requests that change the bucket: a read-only row must send none.
WRITES = ("DeleteObject", "DeleteObjects", "PutObject", "CopyObject", "PostObject")
#: The issue's target: s3-housekeeping at least this many times faster than each peer.
TARGET_FACTOR = 3.0
QUICK_OBJECTS = 20_000


def dry_run(context: RunContext) -> Command:
    """s3-housekeeping's default: plan and report, delete nothing."""
    return s3_housekeeping(context, execute=False)


@dataclass(frozen=True)
class Row:
    """One measured command: its name in the table, how to build it, and what it must do."""

    name: str
    description: str
    build: Callable[[RunContext], Command]
    executes: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    prefix: str = PREFIX
    list_concurrency: int | None = None
    #: Run with `--dask-address` on the bench's local Dask cluster.
    dask: bool = False


def read_only_rows(concurrencies: list[int], dask: bool = False) -> list[Row]:
    """The rows that list the one filled bucket and must leave it as it is."""
    rows = [
        Row(
            DRY_RUN,
            f"s3-housekeeping run (dry run), LIST_CONCURRENCY default ({DEFAULT_LIST_CONCURRENCY})",
            dry_run,
            list_concurrency=DEFAULT_LIST_CONCURRENCY,
        )
    ]
    rows += [
        Row(
            f"{DRY_RUN}, LIST_CONCURRENCY={n}",
            f"s3-housekeeping run (dry run) with LIST_CONCURRENCY={n}",
            dry_run,
            env={"LIST_CONCURRENCY": str(n)},
            list_concurrency=n,
        )
        for n in concurrencies
    ]
    rows += [
        Row(
            OVERHEAD,
            "the default dry run on a prefix with no objects: start-up and fixed cost",
            dry_run,
            prefix=EMPTY_PREFIX,
            list_concurrency=DEFAULT_LIST_CONCURRENCY,
        ),
    ]
    if dask:
        rows += [
            Row(
                DASK_DRY_RUN,
                "the default dry run with --dask-address: its shards on the local Dask cluster",
                dry_run,
                list_concurrency=DEFAULT_LIST_CONCURRENCY,
                dask=True,
            ),
            Row(
                DASK_OVERHEAD,
                "the Dask dry run on a prefix with no objects: its fixed cost",
                dry_run,
                prefix=EMPTY_PREFIX,
                list_concurrency=DEFAULT_LIST_CONCURRENCY,
                dask=True,
            ),
        ]
    rows += [
        Row("s5cmd ls", f"s5cmd ls 's3://B/{PREFIX}*'", s5cmd_ls_wildcard),
        Row("aws s3 ls", f"aws s3 ls s3://B/{PREFIX} --recursive", aws_s3_ls),
    ]
    return rows


def executing_rows(dask: bool = False) -> list[Row]:
    """The rows that delete everything under the prefix, each on a freshly filled bucket."""
    rows = [
        Row(
            EXECUTE,
            "s3-housekeeping run --execute (deletes while it lists)",
            s3_housekeeping,
            executes=True,
            list_concurrency=DEFAULT_LIST_CONCURRENCY,
        )
    ]
    if dask:
        rows.append(
            Row(
                DASK_EXECUTE,
                "s3-housekeeping run --execute with --dask-address: plan and apply on the cluster",
                s3_housekeeping,
                executes=True,
                list_concurrency=DEFAULT_LIST_CONCURRENCY,
                dask=True,
            )
        )
    rows.append(
        Row(
            "s5cmd rm",
            f"s5cmd rm 's3://B/{PREFIX}*' (its own listing; no age filter)",
            s5cmd_rm_wildcard,
            executes=True,
        )
    )
    return rows


@dataclass
class FlatResult(Result):
    """One row's run, as written to the JSON results (the fields of `make bench` and more)."""

    phase: str = "read-only"
    #: Objects the row had to list (read-only) or delete (executing): N, or 0 on the empty prefix.
    objects: int = 0
    #: How many the tool itself said it listed, planned or deleted (its report or its output).
    tool_count: int | None = None
    list_concurrency: int | None = None
    #: CPU seconds over the tool's run of the SeaweedFS process, of the Prefect server's
    #: process tree, and of the bench's own process (the proxy's threads, mostly).
    server_cpu_s: float = 0.0
    prefect_cpu_s: float = 0.0
    proxy_cpu_s: float = 0.0
    #: The 1-minute load average just before the run, and the seconds spent waiting for the
    #: server to go idle after the previous step.
    load_before: float = 0.0
    settle_s: float = 0.0
    #: Rows run with --dask-address: the cluster's shape, the CPU seconds of the workers'
    #: process trees (nannies and worker processes) and of the scheduler over the run, the
    #: report's `workers`, and the shards' task runs as the Prefect server recorded them.
    dask: bool = False
    dask_workers: int = 0
    dask_threads: int = 0
    workers_cpu_s: float | None = None
    scheduler_cpu_s: float | None = None
    report_workers: list[str] = field(default_factory=list)
    shards: dict[str, Any] = field(default_factory=dict)


@dataclass
class FlatBench:
    """The state of one `make bench-flat`: options, servers, the proxy, results so far."""

    args: argparse.Namespace
    workdir: Path
    dataset: Dataset
    target: Target
    proxy: CountingProxy
    prefect: PrefectServer
    results: list[FlatResult] = field(default_factory=list)
    runs: int = 0
    fills: list[dict[str, Any]] = field(default_factory=list)
    cluster: DaskCluster | None = None
    scheduler_pid: int | None = None


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.flat", description=__doc__)
    parser.add_argument(
        "--objects", type=int, default=None, help="objects under the prefix (default 200000)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke check: {QUICK_OBJECTS} objects unless --objects says otherwise",
    )
    parser.add_argument(
        "--keep", type=int, default=None, help="old objects beside the prefix (default N/20)"
    )
    parser.add_argument("--delay-ms", type=float, default=50.0, help="added to every request")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per row; the tables show the median"
    )
    parser.add_argument(
        "--concurrency",
        default="16,32",
        help="extra dry-run rows with these LIST_CONCURRENCY values (comma-separated; '' none)",
    )
    parser.add_argument(
        "--no-execute", action="store_true", help="only the read-only rows (one fill)"
    )
    parser.add_argument(
        "--tool-timeout", type=float, default=600.0, help="seconds; a slower tool is stopped"
    )
    parser.add_argument(
        "--dask",
        action="store_true",
        help="add the dry run and --execute with --dask-address on a local Dask cluster",
    )
    parser.add_argument(
        "--dask-workers", type=int, default=2, help="`dask worker` processes (with --dask)"
    )
    parser.add_argument(
        "--dask-threads", type=int, default=2, help="--nthreads of each worker (with --dask)"
    )
    parser.add_argument("--results", type=Path, default=None, help="JSON file to write")
    parser.add_argument("--keep-workdir", action="store_true", help="keep logs and data")
    args = parser.parse_args(argv)
    if args.objects is None:
        args.objects = QUICK_OBJECTS if args.quick else 200_000
    if args.objects < 1:
        parser.error("--objects must be at least 1")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.delay_ms < 0:
        parser.error("--delay-ms must not be negative")
    try:
        args.concurrency = [int(n) for n in args.concurrency.split(",") if n.strip()]
    except ValueError:
        parser.error("--concurrency: comma-separated whole numbers, e.g. 16,32")
    if any(not 1 <= n <= 64 for n in args.concurrency):
        parser.error("--concurrency: LIST_CONCURRENCY is 1 to 64")
    if args.dask_workers < 1 or args.dask_threads < 1:
        parser.error("--dask-workers and --dask-threads must be at least 1")
    if args.keep is None:
        args.keep = max(1, args.objects // 20)
    return args


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


def fill(bench: FlatBench, bucket: str) -> Cutoff:
    """A fresh bucket with the dataset, checked; its time goes into the results."""
    started = time.perf_counter()
    cutoff = bench.target.fill(bucket)
    seconds = time.perf_counter() - started
    bench.fills.append({"bucket": bucket, "seconds": round(seconds, 1)})
    print(f"filled {bucket}: {bench.dataset.total + bench.dataset.keep} objects in {seconds:.0f} s")
    return cutoff


def measure_row(
    bench: FlatBench, row: Row, bucket: str, cutoff: Cutoff, repetition: int
) -> FlatResult:
    """Run one row's command through the proxy, with the CPU of everything around it."""
    bench.runs += 1
    rundir = bench.workdir / "runs" / f"{bench.runs:03d}-{slug(row.name)}"
    rundir.mkdir(parents=True, exist_ok=True)
    objects = bench.dataset.total if row.prefix == PREFIX else 0
    result = FlatResult(
        server=SERVER,
        variant="delay" if bench.proxy.delay_ms else "proxy",
        delay_ms=bench.proxy.delay_ms,
        tool=row.name,
        description=row.description,
        planned=objects,
        listed=objects,
        repetition=repetition,
        phase="executing" if row.executes else "read-only",
        objects=objects,
        list_concurrency=row.list_concurrency,
        dask=row.dask,
    )
    cluster = bench.cluster if row.dask else None
    if row.dask and cluster is None:
        raise RuntimeError(f"{row.name}: no Dask cluster (--dask)")
    context = RunContext(
        endpoint_url=bench.proxy.url,
        server=SERVER,
        bucket=bucket,
        dataset=bench.dataset,
        cutoff=cutoff,
        workdir=rundir,
        prefect_api_url=bench.prefect.api_url,
        prefect_home=bench.workdir / "prefect-client-home",
        prefix=row.prefix,
        s3hk_args=("--dask-address", cluster.address) if cluster else (),
    )
    command = row.build(context)
    env = {k: v for k, v in command.env.items() if k not in PRODUCT_TUNING} | dict(row.env)
    server_pid, prefect_pid = pid_of(bench.target), pid_of(bench.prefect)
    result.settle_s = round(wait_until_idle(server_pid), 1)
    result.load_before = round(os.getloadavg()[0], 2)
    bench.proxy.tally.reset()
    server_before, prefect_before = process_tree_cpu_s(server_pid), process_tree_cpu_s(prefect_pid)
    self_before = self_cpu_s()
    dask_before = dask_cpu_s(bench) if cluster else (0.0, 0.0)
    run_started = datetime.now(UTC)
    try:
        measured = run_measured(command.argv, env, bench.args.tool_timeout, rundir / "tool", rundir)
    except OSError as error:  # a binary missing: `make bench-install`
        result.status, result.detail = "failed", f"{error} (run `make bench-install`)"
        return result
    result.server_cpu_s = round(process_tree_cpu_s(server_pid) - server_before, 2)
    result.prefect_cpu_s = round(process_tree_cpu_s(prefect_pid) - prefect_before, 2)
    result.proxy_cpu_s = round(self_cpu_s() - self_before, 2)
    if cluster:
        workers_after, scheduler_after = dask_cpu_s(bench)
        result.workers_cpu_s = round(workers_after - dask_before[0], 2)
        result.scheduler_cpu_s = round(scheduler_after - dask_before[1], 2)
        result.dask_workers, result.dask_threads = len(cluster.workers), bench.args.dask_threads
    record_measurement(result, measured, bench.proxy.tally.snapshot())
    if row.build in (dry_run, s3_housekeeping):
        result.tool_report = read_report(rundir / "report.json")
    if cluster:
        result.report_workers = report_workers(rundir / "report.json")
        try:
            result.shards = shard_task_runs(bench.prefect.api_url, run_started)
        except (OSError, ValueError) as error:  # figures only: the run itself is checked below
            result.shards = {"error": str(error)}
    if measured.returncode != 0 and not measured.timed_out:
        result.status = "failed"
        result.detail = f"exit {measured.returncode}: " + tail(rundir / "tool.err")
    elif measured.timed_out:
        result.status = "time limit"
        result.detail = f"stopped after {bench.args.tool_timeout:.0f} s"
    verify(bench, row, result, rundir, bucket)
    return result


def dask_cpu_s(bench: FlatBench) -> tuple[float, float]:
    """CPU seconds so far of the workers' process trees (summed) and of the scheduler."""
    assert bench.cluster is not None
    workers = sum(process_tree_cpu_s(worker.pid) for worker in bench.cluster.workers)
    scheduler = process_tree_cpu_s(bench.scheduler_pid) if bench.scheduler_pid else 0.0
    return workers, scheduler


def report_workers(path: Path) -> list[str]:
    """The `workers` of s3-housekeeping's report: who listed or deleted on the cluster."""
    try:
        workers = json.loads(path.read_text()).get("workers", [])
    except (OSError, ValueError):
        return []
    return [str(worker) for worker in workers]


def _api_post(api_url: str, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item a Prefect API `.../filter` endpoint returns for `body`, page by page."""
    items: list[dict[str, Any]] = []
    while True:
        page = {**body, "limit": 200, "offset": len(items)}
        request = urllib.request.Request(  # noqa: S310 - the bench's own server on 127.0.0.1
            f"{api_url}{path}",
            data=json.dumps(page).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            got = json.loads(answer.read())
        items.extend(got)
        if len(got) < page["limit"]:
            return items


def _parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def shard_task_runs(api_url: str, since: datetime) -> dict[str, Any]:
    """The plan-shard and apply-shard task runs of the flow run(s) started since `since` (the
    bench runs one tool at a time): per task name, how many, their states, and their run
    times (median, max, sum) and span (first start to last end), in seconds."""
    flow_runs = _api_post(
        api_url, "/flow_runs/filter", {"flow_runs": {"start_time": {"after_": since.isoformat()}}}
    )
    ids = [run["id"] for run in flow_runs]
    figures: dict[str, Any] = {"flow_runs": len(ids)}
    if not ids:
        return figures
    for name in SHARD_TASKS:
        runs = _api_post(
            api_url,
            "/task_runs/filter",
            {"flow_runs": {"id": {"any_": ids}}, "task_runs": {"name": {"like_": name}}},
        )
        figures[name] = summarize_task_runs(runs)
    return figures


def summarize_task_runs(runs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    durations, starts, ends, states = [], [], [], {}
    for run in runs:
        start, end = _parse_time(run.get("start_time")), _parse_time(run.get("end_time"))
        state = run.get("state_type") or "unknown"
        states[state] = states.get(state, 0) + 1
        seconds = float(run.get("total_run_time") or 0.0)
        if not seconds and start and end:
            seconds = (end - start).total_seconds()
        durations.append(seconds)
        starts += [start] if start else []
        ends += [end] if end else []
    if not durations:
        return {"count": 0}
    return {
        "count": len(durations),
        "states": states,
        "median_s": round(statistics.median(durations), 3),
        "max_s": round(max(durations), 3),
        "sum_s": round(sum(durations), 3),
        "span_s": round((max(ends) - min(starts)).total_seconds(), 3) if starts and ends else None,
    }


def pid_of(server: Target | PrefectServer) -> int:
    process = server.server.process if isinstance(server, Target) else server.process
    if process is None:
        raise RuntimeError(f"{server} is not running")
    return process.pid


def record_measurement(result: FlatResult, measured: Measurement, requests: dict[str, Any]) -> None:
    result.seconds = round(measured.seconds, 3)
    result.peak_rss_mb = round(measured.peak_rss_mb, 1)
    result.cpu_s = round(measured.cpu_s, 2)
    result.returncode, result.timed_out = measured.returncode, measured.timed_out
    result.requests, result.requests_source = requests, result.variant
    if result.objects and result.seconds:
        result.objects_per_s = round(result.objects / result.seconds, 1)
        result.requests_per_1000 = round(int(requests["total"]) * 1000 / result.objects, 2)


def verify(bench: FlatBench, row: Row, result: FlatResult, rundir: Path, bucket: str) -> None:
    """A read-only row sent no write and saw every object; an executing row deleted every
    object under the prefix and nothing beside it (the bench's own listing, direct). What the
    tool says it listed or deleted (its report, or its output's lines) must agree."""
    report = result.tool_report
    if row.executes:
        try:
            outcome = check_after(
                bench.target.url, bucket, bench.dataset, complete=result.status == "ok"
            )
            result.deleted = outcome.deleted
        except VerificationError as error:
            result.status, result.detail = "verification failed", str(error)
            return
    else:
        writes = {op: n for op, n in result.requests["by_operation"].items() if op in WRITES}
        if writes:
            result.status, result.detail = "verification failed", f"a read-only row sent {writes}"
            return
    if report:
        result.tool_count = report.get("deleted" if row.executes else "matched")
    elif result.status == "ok":
        # One line per object: `s5cmd ls`, `aws s3 ls`; `s5cmd rm` prints each key it deleted.
        result.tool_count = count_lines(rundir / "tool.out")
    if result.status == "ok" and result.tool_count != result.objects:
        result.status = "verification failed"
        result.detail = f"the tool reports {result.tool_count} objects, {result.objects} expected"


def count_lines(path: Path) -> int:
    with path.open("rb") as lines:
        return sum(1 for line in lines if line.strip())


def announce(result: FlatResult) -> None:
    line = (
        f"[{result.phase}] {result.tool}: {result.status}, {result.objects} objects in "
        f"{result.seconds:.2f} s; client CPU {result.cpu_s} s, server CPU "
        f"{result.server_cpu_s} s; requests {result.requests.get('by_operation', {})}"
    )
    if result.status not in ("ok", "time limit"):
        line = f"!!! FAILED {line}: {result.detail}"
    print(line, flush=True)


def run_read_only(bench: FlatBench) -> None:
    """One filled bucket; every read-only row `--repeat` times, in turn; then the bucket is
    listed to check that it still holds every object."""
    bucket = "flat-read"
    cutoff = fill(bench, bucket)
    try:
        warm = Row("warm-up", "", dry_run, prefix=EMPTY_PREFIX)
        measure_row(bench, warm, bucket, cutoff, 0)  # Prefect's first run of a flow: not kept
        if bench.cluster:  # the workers' first shard (imports, their Prefect client): not kept
            warm_dask = Row("warm-up dask", "", dry_run, prefix=EMPTY_PREFIX, dask=True)
            measure_row(bench, warm_dask, bucket, cutoff, 0)
        for repetition in range(bench.args.repeat):
            for row in read_only_rows(bench.args.concurrency, bench.cluster is not None):
                result = measure_row(bench, row, bucket, cutoff, repetition)
                bench.results.append(result)
                announce(result)
        check_filled(bench.target.url, bucket, bench.dataset, cutoff)
    finally:
        bench.target.discard(bucket)


def run_executing(bench: FlatBench) -> None:
    """Each executing row `--repeat` times, each run on a freshly filled bucket."""
    for repetition in range(bench.args.repeat):
        for row in executing_rows(bench.cluster is not None):
            bucket = f"flat-exec-{bench.runs + 1:03d}"
            cutoff = fill(bench, bucket)
            try:
                result = measure_row(bench, row, bucket, cutoff, repetition)
            finally:
                bench.target.discard(bucket)
            bench.results.append(result)
            announce(result)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    signal.signal(signal.SIGTERM, terminate)
    workdir = Path(tempfile.mkdtemp(prefix="s3hk-bench-flat-"))
    dataset = Dataset(total=args.objects, keep=args.keep, all_old=True)
    started = datetime.now(UTC)
    bench: FlatBench | None = None
    try:
        with ExitStack() as stack:
            prefect = PrefectServer(workdir / "prefect")
            stack.enter_context(prefect)
            warm_up(["aws-s3-rm", "s5cmd", S3HK])
            target = Target(SERVER, workdir, dataset)
            target.start()
            stack.callback(target.stop)
            proxy = stack.enter_context(CountingProxy(target.url, args.delay_ms))
            bench = FlatBench(args, workdir, dataset, target, proxy, prefect)
            if args.dask:
                start_dask(bench, stack)
            print(
                f"flat benchmark: {args.objects} objects, all old, under {PREFIX} "
                f"({args.keep} beside it under {KEEP_PREFIX}); SeaweedFS behind the counting "
                f"proxy, {args.delay_ms:g} ms per request; work directory {workdir}",
                flush=True,
            )
            run_read_only(bench)
            if not args.no_execute:
                run_executing(bench)
    finally:
        try:
            if bench is not None and bench.results:
                document = results_document(bench, started)
                write_results(document, args, started)
                print_flat_tables(document)
        finally:
            if args.keep_workdir:
                print(f"kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    failed = [r for r in bench.results if r.status not in ("ok", "time limit")] if bench else []
    return 1 if failed else 0


def start_dask(bench: FlatBench, stack: ExitStack) -> None:
    """The local Dask cluster of the --dask rows, stopped with everything else. Each worker
    has the tools' environment (fake keys, the proxy as its endpoint), the bench's Prefect
    server and a PREFECT_HOME of its own; the plan parts go to each run's MANIFEST_DIR, a
    local directory every worker on this machine sees."""
    args = bench.args
    environments = [
        {
            name: value
            for name, value in tool_environment(
                {
                    "AWS_ENDPOINT_URL": bench.proxy.url,
                    "PREFECT_API_URL": bench.prefect.api_url,
                    "PREFECT_HOME": str(bench.workdir / "dask" / f"home-{number}"),
                }
            ).items()
            if name not in PRODUCT_TUNING
        }
        for number in range(1, args.dask_workers + 1)
    ]
    started = time.perf_counter()
    bench.cluster = stack.enter_context(
        dask_cluster(bench.workdir / "dask", environments, threads=args.dask_threads)
    )
    bench.scheduler_pid = scheduler_pid(bench.cluster.address)
    print(
        f"Dask cluster at {bench.cluster.address}: {args.dask_workers} workers x "
        f"{args.dask_threads} threads, ready in {time.perf_counter() - started:.1f} s",
        flush=True,
    )


def scheduler_pid(address: str) -> int | None:
    """The `dask scheduler` this process started for `address` (a child of ours, from /proc)."""
    port = address.rpartition(":")[2]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            parent = (entry / "stat").read_text().rpartition(")")[2].split()[1]
        except (OSError, IndexError):
            continue
        if parent == str(os.getpid()) and b"scheduler" in argv and port.encode() in argv:
            return int(entry.name)
    return None


def results_document(bench: FlatBench, started: datetime) -> dict[str, Any]:
    args = bench.args
    return {
        "kind": "flat",
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "objects": args.objects,
        "kept_beside_prefix": args.keep,
        "prefix": PREFIX,
        "server": SERVER,
        "delay_ms": args.delay_ms,
        "repeat": args.repeat,
        "list_concurrency_rows": args.concurrency,
        "tool_timeout_s": args.tool_timeout,
        "dask": (
            {"workers": args.dask_workers, "threads_per_worker": args.dask_threads}
            if args.dask
            else None
        ),
        "fills": bench.fills,
        **machine(),
        **code_state(),
        "results": [asdict(r) for r in bench.results],
    }


def write_results(document: dict[str, Any], args: argparse.Namespace, started: datetime) -> None:
    save_results(document, args.results, f"flat-{args.objects}", started)


# The printed tables.

COLUMNS = (
    ("row", "<", 44),
    ("objects", ">", 7),
    ("seconds", ">", 7),
    ("x", ">", 5),
    ("List", ">", 4),
    ("req/1000", ">", 8),
    ("client CPU", ">", 10),
    ("/1000", ">", 5),
    ("server CPU", ">", 10),
    ("/1000", ">", 5),
    ("Prefect CPU", ">", 11),
    ("workers CPU", ">", 11),
    ("RSS MB", ">", 6),
    ("status", "<", 6),
)


def _per_1000(value: float | None, objects: int) -> str:
    return "-" if value is None or not objects else f"{value * 1000 / objects:.3f}"


def format_flat_table(rows: list[dict[str, Any]], reference: str, title: str) -> list[str]:
    """A row per command (the median of its runs), `x` = its seconds / the reference's."""
    chosen, spreads = median_runs(rows)
    ref = next((r for r in chosen if r["tool"] == reference), None)
    lines = [title, format_row((name for name, _, _ in COLUMNS), COLUMNS)]
    for r in chosen:
        requests = r["requests"].get("by_operation", {})
        ratio = f"{r['seconds'] / ref['seconds']:.2f}" if ref and ref["seconds"] else "-"
        per_1000 = r["requests_per_1000"]
        lines.append(
            format_row(
                (
                    r["tool"],
                    str(r["objects"]),
                    f"{r['seconds']:.2f}",
                    ratio,
                    str(requests.get("ListObjectsV2", 0)),
                    "-" if per_1000 is None else f"{per_1000:.2f}",
                    f"{r['cpu_s']:.2f}",
                    _per_1000(r["cpu_s"], r["objects"]),
                    f"{r['server_cpu_s']:.2f}",
                    _per_1000(r["server_cpu_s"], r["objects"]),
                    f"{r['prefect_cpu_s']:.2f}",
                    "-" if r.get("workers_cpu_s") is None else f"{r['workers_cpu_s']:.2f}",
                    f"{r['peak_rss_mb']:.0f}",
                    r["status"],
                ),
                COLUMNS,
            )
        )
    lines.extend(spreads)
    for r in chosen:
        lines.append(f"  {r['tool']}: {where_the_time_goes(r)}")
    return lines


def where_the_time_goes(r: dict[str, Any]) -> str:
    """Requests by operation, how the listing walked the key space, and the CPU beside the wall
    time."""
    requests = r["requests"]
    listing = requests.get("listing", {})
    by_operation = requests.get("by_operation", {})
    lists = by_operation.get("ListObjectsV2", 0)
    parts = [f"requests {by_operation}"]
    if lists:
        parts.append(
            f"ListObjectsV2: {listing.get('start_after_distinct', 0)} distinct StartAfter, "
            f"{listing.get('first_pages', 0)} first pages, {listing.get('empty_pages', 0)} "
            f"empty, {listing.get('keys_returned', 0)} keys returned"
        )
    delay_s = r["delay_ms"] / 1000 * requests.get("total", 0)
    parts.append(
        f"{r['seconds']:.2f} s wall: client CPU {r['cpu_s']:.2f} s, server CPU "
        f"{r['server_cpu_s']:.2f} s, Prefect server CPU {r['prefect_cpu_s']:.2f} s, proxy "
        f"CPU {r['proxy_cpu_s']:.2f} s, added delay {delay_s:.1f} s summed over requests"
    )
    if r.get("workers_cpu_s") is not None:
        parts.append(
            f"Dask {r['dask_workers']} workers x {r['dask_threads']} threads: workers CPU "
            f"{r['workers_cpu_s']:.2f} s, scheduler CPU {r['scheduler_cpu_s']:.2f} s"
        )
    in_flow = r.get("tool_report", {}).get("duration_s")
    if in_flow is not None:
        parts.append(f"{in_flow} s inside the flow")
    parts.append(f"load before {r['load_before']}")
    return "; ".join(parts)


def targets(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's targets: s3-housekeeping at least 3x faster than each peer, by wall time."""
    by_phase: dict[str, dict[str, dict[str, Any]]] = {}
    for phase in ("read-only", "executing"):
        chosen, _ = median_runs([r for r in rows if r["phase"] == phase])
        by_phase[phase] = {r["tool"]: r for r in chosen}
    pairs = (
        ("read-only", DRY_RUN, "s5cmd ls"),
        ("read-only", DRY_RUN, "aws s3 ls"),
        ("executing", EXECUTE, "s5cmd rm"),
    )
    lines = []
    for phase, ours_name, peer_name in pairs:
        ours, peer = by_phase[phase].get(ours_name), by_phase[phase].get(peer_name)
        if not ours or not peer or not ours["seconds"]:
            continue
        ratio = peer["seconds"] / ours["seconds"]
        verdict = "met" if ratio >= TARGET_FACTOR else "missed"
        if ours["status"] != "ok" or peer["status"] != "ok":
            verdict += f" (statuses {ours['status']}, {peer['status']}: not comparable)"
        lines.append(
            f"target {ours_name} at least {TARGET_FACTOR:g}x faster than {peer_name}: "
            f"{peer['seconds']:.2f} s / {ours['seconds']:.2f} s = {ratio:.2f}x, {verdict}"
        )
    return lines


def scaling(rows: list[dict[str, Any]]) -> list[str]:
    """The dry run at each LIST_CONCURRENCY, with and without the fixed cost of a run."""
    chosen, _ = median_runs([r for r in rows if r["phase"] == "read-only"])
    overhead = next((r for r in chosen if r["tool"] == OVERHEAD), None)
    dry = sorted(
        (r for r in chosen if r["tool"].startswith(DRY_RUN) and not r.get("dask")),
        key=lambda r: r["list_concurrency"],
    )
    if len(dry) < 2:
        return []
    cells = []
    for r in dry:
        net = f", {r['seconds'] - overhead['seconds']:.2f} s without it" if overhead else ""
        cells.append(f"{r['list_concurrency']}: {r['seconds']:.2f} s{net}")
    fixed = f" (fixed cost {overhead['seconds']:.2f} s)" if overhead else ""
    return [f"dry run by LIST_CONCURRENCY{fixed}: " + "; ".join(cells)]


#: Machine counts the extrapolation of the Dask rows is printed for.
EXTRAPOLATE_TO = (2, 4, 8, 16)


def dask_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The Dask rows beside their one-process twins: whether the outcome is the same, the
    shards' figures from the Prefect API, and what M machines would take, extrapolated."""
    chosen, _ = median_runs(rows)
    by_name = {r["tool"]: r for r in chosen}
    lines = []
    for ours, theirs, key in (
        (DRY_RUN, DASK_DRY_RUN, "matched"),
        (EXECUTE, DASK_EXECUTE, "deleted"),
    ):
        one, dask = by_name.get(ours), by_name.get(theirs)
        if not one or not dask:
            continue
        counts = [r.get("tool_report", {}).get(key) for r in (one, dask)]
        same = counts[0] == counts[1] and one["status"] == dask["status"] == "ok"
        if key == "deleted":
            same = same and one["deleted"] == dask["deleted"]
            checked = f", the bench's listing: {one['deleted']} and {dask['deleted']} gone"
        else:
            checked = ", no write sent by either"
        lines.append(
            f"outcome, one process vs Dask: {key} {counts[0]} and {counts[1]}{checked}, statuses "
            f"{one['status']} and {dask['status']}: {'identical' if same else 'DIFFERENT'}"
        )
        cpu = one["cpu_s"], dask["cpu_s"] + (dask.get("workers_cpu_s") or 0.0)
        lines.append(
            f"  wall {one['seconds']:.2f} s in one process, {dask['seconds']:.2f} s on Dask "
            f"({dask['seconds'] / one['seconds']:.2f}x); CPU of client + workers {cpu[0]:.2f} s "
            f"and {cpu[1]:.2f} s (+ scheduler {dask.get('scheduler_cpu_s') or 0.0:.2f} s); "
            f"server {one['server_cpu_s']:.2f} and {dask['server_cpu_s']:.2f} s; Prefect server "
            f"{one['prefect_cpu_s']:.2f} and {dask['prefect_cpu_s']:.2f} s"
        )
    overhead = by_name.get(DASK_OVERHEAD)
    for r in chosen:
        if not r.get("dask"):
            continue
        workers = ", ".join(r.get("report_workers") or []) or "none in the report"
        lines.append(f"{r['tool']}: workers {workers}")
        shards = r.get("shards") or {}
        if "error" in shards:
            lines.append(f"  shard task runs: not read from the Prefect API ({shards['error']})")
            continue
        total = 0.0
        for name in SHARD_TASKS:
            figures = shards.get(name) or {"count": 0}
            if not figures["count"]:
                continue
            total += figures["sum_s"]
            lines.append(
                f"  {name}: {figures['count']} task runs {figures['states']}, run time median "
                f"{figures['median_s']:.2f} s, max {figures['max_s']:.2f} s, sum "
                f"{figures['sum_s']:.2f} s, first start to last end {figures['span_s']:.2f} s"
            )
        if total and r["objects"] and overhead:
            fixed = overhead["seconds"]
            longest = max((shards.get(name) or {}).get("max_s", 0.0) or 0.0 for name in SHARD_TASKS)
            guesses = ", ".join(
                f"{m}: {fixed + max(total / m, longest):.1f} s" for m in EXTRAPOLATE_TO
            )
            lines.append(
                f"  extrapolation, not a measurement: {total:.1f} shard-seconds; on M machines "
                f"about {fixed:.2f} s (the Dask empty prefix) + max(shard-seconds / M, the "
                f"longest shard {longest:.2f} s): {guesses}; if the server keeps up"
            )
    return lines


def print_flat_tables(document: dict[str, Any]) -> None:
    """The read-only and executing tables of a results document, the targets and scaling."""
    rows = document["results"]
    delay = f"{document['delay_ms']:g} ms added per request"
    titles = {
        "read-only": (DRY_RUN, f"\n== one filled bucket, read-only, {delay} =="),
        "executing": (EXECUTE, f"\n== a fresh bucket per run, executing, {delay} =="),
    }
    for phase, (reference, title) in titles.items():
        phase_rows = [r for r in rows if r["phase"] == phase]
        if phase_rows:
            print("\n".join(format_flat_table(phase_rows, reference, title)))
    print()
    print("\n".join(scaling(rows) + targets(rows) + dask_lines(rows)))
    for r in rows:
        if r["status"] not in ("ok", "time limit"):
            print(f"!!! {r['phase']} {r['tool']}: {r['status']}: {r['detail']}")


if __name__ == "__main__":
    started_at = time.monotonic()
    code = main()
    print(f"flat benchmark finished in {time.monotonic() - started_at:.0f} s (exit {code})")
    sys.exit(code)
