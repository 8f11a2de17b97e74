"""Whether Prefect's configuration files name an API: the command's cheap reading agrees with
Prefect's own settings, file by file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.prefect_config import configured_api

API = "http://127.0.0.1:4999/api"
PROFILES = f"""
active = "served"

[profiles.served]
PREFECT_API_URL = "{API}"

[profiles.bare]
PREFECT_LOGGING_LEVEL = "INFO"
"""

#: name: (files in the current directory, files in the Prefect home, extra environment,
#: where the command says the API is named, or None).
CASES: dict[str, tuple[dict[str, str], dict[str, str], dict[str, str], str | None]] = {
    "nothing": ({}, {}, {}, None),
    "dotenv": ({".env": f"export PREFECT_API_URL='{API}'  # make serve\n"}, {}, {}, ".env"),
    "dotenv-other-variable": ({".env": "PREFECT_LOGGING_LEVEL=INFO\n"}, {}, {}, None),
    "prefect-toml": ({"prefect.toml": f'[api]\nurl = "{API}"\n'}, {}, {}, "prefect.toml"),
    "pyproject": (
        {"pyproject.toml": f'[tool.prefect.api]\nurl = "{API}"\n'},
        {},
        {},
        "pyproject.toml",
    ),
    "active-profile": ({}, {"profiles.toml": PROFILES}, {}, "the profile 'served'"),
    "profile-chosen-by-variable": (
        {},
        {"profiles.toml": PROFILES},
        {"PREFECT_PROFILE": "bare"},
        None,
    ),
    "profiles-path-variable": (
        {"elsewhere.toml": PROFILES},
        {},
        {"PREFECT_PROFILES_PATH": "elsewhere.toml"},
        "the profile 'served'",
    ),
    "profiles-path-in-prefect-toml": (
        {"prefect.toml": 'profiles_path = "elsewhere.toml"\n', "elsewhere.toml": PROFILES},
        {},
        {},
        "the profile 'served'",
    ),
    "bundled-local-profile": ({}, {}, {"PREFECT_PROFILE": "local", "NO_HOME": "1"}, "local"),
    "test-mode-reads-no-profile": (
        {},
        {"profiles.toml": PROFILES},
        {"PREFECT_TESTING_TEST_MODE": "1"},
        None,
    ),
}

PREFECTS_OWN = (
    "from prefect.settings import get_current_settings; print(get_current_settings().api.url)"
)


def environment(home: Path, extra: dict[str, str]) -> dict[str, str]:
    """No Prefect variable from this machine; PREFECT_HOME unless the case has none."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    environ["HOME"] = str(home.parent / "user")
    if not extra.get("NO_HOME"):
        environ["PREFECT_HOME"] = str(home)
    return {**environ, **{k: v for k, v in extra.items() if k != "NO_HOME"}}


@pytest.mark.parametrize("case", list(CASES))
def test_names_an_api_exactly_when_prefect_would_use_one(tmp_path: Path, case: str) -> None:
    here_files, home_files, extra, named = CASES[case]
    here, home = tmp_path / "here", tmp_path / "prefect-home"
    for folder, files in ((here, here_files), (home, home_files)):
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text)
    environ = environment(home, extra)

    prefects = subprocess.run(
        [sys.executable, "-c", PREFECTS_OWN],
        cwd=here,
        env=environ,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()[-1]
    ours = configured_api(environ, here, Path(environ["HOME"]))

    assert (prefects != "None") == (ours is not None), (prefects, ours)
    assert ours is None if named is None else named in (ours or "")
