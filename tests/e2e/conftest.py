"""End-to-end fixtures: one real Prefect server per session, a moto server per module."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from deployments.local_aws import LocalAws
from devtools.prefect_server import PrefectServer
from devtools.processes import BIN
from tests.support.stack import Stack, deployed_stack


@pytest.fixture(scope="session")
def prefect_api(prefect_server: PrefectServer) -> PrefectServer:
    """The Prefect server the commands a test starts record to: the worker's own
    (tests/conftest.py)."""
    return prefect_server


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@dataclass
class Cli:
    """Runs the installed `s3-housekeeping` command as a user would, against real servers."""

    env: dict[str, str]

    def __call__(self, *args: str, env: Mapping[str, str] | None = None) -> CliResult:
        completed = subprocess.run(
            [str(BIN / "s3-housekeeping"), *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        return CliResult(completed.returncode, completed.stdout, completed.stderr)

    def killed_when(self, *args: str, said: str, env: Mapping[str, str] | None = None) -> CliResult:
        """Run the command and SIGKILL it once its output holds `said` (a crash: no handler,
        no hook, no cleanup runs)."""
        process = subprocess.Popen(
            [str(BIN / "s3-housekeeping"), *args],
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if said in line:
                process.send_signal(signal.SIGKILL)
                break
        stdout, stderr = process.communicate(timeout=60)
        return CliResult(process.returncode, "".join(lines) + stdout, stderr)


@pytest.fixture
def cli(prefect_api: PrefectServer, moto_http: LocalAws, tmp_path: Path) -> Cli:
    env = {
        **os.environ,
        **moto_http.environment(),
        "PREFECT_API_URL": prefect_api.api_url,
        "PREFECT_HOME": str(tmp_path / "client-prefect-home"),
        "MANIFEST_DIR": str(tmp_path / "manifests"),
    }
    return Cli(env)


#: How to stop the deployed stack before the session ends (`pytest_runtest_teardown`).
_stack_stoppers: list[Callable[[], None]] = []


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, prefect_database: Path) -> Iterator[Stack]:
    """prefect.yaml deployed to a server of its own, workers polling, blocks pointing at moto;
    stopped once the last test that uses it is over."""
    with ExitStack() as running:
        deployed = running.enter_context(
            deployed_stack(tmp_path_factory.mktemp("stack"), prefect_database)
        )
        _stack_stoppers.append(running.close)
        yield deployed


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """After the last test that uses the deployed stack, the stack stops: its server and two
    workers would otherwise poll, idle, until the session ends, on cores the other tests
    need. (Its tests run together, in collection order, under xdist too: tests/conftest.py.)"""
    yield
    if _stack_stoppers and item is _last_stack_test(item.session):
        _stack_stoppers.pop()()


def _last_stack_test(session: pytest.Session) -> pytest.Item:
    return [test for test in session.items if "stack" in getattr(test, "fixturenames", ())][-1]
