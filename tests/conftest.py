"""Shared fixtures: an isolated environment, moto in-process and over HTTP, one Prefect harness."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import settings
from moto import mock_aws

from deployments.local_aws import LocalAws, local_aws
from devtools.prefect_server import PrefectServer, migrated_database
from tasks.aws import AwsClients, AwsSettings, create_clients
from tasks.settings import all_environment_variables

if TYPE_CHECKING:
    from xdist.remote import Producer
    from xdist.scheduler import LoadFileScheduling

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


#: The files that use the deployed stack (tests/e2e/conftest.py): under `--dist loadfile` one
#: worker runs them all, so the stack (a server, prefect.yaml applied, two workers) starts once,
#: not once on each worker. A file that uses the stack and is not named here fails to collect.
STACK_FILES = frozenset(
    {
        "tests/e2e/test_approval.py",
        "tests/e2e/test_browser.py",
        "tests/e2e/test_deployments.py",
        "tests/e2e/test_operator_limits.py",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & SERVER_FIXTURES or item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.server)
        file = item.nodeid.split("::", 1)[0]
        if "stack" in fixtures and file not in STACK_FILES:
            raise pytest.UsageError(f"{file} uses the deployed stack: add it to STACK_FILES")


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> LoadFileScheduling | None:
    """`--dist loadfile` as pytest-xdist does it, but with the stack's files as one unit. (The
    order stays pytest-xdist's, files with more tests first, so its CPU-bound unit-test files
    run beside the e2e files, which mostly wait; the slow files first, tried, ran the waits
    together and then the unit tests on two cores, and took longer: 18 min 26 s, not 16 min
    30 s, on a machine that was also busy with other work. Only the few files of one or two
    long tests first, tried too: the workers ended together, but later, pytest 800 s against
    756 s, one run each on an idle machine.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class StackFilesTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = super()._split_scope(nodeid)
            return "the deployed stack" if file in STACK_FILES else file

    return StackFilesTogether(config, log)


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
def prefect_server(
    tmp_path_factory: pytest.TempPathFactory, prefect_database: Path
) -> Iterator[PrefectServer]:
    """The Prefect server of this xdist worker: `prefect server start`, its database a copy of
    the migrated one. The flows a test runs in its own process (`prefect_harness`) and the
    commands it starts (tests/e2e's `prefect_api`, the chaos runs) all record there: a server
    each cost a worker about 30 s of CPU, mostly idle."""
    home = tmp_path_factory.mktemp("prefect-server-home")
    with PrefectServer(home, database=prefect_database) as server:
        yield server


@pytest.fixture(scope="session")
def prefect_harness(prefect_server: PrefectServer) -> Iterator[None]:
    """Flows run in the test's process record to the worker's Prefect server, as they would
    in Prefect's test harness (which starts a server of its own): its API set for this
    process, then the logs and events still queued sent before the session ends."""
    import prefect.context
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: prefect_server.api_url}):
        # As the harness does: code in a context copied before this one sees the API too.
        current = prefect.context.get_settings_context()
        with prefect.context._temporary_global_settings_context(current):
            yield
            APILogWorker.drain_all()
            EventsWorker.drain_all()


@pytest.fixture(scope="session")
def prefect_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Prefect database with the schema, made once for the run (the first xdist worker makes
    it, the others wait for it): each test's `prefect server start` begins from a copy and skips
    the migrations, 9 s of CPU each on a machine of two cores."""
    root = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:
        root = root.parent  # beside the workers' own folders, shared by them
    database = root / "prefect-database" / "prefect.db"
    with (root / "prefect-database.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not database.exists():
            migrated_database(database)
    return database


@pytest.fixture
def as_of() -> datetime:
    """A fixed reference time a little in the past, so cutoffs are exact."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture(scope="module")
def moto_http() -> Iterator[LocalAws]:
    """moto in server mode over HTTP (in this process, so tests can backdate objects)."""
    with local_aws() as aws:
        yield aws
