"""How a fleet reads a deployed child's end: our error class named in its state, as an exit code."""

from __future__ import annotations

import pytest

from flows.fleet_children import error_named_in, exit_code_of, idempotency_key, outcome_row

#: How Prefect words a failed flow run's state message.
FAILED = "Flow run encountered an exception: "


@pytest.mark.parametrize(
    ("message", "name", "code"),
    [
        (f"{FAILED}PermissionDeniedError: access denied", "PermissionDeniedError", 4),
        (f"{FAILED}ConfigError: invalid configuration", "ConfigError", 1),
        (f"{FAILED}SafetyRefusal: refused by max_deletions", "SafetyRefusal", 6),
        (f"{FAILED}KeyError: 'x'", "", 99),
        ("Crashed: the process exited", "", 99),
        ("", "", 99),
    ],
)
def test_finds_our_error_and_its_exit_code_when_a_child_failed(
    message: str, name: str, code: int
) -> None:
    assert error_named_in(message) == name
    assert exit_code_of(error_named_in(message)) == code


def test_keys_differ_when_a_slash_moves_between_the_run_key_and_the_target() -> None:
    assert idempotency_key("a/b", "c", "run") != idempotency_key("a", "b/c", "run")
    assert idempotency_key("nightly", "logs/tmp/", "apply") == (
        "s3-housekeeping-fleet/nightly/logs%2Ftmp%2F/apply"
    )


@pytest.mark.parametrize(
    ("data", "row"),
    [
        ('[{"status": "completed", "deleted": 4}]', {"status": "completed", "deleted": 4}),
        ([{"status": "refused"}], {"status": "refused"}),  # as a client may hand it back
        ("not json", None),
        ("[]", None),
        (None, None),
    ],
)
def test_reads_the_outcome_tables_row_when_the_server_keeps_it_as_text(
    data: object, row: dict[str, object] | None
) -> None:
    assert outcome_row(data) == row
