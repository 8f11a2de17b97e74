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
    assert environ["DO_NOT_TRACK"] == "1"  # no usage events from the command's client


def test_keeps_what_the_user_set() -> None:
    environ = {
        "PREFECT_LOGGING_CONFIG_PATH": "mine.yml",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "5",
        "DO_NOT_TRACK": "0",
        "PREFECT_LOGGING_HANDLERS_CONSOLE_STREAM": "ext://sys.stdout",
    }

    configure_environment(environ, logs={"PREFECT_LOGGING_HANDLERS_CONSOLE_STREAM": "x"})

    assert environ["PREFECT_LOGGING_CONFIG_PATH"] == "mine.yml"
    assert environ["DO_NOT_TRACK"] == "0"
    assert environ["PREFECT_LOGGING_HANDLERS_CONSOLE_STREAM"] == "ext://sys.stdout"
    assert environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "5"
