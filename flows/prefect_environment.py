"""Prefect's environment for the command, set before Prefect loads; the commands needing an API."""

from __future__ import annotations

import os
from importlib import resources

#: The commands that run the flow, and so need a Prefect API.
RUNS = ("run", "fleet", "demo")


def configure_environment(
    environ: dict[str, str] | os._Environ[str] = os.environ, logs: dict[str, str] | None = None
) -> None:
    """Point Prefect at our logging before it is imported (it reads settings on import): JSON
    lines, unless `logs` overrides the console's (flows/output.py: words on a terminal)."""
    logging_yml = resources.files("deployments").joinpath("logging.yml")
    environ.setdefault("PREFECT_LOGGING_CONFIG_PATH", str(logging_yml))
    for variable, value in (logs or {}).items():
        environ.setdefault(variable, value)
    if environ.get("LOG_LEVEL"):
        environ.setdefault("PREFECT_LOGGING_LEVEL", environ["LOG_LEVEL"].upper())
    # Our module loggers also feed the run's logs in the UI; outside a run there is nothing
    # to attach them to, and that is not worth a warning.
    environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    # A local run's temporary server would otherwise write telemetry into a shared database.
    environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Nor does the command's client send Prefect's usage events (nor print its notice on a
    # terminal) unless asked: a cleanup job on a team's machines calls no one it was not told
    # to. DO_NOT_TRACK=0 lets Prefect decide again.
    environ.setdefault("DO_NOT_TRACK", "1")
    # Without PREFECT_API_URL a local run starts a temporary API; on a busy machine its default
    # 20 s to come up is not always enough.
    environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
