"""The `s3-housekeeping` command against moto over HTTP and a real Prefect server."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from deployments.local_aws import LocalAws, backdate
from devtools.processes import free_port
from flows import cli as cli_module
from tests.e2e.conftest import Cli
from tests.support.faults import inject_delete_errors
from tests.support.servers import moto_server_process

pytestmark = pytest.mark.e2e

OLD = {"temp/a.log", "temp/b/c.log", "temp/d.bin"}
KEPT = {"temp/new.log", "temp-keep/old.db", "logs/old.log"}
AS_OF = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)


@pytest.fixture
def bucket(moto_http: LocalAws) -> str:
    """A fresh bucket with old and new objects in and beside temp/."""
    name = f"cli-{uuid.uuid4().hex[:12]}"
    s3 = moto_http.client("s3")
    s3.create_bucket(Bucket=name)
    ages = {key: 400 for key in OLD} | {
        "temp/new.log": 1,
        "temp-keep/old.db": 400,
        "logs/old.log": 400,
    }
    for key, days in ages.items():
        s3.put_object(Bucket=name, Key=key, Body=b"0123456789")
        backdate(name, key, AS_OF - timedelta(days=days))
    return name


def keys(aws: LocalAws, bucket: str) -> set[str]:
    return {o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])}


def args(bucket: str, *extra: str) -> list[str]:
    return [
        "run",
        "--bucket",
        bucket,
        "--prefix",
        "temp/",
        "--older-than-days",
        "30",
        "--as-of",
        AS_OF.isoformat(),
        *extra,
    ]


class TestRunLifecycle:
    def test_dry_run_then_execute_then_execute_again(
        self, cli: Cli, moto_http: LocalAws, bucket: str, tmp_path: Path
    ) -> None:
        report_path = tmp_path / "report.json"

        dry = cli(*args(bucket, "--report-json", str(report_path)))
        assert dry.code == 0, dry.stderr
        assert keys(moto_http, bucket) == OLD | KEPT
        dry_report = json.loads(report_path.read_text())
        assert (dry_report["status"], dry_report["matched"], dry_report["deleted"]) == (
            "dry_run",
            3,
            0,
        )

        executed = cli(*args(bucket, "--execute", "--report-json", str(report_path)))
        assert executed.code == 0, executed.stderr
        assert keys(moto_http, bucket) == KEPT
        report = json.loads(report_path.read_text())
        assert (report["status"], report["deleted"], report["failed"]) == ("completed", 3, 0)
        assert report["requests"]["DeleteObjects"] == 1

        again = cli(*args(bucket, "--execute", "--report-json", str(report_path)))
        assert again.code == 0, again.stderr
        assert json.loads(report_path.read_text())["deleted"] == 0
        assert keys(moto_http, bucket) == KEPT

    def test_logs_are_json_lines_with_run_ids_when_run(self, cli: Cli, bucket: str) -> None:
        result = cli(*args(bucket))

        assert result.code == 0, result.stderr
        records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        assert records, "expected log lines on stdout"
        assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
        ours = [r for r in records if r["logger"].startswith("tasks.")]
        assert ours and all(r.get("flow_run_id") and r.get("task_run_id") for r in ours)
        planned = [r for r in ours if "matched" in r]
        assert planned and planned[0]["matched"] == 3 and planned[0]["scanned"] == 4
        # No per-object lines at INFO: the manifest holds the keys.
        assert not any("temp/a.log" in r["message"] for r in records)


class TestExitCodes:
    def test_exit_1_when_bucket_name_is_invalid(self, cli: Cli) -> None:
        result = cli(*args("Not_A_Bucket"))
        assert result.code == 1
        assert "bucket:" in result.stderr

    def test_exit_1_when_secret_is_missing(self, cli: Cli, bucket: str) -> None:
        result = cli(*args(bucket, "--secret-name", "no/such/secret"))
        assert result.code == 1
        assert "secret 'no/such/secret' was not found" in result.stderr

    def test_exit_1_and_nothing_deleted_when_execute_is_abbreviated(
        self, cli: Cli, moto_http: LocalAws, bucket: str
    ) -> None:
        result = cli(*args(bucket, "--exec"))

        assert result.code == 1, result.stderr
        assert "unrecognized arguments: --exec" in result.stderr
        assert keys(moto_http, bucket) == OLD | KEPT

    def test_exit_1_when_iam_policy_is_given_pieces_of_options(self, cli: Cli) -> None:
        result = cli(
            "iam-policy", "--bucket", "b-bucket", "--prefix", "p/", "--exec", "--no-create"
        )

        assert result.code == 1, result.stderr
        assert "unrecognized arguments: --exec --no-create" in result.stderr
        assert result.stdout == ""

    def test_exit_2_when_no_credentials_are_found(self, cli: Cli, bucket: str) -> None:
        result = cli(*args(bucket), env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""})
        assert result.code == 2, result.stderr
        assert "credentials" in result.stderr

    def test_exit_3_when_endpoint_is_unreachable(self, cli: Cli, bucket: str) -> None:
        closed = f"http://127.0.0.1:{free_port()}"
        result = cli(*args(bucket), env={"AWS_ENDPOINT_URL": closed, "AWS_MAX_ATTEMPTS": "2"})
        assert result.code == 3, result.stderr
        assert "unreachable" in result.stderr

    def test_exit_4_when_access_is_denied(self, cli: Cli) -> None:
        # A moto server that enforces IAM after the setup's three calls; the run's user has
        # no S3 permission at all.
        with moto_server_process({"INITIAL_NO_AUTH_ACTION_COUNT": "3"}) as url:
            admin = {
                "endpoint_url": url,
                "region_name": "us-east-1",
                "aws_access_key_id": "testing-admin",
                "aws_secret_access_key": "testing-admin",
            }
            boto3.client("s3", **admin).create_bucket(Bucket="denied-bucket")
            iam = boto3.client("iam", **admin)
            iam.create_user(UserName="no-s3-permissions")
            key = iam.create_access_key(UserName="no-s3-permissions")["AccessKey"]
            result = cli(
                *args("denied-bucket"),
                env={
                    "AWS_ENDPOINT_URL": url,
                    "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                    "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
                },
            )
        assert result.code == 4, result.stderr
        # Without --create-bucket the bucket step's one request is GetBucketVersioning.
        assert "GetBucketVersioning on bucket 'denied-bucket': permission denied" in result.stderr

    def test_exit_6_and_nothing_deleted_when_max_deletions_is_exceeded(
        self, cli: Cli, moto_http: LocalAws, bucket: str, tmp_path: Path
    ) -> None:
        report_path = tmp_path / "report.json"
        result = cli(
            *args(bucket, "--execute", "--max-deletions", "2", "--report-json", str(report_path))
        )

        assert result.code == 6, result.stderr
        assert keys(moto_http, bucket) == OLD | KEPT
        report = json.loads(report_path.read_text())
        assert (report["status"], report["matched"], report["deleted"]) == ("refused", 3, 0)

    def test_exit_7_when_a_planned_deletion_fails(
        self,
        moto_http: LocalAws,
        bucket: str,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        prefect_harness: None,
    ) -> None:
        # S3 reports a per-key AccessDenied inside a 200 answer (a bucket policy denying one
        # key, say); moto never does, so that one answer is injected at the botocore boundary.
        for name, value in moto_http.environment().items():
            monkeypatch.setenv(name, value)
        for name in (
            "PREFECT_LOGGING_CONFIG_PATH",
            "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW",
            "PREFECT_SERVER_ANALYTICS_ENABLED",
        ):
            monkeypatch.setenv(name, "")
        report_path = tmp_path / "report.json"
        denied = "temp/b/c.log"
        with inject_delete_errors(lambda key, _: "AccessDenied" if key == denied else None):
            code = cli_module.main(args(bucket, "--execute", "--report-json", str(report_path)))

        assert code == 7
        report = json.loads(report_path.read_text())
        assert report["status"] == "partial_failure"
        assert (report["deleted"], report["failed_by_code"]) == (2, {"AccessDenied": 1})
        assert keys(moto_http, bucket) == KEPT | {denied}


class TestFleetTargetsFile:
    @pytest.mark.parametrize(
        ("text", "said"),
        [
            pytest.param(
                'targets:\n  - bucket: some-bucket\n    prefix: "tmp/\\ud800"\n',
                "line 3: targets[1] (some-bucket/tmp/\\ud800): prefix: must be UTF-8 text",
                id="lone-surrogate-in-prefix",
            ),
            pytest.param(
                "targets: " + "[" * 10_000 + "]" * 10_000 + "\n",
                "line 1: nested deeper than 20 lists and mappings",
                id="nested-10000-deep",
            ),
        ],
    )
    def test_exit_1_naming_the_problem_when_the_file_would_break_the_reader(
        self, cli: Cli, tmp_path: Path, text: str, said: str
    ) -> None:
        targets = tmp_path / "fleet.yaml"
        targets.write_text(text)

        result = cli("fleet", "--targets", str(targets))

        assert result.code == 1, result.stderr
        assert said in result.stderr
        assert "unexpected error" not in result.stderr

    @pytest.mark.parametrize(
        "option", ["--targets", "--group", "--child-deployment", "--run-key", "--notify-topic-arn"]
    )
    def test_exit_1_naming_the_option_when_its_value_is_not_utf8(
        self, cli: Cli, tmp_path: Path, option: str
    ) -> None:
        targets = tmp_path / "fleet.yaml"
        targets.write_text("targets:\n  - {bucket: some-bucket, prefix: tmp/}\n")
        given = {"--targets": str(targets), option: f"{tmp_path}/\udcff"}

        result = cli("fleet", *[word for pair in given.items() for word in pair])

        assert result.code == 1, result.stderr
        assert f"argument {option}: must be UTF-8 text" in result.stderr
