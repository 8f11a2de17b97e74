"""The `s3-housekeeping` command as people and pipes meet it: words on a terminal, JSON in a pipe,
the report and the plan's keys on stdout when asked, and errors that answer at once.

Each command runs as the installed console script against moto over HTTP, with no Prefect
server configured (each run starts its temporary API, as on a fresh machine). A run costs
seconds, so each is made once per module and several tests read its result.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deployments.local_aws import LocalAws
from devtools.prefect_server import PrefectServer
from devtools.processes import BIN, free_port
from tasks.s3.manifest import read_objects
from tests.support.fault_proxy import FaultProxy
from tests.support.moto_backend import bulk_put
from tests.support.terminal import TerminalRun, run_in_terminal, shell_environment
from tests.support.watched_entry import watched_run

pytestmark = pytest.mark.e2e

COMMAND = str(BIN / "s3-housekeeping")
AS_OF = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
#: The runs' cutoff as the headline says it: 30 days before AS_OF.
CUTOFF_SHOWN = (AS_OF - timedelta(days=30)).strftime("%Y-%m-%d %H:%M UTC")
WINDOW = ("--older-than-days", "30", "--as-of", AS_OF.isoformat())
#: Every object's size in bytes.
SIZE = 1024
#: Folder under logs/ -> how many old objects it holds: 2,500 planned in all.
FOLDERS = {"api": 1200, "web": 800, "worker": 500}
PLANNED = sorted(
    f"logs/{folder}/{n:05d}.log" for folder, count in FOLDERS.items() for n in range(count)
)
#: Listed under logs/ but kept (too young); and old, but outside logs/.
YOUNG = "logs/api/today.log"
OUTSIDE = "logs-archive/old.log"
#: Old objects in two folders that the prefix `tmp` (no trailing "/") both matches.
TMP_OBJECTS = ("tmp/a.log", "tmp/b/c.log", "tmp-keep/precious.db")
#: A profile of the temporary AWS config files, with obviously fake keys.
PROFILE, PROFILE_KEY, PROFILE_REGION = "housekeeping-test", "testing-profile", "eu-west-2"


@dataclass(frozen=True)
class Seeded:
    bucket: str
    #: key -> its ETag: the MD5 of its body, as S3 gives an object put in one part.
    etags: dict[str, str]


@dataclass(frozen=True)
class Piped:
    code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def seeded(moto_http: LocalAws) -> Seeded:
    """A bucket with 2,500 old objects under logs/ in three folders, one young one, one old one
    outside logs/, and old ones under tmp/ and tmp-keep/; each object's body its own."""
    bucket = f"terminal-{uuid.uuid4().hex[:12]}"
    moto_http.client("s3").create_bucket(Bucket=bucket)
    ages = {key: 100 for key in [*PLANNED, OUTSIDE, *TMP_OBJECTS]} | {YOUNG: 0}
    etags = {}
    for key, days in ages.items():
        body = key.encode().ljust(SIZE, b".")
        bulk_put(bucket, [key], AS_OF - timedelta(days=days), body)
        etags[key] = f'"{hashlib.md5(body).hexdigest()}"'  # noqa: S324 - S3's ETag of one part
    return Seeded(bucket, etags)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runs' home directory: their Prefect home (one for the module: its database is made
    once), their plans, their AWS config files."""
    return tmp_path_factory.mktemp("terminal-home")


@pytest.fixture(scope="module")
def environment(moto_http: LocalAws, home: Path, prefect_api: PrefectServer) -> dict[str, str]:
    """What a person's shell would hold: moto's endpoint and fake keys, a team's Prefect
    server, no AWS config files, nothing else from this machine. (Without a server each run
    would start a temporary API, 3 s of CPU each; the playground's test runs that way, and
    the usage errors below prove none starts.)"""
    shell = shell_environment(home, moto_http.environment())
    return {**shell, "TASK_RETRIES": "0", "PREFECT_API_URL": prefect_api.api_url}


def piped(environment: Mapping[str, str], *arguments: str) -> Piped:
    """The command with stdout and stderr pipes, as a script or a scheduler runs it."""
    done = subprocess.run(
        [COMMAND, *arguments],
        env=dict(environment),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    return Piped(done.returncode, done.stdout, done.stderr)


def json_objects(text: str) -> list[dict[str, Any]]:
    """The lines of `text` that parse as a JSON object."""
    found = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def remaining(moto_http: LocalAws, bucket: str) -> set[str]:
    pages = moto_http.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {entry["Key"] for page in pages for entry in page.get("Contents", [])}


def without(environment: Mapping[str, str], *names: str) -> dict[str, str]:
    return {name: value for name, value in environment.items() if name not in names}


# A dry run on a terminal ------------------------------------------------------------------


@pytest.fixture(scope="module")
def on_terminal(environment: dict[str, str], seeded: Seeded) -> TerminalRun:
    return run_in_terminal([COMMAND, "run", f"s3://{seeded.bucket}/logs/", *WINDOW], environment)


class TestDryRunOnATerminal:
    def test_exits_0_and_says_nothing_was_deleted_when_dry_run(
        self, on_terminal: TerminalRun, seeded: Seeded
    ) -> None:
        assert on_terminal.code == 0, on_terminal.output
        assert on_terminal.stdout.splitlines()[0] == (
            f"Dry run: 2,500 objects (2.4 MiB) under s3://{seeded.bucket}/logs/ would be "
            f"deleted, last modified before {CUTOFF_SHOWN}; 2,501 listed. Nothing was deleted."
        )

    def test_shows_each_folder_with_its_count_and_size_when_the_plan_spans_folders(
        self, on_terminal: TerminalRun
    ) -> None:
        lines = on_terminal.stdout.splitlines()
        header = next(index for index, line in enumerate(lines) if line.split()[:1] == ["folder"])

        assert lines[header].split() == ["folder", "objects", "size"]
        assert [line.split() for line in lines[header + 1 : header + 4]] == [
            ["logs/api/", "1,200", "1.2", "MiB"],
            ["logs/web/", "800", "800.0", "KiB"],
            ["logs/worker/", "500", "500.0", "KiB"],
        ]

    def test_shows_the_first_20_planned_objects_and_how_many_more_when_the_plan_is_long(
        self, on_terminal: TerminalRun
    ) -> None:
        lines = on_terminal.stdout.splitlines()
        header = next(
            i for i, line in enumerate(lines) if line.strip().startswith("planned object")
        )
        shown = [line.split() for line in lines[header + 1 : header + 21]]
        more = re.fullmatch(
            r"  \.\.\. and 2,480 more: the plan is at (\S+) \(--list\)", lines[header + 21]
        )

        assert more is not None, lines[header + 21]
        # The plan's order is the listing's (its shards run at once), not the keys' order.
        first = [
            row.key for row, _ in zip(read_objects(Path(more.group(1))), range(20), strict=False)
        ]
        assert [row[0] for row in shown] == first
        assert set(first) <= set(PLANNED)
        assert all(row[1:] == ["100", "days", "1.0", "KiB"] for row in shown)

    def test_prints_no_json_line_when_stdout_is_a_terminal(self, on_terminal: TerminalRun) -> None:
        assert json_objects(on_terminal.stdout) == []
        assert json_objects(on_terminal.stderr) == []
        assert "Traceback" not in on_terminal.output

    def test_erases_the_progress_line_when_the_run_ends(self, on_terminal: TerminalRun) -> None:
        # The live line is rewritten in place ("\r", erase line) and erased before the summary:
        # nothing of it is left on a line of its own.
        assert "\x1b[2K" in on_terminal.stderr
        assert on_terminal.stderr.rstrip("\n").endswith("\x1b[2K")
        assert "objects/s" in on_terminal.stderr
        assert "objects/s" not in on_terminal.stdout


# A configuration error on a terminal ---------------------------------------------------


class TestConfigurationErrorOnATerminal:
    def test_says_the_problem_and_exit_1_without_a_traceback_when_prefix_is_missing(
        self, environment: dict[str, str], seeded: Seeded
    ) -> None:
        result = run_in_terminal([COMMAND, "run", "--bucket", seeded.bucket], environment)

        assert result.code == 1, result.output
        assert "prefix: required (a parameter, or CLEANUP_PREFIX)" in result.stderr
        assert result.stderr.rstrip().endswith("(exit 1)")
        assert "Traceback" not in result.output
        assert result.stdout == ""


@pytest.fixture(scope="module")
def missing_bucket(
    environment: dict[str, str], moto_http: LocalAws
) -> Iterator[tuple[TerminalRun, FaultProxy]]:
    """A run on a terminal naming a bucket that does not exist, every request it sends recorded."""
    with FaultProxy(moto_http.endpoint_url) as proxy:
        result = run_in_terminal(
            [COMMAND, "run", "s3://no-such-bucket-e2e/logs/", *WINDOW],
            {**environment, "AWS_ENDPOINT_URL": proxy.url},
        )
        proxy.wait_idle(10)
        yield result, proxy


class TestMissingBucket:
    def test_exit_1_naming_the_bucket_and_create_bucket_when_the_bucket_is_missing(
        self, missing_bucket: tuple[TerminalRun, FaultProxy]
    ) -> None:
        result, _ = missing_bucket

        assert result.code == 1, result.output
        assert (
            "s3-housekeeping: bucket no-such-bucket-e2e does not exist (pass --create-bucket to "
            "create it) (exit 1)"
        ) in result.stderr
        assert "Traceback" not in result.output

    def test_sends_only_get_bucket_versioning_when_the_bucket_is_missing(
        self, missing_bucket: tuple[TerminalRun, FaultProxy], moto_http: LocalAws
    ) -> None:
        _, proxy = missing_bucket

        assert [exchange.operation for exchange in proxy.exchanges] == ["GetBucketVersioning"]
        names = {b["Name"] for b in moto_http.client("s3").list_buckets()["Buckets"]}
        assert "no-such-bucket-e2e" not in names


# The same dry run in a pipe, and as JSON -------------------------------------------------


@pytest.fixture(scope="module")
def in_a_pipe(environment: dict[str, str], seeded: Seeded) -> Piped:
    return piped(environment, "run", "--bucket", seeded.bucket, "--prefix", "logs/", *WINDOW)


class TestDryRunInAPipe:
    def test_every_stdout_line_is_a_json_log_record_when_stdout_is_a_pipe(
        self, in_a_pipe: Piped
    ) -> None:
        lines = in_a_pipe.stdout.splitlines()

        assert in_a_pipe.code == 0, in_a_pipe.stderr
        assert lines
        assert len(json_objects(in_a_pipe.stdout)) == len(lines)
        assert all({"level", "message"} <= set(record) for record in json_objects(in_a_pipe.stdout))

    def test_says_the_run_in_one_line_on_stderr_when_stdout_is_a_pipe(
        self, in_a_pipe: Piped, seeded: Seeded
    ) -> None:
        said = [
            line for line in in_a_pipe.stderr.splitlines() if line.startswith("s3-housekeeping:")
        ]

        assert len(said) == 1
        assert said[0].startswith(
            f"s3-housekeeping: dry_run: s3://{seeded.bucket}/logs/ scanned 2501, matched 2500 "
            "(2560000 bytes), deleted 0"
        )
        assert "Dry run:" not in in_a_pipe.stdout + in_a_pipe.stderr


@pytest.fixture(scope="module")
def as_json(environment: dict[str, str], seeded: Seeded) -> Piped:
    """`--output json`, its S3 endpoint given by --endpoint-url alone (AWS_ENDPOINT_URL unset)."""
    endpoint = environment["AWS_ENDPOINT_URL"]
    return piped(
        without(environment, "AWS_ENDPOINT_URL"),
        "run",
        f"s3://{seeded.bucket}/logs/",
        *WINDOW,
        "--output",
        "json",
        "--endpoint-url",
        endpoint,
    )


class TestOutputJson:
    def test_stdout_is_the_report_as_one_json_document_when_output_is_json(
        self, as_json: Piped, seeded: Seeded
    ) -> None:
        assert as_json.code == 0, as_json.stderr
        report = json.loads(as_json.stdout)
        assert (report["status"], report["bucket"], report["prefix"]) == (
            "dry_run",
            seeded.bucket,
            "logs/",
        )
        assert (report["matched"], report["scanned"], report["deleted"]) == (2500, 2501, 0)

    def test_logs_go_to_stderr_when_output_is_json(self, as_json: Piped) -> None:
        assert json_objects(as_json.stderr)
        assert all("level" in record for record in json_objects(as_json.stderr))

    def test_reaches_the_endpoint_url_given_when_aws_endpoint_url_is_unset(
        self, as_json: Piped
    ) -> None:
        assert as_json.code == 0, as_json.stderr
        assert json.loads(as_json.stdout)["requests"]["ListObjectsV2"] >= 1


# Every planned key: --list ---------------------------------------------------------------


@pytest.fixture(scope="module")
def listed(environment: dict[str, str], seeded: Seeded) -> Piped:
    return piped(environment, "run", f"s3://{seeded.bucket}/logs/", *WINDOW, "--list")


@pytest.fixture(scope="module")
def listed_as_json(environment: dict[str, str], seeded: Seeded) -> Piped:
    return piped(
        environment,
        "run",
        "--bucket",
        seeded.bucket,
        "--prefix",
        "logs/",
        *WINDOW,
        "--list",
        "--output",
        "json",
    )


class TestList:
    def test_stdout_is_every_planned_key_and_nothing_else_when_listing(self, listed: Piped) -> None:
        assert listed.code == 0, listed.stderr
        assert sorted(listed.stdout.splitlines()) == PLANNED

    def test_logs_and_summary_go_to_stderr_when_listing(self, listed: Piped) -> None:
        assert json_objects(listed.stderr)
        assert "s3-housekeeping: dry_run:" in listed.stderr

    def test_stdout_is_one_json_object_per_planned_object_when_listing_as_json(
        self, listed_as_json: Piped, seeded: Seeded
    ) -> None:
        lines = listed_as_json.stdout.splitlines()
        objects = [json.loads(line) for line in lines]

        assert listed_as_json.code == 0, listed_as_json.stderr
        assert len(objects) == 2500
        assert sorted(entry["key"] for entry in objects) == PLANNED
        assert all(entry["size"] == SIZE for entry in objects)
        assert all(entry["etag"] == seeded.etags[entry["key"]] for entry in objects)


# The target: s3://BUCKET/PREFIX or --bucket and --prefix ----------------------------------


class TestTarget:
    def test_plans_the_same_objects_when_the_target_is_given_as_s3_uri_or_as_options(
        self, listed: Piped, listed_as_json: Piped
    ) -> None:
        # `listed` names s3://BUCKET/logs/, `listed_as_json` --bucket and --prefix.
        keys_by_options = [json.loads(line)["key"] for line in listed_as_json.stdout.splitlines()]

        assert sorted(listed.stdout.splitlines()) == sorted(keys_by_options)


# Errors that answer at once --------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "code", "said"),
    [
        pytest.param(
            ("run", "s3://b-bucket/p/", "--dry-run"),
            1,
            "unrecognized arguments: --dry-run",
            id="unknown-option",
        ),
        pytest.param(("run", "--bucket", "b-bucket"), 1, "prefix: required", id="no-prefix"),
        pytest.param(
            ("run", "s3://b-bucket/p/", "--bucket", "b-bucket"),
            1,
            "give the target as s3://BUCKET/PREFIX or as --bucket and --prefix, not both",
            id="target-twice",
        ),
        pytest.param(
            ("run", "s3://b-bucket/p/", "--profile", "nosuch"),
            2,
            "AWS profile 'nosuch' not found",
            id="missing-profile",
        ),
    ],
)
def test_answers_at_once_and_starts_nothing_when_the_command_line_is_wrong(
    environment: dict[str, str], arguments: tuple[str, ...], code: int, said: str
) -> None:
    result = watched_run(without(environment, "PREFECT_API_URL"), *arguments)

    assert result.code == code, result.stderr
    assert said in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "Temporary Prefect API" not in result.stdout + result.stderr
    assert result.children == []  # no Prefect API, nor anything else, was started
    # Usually under a second; the bound only catches a Prefect API started on the way.
    assert result.seconds < 5


# --endpoint-url and --profile ----------------------------------------------------------


def test_exit_3_naming_the_endpoint_when_endpoint_url_is_unreachable(
    environment: dict[str, str], seeded: Seeded
) -> None:
    port = free_port()

    result = piped(
        {**without(environment, "AWS_ENDPOINT_URL"), "AWS_MAX_ATTEMPTS": "1"},
        "run",
        f"s3://{seeded.bucket}/logs/",
        *WINDOW,
        "--endpoint-url",
        f"http://127.0.0.1:{port}",
    )

    assert result.code == 3, result.stderr
    assert f"endpoint http://127.0.0.1:{port} unreachable" in result.stderr
    assert "(exit 3)" in result.stderr


@pytest.fixture(scope="module")
def with_profile(
    environment: dict[str, str], seeded: Seeded, moto_http: LocalAws, home: Path
) -> Iterator[tuple[Piped, FaultProxy]]:
    """A dry run whose keys and region come only from a profile of the AWS config files."""
    aws = home / ".aws"
    aws.mkdir()
    (aws / "config").write_text(f"[profile {PROFILE}]\nregion = {PROFILE_REGION}\n")
    (aws / "credentials").write_text(
        f"[{PROFILE}]\naws_access_key_id = {PROFILE_KEY}\naws_secret_access_key = testing\n"
    )
    given = without(environment, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    with FaultProxy(moto_http.endpoint_url) as proxy:
        result = piped(
            {
                **given,
                "AWS_ENDPOINT_URL": proxy.url,
                "AWS_CONFIG_FILE": str(aws / "config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(aws / "credentials"),
            },
            "run",
            f"s3://{seeded.bucket}/logs/",
            *WINDOW,
            "--profile",
            PROFILE,
            "--output",
            "json",
        )
        proxy.wait_idle(10)
        yield result, proxy


class TestProfile:
    def test_runs_with_the_profiles_keys_when_profile_is_given(
        self, with_profile: tuple[Piped, FaultProxy]
    ) -> None:
        result, proxy = with_profile

        assert result.code == 0, result.stderr
        assert json.loads(result.stdout)["matched"] == 2500
        assert proxy.exchanges
        assert {exchange.access_key for exchange in proxy.exchanges} == {PROFILE_KEY}

    def test_runs_in_the_profiles_region_when_no_region_is_given(
        self, with_profile: tuple[Piped, FaultProxy]
    ) -> None:
        result, _ = with_profile

        assert json.loads(result.stdout)["region"] == PROFILE_REGION


# A prefix without a trailing "/" --------------------------------------------------------


@pytest.fixture(scope="module")
def across_folders(environment: dict[str, str], seeded: Seeded) -> TerminalRun:
    return run_in_terminal([COMMAND, "run", f"s3://{seeded.bucket}/tmp", *WINDOW], environment)


class TestPrefixAcrossFolders:
    def test_notes_both_folders_when_the_prefix_has_no_trailing_slash(
        self, across_folders: TerminalRun
    ) -> None:
        lines = across_folders.stdout.splitlines()

        assert across_folders.code == 0, across_folders.output
        assert (
            "note: prefix 'tmp' has no trailing '/' and matches 2 folders or keys: tmp-keep/, "
            "tmp/; all are cleaned (end it with '/' for one folder)"
        ) in lines
        rows = {line.split()[0]: line.split()[1] for line in lines if line.startswith("  tmp")}
        assert rows["tmp/"] == "2"
        assert rows["tmp-keep/"] == "1"

    def test_exit_6_and_deletes_nothing_when_an_ambiguous_prefix_is_refused(
        self, environment: dict[str, str], seeded: Seeded, moto_http: LocalAws
    ) -> None:
        with FaultProxy(moto_http.endpoint_url) as proxy:
            result = piped(
                {**environment, "AWS_ENDPOINT_URL": proxy.url},
                "run",
                f"s3://{seeded.bucket}/tmp",
                *WINDOW,
                "--execute",
                "--ambiguous-prefix",
                "refuse",
            )
            proxy.wait_idle(10)
        sent = [exchange.operation for exchange in proxy.exchanges]

        assert result.code == 6, result.stderr
        assert "tmp-keep/, tmp/" in result.stderr
        # Refused before the bucket's lock was taken: nothing written, nothing deleted.
        assert not {"DeleteObjects", "DeleteObject", "PutObject"} & set(sent)
        # The one listing that found the folders (Delimiter "/"); the objects were never listed.
        assert sent.count("ListObjectsV2") == 1
        assert set(TMP_OBJECTS) <= remaining(moto_http, seeded.bucket)
