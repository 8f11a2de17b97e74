"""The tools compared, each as the command a user would type to delete what is over 30 days old."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.fill import OLD_KEY_PATTERN, OLDER_THAN_DAYS, PREFIX, Cutoff, Dataset
from benchmarks.s5cmd_aged import write_rm_commands
from benchmarks.servers import ACCESS_KEY, REGION, SECRET_KEY, tool_environment
from devtools.processes import BIN

REPO = Path(__file__).resolve().parent.parent
S3HK = "s3-housekeeping"


@dataclass(frozen=True)
class RunContext:
    """Everything a tool's command needs for one run on freshly filled data."""

    endpoint_url: str
    server: str
    bucket: str
    dataset: Dataset
    cutoff: Cutoff
    workdir: Path
    prefect_api_url: str
    prefect_home: Path
    s3hk_args: tuple[str, ...] = ()
    prefix: str = PREFIX


@dataclass(frozen=True)
class Command:
    """A command line and its environment."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=tool_environment)


@dataclass(frozen=True)
class Tool:
    """A benchmarked tool: a name for the table, what it is, and how to call it."""

    name: str
    description: str
    build: Callable[[RunContext], Command]


def iso(moment: object) -> str:
    """ISO 8601 with a Z (all our reference times are UTC)."""
    return str(moment.isoformat()).replace("+00:00", "Z")  # type: ignore[attr-defined]


def _python_module(module: str, *arguments: str) -> Command:
    env = tool_environment({"PYTHONPATH": str(REPO)})
    return Command([sys.executable, "-m", module, *arguments], env)


def _cutoff_script(module: str, context: RunContext, *extra: str) -> Command:
    """One of the bench's own scripts, told the endpoint, bucket, prefix and cutoff."""
    return _python_module(
        module,
        "--endpoint-url",
        context.endpoint_url,
        "--bucket",
        context.bucket,
        "--prefix",
        context.prefix,
        "--cutoff",
        iso(context.cutoff.moment),
        *extra,
    )


def naive(context: RunContext) -> Command:
    """boto3: list the prefix, one DeleteObject per old key, sequentially."""
    return _cutoff_script("benchmarks.naive", context)


def aws_s3_rm(context: RunContext) -> Command:
    """awscli: `aws s3 rm --recursive`, told the old keys by a name pattern (no age filter)."""
    return Command(
        [
            str(BIN / "aws"),
            "--endpoint-url",
            context.endpoint_url,
            "s3",
            "rm",
            f"s3://{context.bucket}/{context.prefix}",
            "--recursive",
            "--exclude",
            "*",
            "--include",
            OLD_KEY_PATTERN,
            "--only-show-errors",
        ]
    )


def rclone_delete(context: RunContext) -> Command:
    """rclone: `delete --min-age --use-server-modtime`, the remote configured by environment."""
    config = context.workdir / "rclone.conf"
    config.touch()
    provider = "SeaweedFS" if context.server == "seaweedfs" else "Rclone"
    # A server that cannot backdate: "older than 30 days before as_of" is an absolute time.
    min_age = iso(context.cutoff.moment) if context.cutoff.future else f"{OLDER_THAN_DAYS}d"
    env = tool_environment(
        {
            "RCLONE_CONFIG": str(config),
            "RCLONE_CONFIG_BENCH_TYPE": "s3",
            "RCLONE_CONFIG_BENCH_PROVIDER": provider,
            "RCLONE_CONFIG_BENCH_ENDPOINT": context.endpoint_url,
            "RCLONE_CONFIG_BENCH_REGION": REGION,
            "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": ACCESS_KEY,
            "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": SECRET_KEY,
        }
    )
    argv = [
        str(BIN / "rclone"),
        "delete",
        f"bench:{context.bucket}/{context.prefix}",
        "--min-age",
        min_age,
        "--use-server-modtime",
    ]
    return Command(argv, env)


def s5cmd_keys(context: RunContext) -> Command:
    """s5cmd: `run` a file of `rm` lines of 1000 old keys each (given the keys: no listing)."""
    commands = context.workdir / "s5cmd-rm.txt"
    write_rm_commands(commands, context.bucket, context.dataset.old_keys)
    return Command(
        [str(BIN / "s5cmd"), "--endpoint-url", context.endpoint_url, "run", str(commands)]
    )


def s5cmd_ls(context: RunContext) -> Command:
    """s5cmd with the listing: `s5cmd ls`, an age filter in a small script, then `s5cmd run`."""
    return _cutoff_script(
        "benchmarks.s5cmd_aged", context, "--commands", str(context.workdir / "s5cmd-ls-rm.txt")
    )


def s5cmd_ls_wildcard(context: RunContext) -> Command:
    """s5cmd's listing alone: `s5cmd ls 's3://B/P*'` (one ListObjectsV2 page after another)."""
    return Command(
        [
            str(BIN / "s5cmd"),
            "--endpoint-url",
            context.endpoint_url,
            "ls",
            f"s3://{context.bucket}/{context.prefix}*",
        ]
    )


def s5cmd_rm_wildcard(context: RunContext) -> Command:
    """s5cmd deleting with its own listing: `s5cmd rm 's3://B/P*'` (no age filter: everything
    under the prefix, DeleteObjects of up to 1000 keys)."""
    return Command(
        [
            str(BIN / "s5cmd"),
            "--endpoint-url",
            context.endpoint_url,
            "rm",
            f"s3://{context.bucket}/{context.prefix}*",
        ]
    )


def aws_s3_ls(context: RunContext) -> Command:
    """awscli's listing alone: `aws s3 ls s3://B/P --recursive`."""
    return Command(
        [
            str(BIN / "aws"),
            "--endpoint-url",
            context.endpoint_url,
            "s3",
            "ls",
            f"s3://{context.bucket}/{context.prefix}",
            "--recursive",
        ]
    )


def s3_housekeeping(context: RunContext, execute: bool = True) -> Command:
    """This project's command against the bench's Prefect server (a dry run unless `execute`)."""
    extra = {
        "AWS_ENDPOINT_URL": context.endpoint_url,
        "PREFECT_API_URL": context.prefect_api_url,
        "PREFECT_HOME": str(context.prefect_home),
        "MANIFEST_DIR": str(context.workdir / "manifests"),
    }
    if context.cutoff.future:
        extra["ALLOW_FUTURE_AS_OF"] = "true"
    argv = [
        str(BIN / "s3-housekeeping"),
        "run",
        "--bucket",
        context.bucket,
        "--prefix",
        context.prefix,
        "--older-than-days",
        str(OLDER_THAN_DAYS),
        *(["--execute"] if execute else []),
        "--no-create-bucket",
        "--as-of",
        iso(context.cutoff.as_of),
        "--report-json",
        str(context.workdir / "report.json"),
        *context.s3hk_args,
    ]
    return Command(argv, tool_environment(extra))


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool("naive", "boto3 list + one DeleteObject per old key", naive),
        Tool("aws-s3-rm", "aws s3 rm --recursive, old keys by pattern", aws_s3_rm),
        Tool("rclone", "rclone delete --min-age --use-server-modtime", rclone_delete),
        Tool("s5cmd", "s5cmd run, rm lines of 1000 old keys (given, not listed)", s5cmd_keys),
        Tool("s5cmd-ls", "s5cmd ls + age filter script + s5cmd run", s5cmd_ls),
        Tool(S3HK, "s3-housekeeping run --execute", s3_housekeeping),
    )
}
