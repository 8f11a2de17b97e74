"""`make bench`: each tool on freshly filled identical data, per server and variant; tables."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from benchmarks.fill import (
    Cutoff,
    Dataset,
    SourceFiles,
    VerificationError,
    check_after,
    check_filled,
    drop_bucket,
    fill_directory,
    fill_seaweedfs,
)
from benchmarks.measure import run_measured
from benchmarks.peers import REPO, S3HK, TOOLS, RunContext, Tool
from benchmarks.proxy import CountingProxy
from benchmarks.report import print_tables
from benchmarks.servers import RcloneServeS3, tool_environment
from devtools.prefect_server import PrefectServer
from devtools.processes import BIN
from devtools.seaweedfs import SeaweedFS

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SERVERS = ("seaweedfs", "rclone-serve")
VARIANTS = ("direct", "proxy", "delay")
OVERHEAD = f"{S3HK} (empty prefix)"


@dataclass
class Result:
    """One tool's run on one server and variant, as written to the JSON results."""

    server: str
    variant: str
    delay_ms: float
    tool: str
    description: str
    planned: int
    listed: int = 0
    repetition: int = 0
    deleted: int = 0
    seconds: float = 0.0
    objects_per_s: float = 0.0
    peak_rss_mb: float = 0.0
    cpu_s: float | None = None
    returncode: int = 0
    timed_out: bool = False
    status: str = "ok"
    detail: str = ""
    requests: dict[str, Any] = field(default_factory=dict)
    requests_source: str = ""
    requests_per_1000: float | None = None
    tool_report: dict[str, Any] = field(default_factory=dict)


@dataclass
class Bench:
    """The state of one `make bench`: options, servers, the Prefect server, results so far."""

    args: argparse.Namespace
    workdir: Path
    dataset: Dataset
    prefect: PrefectServer | None
    results: list[Result] = field(default_factory=list)
    runs: int = 0
    warmed_up: bool = False


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--objects", type=int, default=20000, help="objects under the prefix (N)")
    parser.add_argument(
        "--keep", type=int, default=None, help="old objects beside the prefix (default N/20)"
    )
    parser.add_argument("--subprefixes", type=int, default=0, help="spread keys over K folders")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated")
    parser.add_argument(
        "--variants",
        default="direct,delay",
        help="direct (no proxy), proxy (counting, no delay), delay (counting + --delay-ms)",
    )
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated")
    parser.add_argument(
        "--tool-timeout", type=float, default=600.0, help="seconds; a slower tool is stopped"
    )
    parser.add_argument(
        "--s3hk-arg",
        action="append",
        default=[],
        help="extra argument for `s3-housekeeping run` (repeat for several)",
    )
    parser.add_argument("--results", type=Path, default=None, help="JSON file to write")
    parser.add_argument("--keep-workdir", action="store_true", help="keep logs and data")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per tool; the tables show the median"
    )
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first failure")
    args = parser.parse_args(argv)
    args.servers = _choices(args.servers, SERVERS, "--servers")
    args.variants = _choices(args.variants, VARIANTS, "--variants")
    args.tools = _choices(args.tools, tuple(TOOLS), "--tools")
    if args.objects < 2 or args.objects % 2:
        parser.error("--objects must be an even number of at least 2")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.keep is None:
        args.keep = max(1, args.objects // 20)
    return args


def _choices(text: str, allowed: tuple[str, ...], option: str) -> list[str]:
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in allowed]
    if unknown or not chosen:
        raise SystemExit(f"{option}: choose from {', '.join(allowed)} (got {text!r})")
    return chosen


def terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM as SystemExit: the `finally` blocks stop every server the bench started."""
    raise SystemExit(128 + signum)


def code_state() -> dict[str, Any]:
    """The commit measured, and the product files changed beside it (uncommitted)."""

    def git(*arguments: str) -> str:
        completed = subprocess.run(
            ["git", *arguments], cwd=REPO, capture_output=True, text=True, check=False
        )
        return completed.stdout.strip() if completed.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "tasks", "flows", "deployments", "pyproject.toml")
    return {"commit": git("rev-parse", "HEAD"), "uncommitted_product_changes": changed.splitlines()}


def machine() -> dict[str, Any]:
    """What the JSON results say of the machine: cores, Python, load when the run ended."""
    return {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }


def warm_up(tools: list[str]) -> None:
    """Load each binary once (page cache), so the first measured run is not a cold start."""
    commands = {
        "aws-s3-rm": [str(BIN / "aws"), "--version"],
        "rclone": [str(BIN / "rclone"), "version"],
        "s5cmd": [str(BIN / "s5cmd"), "version"],
        S3HK: [str(BIN / "s3-housekeeping"), "--help"],
    }
    for name, command in commands.items():
        if name in tools:
            subprocess.run(
                command, env=tool_environment(), capture_output=True, check=False, timeout=120
            )


class Target:
    """One server under test: how to fill a fresh bucket and where it answers."""

    def __init__(self, name: str, workdir: Path, dataset: Dataset) -> None:
        self.name = name
        self.dataset = dataset
        self.server: SeaweedFS | RcloneServeS3
        if name == "seaweedfs":
            self.server = SeaweedFS(workdir / name)
            self.source: SourceFiles | None = SourceFiles(workdir / "source", dataset)
        else:
            self.server = RcloneServeS3(workdir / name)
            self.source = None
        self.url: str = self.server.url

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def fill(self, bucket: str) -> Cutoff:
        """A fresh bucket with the dataset; rclone serve restarts to see files written beside it."""
        if isinstance(self.server, SeaweedFS):
            assert self.source is not None
            cutoff = fill_seaweedfs(self.url, bucket, self.source)
        else:
            self.server.stop()
            cutoff = fill_directory(self.server.root / bucket, self.dataset)
            self.server.start()
        check_filled(self.url, bucket, self.dataset, cutoff)
        return cutoff

    def discard(self, bucket: str) -> None:
        """Remove the bucket of a finished run."""
        if isinstance(self.server, SeaweedFS):
            drop_bucket(self.url, bucket)
        else:
            shutil.rmtree(self.server.root / bucket, ignore_errors=True)


def run_tool(
    bench: Bench,
    target: Target,
    variant: str,
    proxy: CountingProxy | None,
    tool: Tool,
    repetition: int,
) -> Result:
    """Fill a fresh bucket, run the tool (through the proxy unless direct), verify, clean up."""
    bench.runs += 1
    bucket = f"bench-{bench.runs:04d}"
    rundir = bench.workdir / "runs" / f"{bench.runs:04d}-{target.name}-{variant}-{tool.name}"
    rundir.mkdir(parents=True, exist_ok=True)
    result = Result(
        server=target.name,
        variant=variant,
        delay_ms=proxy.delay_ms if proxy else 0.0,
        tool=tool.name,
        description=tool.description,
        planned=len(bench.dataset.old_keys),
        listed=bench.dataset.total,
        repetition=repetition,
    )
    cutoff = target.fill(bucket)
    context = context_for(bench, target, proxy, bucket, cutoff, rundir)
    try:
        command = tool.build(context)
        if proxy:
            proxy.tally.reset()
        try:
            measured = run_measured(
                command.argv, command.env, bench.args.tool_timeout, rundir / tool.name, cwd=rundir
            )
        except OSError as error:
            # A binary missing, e.g. removed by an exact `uv sync` without the bench group.
            result.status, result.detail = "failed", f"{error} (run `make bench-install`)"
            bench.results.append(result)
            return result
        result.seconds = round(measured.seconds, 3)
        result.peak_rss_mb = round(measured.peak_rss_mb, 1)
        result.cpu_s = round(measured.cpu_s, 2)
        result.returncode, result.timed_out = measured.returncode, measured.timed_out
        if proxy:
            result.requests, result.requests_source = proxy.tally.snapshot(), variant
        if tool.name == S3HK:
            result.tool_report = read_report(rundir / "report.json")
        if measured.returncode != 0 and not measured.timed_out:
            result.status = "failed"
            result.detail = f"exit {measured.returncode}: " + tail(rundir / f"{tool.name}.err")
        try:
            outcome = check_after(
                target.url,
                bucket,
                bench.dataset,
                complete=result.status == "ok" and not measured.timed_out,
            )
            result.deleted = outcome.deleted
        except VerificationError as error:
            result.status, result.detail = "verification failed", str(error)
        if result.status == "ok" and measured.timed_out:
            result.status = "time limit"
            result.detail = f"stopped after {bench.args.tool_timeout:.0f} s; rate is up to then"
        result.objects_per_s = round(result.deleted / result.seconds, 1) if result.seconds else 0
        total = result.requests.get("total")
        if isinstance(total, int) and result.deleted:
            result.requests_per_1000 = round(total * 1000 / result.deleted, 2)
        bench.results.append(result)
        if tool.name == S3HK and result.status == "ok":
            measure_overhead(bench, context, proxy, variant, repetition)
    finally:
        target.discard(bucket)
    return result


def context_for(
    bench: Bench,
    target: Target,
    proxy: CountingProxy | None,
    bucket: str,
    cutoff: Cutoff,
    rundir: Path,
) -> RunContext:
    assert bench.prefect is not None or S3HK not in bench.args.tools
    return RunContext(
        endpoint_url=proxy.url if proxy else target.url,
        server=target.name,
        bucket=bucket,
        dataset=bench.dataset,
        cutoff=cutoff,
        workdir=rundir,
        prefect_api_url=bench.prefect.api_url if bench.prefect else "",
        prefect_home=bench.workdir / "prefect-client-home",
        s3hk_args=tuple(bench.args.s3hk_arg),
    )


def measure_overhead(
    bench: Bench,
    context: RunContext,
    proxy: CountingProxy | None,
    variant: str,
    repetition: int,
) -> None:
    """s3-housekeeping on an empty prefix of the same bucket: the fixed cost of one run."""
    empty = RunContext(**{**asdict_shallow(context), "prefix": "bench-empty/"})
    command = TOOLS[S3HK].build(empty)
    for attempt in ("warm-up", "measured"):
        if attempt == "warm-up" and bench.warmed_up:
            continue
        bench.warmed_up = True
        if proxy:
            proxy.tally.reset()
        measured = run_measured(
            command.argv, command.env, 300, context.workdir / f"overhead-{attempt}"
        )
    result = Result(
        server=context.server,
        variant=variant,
        delay_ms=proxy.delay_ms if proxy else 0.0,
        tool=OVERHEAD,
        description="the same command on a prefix with no objects",
        planned=0,
        repetition=repetition,
        seconds=round(measured.seconds, 3),
        peak_rss_mb=round(measured.peak_rss_mb, 1),
        cpu_s=round(measured.cpu_s, 2),
        returncode=measured.returncode,
        status="ok" if measured.returncode == 0 else "failed",
        requests=proxy.tally.snapshot() if proxy else {},
        tool_report=read_report(context.workdir / "report.json"),
    )
    bench.results.append(result)


def asdict_shallow(context: RunContext) -> dict[str, Any]:
    return {name: getattr(context, name) for name in context.__dataclass_fields__}


def read_report(path: Path) -> dict[str, Any]:
    """The parts of s3-housekeeping's report worth keeping next to the measurement."""
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    keys = ("status", "scanned", "matched", "deleted", "failed", "requests", "duration_s")
    return {key: report[key] for key in keys if key in report}


def tail(path: Path, limit: int = 600) -> str:
    try:
        return path.read_text(errors="replace")[-limit:].strip()
    except OSError:
        return ""


def borrow_request_counts(results: list[Result]) -> None:
    """Direct runs have no proxy: show the requests counted for the same tool and server."""
    counted = {
        (r.server, r.tool, r.repetition): r for r in results if r.requests and r.variant != "direct"
    }
    for result in results:
        source = counted.get((result.server, result.tool, result.repetition))
        if result.variant == "direct" and source is not None:
            result.requests, result.requests_source = source.requests, source.variant
            total = source.requests.get("total")
            if isinstance(total, int) and result.deleted:
                result.requests_per_1000 = round(total * 1000 / result.deleted, 2)


def run_all(bench: Bench) -> None:
    args = bench.args
    for name in args.servers:
        target = Target(name, bench.workdir, bench.dataset)
        with ExitStack() as stack:
            target.start()
            stack.callback(target.stop)
            for variant in args.variants:
                delay = args.delay_ms if variant == "delay" else 0.0
                proxy_context = (
                    nullcontext(None) if variant == "direct" else CountingProxy(target.url, delay)
                )
                with proxy_context as proxy:
                    for repetition in range(args.repeat):
                        for tool_name in args.tools:
                            tool = TOOLS[tool_name]
                            result = run_tool(bench, target, variant, proxy, tool, repetition)
                            announce(result)
                            if args.fail_fast and result.status not in ("ok", "time limit"):
                                raise SystemExit(1)


def announce(result: Result) -> None:
    line = (
        f"[{result.server} {result.variant}] {result.tool}: {result.status}, "
        f"{result.deleted}/{result.planned} deleted in {result.seconds:.2f} s"
    )
    if result.status not in ("ok", "time limit"):
        line = f"!!! FAILED {line}: {result.detail}"
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    signal.signal(signal.SIGTERM, terminate)
    workdir = Path(tempfile.mkdtemp(prefix="s3hk-bench-"))
    dataset = Dataset(total=args.objects, keep=args.keep, subprefixes=args.subprefixes)
    started = datetime.now(UTC)
    bench: Bench | None = None
    try:
        with ExitStack() as stack:
            prefect = None
            if S3HK in args.tools:
                prefect = PrefectServer(workdir / "prefect")
                stack.enter_context(prefect)
            warm_up(args.tools)
            bench = Bench(args=args, workdir=workdir, dataset=dataset, prefect=prefect)
            print(
                f"benchmark: {args.objects} objects ({len(dataset.old_keys)} old) under bench/, "
                f"{args.keep} beside it; servers {args.servers}; variants {args.variants}; "
                f"work directory {workdir}",
                flush=True,
            )
            run_all(bench)
    finally:
        try:
            if bench is not None and bench.results:
                borrow_request_counts(bench.results)
                write_results(bench, started)
                print_tables([asdict(r) for r in bench.results], args.delay_ms)
        finally:
            if args.keep_workdir:
                print(f"kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    failed = [r for r in bench.results if r.status not in ("ok", "time limit")] if bench else []
    return 1 if failed else 0


def save_results(
    document: dict[str, Any], given: Path | None, name: str, started: datetime
) -> None:
    """Write a bench's JSON results to `given`, else to results/NAME-TIMESTAMP.json; say where."""
    path = given or RESULTS_DIR / f"{name}-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"results written to {path}")


def write_results(bench: Bench, started: datetime) -> None:
    """The JSON results: options, machine, and one record per run."""
    document = {
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "objects": bench.args.objects,
        "old_objects": len(bench.dataset.old_keys),
        "kept_beside_prefix": bench.args.keep,
        "subprefixes": bench.args.subprefixes,
        "repeat": bench.args.repeat,
        "delay_ms": bench.args.delay_ms,
        "tool_timeout_s": bench.args.tool_timeout,
        "s3hk_args": bench.args.s3hk_arg,
        **machine(),
        **code_state(),
        "results": [asdict(r) for r in bench.results],
    }
    save_results(document, bench.args.results, f"bench-{bench.args.objects}", started)


if __name__ == "__main__":
    started_at = time.monotonic()
    code = main()
    print(f"benchmark finished in {time.monotonic() - started_at:.0f} s (exit {code})")
    sys.exit(code)
