"""Shared fixtures: an isolated environment, moto in-process and over HTTP, one Prefect harness."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from moto import mock_aws

from deployments.local_aws import LocalAws, local_aws
from tasks.aws import AwsClients, AwsSettings, create_clients
from tasks.settings import all_environment_variables

# Property tests draw the same examples on every run and machine (a failure reproduces
# anywhere, and CI is not flaky); no deadline, as a busy two-core machine has slow moments.
settings.register_profile("repeatable", derandomize=True, database=None, deadline=None)
settings.load_profile("repeatable")

#: Obviously fake credentials: moto accepts anything, botocore only needs something to sign.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing-fake-access-key",
    "AWS_SECRET_ACCESS_KEY": "testing-fake-secret-key",
}
AWS_ENV_TO_CLEAR = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "LOG_LEVEL",
    "LOG_FORMAT",
)


#: Fixtures that start a server (a Prefect API, moto over HTTP): a test using one, or marked
#: e2e, is a `server` test; `make check` runs the others.
SERVER_FIXTURES = frozenset({"prefect_harness", "moto_http", "served"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & SERVER_FIXTURES or item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.server)


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting leaks in from the machine; fake credentials; no instance metadata lookups."""
    for name in (*all_environment_variables(), *AWS_ENV_TO_CLEAR):
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("MANIFEST_DIR", str(tmp_path / "manifests"))
    # Prefect-level retries back off for seconds; tests that exercise them set their own.
    monkeypatch.setenv("TASK_RETRIES", "0")
    # A `make serve` running in this checkout must not catch the tests' command runs.
    monkeypatch.setenv("S3_HOUSEKEEPING_LOCAL_API", "off")


@pytest.fixture
def moto() -> Iterator[None]:
    """moto in-process: S3, Secrets Manager and STS answer inside this test."""
    with mock_aws():
        yield


@pytest.fixture
def aws(moto: None) -> AwsClients:
    """Clients from the project's own factory, backed by in-process moto, in us-east-1."""
    return create_clients(AwsSettings(region="us-east-1"))


@pytest.fixture
def sns_queue(moto: None) -> dict[str, Any]:
    """An SNS topic with an SQS queue subscribed, in moto (tests/support/sns.py)."""
    from tests.support.sns import subscribed_queue

    return subscribed_queue()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API for every test that runs a flow."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def as_of() -> datetime:
    """A fixed reference time a little in the past, so cutoffs are exact."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture(scope="module")
def moto_http() -> Iterator[LocalAws]:
    """moto in server mode over HTTP (in this process, so tests can backdate objects)."""
    with local_aws() as aws:
        yield aws
