"""Log records as a person at a terminal reads them: the level in words and the message."""

from __future__ import annotations

import logging
import sys

from tasks.errors import HousekeepingError


class TerminalFormatter(logging.Formatter):
    """`warning: message`. An expected error's traceback (the project's own errors, which
    carry their exit code) is shown only at DEBUG; an unexpected one's always.

    Args:
        level: the level the logs are shown at (Prefect's logging level).
    """

    def __init__(self, level: str = "WARNING") -> None:
        super().__init__()
        self.tracebacks = str(level).upper() == "DEBUG"

    def format(self, record: logging.LogRecord) -> str:
        # A live progress line may be on the terminal: the record replaces it (and the next
        # update draws it again below), instead of running on from its end.
        erase = "\r\x1b[2K" if sys.stderr.isatty() else ""
        text = f"{erase}{record.levelname.lower()}: {record.getMessage()}"
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and (self.tracebacks or not isinstance(error, HousekeepingError)):
            text += "\n" + self.formatException(record.exc_info)  # type: ignore[arg-type]
        return text


class TerminalFilter(logging.Filter):
    """Leaves out what the command says itself once the run ends: Prefect's records of a run
    failing (its state, its exception) and the error log of the AWS request that failed. The
    command prints the error, once, with its exit code."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        return not (record.name.startswith("prefect.") or record.name == "tasks.errors")
