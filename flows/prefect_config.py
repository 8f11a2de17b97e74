"""Whether Prefect's own configuration files name its API, read as Prefect 3.9 reads them, without
importing it (the command looks before Prefect loads)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from importlib.util import find_spec
from pathlib import Path
from typing import Any

#: Prefect's variables that turn its test mode on, in which it reads no profile.
TEST_MODE = (
    "PREFECT_TEST_MODE",
    "PREFECT_UNIT_TEST_MODE",
    "PREFECT_TESTING_UNIT_TEST_MODE",
    "PREFECT_TESTING_TEST_MODE",
)


def configured_api(
    environ: Mapping[str, str] = os.environ, cwd: Path | None = None, home: Path | None = None
) -> str | None:
    """Where Prefect's configuration, besides the PREFECT_API_URL variable, names an API: the
    current directory's .env, prefect.toml or pyproject.toml ([tool.prefect]), or the active
    profile of the profiles file Prefect would use; None when none does. A file that cannot be
    read or parsed names nothing here (Prefect itself stops on it, later).

    Args:
        environ: the process's environment.
        cwd: the current directory (where Prefect looks for .env and the TOML files).
        home: the user's home directory (~/.prefect).
    """
    cwd = cwd or Path.cwd()
    dotenv = _dotenv(cwd / ".env")
    prefect_toml = _toml(cwd / "prefect.toml")
    pyproject = _get(_toml(cwd / "pyproject.toml"), "tool", "prefect")
    if dotenv.get("PREFECT_API_URL"):
        return "PREFECT_API_URL in .env"
    if _get(prefect_toml, "api", "url"):
        return "[api] url in prefect.toml"
    if _get(pyproject, "api", "url"):
        return "[tool.prefect.api] url in pyproject.toml"
    if any(environ.get(name) for name in TEST_MODE):
        return None
    path = _profiles_path(environ, dotenv, prefect_toml, pyproject, home or _home())
    if path is not None:
        path = cwd / path  # a relative one is from the current directory
    if path is None or not path.is_file():
        return None  # Prefect's bundled default profile then, which names no API
    profiles = _toml(path)
    active = environ.get("PREFECT_PROFILE") or profiles.get("active")
    profile = _get(profiles, "profiles", str(active)) if active else None
    if isinstance(profile, dict) and profile.get("PREFECT_API_URL"):
        return f"the profile '{active}' in {path}"
    return None


def _profiles_path(
    environ: Mapping[str, str],
    dotenv: Mapping[str, str],
    prefect_toml: dict[str, Any],
    pyproject: Any,
    home: Path,
) -> Path | None:
    """The profiles file Prefect reads (its settings/sources.py `_get_profiles_path`)."""
    for given in (
        environ.get("PREFECT_PROFILES_PATH"),
        dotenv.get("PREFECT_PROFILES_PATH"),
        _get(prefect_toml, "profiles_path"),
        _get(pyproject, "profiles_path"),
    ):
        if given:
            return Path(str(given))
    if environ.get("PREFECT_HOME"):
        return Path(environ["PREFECT_HOME"]) / "profiles.toml"
    users = home / ".prefect" / "profiles.toml"
    return users if users.exists() else _bundled_profiles()


def _home() -> Path:
    try:
        return Path.home()
    except RuntimeError:  # no HOME and no password entry: no ~/.prefect either
        return Path("/nonexistent")


def _bundled_profiles() -> Path | None:
    """The profiles file installed with Prefect (its `local` profile names an API), found
    without importing Prefect."""
    spec = find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "settings" / "profiles.toml"


def _dotenv(path: Path) -> dict[str, str]:
    """The variables a .env file sets (NAME=VALUE lines, `export` and quotes allowed)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return {}
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, equals, value = line.strip().removeprefix("export ").partition("=")
        if equals and not name.lstrip().startswith("#"):
            found[name.strip().upper()] = value.split(" #", 1)[0].strip().strip("'\"")
    return found


def _toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except (OSError, ValueError):  # missing, unreadable, not UTF-8 or not TOML
        return {}


def _get(table: Any, *keys: str) -> Any:
    """table[key][key]..., or None where a table is missing."""
    for key in keys:
        table = table.get(key) if isinstance(table, dict) else None
    return table
