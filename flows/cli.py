"""The `s3-housekeeping` command: run and demo; the one place exceptions become exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

EXIT_UNEXPECTED = 99


def configure_environment(environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Point Prefect at our JSON logging before it is imported (it reads settings on import)."""
    logging_yml = resources.files("deployments").joinpath("logging.yml")
    environ.setdefault("PREFECT_LOGGING_CONFIG_PATH", str(logging_yml))
    if environ.get("LOG_LEVEL"):
        environ.setdefault("PREFECT_LOGGING_LEVEL", environ["LOG_LEVEL"].upper())
    # Our module loggers also feed the run's logs in the UI; outside a run there is nothing
    # to attach them to, and that is not worth a warning.
    environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    # A local run's temporary server would otherwise write telemetry into a shared database.
    environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Without PREFECT_API_URL a local run starts a temporary API; on a busy machine its default
    # 20 s to come up is not always enough.
    environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


def parse_as_of(text: str) -> datetime:
    """argparse type for --as-of: ISO 8601; a value without a zone is read as UTC."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be an ISO 8601 date or date-time") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s3-housekeeping",
        description="Delete objects older than N days under an S3 prefix, safely (a Prefect flow).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run the flow locally (a dry run unless --execute)",
        description="Options left out fall back to their environment variables, then defaults "
        "(see the README). Nothing is deleted without --execute.",
    )
    run.add_argument("--bucket", help="target bucket (S3_BUCKET)")
    run.add_argument("--prefix", help="key prefix to clean, e.g. tmp/ (CLEANUP_PREFIX)")
    run.add_argument("--older-than-days", type=int, help="age threshold in days, default 30")
    run.add_argument("--execute", action="store_true", help="delete the planned objects")
    run.add_argument("--region", help="bucket region (AWS_DEFAULT_REGION), default us-east-1")
    run.add_argument("--environment", choices=["dev", "staging", "prod"], help="default dev")
    run.add_argument("--credentials-block", help="prefect-aws AwsCredentials block name")
    run.add_argument("--role-arn", help="IAM role to assume (ASSUME_ROLE_ARN)")
    run.add_argument("--secret-name", help="Secrets Manager secret, a JSON object (SECRET_NAME)")
    run.add_argument("--expected-bucket-owner", help="12-digit account that must own the bucket")
    run.add_argument("--max-deletions", type=int, help="refuse if the plan holds more objects")
    run.add_argument(
        "--no-create-bucket", action="store_true", help="do not create or converge the bucket"
    )
    run.add_argument("--as-of", type=parse_as_of, help="reference time (ISO 8601), default now")
    run.add_argument(
        "--plan", help="apply this saved plan (a path or s3://bucket/key) instead of listing"
    )
    run.add_argument(
        "--versions",
        choices=["current", "noncurrent", "all"],
        help="which versions to delete (CLEANUP_VERSIONS), default current",
    )
    run.add_argument("--max-delete-bytes", type=int, help="refuse if the plan holds more bytes")
    run.add_argument(
        "--max-delete-percent",
        type=float,
        help="refuse if the plan holds more than this %% of the objects listed",
    )
    run.add_argument(
        "--manifest-location", help="directory or s3://bucket/prefix for plans (MANIFEST_LOCATION)"
    )
    run.add_argument(
        "--max-plan-age-hours", type=float, help="oldest saved plan to apply, default 24"
    )
    run.add_argument("--report-json", type=Path, help="write the run report to this file")
    demo = commands.add_parser(
        "demo", help="run the whole job against an embedded local AWS (moto), then stop it"
    )
    demo.add_argument("--report-json", type=Path, help="write the executing run's report here")
    return parser


def flow_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The flow's parameters from the command line; options left out stay None (env applies)."""
    return {
        "bucket": args.bucket,
        "prefix": args.prefix,
        "older_than_days": args.older_than_days,
        # The command line deletes only when told to, whatever DRY_RUN says.
        "dry_run": not args.execute,
        "environment": args.environment,
        "region": args.region,
        "aws_credentials_block": args.credentials_block,
        "role_arn": args.role_arn,
        "secret_name": args.secret_name,
        "expected_bucket_owner": args.expected_bucket_owner,
        "create_bucket": not args.no_create_bucket,
        "max_deletions": args.max_deletions,
        "as_of": args.as_of,
        "plan": args.plan,
        "versions": args.versions,
        "max_delete_bytes": args.max_delete_bytes,
        "max_delete_percent": args.max_delete_percent,
        "manifest_location": args.manifest_location,
        "max_plan_age_hours": args.max_plan_age_hours,
    }


def run_command(args: argparse.Namespace) -> int:
    from flows.s3_housekeeping import s3_housekeeping
    from flows.terminal import TerminalProgress
    from tasks.s3.progress import subscribe

    if not sys.stderr.isatty():  # logs stay plain JSON lines when not on a terminal
        return execute(lambda: s3_housekeeping(**flow_parameters(args)).to_dict(), args.report_json)
    display = TerminalProgress(sys.stderr)
    unsubscribe = subscribe(display)
    try:
        return execute(lambda: s3_housekeeping(**flow_parameters(args)).to_dict(), args.report_json)
    finally:
        unsubscribe()
        display.close()


def execute(run: Callable[[], dict[str, Any]], report_json: Path | None) -> int:
    """Run, write the report, and turn the outcome into an exit code (DESIGN.md's table)."""
    from prefect.exceptions import ParameterTypeError

    from tasks.errors import HousekeepingError

    report: dict[str, Any] | None = None
    try:
        report = run()
        code = 0
    except HousekeepingError as exc:
        code = exc.exit_code
        carried = getattr(exc, "report", None)
        report = carried.to_dict() if carried is not None else None
        print(f"s3-housekeeping: {exc}", file=sys.stderr)
    except ParameterTypeError as exc:
        code = 1
        print(f"s3-housekeeping: invalid parameters: {exc}", file=sys.stderr)
    except Exception as exc:
        code = EXIT_UNEXPECTED
        logging.getLogger(__name__).exception("unexpected error")
        print(f"s3-housekeeping: unexpected error ({type(exc).__name__})", file=sys.stderr)
    if report is not None:
        if report_json is not None:
            report_json.parent.mkdir(parents=True, exist_ok=True)
            report_json.write_text(json.dumps(report, indent=2) + "\n")
        print(summary_line(report), file=sys.stderr)
    return code


def summary_line(report: dict[str, Any]) -> str:
    """One line for a person at a terminal; the JSON logs on stdout are for machines."""
    return (
        f"s3-housekeeping: {report['status']}: s3://{report['bucket']}/{report['prefix']} "
        f"scanned {report['scanned']}, matched {report['matched']} "
        f"({report['matched_bytes']} bytes), deleted {report['deleted']}, "
        f"skipped {report['skipped_changed']}, failed {report['failed']}; "
        f"manifest {report['manifest']}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point."""
    args = build_parser().parse_args(argv)
    configure_environment()
    if args.command == "demo":
        from flows.demo import run_demo

        return execute(run_demo, args.report_json)
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
