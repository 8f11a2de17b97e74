"""`make bench-startup`: the fixed cost of a local run (an empty dry run) beside s5cmd and aws."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.measure import process_tree_cpu_s, run_measured, wait_until_idle
from benchmarks.report import format_row
from benchmarks.run import code_state, machine, save_results, tail, terminate, warm_up
from benchmarks.servers import tool_environment
from deployments.local_aws import LocalAws, local_aws
from devtools.prefect_server import PrefectServer
from devtools.processes import BIN

S3HK = "s3-housekeeping"
BUCKET = "startup"
PREFIX = "tmp/"
#: The bucket's objects, all beside the prefix: `tmp/` itself is empty (`tmp-keep/` is not in it).
OBJECTS = ("logs/app-0001.log", "logs/app-0002.log", "logs/app-0003.log", "tmp-keep/precious.db")
EPHEMERAL = f"{S3HK}, no PREFECT_API_URL"
WITH_SERVER = f"{S3HK}, PREFECT_API_URL"
USAGE_ERROR = f"{S3HK}, usage error"
S5CMD = "s5cmd ls"
AWS = "aws s3 ls"
#: The issue's targets: median wall seconds of the empty dry run.
TARGETS = {
    EPHEMERAL: ("empty dry run without a server at most 5 s (median)", 5.0),
    WITH_SERVER: ("with PREFECT_API_URL at most 2.5 s (median)", 2.5),
    USAGE_ERROR: ("a usage error answered in under 1 s (median)", 1.0),
}
#: The product's tuning variables, taken out of the tools' environment (as in benchmarks/flat.py).
PRODUCT_TUNING = ("LIST_CONCURRENCY", "SHARD_SIZE", "DELETE_CONCURRENCY")
#: What s5cmd says, exiting 1, when a wildcard matches nothing.
S5CMD_EMPTY = "no object found"
#: How a run says it has a temporary API: s3-housekeeping's own once it answers
#: (flows/temporary_api.py), or Prefect's own as it starts one (S3_HOUSEKEEPING_TEMPORARY_API=off).
TEMPORARY_SERVER = ("Temporary Prefect API ready", "Starting temporary server")
RUN_FINISHED = "Run finished"


@dataclass(frozen=True)
class Setup:
    """What every command needs: the endpoint, the Prefect server, where a run's files go."""

    aws: LocalAws
    workdir: Path
    prefect_api_url: str
    #: Row 1 with the temporary API Prefect starts itself, not s3-housekeeping's own.
    prefect_temporary_api: bool = False


@dataclass(frozen=True)
class Row:
    """One measured command: its name, the command line it stands for, and how to build it."""

    name: str
    description: str
    build: Callable[[Setup, Path], tuple[list[str], dict[str, str]]]
    check: Callable[[Path, int], str | None]


@dataclass
class StartupResult:
    """One run of one row, as written to the JSON results."""

    row: str
    repetition: int
    #: When the run began (UTC, ISO 8601): to line it up with anything else on the machine.
    started_at: str = ""
    seconds: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    returncode: int = 0
    timed_out: bool = False
    status: str = "ok"
    detail: str = ""
    #: CPU seconds of the bench's Prefect server over the run (its process tree).
    prefect_cpu_s: float = 0.0
    #: The 1-minute load average just before the run, and the seconds spent waiting for the
    #: Prefect server to go idle first.
    load_before: float = 0.0
    settle_s: float = 0.0
    report: dict[str, Any] = field(default_factory=dict)
    #: s3-housekeeping: seconds from spawning to each mark of its log (None: not seen).
    phases: dict[str, float | None] = field(default_factory=dict)
    #: Row 1: bytes under its PREFECT_HOME after the run (the temporary API's database).
    prefect_home_bytes: int | None = None


def s3hk_env(setup: Setup, rundir: Path, extra: dict[str, str]) -> dict[str, str]:
    environment = tool_environment(
        {
            "AWS_ENDPOINT_URL": setup.aws.endpoint_url,
            "MANIFEST_DIR": str(rundir / "manifests"),
            **extra,
        }
    )
    return {k: v for k, v in environment.items() if k not in PRODUCT_TUNING}


def s3hk_argv(rundir: Path) -> list[str]:
    return [
        str(BIN / "s3-housekeeping"),
        "run",
        "--bucket",
        BUCKET,
        "--prefix",
        PREFIX,
        "--no-create-bucket",
        "--report-json",
        str(rundir / "report.json"),
    ]


def ephemeral_home(setup: Setup) -> Path:
    """Row 1's PREFECT_HOME, the same for all its runs: what grows from one run to the next."""
    return setup.workdir / "prefect-home-ephemeral"


def s3hk_ephemeral(setup: Setup, rundir: Path) -> tuple[list[str], dict[str, str]]:
    """No PREFECT_API_URL: each run starts a temporary API of its own (not `make serve`'s
    server, which a local command would use if one ran in this checkout)."""
    extra = {"PREFECT_HOME": str(ephemeral_home(setup)), "S3_HOUSEKEEPING_LOCAL_API": "off"}
    if setup.prefect_temporary_api:
        extra["S3_HOUSEKEEPING_TEMPORARY_API"] = "off"
    return s3hk_argv(rundir), s3hk_env(setup, rundir, extra)


def s3hk_with_server(setup: Setup, rundir: Path) -> tuple[list[str], dict[str, str]]:
    """PREFECT_API_URL of the Prefect server the bench started."""
    extra = {
        "PREFECT_API_URL": setup.prefect_api_url,
        "PREFECT_HOME": str(setup.workdir / "prefect-client-home"),
    }
    return s3hk_argv(rundir), s3hk_env(setup, rundir, extra)


def s3hk_usage_error(setup: Setup, rundir: Path) -> tuple[list[str], dict[str, str]]:
    """An option that does not exist (--dry-run): refused before any Prefect API starts."""
    argv = [str(BIN / "s3-housekeeping"), "run", f"s3://{BUCKET}/{PREFIX}", "--dry-run"]
    extra = {"PREFECT_HOME": str(ephemeral_home(setup)), "S3_HOUSEKEEPING_LOCAL_API": "off"}
    return argv, s3hk_env(setup, rundir, extra)


def s5cmd_ls(setup: Setup, rundir: Path) -> tuple[list[str], dict[str, str]]:
    url = setup.aws.endpoint_url
    argv = [str(BIN / "s5cmd"), "--endpoint-url", url, "ls", f"s3://{BUCKET}/{PREFIX}*"]
    return argv, tool_environment({"AWS_ENDPOINT_URL": url})


def aws_s3_ls(setup: Setup, rundir: Path) -> tuple[list[str], dict[str, str]]:
    url = setup.aws.endpoint_url
    argv = [str(BIN / "aws"), "--endpoint-url", url, "s3", "ls", f"s3://{BUCKET}/{PREFIX}"]
    return argv, tool_environment({"AWS_ENDPOINT_URL": url})


def check_s3hk(rundir: Path, returncode: int) -> str | None:
    """Exit 0, and a report of a dry run that matched nothing."""
    if returncode != 0:
        return f"exit {returncode}: {tail(rundir / 'tool.err')}"
    try:
        report = json.loads((rundir / "report.json").read_text())
    except (OSError, ValueError) as error:
        return f"no readable --report-json: {error}"
    if report.get("matched") != 0 or report.get("dry_run") is not True:
        return f"report says matched {report.get('matched')}, dry_run {report.get('dry_run')}"
    return None


def check_s3hk_ephemeral(rundir: Path, returncode: int) -> str | None:
    """As check_s3hk, and the run started a temporary API (it said so)."""
    problem = check_s3hk(rundir, returncode)
    if problem:
        return problem
    logs = (rundir / "tool.out").read_text(errors="replace")
    logs += (rundir / "tool.err").read_text(errors="replace")
    if not any(line in logs for line in TEMPORARY_SERVER):
        return f"none of {TEMPORARY_SERVER} in its output: it did not start a temporary API"
    return None


def check_usage_error(rundir: Path, returncode: int) -> str | None:
    """Exit 1 naming the option, and no temporary API started."""
    err = (rundir / "tool.err").read_text(errors="replace")
    if returncode != 1 or "unrecognized arguments: --dry-run" not in err:
        return f"exit {returncode}: {err.strip()[-300:]}"
    logs = (rundir / "tool.out").read_text(errors="replace") + err
    if any(line in logs for line in TEMPORARY_SERVER):
        return "it started a temporary API"
    return None


def check_s5cmd(rundir: Path, returncode: int) -> str | None:
    """No object listed; exit 0, or 1 saying that nothing matched."""
    out, err = (rundir / "tool.out").read_text(), (rundir / "tool.err").read_text()
    if out.strip():
        return f"listed objects under an empty prefix: {out.strip()[:300]}"
    if returncode != 0 and not (returncode == 1 and S5CMD_EMPTY in err):
        return f"exit {returncode}: {err.strip()[-300:]}"
    return None


def check_aws(rundir: Path, returncode: int) -> str | None:
    """No object listed and no error; awscli exits 1 on an empty listing."""
    out, err = (rundir / "tool.out").read_text(), (rundir / "tool.err").read_text()
    if out.strip():
        return f"listed objects under an empty prefix: {out.strip()[:300]}"
    if returncode not in (0, 1) or err.strip():
        return f"exit {returncode}: {err.strip()[-300:]}"
    return None


ROWS = (
    Row(
        EPHEMERAL,
        f"{S3HK} run --bucket B --prefix {PREFIX} --no-create-bucket, no PREFECT_API_URL "
        "(a temporary API per run, S3_HOUSEKEEPING_LOCAL_API=off; one PREFECT_HOME for all "
        "runs of the row)",
        s3hk_ephemeral,
        check_s3hk_ephemeral,
    ),
    Row(
        WITH_SERVER,
        "the same with PREFECT_API_URL of the Prefect server the bench started",
        s3hk_with_server,
        check_s3hk,
    ),
    Row(
        USAGE_ERROR,
        f"{S3HK} run s3://B/{PREFIX} --dry-run (not an option): exit 1, no API started",
        s3hk_usage_error,
        check_usage_error,
    ),
    Row(S5CMD, f"s5cmd ls 's3://B/{PREFIX}*'", s5cmd_ls, check_s5cmd),
    Row(AWS, f"aws s3 ls s3://B/{PREFIX}", aws_s3_ls, check_aws),
)


# The phases of a run, from its own log lines.

#: The marks of a run, in order, and what the table calls the time up to each.
MARKS = (
    ("first_log_line", "start -> first log line"),
    ("temporary_server", "-> temporary API ready/starting"),
    ("flow_first_line", "-> the flow's first line"),
    ("run_finished", f"-> '{RUN_FINISHED}'"),
    ("last_log_line", "-> the last log line"),
    ("exit", "-> process exit"),
)


def json_lines(path: Path) -> Iterator[dict[str, Any]]:
    """Each JSON object of a log file that has a `time` (other lines are skipped)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("time"), str):
            yield record


def phases(rundir: Path, spawned: float, seconds: float) -> dict[str, float | None]:
    """Seconds from spawning to each mark: the first log line on stdout, the temporary API's
    line (TEMPORARY_SERVER, stdout or stderr), the flow's first line (the first with a flow_run_id),
    its 'Run finished', the last line, and the process's exit."""
    stdout = list(json_lines(rundir / "tool.out"))

    def at(record: dict[str, Any] | None) -> float | None:
        if record is None:
            return None
        moment = datetime.fromisoformat(record["time"].replace("Z", "+00:00")).timestamp()
        return round(moment - spawned, 3)

    def first(records: list[dict[str, Any]], test: Callable[[dict[str, Any]], bool]) -> Any:
        return next((r for r in records if test(r)), None)

    def says(text: tuple[str, ...] | str) -> Callable[[dict[str, Any]], bool]:
        return lambda r: str(r.get("message", "")).startswith(text)

    temporary = first(stdout, says(TEMPORARY_SERVER)) or first(
        list(json_lines(rundir / "tool.err")), says(TEMPORARY_SERVER)
    )
    return {
        "first_log_line": at(stdout[0] if stdout else None),
        "temporary_server": at(temporary),
        "flow_first_line": at(first(stdout, lambda r: "flow_run_id" in r)),
        "run_finished": at(first(stdout, says(RUN_FINISHED))),
        "last_log_line": at(stdout[-1] if stdout else None),
        "exit": round(seconds, 3),
    }


def steps(marks: dict[str, float | None]) -> list[tuple[str, float | None, float | None]]:
    """(mark, seconds since the previous mark seen, seconds since start) for each mark."""
    previous, rows = 0.0, []
    for key, _ in MARKS:
        moment = marks.get(key)
        if moment is None:
            rows.append((key, None, None))
            continue
        rows.append((key, moment - previous, moment))
        previous = moment
    return rows


# Measuring.


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@dataclass
class StartupBench:
    """The state of one `make bench-startup`: options, servers, results so far."""

    args: argparse.Namespace
    setup: Setup
    prefect: PrefectServer
    results: list[StartupResult] = field(default_factory=list)
    runs: int = 0


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


def measure(bench: StartupBench, row: Row, repetition: int) -> StartupResult:
    """Run one row's command once; check what it did; its phases when it is s3-housekeeping."""
    bench.runs += 1
    rundir = bench.setup.workdir / "runs" / f"{bench.runs:03d}-{slug(row.name)}"
    rundir.mkdir(parents=True, exist_ok=True)
    result = StartupResult(row=row.name, repetition=repetition)
    argv, env = row.build(bench.setup, rundir)
    assert bench.prefect.process is not None
    prefect_pid = bench.prefect.process.pid
    result.settle_s = round(wait_until_idle(prefect_pid, limit_s=30), 1)
    result.load_before = round(os.getloadavg()[0], 2)
    prefect_before = process_tree_cpu_s(prefect_pid)
    spawned = time.time()
    result.started_at = datetime.fromtimestamp(spawned, UTC).isoformat(timespec="seconds")
    try:
        measured = run_measured(argv, env, bench.args.tool_timeout, rundir / "tool", rundir)
    except OSError as error:  # a binary missing: `make bench-install`
        result.status, result.detail = "failed", f"{error} (run `make bench-install`)"
        return result
    result.prefect_cpu_s = round(process_tree_cpu_s(prefect_pid) - prefect_before, 2)
    result.seconds = round(measured.seconds, 3)
    result.cpu_s = round(measured.cpu_s, 2)
    result.peak_rss_mb = round(measured.peak_rss_mb, 1)
    result.returncode, result.timed_out = measured.returncode, measured.timed_out
    if row.check in (check_s3hk, check_s3hk_ephemeral):
        result.phases = phases(rundir, spawned, measured.seconds)
        try:
            report = json.loads((rundir / "report.json").read_text())
        except (OSError, ValueError):
            report = {}
        keys = ("status", "dry_run", "scanned", "matched", "requests", "duration_s")
        result.report = {key: report[key] for key in keys if key in report}
    if row.name == EPHEMERAL:
        result.prefect_home_bytes = directory_bytes(ephemeral_home(bench.setup))
    if measured.timed_out:
        result.status = "time limit"
        result.detail = f"stopped after {bench.args.tool_timeout:.0f} s"
    else:
        problem = row.check(rundir, measured.returncode)
        if problem:
            result.status, result.detail = "failed", problem
    return result


def announce(result: StartupResult) -> None:
    line = (
        f"[{result.repetition + 1}] {result.row}: {result.status} in {result.seconds:.2f} s, "
        f"client CPU {result.cpu_s:.2f} s, load before {result.load_before}"
    )
    if result.status != "ok":
        line = f"!!! FAILED {line}: {result.detail}"
    print(line, flush=True)


def seed(aws: LocalAws) -> None:
    """The bucket, a few objects beside the prefix, none under it."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for key in OBJECTS:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x" * 1024)


def check_bucket(aws: LocalAws) -> str | None:
    """Afterwards: still nothing under the prefix and every object beside it."""
    listed = aws.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])
    keys = sorted(entry["Key"] for entry in listed)
    if keys != sorted(OBJECTS):
        return f"the bucket holds {keys}, expected {sorted(OBJECTS)}"
    return None


def run_rows(bench: StartupBench) -> None:
    """A run with the server not kept (its first flow run registers the flow); then each row in
    turn, --runs times."""
    warm = measure(bench, ROWS[1], -1)
    print(f"warm-up {warm.row} (not kept): {warm.status} in {warm.seconds:.2f} s", flush=True)
    for repetition in range(bench.args.runs):
        for row in ROWS:
            result = measure(bench, row, repetition)
            bench.results.append(result)
            announce(result)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs per row (default 5)")
    parser.add_argument(
        "--tool-timeout", type=float, default=180.0, help="seconds; a slower run is stopped"
    )
    parser.add_argument("--results", type=Path, default=None, help="JSON file to write")
    parser.add_argument("--keep-workdir", action="store_true", help="keep logs and homes")
    parser.add_argument(
        "--prefect-temporary-api",
        action="store_true",
        help="row 1 with the temporary API that Prefect starts itself "
        "(S3_HOUSEKEEPING_TEMPORARY_API=off), to compare with s3-housekeeping's own",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    signal.signal(signal.SIGTERM, terminate)
    # moto's server logs every request it serves through werkzeug.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="s3hk-bench-startup-"))
    started = datetime.now(UTC)
    load_at_start = [round(load, 2) for load in os.getloadavg()]
    # The code measured is the code at the start: a commit may land while the bench runs.
    code_at_start = code_state()
    bench: StartupBench | None = None
    bucket_problem: str | None = None
    try:
        with ExitStack() as stack:
            prefect = stack.enter_context(PrefectServer(workdir / "prefect"))
            aws = stack.enter_context(local_aws())
            seed(aws)
            warm_up(["aws-s3-rm", "s5cmd", S3HK])
            setup = Setup(aws, workdir, prefect.api_url, args.prefect_temporary_api)
            bench = StartupBench(args, setup, prefect)
            print(
                f"start-up benchmark: {args.runs} runs per row; moto at {aws.endpoint_url}, "
                f"bucket {BUCKET} with {len(OBJECTS)} objects, none under {PREFIX}; Prefect "
                f"server at {prefect.api_url}; load {load_at_start}; work directory {workdir}",
                flush=True,
            )
            run_rows(bench)
            bucket_problem = check_bucket(aws)
    finally:
        try:
            if bench is not None and bench.results:
                document = results_document(
                    bench, started, load_at_start, code_at_start, bucket_problem
                )
                write_results(document, args, started)
                print_tables(document)
        finally:
            if args.keep_workdir:
                print(f"kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    if bucket_problem:
        print(f"!!! the bucket changed: {bucket_problem}")
    failed = [r for r in bench.results if r.status != "ok"] if bench else []
    return 1 if failed or bucket_problem else 0


# The results.


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Min, median and max wall seconds, median CPU, and the run whose wall time is the median
    (the lower middle for an even count)."""
    seconds = [r["seconds"] for r in runs]
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return {
        "runs": len(runs),
        "failed": sum(1 for r in runs if r["status"] != "ok"),
        "min_s": min(seconds),
        "median_s": round(statistics.median(seconds), 3),
        "max_s": max(seconds),
        "median_cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 2),
        "median_prefect_cpu_s": round(statistics.median(r["prefect_cpu_s"] for r in runs), 2),
        "median_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in runs), 1),
        "seconds_in_order": seconds,
        "median_run": ordered[(len(ordered) - 1) // 2]["repetition"],
    }


def results_document(
    bench: StartupBench,
    started: datetime,
    load_at_start: list[float],
    code_at_start: dict[str, Any],
    bucket_problem: str | None,
) -> dict[str, Any]:
    code_at_end = code_state()
    results = [asdict(r) for r in bench.results]
    by_row = {
        row.name: summary([r for r in results if r["row"] == row.name])
        for row in ROWS
        if any(r["row"] == row.name for r in results)
    }
    return {
        "kind": "startup",
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "runs": bench.args.runs,
        "tool_timeout_s": bench.args.tool_timeout,
        "prefect_temporary_api": bench.args.prefect_temporary_api,
        "bucket": BUCKET,
        "prefix": PREFIX,
        "objects_beside_prefix": list(OBJECTS),
        "rows": {row.name: row.description for row in ROWS},
        "load_average_at_start": load_at_start,
        "bucket_check": bucket_problem or "ok",
        **machine(),
        **code_at_start,
        "commit_at_end": code_at_end["commit"],
        "uncommitted_product_changes_at_end": code_at_end["uncommitted_product_changes"],
        "summary": by_row,
        "targets": target_lines(by_row),
        "results": results,
    }


def write_results(document: dict[str, Any], args: argparse.Namespace, started: datetime) -> None:
    save_results(document, args.results, "startup", started)


# The printed tables.

COLUMNS = (
    ("row", "<", 36),
    ("runs", ">", 4),
    ("min s", ">", 6),
    ("median s", ">", 8),
    ("max s", ">", 6),
    ("client CPU s", ">", 12),
    ("Prefect server CPU s", ">", 20),
    ("RSS MB", ">", 6),
    ("status", "<", 8),
)
PHASE_COLUMNS = (("phase", "<", 32), ("row 1", ">", 15), ("row 2", ">", 15))


def target_lines(by_row: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for name, (text, limit) in TARGETS.items():
        figures = by_row.get(name)
        if not figures:
            continue
        verdict = "met" if figures["median_s"] <= limit else "missed"
        if figures["failed"]:
            verdict += f" ({figures['failed']} failed runs: not comparable)"
        lines.append(
            f"target: {text}: median {figures['median_s']:.2f} s (min {figures['min_s']:.2f}, "
            f"max {figures['max_s']:.2f}), {verdict}"
        )
    return lines


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def phase_table(document: dict[str, Any]) -> list[str]:
    """The median run of rows 1 and 2, split at the marks of their own log."""
    chosen = []
    for name in (EPHEMERAL, WITH_SERVER):
        figures = document["summary"].get(name)
        run = next(
            (
                r
                for r in document["results"]
                if figures and r["row"] == name and r["repetition"] == figures["median_run"]
            ),
            None,
        )
        chosen.append(steps(run["phases"]) if run and run["phases"] else [])
    if not any(chosen):
        return []
    which = [
        f"{name}: run {document['summary'][name]['median_run'] + 1}"
        for name in (EPHEMERAL, WITH_SERVER)
        if name in document["summary"]
    ]
    lines = [
        f"\n== phases of each row's median run ({'; '.join(which)}): seconds since the "
        "previous mark (since the start) ==",
        format_row((name for name, _, _ in PHASE_COLUMNS), PHASE_COLUMNS),
    ]
    for index, (_, label) in enumerate(MARKS):
        cells = []
        for split in chosen:
            _, delta, since = split[index] if split else (None, None, None)
            cells.append("-" if delta is None else f"{delta:.2f} ({since:.2f})")
        lines.append(format_row((label, *cells), PHASE_COLUMNS))
    return lines


def in_order(document: dict[str, Any]) -> list[str]:
    """Each run's wall time in order; row 1's with its phases and its PREFECT_HOME's size."""
    lines = []
    for name, figures in document["summary"].items():
        times = ", ".join(f"{s:.2f}" for s in figures["seconds_in_order"])
        lines.append(f"  {name}: in order {times} s")
        if name != EPHEMERAL:
            continue
        for r in (r for r in document["results"] if r["row"] == name):
            marks = dict((key, delta) for key, delta, _ in steps(r["phases"]))
            home = r["prefect_home_bytes"]
            lines.append(
                f"    run {r['repetition'] + 1}: {r['seconds']:.2f} s = start "
                f"{_seconds(marks.get('first_log_line'))} + temporary server "
                f"{_seconds(marks.get('temporary_server'))} + to the flow "
                f"{_seconds(marks.get('flow_first_line'))} + the flow "
                f"{_seconds(marks.get('run_finished'))} + after "
                f"{_seconds((marks.get('last_log_line') or 0) + (marks.get('exit') or 0))}; "
                f"PREFECT_HOME {home / 1e6 if home is not None else 0:.1f} MB after; "
                f"load before {r['load_before']}"
            )
    return lines


def print_tables(document: dict[str, Any]) -> None:
    title = (
        f"\n== an empty prefix, {document['runs']} runs per row (commit "
        f"{document['commit'][:10]}, {document['cpus']} CPUs, load at start "
        f"{document['load_average_at_start']}) =="
    )
    lines = [title, format_row((name for name, _, _ in COLUMNS), COLUMNS)]
    for name, figures in document["summary"].items():
        lines.append(
            format_row(
                (
                    name,
                    str(figures["runs"]),
                    f"{figures['min_s']:.2f}",
                    f"{figures['median_s']:.2f}",
                    f"{figures['max_s']:.2f}",
                    f"{figures['median_cpu_s']:.2f}",
                    f"{figures['median_prefect_cpu_s']:.2f}" if name == WITH_SERVER else "-",
                    f"{figures['median_rss_mb']:.0f}",
                    "ok" if not figures["failed"] else f"{figures['failed']} failed",
                ),
                COLUMNS,
            )
        )
    lines += in_order(document)
    lines += phase_table(document)
    print("\n".join([*lines, "", *document["targets"]]))
    for r in document["results"]:
        if r["status"] != "ok":
            print(f"!!! run {r['repetition'] + 1} of {r['row']}: {r['status']}: {r['detail']}")


if __name__ == "__main__":
    started_at = time.monotonic()
    code = main()
    print(f"start-up benchmark finished in {time.monotonic() - started_at:.0f} s (exit {code})")
    sys.exit(code)
