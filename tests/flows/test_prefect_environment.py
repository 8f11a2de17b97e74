"""Prefect's environment for the command: our JSON logging and defaults, never over the user's."""

from __future__ import annotations

from pathlib import Path

from flows.prefect_environment import configure_environment


def test_points_prefect_at_the_json_logging_config_and_quiet_defaults() -> None:
    environ: dict[str, str] = {"LOG_LEVEL": "debug"}

    configure_environment(environ)

    assert Path(environ["PREFECT_LOGGING_CONFIG_PATH"]).name == "logging.yml"
    assert Path(environ["PREFECT_LOGGING_CONFIG_PATH"]).is_file()
    assert environ["PREFECT_LOGGING_LEVEL"] == "DEBUG"
    assert environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"


def test_keeps_what_the_user_set() -> None:
    environ = {
        "PREFECT_LOGGING_CONFIG_PATH": "mine.yml",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "5",
    }

    configure_environment(environ)

    assert environ["PREFECT_LOGGING_CONFIG_PATH"] == "mine.yml"
    assert environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "5"
