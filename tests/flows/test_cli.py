"""The command line: its `run` options come from the settings model, and so do the tables of the
settings page (docs/reference/settings.md); exceptions become the exit codes of DESIGN.md."""

from __future__ import annotations

import argparse
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devtools.reference import SETTINGS_PAGE, with_tables
from flows.cli import (
    add_run_options,
    build_parser,
    execute,
    flow_parameters,
    main,
    parse_as_of,
    reference_tables,
    summary_line,
)
from flows.parameters import help_text
from flows.preflight import given_environment
from tasks.errors import (
    AwsApiError,
    ConfigError,
    CredentialsError,
    HousekeepingError,
    NetworkError,
    PartialFailure,
    PermissionDeniedError,
    SafetyRefusal,
)
from tasks.settings import RunSettings, environment_variables, load_settings, parameters


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", *argv])


class TestRunOptions:
    def test_every_parameter_has_one_option_and_nothing_else_has_one_when_built(self) -> None:
        options = add_run_options(argparse.ArgumentParser())

        assert set(options) == set(parameters())
        assert options["dry_run"].option_strings == ["--execute"]
        for name, action in options.items():
            if name != "dry_run":
                assert action.dest == name
                assert f"--{name.replace('_', '-')}" in action.option_strings

    def test_options_left_out_stay_unset_so_the_environment_applies_when_parsed(self) -> None:
        given = flow_parameters(parse("--bucket", "b-bucket"))

        # What the operator chooses reaches the run through the environment (TestOperatorOptions).
        assert set(given) == set(parameters()) - {"dask_address"}
        assert given["bucket"] == "b-bucket"
        assert given["dry_run"] is True  # whatever DRY_RUN says, only --execute deletes
        assert given["create_bucket"] is False  # only --create-bucket makes a bucket
        assert all(
            value is None
            for name, value in given.items()
            if name not in {"bucket", "dry_run", "create_bucket"}
        )

    def test_options_are_typed_as_their_settings_when_given(self) -> None:
        given = flow_parameters(
            parse(
                "--execute",
                "--older-than-days",
                "7",
                "--max-delete-percent",
                "12.5",
                "--as-of",
                "2024-01-02T03:04:05+00:00",
                "--no-create-bucket",
                "--require-approval",
                "--approval-timeout-minutes",
                "15",
                "--notify-topic-arn",
                "arn:aws:sns:eu-west-1:123456789012:housekeeping",
                "--credentials-block",
                "aws-prod",
            )
        )

        assert given["dry_run"] is False
        assert (given["older_than_days"], given["max_delete_percent"]) == (7, 12.5)
        assert given["as_of"] == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
        assert (given["create_bucket"], given["require_approval"]) == (False, True)
        assert given["approval_timeout_minutes"] == 15
        assert given["notify_topic_arn"] == "arn:aws:sns:eu-west-1:123456789012:housekeeping"
        assert given["aws_credentials_block"] == "aws-prod"  # the spelling it always had

    @pytest.mark.parametrize(
        "argv",
        [
            pytest.param(["run", "--older-than-days", "thirty"], id="not-a-number"),
            pytest.param(["run", "--no-such-option"], id="unknown-option"),
            pytest.param([], id="no-command"),
        ],
    )
    def test_bad_command_line_exits_1_not_the_credentials_code_when_parsed(
        self, argv: list[str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(SystemExit) as exited:
            main(argv)

        assert exited.value.code == 1
        assert "s3-housekeeping" in capsys.readouterr().err

    def test_choices_come_from_the_settings_literals_when_refused(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(SystemExit):
            parse("--versions", "latest")

        assert "choose from 'current', 'noncurrent', 'all'" in capsys.readouterr().err

    def test_every_option_shows_its_settings_help_when_asked(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(SystemExit):
            parse("--help")

        shown = " ".join(capsys.readouterr().out.split())
        for name, field in parameters().items():
            if name not in ("dry_run", "create_bucket"):
                assert help_text(name, field) in shown, name
        # On the command line a missing bucket is made only when asked.
        assert "(default here: off, and a missing bucket stops the run, exit 1)" in shown


def subcommands() -> dict[str, argparse.ArgumentParser]:
    """Each subcommand's parser (argparse keeps them in its subparsers action)."""
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


#: What a subcommand needs on its command line before any other option.
REQUIRED = {"fleet": ["--targets", "fleet.yaml"]}


def value_for(action: argparse.Action) -> list[str]:
    """A value the option's type accepts, as typed; none for a switch."""
    if action.nargs == 0:
        return []
    if action.choices:
        return [str(next(iter(action.choices)))]
    typed = {int: "7", float: "1.5", parse_as_of: "2024-01-02T03:04:05+00:00"}
    return [typed.get(action.type, "some-value")]  # type: ignore[arg-type]


def long_options() -> list[tuple[str, str, argparse.Action]]:
    """(subcommand, option, action) for every long option of every subcommand but --help."""
    return [
        (name, option, action)
        for name, parser in subcommands().items()
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction)
        for option in action.option_strings
        if option.startswith("--")
    ]


class TestWholeOptionNames:
    @pytest.mark.parametrize(
        "argv",
        [
            pytest.param(["run", "--bucket", "b-bucket", "--prefix", "p/", "--exec"], id="run"),
            pytest.param(["run", "--older", "30"], id="run-older"),
            pytest.param(["fleet", "--targets", "fleet.yaml", "--exec"], id="fleet"),
            pytest.param(["fleet", "--target", "fleet.yaml"], id="fleet-target"),
            pytest.param(["demo", "--report", "report.json"], id="demo"),
            pytest.param(["settings", "--he"], id="settings"),
            pytest.param(
                ["iam-policy", "--bucket", "b-bucket", "--prefix", "p/", "--exec", "--no-create"],
                id="iam-policy",
            ),
            pytest.param(["--he"], id="no-command"),
        ],
    )
    def test_usage_error_exit_1_when_an_option_is_abbreviated(
        self,
        argv: list[str],
        capsys: pytest.CaptureFixture[str],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.chdir(tmp_path)  # where a command that did run would write its files

        with pytest.raises(SystemExit) as exited:
            main(argv)

        assert exited.value.code == 1
        assert re.search(r"^s3-housekeeping( [a-z-]+)?: error: ", capsys.readouterr().err, re.M)

    def test_every_piece_of_every_option_is_refused_when_it_is_not_an_option_itself(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        parsers = subcommands()
        accepted = []
        for name, option, action in long_options():
            spelled = set(parsers[name]._option_string_actions)
            for end in range(3, len(option)):
                piece = option[:end]
                if piece in spelled:
                    continue
                argv = [name, *REQUIRED.get(name, []), piece, *value_for(action)]
                try:
                    build_parser().parse_args(argv)
                except SystemExit as exited:
                    assert exited.code == 1
                else:
                    accepted.append(argv)

        capsys.readouterr()
        assert accepted == []

    @pytest.mark.parametrize(
        ("name", "option", "action"),
        long_options(),
        ids=lambda value: value if isinstance(value, str) else "",
    )
    def test_an_option_is_read_when_spelled_in_full(
        self, name: str, option: str, action: argparse.Action
    ) -> None:
        argv = [name, *REQUIRED.get(name, []), option, *value_for(action)]

        parsed = build_parser().parse_args(argv)

        assert getattr(parsed, action.dest) != action.default


class TestOperatorOptions:
    """The command's user is its own operator: what a work pool would set, its options set."""

    def test_dask_address_reaches_the_run_through_its_environment_when_given(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://before:8786")
        args = parse("--bucket", "b-bucket", "--prefix", "tmp/", "--dask-address", "tcp://own:8786")

        with given_environment(args):
            assert os.environ["DASK_SCHEDULER_ADDRESS"] == "tcp://own:8786"
            settings = load_settings(flow_parameters(args))

        assert "dask_address" not in flow_parameters(args)
        # No ALLOWED_DASK_ADDRESSES is set: the address is the operator's own.
        assert settings.dask_address == "tcp://own:8786"
        assert os.environ["DASK_SCHEDULER_ADDRESS"] == "tcp://before:8786"

    def test_the_environment_is_left_as_it_was_when_the_option_is_not_given(self) -> None:
        with given_environment(parse("--bucket", "b-bucket")):
            assert "DASK_SCHEDULER_ADDRESS" not in os.environ

        assert "DASK_SCHEDULER_ADDRESS" not in os.environ

    def test_iam_policy_is_the_clusters_when_dask_address_is_given(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        argv = ["--bucket", "b-bucket", "--prefix", "tmp/"]
        argv += ["--manifest-location", "s3://team-plans/housekeeping"]

        assert main(["iam-policy", *argv, "--dask-address", "tcp://own:8786"]) == 0
        on_dask = json.loads(capsys.readouterr().out)
        assert main(["iam-policy", *argv]) == 0
        in_process = json.loads(capsys.readouterr().out)

        assert on_dask != in_process  # the workers read the parts back from the plans' place
        assert "DASK_SCHEDULER_ADDRESS" not in os.environ

    def test_help_says_the_option_is_the_users_own_choice_when_shown(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(SystemExit):
            parse("--help")

        shown = " ".join(capsys.readouterr().out.split())
        assert "who is its own operator: the run reads it from DASK_SCHEDULER_ADDRESS" in shown
        assert "ALLOWED_DASK_ADDRESSES does not apply" in shown


class TestReference:
    def test_settings_page_holds_the_tables_it_prints_when_compared(self) -> None:
        text = SETTINGS_PAGE.read_text()

        assert with_tables(text, reference_tables()) == text, "run `make reference`"

    def test_settings_command_prints_every_setting_when_run(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["settings"]) == 0

        printed = capsys.readouterr().out
        assert printed == reference_tables()
        for name in RunSettings.model_fields:
            if name in parameters():
                assert f"| `{name}` |" in printed
            for variable in environment_variables(name):
                assert f"`{variable}`" in printed

    def test_tables_list_each_setting_once_when_rendered(self) -> None:
        rows = [line for line in reference_tables().splitlines() if re.match(r"\| `", line)]

        assert len(rows) == len(RunSettings.model_fields)


class TestExitCodes:
    @pytest.mark.parametrize(
        ("error", "code"),
        [
            pytest.param(ConfigError("bad"), 1, id="config"),
            pytest.param(CredentialsError("expired"), 2, id="credentials"),
            pytest.param(NetworkError("unreachable"), 3, id="network"),
            pytest.param(PermissionDeniedError("denied"), 4, id="permission"),
            pytest.param(AwsApiError("boom"), 5, id="aws"),
            pytest.param(SafetyRefusal("max_deletions", 2, 1), 6, id="refused"),
            pytest.param(PartialFailure(1, 2), 7, id="partial"),
            pytest.param(HousekeepingError("ours"), 99, id="ours-unexpected"),
            pytest.param(KeyError("a bug"), 99, id="unexpected"),
        ],
    )
    def test_exception_becomes_its_exit_code_when_the_run_raises_it(
        self, error: Exception, code: int, capsys: pytest.CaptureFixture[str]
    ) -> None:
        def run() -> dict[str, Any]:
            raise error

        assert execute(run, None) == code
        assert capsys.readouterr().err.startswith("s3-housekeeping: ")

    def test_unwritable_report_path_is_said_and_exits_1_when_the_run_succeeded(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        from tasks.record.report import RunReport

        report = RunReport("completed", "b-bucket", "tmp/", "us-east-1", "dev", "x", False)
        in_the_way = tmp_path / "a-file"
        in_the_way.write_text("")

        assert execute(report.to_dict, in_the_way / "report.json") == 1
        assert "cannot write the report to" in capsys.readouterr().err

    def test_report_a_refusal_carries_is_written_when_the_run_is_refused(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        from tasks.record.report import RunReport

        report = RunReport("refused", "b-bucket", "tmp/", "us-east-1", "dev", "x", False)

        def run() -> dict[str, Any]:
            raise SafetyRefusal("max_deletions", 2, 1, report=report)

        path = tmp_path / "out" / "report.json"
        assert execute(run, path) == 6
        assert json.loads(path.read_text()) == report.to_dict()
        assert "s3-housekeeping: refused: s3://b-bucket/tmp/" in capsys.readouterr().err


SUMMARY_REPORT: dict[str, Any] = {
    "status": "completed",
    "bucket": "b",
    "prefix": "tmp/",
    "scanned": 9,
    "matched": 5,
    "matched_bytes": 50,
    "deleted": 5,
    "already_gone": 0,
    "skipped_changed": 0,
    "failed": 0,
    "manifest": "plans/p.jsonl.gz",
}


class TestSummaryLine:
    def test_counts_only_when_nothing_was_gone_already(self) -> None:
        assert summary_line(SUMMARY_REPORT) == (
            "s3-housekeeping: completed: s3://b/tmp/ scanned 9, matched 5 (50 bytes), "
            "deleted 5, skipped 0, failed 0; plan plans/p.jsonl.gz"
        )

    def test_says_no_plan_was_written_instead_of_none_when_there_is_none(self) -> None:
        line = summary_line({**SUMMARY_REPORT, "manifest": None})

        assert line.endswith("failed 0; no plan was written")
        assert "None" not in line

    def test_says_how_many_were_gone_already_when_some_were(self) -> None:
        line = summary_line({**SUMMARY_REPORT, "already_gone": 2})

        assert "deleted 5 (2 already gone), skipped 0" in line


class TestRuleOptions:
    def test_lists_take_the_option_once_per_item_and_sizes_take_units_when_given(self) -> None:
        args = parse(
            "--bucket", "b-bucket", "--prefix", "logs/",
            "--include", "app/**", "--include", "*.log", "--exclude", "**/*.keep",
            "--min-size", "10MiB", "--storage-classes", "STANDARD",
        )  # fmt: skip

        settings = load_settings(flow_parameters(args))

        assert settings.include == ("app/**", "*.log")
        assert settings.exclude == ("**/*.keep",)
        assert settings.min_size == 10 * 1024 * 1024
        assert settings.storage_classes == ("STANDARD",)
