"""Where a command's output goes: logs for people or for machines, the report, the plan's keys."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Literal, TextIO

from tasks.errors import ConfigError

LogFormat = Literal["text", "json"]
ReportFormat = Literal["text", "json"]

#: The environment variable that chooses the log format when --log-format is left out.
LOG_FORMAT_VARIABLE = "LOG_FORMAT"

#: Prefect reads its logging configuration (deployments/logging.yml) with these overrides: the
#: console handler's formatter, stream and level, by the names Prefect documents
#: (PREFECT_LOGGING_<path in the file>).
CONSOLE = "PREFECT_LOGGING_HANDLERS_CONSOLE_"


@dataclass(frozen=True)
class Output:
    """How one command prints: `logs` in words (a terminal) or JSON lines (a pipe, a file, a
    log shipper); `report` in words or as one JSON document on stdout; `listing` every planned
    key on stdout. Whatever holds stdout, the logs then go to stderr."""

    logs: LogFormat
    report: ReportFormat = "text"
    listing: bool = False

    @classmethod
    def chosen(
        cls,
        log_format: str | None,
        report: str | None = None,
        listing: bool = False,
        stdout: TextIO | None = None,
    ) -> Output:
        """The output asked for: --log-format, else LOG_FORMAT, else words on a terminal and
        JSON elsewhere (deployments and pipes keep their structured logs).

        Raises:
            ConfigError: LOG_FORMAT is neither text nor json.
        """
        asked = log_format or os.environ.get(LOG_FORMAT_VARIABLE, "").strip().lower()
        if asked not in ("", "text", "json"):
            raise ConfigError(f"{LOG_FORMAT_VARIABLE} must be text or json")
        logs: LogFormat = "json"
        if asked == "text" or (asked != "json" and (stdout or sys.stdout).isatty()):
            logs = "text"
        return cls(logs, "json" if report == "json" else "text", listing)

    @property
    def stdout_is_taken(self) -> bool:
        """Whether stdout carries the report or the keys: logs must not mix into it."""
        return self.report == "json" or self.listing

    @property
    def for_people(self) -> bool:
        return self.logs == "text"

    def log_environment(self, level: str | None) -> dict[str, str]:
        """The overrides of Prefect's logging configuration that give these logs: in words on
        stderr, showing warnings and errors (or `level`, as LOG_LEVEL asks), or JSON lines on
        stdout unless stdout is taken."""
        if self.for_people:
            return {
                f"{CONSOLE}FORMATTER": "terminal",
                f"{CONSOLE}FILTERS": "quiet_sdk,run_context,terminal",
                f"{CONSOLE}STREAM": "ext://sys.stderr",
                f"{CONSOLE}LEVEL": (level or "WARNING").upper(),
            }
        if self.stdout_is_taken:
            return {f"{CONSOLE}STREAM": "ext://sys.stderr"}
        return {}
