"""Chaos fixtures: the S3 servers behind the fault proxy, and the matrix's summary, printed and
written under test-output/chaos/ at the end of the session (the runs report to the worker's
Prefect server: tests/conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from deployments.local_aws import local_aws
from tasks.settings import all_environment_variables
from tests.chaos.summary import ROOT, Summary
from tests.chaos.targets import MotoTarget, SeaweedTarget
from tests.conftest import AWS_ENV_TO_CLEAR
from tests.support.servers import seaweedfs

SUMMARY = pytest.StashKey[Summary]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SUMMARY] = Summary()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    summary = terminalreporter.config.stash.get(SUMMARY, None)
    if summary is None or not (summary.runs or summary.tampered):
        return
    paths = summary.write()
    terminalreporter.section("chaos matrix")
    terminalreporter.write(summary.to_markdown())
    terminalreporter.write_line(
        "written to " + ", ".join(str(path.relative_to(ROOT)) for path in paths)
    )


@pytest.fixture
def chaos_summary(request: pytest.FixtureRequest) -> Summary:
    return request.config.stash[SUMMARY]


@pytest.fixture(scope="session")
def chaos_environment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment every run starts from: this one without any setting of the tool or AWS
    (the runs start in the background, outside the tests' isolated environment), with no AWS
    configuration files and no instance metadata lookups."""
    home = tmp_path_factory.mktemp("chaos-aws-home")
    cleared = {*all_environment_variables(), *AWS_ENV_TO_CLEAR}
    return {
        **{name: value for name, value in os.environ.items() if name not in cleared},
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture(scope="module")
def moto_target() -> Iterator[MotoTarget]:
    with local_aws() as aws:
        yield MotoTarget(aws)


@pytest.fixture(scope="module")
def seaweedfs_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedTarget]:
    with seaweedfs(tmp_path_factory.mktemp("chaos-seaweedfs"), volume_max=200) as server:
        yield SeaweedTarget(server)
