"""Where a command's output goes: words on a terminal, JSON elsewhere, stdout for one thing."""

from __future__ import annotations

import io

import pytest

from flows.output import CONSOLE, Output
from tasks.errors import ConfigError


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class TestChosen:
    def test_is_words_on_a_terminal_and_json_elsewhere_when_nothing_is_asked(self) -> None:
        assert Output.chosen(None, stdout=Terminal()).logs == "text"
        assert Output.chosen(None, stdout=io.StringIO()).logs == "json"

    def test_follows_the_option_then_log_format_whatever_stdout_is(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert Output.chosen("json", stdout=Terminal()).logs == "json"
        monkeypatch.setenv("LOG_FORMAT", "JSON")
        assert Output.chosen(None, stdout=Terminal()).logs == "json"
        assert Output.chosen("text", stdout=io.StringIO()).logs == "text"

    def test_refuses_a_log_format_it_does_not_know_when_set(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("LOG_FORMAT", "xml")

        with pytest.raises(ConfigError, match="LOG_FORMAT must be text or json"):
            Output.chosen(None, stdout=Terminal())


class TestLogEnvironment:
    def test_words_go_to_stderr_at_warning_unless_log_level_says_otherwise(self) -> None:
        shown = Output("text").log_environment(None)

        assert shown[f"{CONSOLE}FORMATTER"] == "terminal"
        assert shown[f"{CONSOLE}STREAM"] == "ext://sys.stderr"
        assert shown[f"{CONSOLE}LEVEL"] == "WARNING"
        assert "terminal" in shown[f"{CONSOLE}FILTERS"].split(",")
        assert Output("text").log_environment("debug")[f"{CONSOLE}LEVEL"] == "DEBUG"

    def test_json_lines_stay_on_stdout_unless_the_report_or_the_keys_take_it(self) -> None:
        assert Output("json").log_environment(None) == {}
        for taken in (Output("json", report="json"), Output("json", listing=True)):
            assert taken.log_environment(None) == {f"{CONSOLE}STREAM": "ext://sys.stderr"}
