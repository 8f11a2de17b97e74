"""The command's entry point: a run's temporary Prefect API is started once its command line
and settings are checked, before the flow's modules (and Prefect) load; a command that runs
no flow, or whose input is wrong, starts none."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from deployments.local_aws import LocalAws
from flows.temporary_api import SWITCH
from tests.support.watched_entry import watched_run

BUCKET = "entry-point"


@pytest.fixture
def environment(moto_http: LocalAws, tmp_path: Path) -> dict[str, str]:
    """Local AWS, no Prefect server of any kind configured, a Prefect home of its own."""
    s3 = moto_http.client("s3")
    if BUCKET not in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    environment = {
        **os.environ,
        **moto_http.environment(),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "MANIFEST_DIR": str(tmp_path / "manifests"),
        "S3_HOUSEKEEPING_LOCAL_API": "off",
    }
    for name in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE", SWITCH):
        environment.pop(name, None)
    return environment


def entry(environment: dict[str, str], *arguments: str) -> tuple[int, list[dict[str, Any]], str]:
    """The command's exit code, the children it started and its output."""
    done = watched_run(environment, *arguments)
    return done.code, done.children, done.stdout + done.stderr


def temporary_apis(children: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [child for child in children if "flows.temporary_api" in child["argv"]]


def test_a_run_starts_its_temporary_api_before_the_flow_and_prefect_load(
    environment: dict[str, str],
) -> None:
    code, children, output = entry(
        environment, "run", "--bucket", BUCKET, "--prefix", "tmp/", "--no-create-bucket"
    )

    assert code == 0, output[-3000:]
    assert [child["flow_loaded"] for child in temporary_apis(children)] == [False]
    assert "Temporary Prefect API ready at http://127.0.0.1:" in output
    assert "Starting temporary server" not in output  # Prefect did not start one of its own


@pytest.mark.parametrize(
    "arguments",
    [("settings",), ("run", "--help"), ("iam-policy", "--bucket", BUCKET, "--prefix", "p/")],
)
def test_a_command_that_runs_no_flow_starts_no_api(
    environment: dict[str, str], arguments: tuple[str, ...]
) -> None:
    code, children, output = entry(environment, *arguments)

    assert code == 0, output[-3000:]
    assert temporary_apis(children) == []


@pytest.mark.parametrize(
    "arguments",
    [("run", "--hel"), ("fleet", "--targets", "fleet.yaml", "--h"), ("demo", "--he")],
    ids=lambda arguments: " ".join(arguments),
)
def test_an_abbreviated_help_is_a_usage_error_that_starts_no_api(
    environment: dict[str, str], arguments: tuple[str, ...]
) -> None:
    code, children, output = entry(environment, *arguments)

    assert code == 1, output[-3000:]
    assert f"unrecognized arguments: {arguments[-1]}" in output
    assert temporary_apis(children) == []


@pytest.mark.parametrize(
    ("arguments", "code", "said"),
    [
        (("run", f"s3://{BUCKET}/tmp/", "--dry-run"), 1, "unrecognized arguments: --dry-run"),
        (("run", "--bucket", BUCKET), 1, "prefix: required"),
        (("run", f"s3://{BUCKET}/tmp/", "--profile", "nosuchprofile"), 2, "'nosuchprofile'"),
        (("run", f"s3://{BUCKET}/tmp/", "--older-than-days", "0"), 1, "older_than_days"),
    ],
    ids=["unknown-option", "missing-prefix", "missing-profile", "bad-value"],
)
def test_a_usage_or_configuration_error_starts_no_api_and_loads_no_prefect(
    environment: dict[str, str], arguments: tuple[str, ...], code: int, said: str
) -> None:
    code_seen, children, output = entry(environment, *arguments)

    assert code_seen == code, output[-3000:]
    assert said in output
    assert children == []
    assert "Temporary Prefect API" not in output
