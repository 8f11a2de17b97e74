"""Log records in words: the level and the message; a traceback only where it helps."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from flows.terminal_logs import TerminalFilter, TerminalFormatter
from tasks.errors import ConfigError


def record(name: str, level: int, error: BaseException | None = None) -> logging.LogRecord:
    exc_info = None
    if error is not None:
        try:
            raise error
        except BaseException:
            exc_info = sys.exc_info()
    return logging.LogRecord(name, level, __file__, 1, "it went %s", ("wrong",), exc_info)


class TestTerminalFormatter:
    def test_says_the_level_in_words_then_the_message(self) -> None:
        assert TerminalFormatter().format(record("tasks.x", logging.WARNING)) == (
            "warning: it went wrong"
        )

    def test_leaves_out_an_expected_errors_traceback_unless_at_debug(self) -> None:
        expected = record("flows.cli", logging.ERROR, ConfigError("bad"))

        assert "Traceback" not in TerminalFormatter("WARNING").format(expected)
        assert "Traceback" in TerminalFormatter("DEBUG").format(expected)

    def test_shows_an_unexpected_errors_traceback_always(self) -> None:
        unexpected = record("flows.cli", logging.ERROR, KeyError("k"))

        assert "Traceback" in TerminalFormatter("WARNING").format(unexpected)


class TestTerminalFilter:
    def test_leaves_out_what_the_command_says_itself_when_a_run_fails(self) -> None:
        shown = TerminalFilter().filter

        assert not shown(record("prefect.flow_runs", logging.ERROR))
        assert not shown(record("prefect.task_runs", logging.ERROR))
        assert not shown(record("tasks.errors", logging.ERROR))

    def test_keeps_warnings_and_the_projects_own_errors(self) -> None:
        shown = TerminalFilter().filter

        assert shown(record("prefect.task_runs", logging.WARNING))
        assert shown(record("tasks.cleanup", logging.ERROR))
        assert shown(record("flows.cli", logging.ERROR))


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_replaces_a_progress_line_instead_of_running_on_from_it_when_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stderr", Terminal())

    shown = TerminalFormatter().format(record("tasks.x", logging.WARNING))

    assert shown == "\r\x1b[2Kwarning: it went wrong"
