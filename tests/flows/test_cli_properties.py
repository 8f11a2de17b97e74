"""The command line refuses an invalid setting of any kind with exit code 1, naming the setting,
before a single AWS request: a sample of generated invalid values, each through `main`."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from contextlib import redirect_stderr
from datetime import datetime
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from flows.cli import main
from tests.support.audit import RequestAudit, audit_requests
from tests.support.setting_values import Broken, invalid_configurations

# moto answers any request that slips through: the audit counts it, nothing reaches AWS.
pytestmark = pytest.mark.usefixtures("prefect_harness", "moto")


def option(setting: str, value: Any) -> str:
    """--setting=value, as typed: the "=" keeps a value that starts with "-" a value."""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return f"--{setting.replace('_', '-')}={text}"


def is_utf8(text: str) -> bool:
    """False for a command line's bytes that are not UTF-8, which Python reads as lone
    surrogates."""
    return not any(0xD800 <= ord(character) <= 0xDFFF for character in text)


def typed_on_a_command_line(broken: Broken) -> bool:
    """A command line has no booleans for numbers and no NUL characters; its bytes that are not
    UTF-8 have their own test below."""
    text = str(broken.value)
    return not isinstance(broken.value, bool) and "\x00" not in text and is_utf8(text)


def run(argv: Sequence[str]) -> tuple[int, str, RequestAudit]:
    """`main(argv)` in this process: its exit code, what it said on stderr, and its requests."""
    stderr = io.StringIO()
    with (
        audit_requests() as audit,
        redirect_stderr(stderr),
        # The command sets Prefect's logging variables for the process it runs in.
        patch.dict(os.environ),
        # A run's heartbeat thread takes a second to stop; these runs end at once.
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        code = main(argv)
    return code, stderr.getvalue(), audit


def assert_refused_before_aws(argv: Sequence[str], setting: str) -> None:
    code, said, audit = run(argv)

    assert code == 1, said
    assert (audit.calls, audit.attempts) == ([], [])
    problems = [line for line in said.splitlines() if line.startswith("  - ")]
    assert problems, said
    assert all(line.startswith(f"  - {setting}: ") for line in problems), problems


@settings(max_examples=25)
@given(invalid_configurations().filter(typed_on_a_command_line))
def test_exits_1_naming_the_setting_before_any_aws_request_when_a_setting_is_invalid(
    broken: Broken,
) -> None:
    argv = ["run", *(option(name, value) for name, value in broken.given.items())]

    assert_refused_before_aws(argv, broken.setting)


def test_exits_1_naming_the_option_when_an_argument_is_not_utf8() -> None:
    # os.fsdecode(b"logs/\xff"): how Python reads these bytes from a command line. The parser
    # refuses it, as it does any malformed option, before a flow run or a request exists.
    stderr = io.StringIO()
    with audit_requests() as audit, redirect_stderr(stderr), pytest.raises(SystemExit) as ended:
        main(["run", "--bucket=example-bucket", "--prefix=logs/\udcff"])

    assert ended.value.code == 1
    assert "argument --prefix: must be UTF-8 text" in stderr.getvalue()
    assert (audit.calls, audit.attempts) == ([], [])
