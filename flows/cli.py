"""The `s3-housekeeping` command: run, demo, settings and iam-policy; the one place exceptions
become exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, NoReturn, get_args, get_origin

from pydantic.fields import FieldInfo

from flows.output import Output
from flows.parameters import help_text, value_type
from flows.prefect_environment import RUNS, configure_environment
from flows.preflight import given_environment, profile_region, s3_target, take_target
from flows.temporary_api import TemporaryApi, api_for_a_run, use_temporary_api
from tasks.errors import ConfigError, HousekeepingError, MissingBucket
from tasks.fleet.targets import load_targets
from tasks.record.iam_policy import iam_policy
from tasks.settings import (
    Parameter,
    RunSettings,
    Size,
    default_text,
    environment_value,
    environment_variables,
    limited_by,
    load_settings,
    operator_chosen,
    parameters,
)

#: Exit codes of the command itself (the others are the exceptions' own, tasks/errors.py).
EXIT_INVALID_INPUT = 1
EXIT_UNEXPECTED = 99


def parse_as_of(text: str) -> datetime:
    """argparse type for --as-of: ISO 8601; a value without a zone is read as UTC."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be an ISO 8601 date or date-time") from None


def utf8_text(text: str) -> str:
    """argparse type for text: bytes that are not UTF-8 reach Python as lone surrogates, which
    no AWS or Prefect request can carry; refused here, naming the option."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError("must be UTF-8 text") from None
    return text


def utf8_path(text: str) -> Path:
    """argparse type for a file the run names to Prefect (a fleet's targets): UTF-8 only."""
    return Path(utf8_text(text))


#: How the command line reads a setting's value, by the setting's type (choices are Literals,
#: switches are booleans).
OPTION_TYPES: dict[Any, Callable[[str], Any]] = {
    int: int,
    float: float,
    str: utf8_text,
    datetime: parse_as_of,
}


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is what it is here, invalid input (exit 1): argparse's own 2
    is the credentials code; and only whole option names are read, as a tool that deletes
    must: argparse would take `--exec` for `--execute`, `--no-create` for `--no-create-bucket`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The default, not a keyword of build_parser's: argparse makes every subcommand's parser
        # with this class and without the parent's allow_abbrev (Python 3.11).
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_INVALID_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="s3-housekeeping",
        description="Delete objects older than N days under an S3 prefix, safely (a Prefect flow).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run the flow locally (a dry run unless --execute)",
        description="Options left out fall back to their environment variables, then defaults "
        "(`s3-housekeeping settings` lists them). Nothing is deleted without --execute.",
    )
    add_run_options(run)
    run.add_argument("--report-json", type=Path, help="write the run report to this file")
    add_output_options(run)
    run.add_argument(
        "--list",
        action="store_true",
        help="print every planned key on stdout, one per line (characters a terminal cannot "
        "show escaped as \\uXXXX), or one JSON object per planned object with --output json",
    )
    demo = commands.add_parser(
        "demo", help="run the whole job against an embedded local AWS (moto), then stop it"
    )
    demo.add_argument("--report-json", type=Path, help="write the executing run's report here")
    demo.add_argument(
        "--keep",
        action="store_true",
        help="instead, leave a local S3 running with objects of known ages, and print how to "
        "point the command at it (a playground; Ctrl-C stops it)",
    )
    add_output_options(demo)
    commands.add_parser(
        "settings", help="print every setting: option, environment variable, default (Markdown)"
    )
    policy = commands.add_parser(
        "iam-policy",
        help="print the least-privilege IAM policy (JSON) of a run with the same options",
        description="Print, as JSON, the IAM policy that a run with these options needs and no "
        "more: the same options as `run`, validated the same way, with the same fallbacks to "
        "environment variables; --execute gives the policy of a deleting run. Attach it to the "
        "identity the run uses: with --role-arn the policy is for that role (whoever assumes "
        "it needs only sts:AssumeRole on it). Makes no AWS call.",
    )
    deleting = add_run_options(policy)["dry_run"]
    deleting.help = "the policy of a run that deletes (default: of a dry run)"
    add_fleet_command(commands)
    return parser


def add_fleet_command(commands: Any) -> None:
    """`fleet`: every target of a targets file, one child run each (flows/fleet.py)."""
    fleet = commands.add_parser(
        "fleet",
        help="clean every target of a targets file, one child run each (a dry run unless "
        "--execute)",
        description="Run the s3-housekeeping-fleet flow locally. The targets file is validated "
        "whole first: any problem exits 1, naming each with its line, before any AWS call. "
        "The exit code is the worst target's (99, then 1-5, then 7, then 6, then 0); the "
        "report says which target had it.",
    )
    # Text options become the fleet's flow parameters: bytes that are not UTF-8 cannot travel.
    fleet.add_argument("--targets", type=utf8_path, required=True, help="the targets file (YAML)")
    fleet.add_argument(
        "--execute", action="store_true", help="delete (default: every child is a dry run)"
    )
    fleet.add_argument("--group", type=utf8_text, help="only the targets of this schedule group")
    fleet.add_argument(
        "--child-deployment",
        type=utf8_text,
        help="run each target as a run of this deployment (FLOW/DEPLOYMENT), on its work "
        "pool's workers (default: in this process)",
    )
    fleet.add_argument("--run-key", type=utf8_text, help="the children's idempotency key prefix")
    fleet.add_argument("--concurrency", type=int, help="children at once (default 4)")
    fleet.add_argument(
        "--require-approval",
        action="store_true",
        help="plan every target, then ask once in the Prefect UI before deleting",
    )
    fleet.add_argument(
        "--notify-topic-arn", type=utf8_text, help="an SNS topic for the fleet's notice"
    )
    fleet.add_argument("--report-json", type=Path, help="write the fleet's report to this file")
    add_output_options(fleet)


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """--log-format and --output: words for a person, JSON for a machine."""
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="logs in words on stderr (text), or one JSON object per line (json); default: "
        "LOG_FORMAT, else text on a terminal and json elsewhere",
    )
    parser.add_argument(
        "--output",
        choices=["text", "json"],
        help="the summary in words on stdout (text, the default), or the report as JSON on "
        "stdout (json, for jq); the logs then go to stderr",
    )


def fleet_command(args: argparse.Namespace, before_run: Callable[[], object] = lambda: None) -> int:
    from flows.fleet import s3_housekeeping_fleet

    before_run()

    given = {
        "targets": str(args.targets),
        "dry_run": not args.execute,
        "group": args.group,
        "child_deployment": args.child_deployment,
        "run_key": args.run_key,
        "concurrency": args.concurrency,
        "require_approval": args.require_approval or None,
        "notify_topic_arn": args.notify_topic_arn,
    }
    parameters = {name: value for name, value in given.items() if value is not None}
    return execute(
        lambda: s3_housekeeping_fleet(**parameters).to_dict(),
        args.report_json,
        args.out,
        fleet_line,
    )


def fleet_line(report: dict[str, Any]) -> str:
    """The fleet's one line for a person at a terminal."""

    line = f"s3-housekeeping fleet: {report['status']}: {report['message']}"
    totals = report.get("totals", {})
    return line + (
        f"; matched {totals.get('matched', 0)}, deleted {totals.get('deleted', 0)}, "
        f"failed {totals.get('failed', 0)}"
    )


def add_run_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """One option per flow parameter, made from the settings model, and the AWS CLI's own;
    the options by setting."""
    parser.add_argument(
        "target",
        nargs="?",
        type=s3_target,
        metavar="s3://BUCKET/PREFIX",
        help="the bucket and prefix to clean: the same as --bucket and --prefix",
    )
    # Whatever DRY_RUN says, the command line deletes only when told to.
    options = {
        "dry_run": parser.add_argument(
            "--execute", action="store_true", help="delete the planned objects"
        )
    }
    for name, field in parameters().items():
        if name != "dry_run":
            options[name] = add_option(parser, name, field)
    options["create_bucket"].help = (
        "create the bucket if it is missing, with Block Public Access, default encryption and "
        "tags (default here: off, and a missing bucket stops the run, exit 1)"
    )
    parser.add_argument(
        "--endpoint-url",
        type=utf8_text,
        help="send S3 requests to this URL (an S3-compatible server), as the AWS CLI's "
        "--endpoint-url: the run's AWS_ENDPOINT_URL_S3",
    )
    parser.add_argument(
        "--profile",
        type=utf8_text,
        help="use this profile of the AWS config files, for its credentials and region, as the "
        "AWS CLI's --profile: the run's AWS_PROFILE",
    )
    return options


def add_option(parser: argparse.ArgumentParser, name: str, field: FieldInfo) -> argparse.Action:
    """The option of one setting: --NAME (and the spellings it keeps), typed as the setting. Left
    out, it is None, and the run falls back to the environment, then the default."""
    flags = [f"--{name.replace('_', '-')}"]
    flags += [flag for mark in field.metadata if isinstance(mark, Parameter) for flag in mark.flags]
    kind = value_type(field)
    text = help_text(name, field)
    limit = limited_by(field)
    if limit is not None:
        text += (
            f" Given here, it is the choice of this command's user, who is its own operator: "
            f"the run reads it from {environment_variables(name)[0]}, and "
            f"{', '.join(environment_variables(limit))} does not apply."
        )
    options: dict[str, Any] = {"dest": name, "help": text.replace("%", "%%")}
    if kind is bool:
        options["action"] = argparse.BooleanOptionalAction
    elif get_origin(kind) is Literal:
        options["choices"] = list(get_args(kind))
    elif get_origin(kind) is tuple:  # a list: the option once per item
        options.update(action="append", type=utf8_text)
        options["help"] += " Give the option once for each."
    elif any(isinstance(mark, Size) for mark in field.metadata):
        options["type"] = utf8_text  # with its unit: the settings read it
    else:
        options["type"] = OPTION_TYPES[kind]
    return parser.add_argument(*flags, **options)


def flow_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The flow's parameters from the command line; options left out stay None (env applies).
    The settings the operator chooses are not among them: `given_environment` gives them to the
    run. A missing bucket is created only with --create-bucket."""
    skipped = {"dry_run", *operator_chosen()}
    chosen = {name: getattr(args, name) for name in parameters() if name not in skipped}
    return {**chosen, "dry_run": not args.execute, "create_bucket": bool(args.create_bucket)}


def reference_tables() -> str:
    """The tables of settings (docs/reference/settings.md), from the model and the options."""
    options = add_run_options(argparse.ArgumentParser())
    rows = [
        "| parameter | CLI option | environment variable | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for name, field in parameters().items():
        spelled = ", ".join(f"`{flag}`" for flag in options[name].option_strings)
        if name == "dry_run":
            spelled += " (sets false)"
        rows.append(
            f"| `{name}` | {spelled} | {variables(name)} | {default_text(field)} | "
            f"{field.description} |"
        )
    rows += [
        "",
        "Settings that only come from the environment (the same for every run of a deployment):",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    for name, field in RunSettings.model_fields.items():
        if name not in options:
            rows.append(f"| {variables(name)} | {default_text(field)} | {field.description} |")
    return "\n".join(rows) + "\n"


def variables(name: str) -> str:
    return ", then ".join(f"`{var}`" for var in environment_variables(name))


def demo_command(args: argparse.Namespace, before_run: Callable[[], object] = lambda: None) -> int:
    """Run `make demo`'s job; `before_run` is called once the flow (and Prefect) is imported."""
    from flows.demo import run_demo
    from flows.s3_housekeeping import s3_housekeeping  # noqa: F401 - loaded before the wait
    from flows.summary import run_summary

    before_run()
    output: Output = args.out
    return execute(
        run_demo, args.report_json, output, run_summary if output.for_people else summary_line
    )


def run_command(args: argparse.Namespace, before_run: Callable[[], object] = lambda: None) -> int:
    """Run the flow; `before_run` is called once its modules (and Prefect) are imported."""
    from flows.s3_housekeeping import s3_housekeeping
    from flows.summary import list_plan, run_summary
    from flows.terminal import TerminalProgress
    from tasks.record.report import RunReport
    from tasks.s3.progress import subscribe

    before_run()

    output: Output = args.out

    def summarize(report: dict[str, Any]) -> str:
        if output.listing:
            list_plan(report, json_lines=output.report == "json", out=sys.stdout)
        return run_summary(report) if output.for_people else summary_line(report)

    def run() -> dict[str, Any]:
        report: RunReport = s3_housekeeping(**flow_parameters(args))
        return report.to_dict()

    # A progress line only for a person watching, and never among JSON lines.
    if not (output.for_people and sys.stderr.isatty()):
        return execute(run, args.report_json, output, summarize)
    display = TerminalProgress(sys.stderr)
    unsubscribe = subscribe(display)
    try:
        return execute(run, args.report_json, output, summarize, before_summary=display.close)
    finally:
        unsubscribe()
        display.close()


def iam_policy_command(args: argparse.Namespace) -> int:
    """Print the policy of a run with these options (checked before, as `run`'s are)."""
    settings = load_settings(flow_parameters(args))
    sys.stdout.write(json.dumps(iam_policy(settings), indent=2) + "\n")
    if settings.role_arn:
        print(
            f"s3-housekeeping: the policy is for the role {settings.role_arn}; whoever assumes "
            "it needs sts:AssumeRole on it",
            file=sys.stderr,
        )
    return 0


def execute(
    run: Callable[[], dict[str, Any]],
    report_json: Path | None,
    output: Output | None = None,
    summarize: Callable[[dict[str, Any]], str] | None = None,
    before_summary: Callable[[], object] = lambda: None,
) -> int:
    """Run, write the report, and turn the outcome into an exit code (DESIGN.md's table).
    The summary goes to stdout for a person (text logs), to stderr beside JSON logs; the
    report to stdout with --output json."""
    from prefect.exceptions import ParameterTypeError

    output = output or Output("json")
    report: dict[str, Any] | None = None
    failure: str | None = None
    try:
        report = run()
        code = 0
    except HousekeepingError as exc:
        code = exc.exit_code
        carried = getattr(exc, "report", None)
        report = carried.to_dict() if carried is not None else None
        failure = error_text(exc)
    except ParameterTypeError as exc:
        code = EXIT_INVALID_INPUT
        failure = f"invalid parameters: {exc} (exit {code})"
    except Exception as exc:
        code = EXIT_UNEXPECTED
        logging.getLogger(__name__).exception("unexpected error")
        failure = f"unexpected error ({type(exc).__name__}) (exit {code})"
    before_summary()
    if report is not None:
        if report_json is not None and not write_report(report, report_json):
            code = code or EXIT_INVALID_INPUT
        text = (summarize or summary_line)(report)
        if output.report == "json" and not output.listing:
            sys.stdout.write(json.dumps(report, indent=2) + "\n")
        else:
            # Beside JSON logs or a listing on stdout, the summary takes stderr.
            shown_on_stdout = output.for_people and not output.listing
            print(text, file=sys.stdout if shown_on_stdout else sys.stderr)
    if failure is not None:
        if report is not None and output.for_people and output.report == "text":
            failure = f"{report['status'].replace('_', ' ')} (exit {code})"  # said above
        print(f"s3-housekeeping: {failure}", file=sys.stderr)
    return code


def error_text(exc: HousekeepingError) -> str:
    """An expected error as the command says it: its message, what to do where the command
    line has the answer, and its exit code."""
    if isinstance(exc, MissingBucket):
        return (
            f"bucket {exc.bucket} does not exist (pass --create-bucket to create it) "
            f"(exit {exc.exit_code})"
        )
    target_missing = isinstance(exc, ConfigError) and any(
        problem.startswith(("bucket: required", "prefix: required")) for problem in exc.problems
    )
    hint = "\n  the target: s3://BUCKET/PREFIX, or --bucket and --prefix" if target_missing else ""
    return f"{exc}{hint} (exit {exc.exit_code})"


def write_report(report: dict[str, Any], path: Path) -> bool:
    """Write the report as JSON; False (said on stderr) when the path cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
    except OSError as exc:
        print(
            f"s3-housekeeping: cannot write the report to {path} ({exc.strerror})", file=sys.stderr
        )
        return False
    return True


def summary_line(report: dict[str, Any]) -> str:
    """One line beside JSON logs (stderr), for whoever reads the command's own messages."""
    gone = report.get("already_gone", 0)
    kept = report.get("manifest")
    return (
        f"s3-housekeeping: {report['status']}: s3://{report['bucket']}/{report['prefix']} "
        f"scanned {report['scanned']}, matched {report['matched']} "
        f"({report['matched_bytes']} bytes), deleted {report['deleted']}"
        f"{f' ({gone} already gone)' if gone else ''}, "
        f"skipped {report['skipped_changed']}, failed {report['failed']}"
        + (f"; plan {kept}" if kept else "; no plan was written")
    )


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line read: a usage error exits 1 here (argparse's way, SystemExit)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("run", "iam-policy"):
        take_target(args, parser)
    return args


def checked(args: argparse.Namespace) -> int | None:
    """The command's configuration, checked before anything starts (no Prefect API is found
    or started before): None when it holds, else the exit code, the problems said on stderr.
    Settings and a targets file are invalid input (1); a missing AWS profile, credentials (2).
    Sets `args.out`, how the command prints, and the profile's region where none is given."""
    try:
        if args.command in RUNS:
            args.out = Output.chosen(args.log_format, args.output, getattr(args, "list", False))
        if args.command in ("run", "iam-policy"):
            with given_environment(args):
                region = profile_region(uses_a_block=bool(args.aws_credentials_block))
                if region and args.region is None and not environment_value("region"):
                    args.region = region
                load_settings(flow_parameters(args))
        elif args.command == "fleet":
            load_targets(args.targets)
    except HousekeepingError as exc:
        print(f"s3-housekeeping: {error_text(exc)}", file=sys.stderr)
        return exc.exit_code
    return None


def runs_a_flow(args: argparse.Namespace) -> bool:
    """Whether the command runs a flow, and so needs a Prefect API (the playground does not)."""
    return args.command in RUNS and not (args.command == "demo" and args.keep)


def logs_of(args: argparse.Namespace) -> dict[str, str]:
    """What Prefect's logging configuration must say for the command's logs (flows/output.py)."""
    output: Output = args.out
    return output.log_environment(os.environ.get("LOG_LEVEL"))


def main(
    argv: Sequence[str] | None = None,
    run_api: AbstractContextManager[TemporaryApi | None] | None = None,
) -> int:
    """Run the command in `argv` (this process's command line when None); a run uses the API
    `run_api` gives (flows/entry.py found or started it already), else `api_for_a_run`'s."""
    args = parse(argv)
    problem = checked(args)
    return problem if problem is not None else command(args, run_api)


def command(
    args: argparse.Namespace, run_api: AbstractContextManager[TemporaryApi | None] | None = None
) -> int:
    """Run the parsed and checked command."""
    if args.command == "demo" and args.keep:
        from flows.playground import run_playground

        return run_playground()
    if args.command in RUNS:
        configure_environment(logs=logs_of(args))
        # Without a Prefect server, a run needs a temporary API: started before the flow's
        # modules are imported, it comes up meanwhile, and the run waits for it only then.
        with run_api or api_for_a_run() as started, given_environment(args):
            run = {"run": run_command, "fleet": fleet_command, "demo": demo_command}
            if started is None:
                return run[args.command](args)
            return run[args.command](args, lambda: use_temporary_api(started))
    configure_environment()
    if args.command == "settings":
        sys.stdout.write(reference_tables())
        return 0
    with given_environment(args):
        return iam_policy_command(args)


if __name__ == "__main__":
    sys.exit(main())
