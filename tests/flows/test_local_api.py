"""make serve's server found without configuration: used when it answers and nothing else is
configured, never otherwise; its address file is read as untrusted text.

Files another user could have planted are in tests/e2e/test_hostile_neighbour.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.prefect_server import PrefectServer
from devtools.processes import free_port
from flows.local_api import API_AUTH_FILE, API_URL_FILE, LOCAL_HOME, use_local_api

PASSWORD = "local:test-only-password"


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, prefect_database: Path
) -> Iterator[PrefectServer]:
    """A real Prefect server that wants a password, as make serve starts it."""
    home = tmp_path_factory.mktemp("served")
    password = {"PREFECT_SERVER_API_AUTH_STRING": PASSWORD}
    with PrefectServer(home, extra_env=password, database=prefect_database) as server:
        yield server


def checkout(tmp_path: Path, api_url: str | bytes, auth: str = PASSWORD) -> Path:
    """A folder as make serve leaves it while it runs: .prefect-local/api-url and api-auth."""
    home = tmp_path / LOCAL_HOME
    home.mkdir(mode=0o700)
    address = api_url if isinstance(api_url, bytes) else api_url.encode() + b"\n"
    (home / API_URL_FILE).write_bytes(address)
    (home / API_AUTH_FILE).write_text(auth + "\n")
    return tmp_path


@pytest.fixture
def prefect_home(tmp_path: Path) -> dict[str, str]:
    """An environment whose Prefect home has no profile: this machine's ~/.prefect stays out."""
    return {"PREFECT_HOME": str(tmp_path / "prefect-home")}


def test_points_the_run_at_the_server_when_make_serve_runs_here(
    served: PrefectServer, tmp_path: Path, prefect_home: dict[str, str]
) -> None:
    folder = checkout(tmp_path, served.api_url)
    environ = dict(prefect_home)

    assert use_local_api(environ, [folder]) == served.api_url
    assert environ == {
        **prefect_home,
        "PREFECT_API_URL": served.api_url,
        "PREFECT_API_AUTH_STRING": PASSWORD,
    }


def test_gives_the_server_its_own_password_when_another_one_is_exported(
    served: PrefectServer, tmp_path: Path, prefect_home: dict[str, str]
) -> None:
    folder = checkout(tmp_path, served.api_url)
    environ = {**prefect_home, "PREFECT_API_AUTH_STRING": "me:meant-for-another-server"}

    assert use_local_api(environ, [folder]) == served.api_url
    assert environ["PREFECT_API_AUTH_STRING"] == PASSWORD


def test_leaves_prefect_to_its_profile_when_the_active_one_names_an_api(
    served: PrefectServer, tmp_path: Path, prefect_home: dict[str, str]
) -> None:
    folder = checkout(tmp_path, served.api_url)
    profiles = Path(prefect_home["PREFECT_HOME"]) / "profiles.toml"
    profiles.parent.mkdir()
    profiles.write_text(
        'active = "team"\n[profiles.team]\nPREFECT_API_URL = "http://127.0.0.1:4300/api"\n'
    )
    environ = dict(prefect_home)

    assert use_local_api(environ, [folder]) is None
    assert environ == prefect_home  # the profile's API stays the run's


@pytest.mark.parametrize(
    "environ",
    [{"PREFECT_API_URL": "http://127.0.0.1:1/api"}, {"S3_HOUSEKEEPING_LOCAL_API": "off"}],
    ids=["api-url-set", "turned-off"],
)
def test_leaves_the_configuration_alone_when_it_says_otherwise(
    served: PrefectServer, tmp_path: Path, environ: dict[str, str], prefect_home: dict[str, str]
) -> None:
    folder = checkout(tmp_path, served.api_url)
    environ.update(prefect_home)
    before = dict(environ)

    assert use_local_api(environ, [folder]) is None
    assert environ == before


def test_ignores_a_server_that_refuses_its_password(
    served: PrefectServer, tmp_path: Path, prefect_home: dict[str, str]
) -> None:
    folder = checkout(tmp_path, served.api_url, auth="local:wrong")
    environ = dict(prefect_home)

    assert use_local_api(environ, [folder]) is None
    assert environ == prefect_home


def test_ignores_an_address_left_behind_when_nothing_answers_there(
    tmp_path: Path, prefect_home: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = checkout(tmp_path, f"http://127.0.0.1:{free_port()}/api")
    environ = dict(prefect_home)

    assert use_local_api(environ, [folder]) is None
    assert environ == prefect_home
    assert capsys.readouterr().err == ""  # make serve killed: nothing to warn about


@pytest.mark.parametrize(
    "written",
    [
        b"http://203.0.113.7:4200/api\n",
        b"http://localhost:4200/api\n",
        b"http://127.0.0.1:99999/api\n",
        b"http://127.0.0.1:4200/api/../admin\n",
        b"\x1b]0;garbage\x07\n",
        b"",
    ],
    ids=["off-this-machine", "a-name", "no-such-port", "another-path", "garbage", "empty"],
)
def test_ignores_with_a_warning_an_address_file_when_it_is_not_make_serves_address(
    tmp_path: Path,
    prefect_home: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    written: bytes,
) -> None:
    folder = checkout(tmp_path, written)
    environ = dict(prefect_home)

    assert use_local_api(environ, [folder]) is None

    assert environ == prefect_home
    assert capsys.readouterr().err == (
        f"s3-housekeeping: ignoring make serve's {folder / LOCAL_HOME / API_URL_FILE}: not an "
        "address http://127.0.0.1:PORT/api\n"
    )


def test_ignores_with_a_warning_an_address_file_when_it_is_not_utf8(
    tmp_path: Path, prefect_home: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = checkout(tmp_path, b"http://127.0.0.1:4200/api\xff\xfe\n")
    environ = dict(prefect_home)

    assert use_local_api(environ, [folder]) is None

    assert capsys.readouterr().err == (
        f"s3-housekeeping: ignoring make serve's {folder / LOCAL_HOME}: a file there is not "
        "UTF-8 text\n"
    )
