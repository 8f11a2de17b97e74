"""make serve's server found without configuration: used when it answers, never otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.prefect_server import PrefectServer
from devtools.processes import free_port
from flows.local_api import API_AUTH_FILE, API_URL_FILE, LOCAL_HOME, use_local_api

PASSWORD = "local:test-only-password"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A real Prefect server that wants a password, as make serve starts it."""
    home = tmp_path_factory.mktemp("served")
    with PrefectServer(home, extra_env={"PREFECT_SERVER_API_AUTH_STRING": PASSWORD}) as server:
        yield server


def checkout(tmp_path: Path, api_url: str, auth: str = PASSWORD) -> Path:
    """A folder as make serve leaves it while it runs: .prefect-local/api-url and api-auth."""
    home = tmp_path / LOCAL_HOME
    home.mkdir()
    (home / API_URL_FILE).write_text(api_url + "\n")
    (home / API_AUTH_FILE).write_text(auth + "\n")
    return tmp_path


def test_points_the_run_at_the_server_when_make_serve_runs_here(
    served: PrefectServer, tmp_path: Path
) -> None:
    folder = checkout(tmp_path, served.api_url)
    environ: dict[str, str] = {}

    assert use_local_api(environ, [folder]) == served.api_url
    assert environ == {"PREFECT_API_URL": served.api_url, "PREFECT_API_AUTH_STRING": PASSWORD}


@pytest.mark.parametrize(
    "environ",
    [{"PREFECT_API_URL": "http://127.0.0.1:1/api"}, {"S3_HOUSEKEEPING_LOCAL_API": "off"}],
    ids=["api-url-set", "turned-off"],
)
def test_leaves_the_configuration_alone_when_it_says_otherwise(
    served: PrefectServer, tmp_path: Path, environ: dict[str, str]
) -> None:
    folder = checkout(tmp_path, served.api_url)
    before = dict(environ)

    assert use_local_api(environ, [folder]) is None
    assert environ == before


def test_ignores_a_server_that_refuses_its_password(served: PrefectServer, tmp_path: Path) -> None:
    folder = checkout(tmp_path, served.api_url, auth="local:wrong")
    environ: dict[str, str] = {}

    assert use_local_api(environ, [folder]) is None
    assert environ == {}


def test_ignores_an_address_left_behind_when_nothing_answers_there(tmp_path: Path) -> None:
    folder = checkout(tmp_path, f"http://127.0.0.1:{free_port()}/api")
    environ: dict[str, str] = {}

    assert use_local_api(environ, [folder]) is None
    assert environ == {}


def test_never_calls_an_address_off_this_machine_when_one_is_written(tmp_path: Path) -> None:
    folder = checkout(tmp_path, "http://203.0.113.7:4200/api")
    environ: dict[str, str] = {}

    assert use_local_api(environ, [folder]) is None
