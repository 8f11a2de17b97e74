"""What S3 says of an object a plan would delete: which tags protect it, when a lock holds it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tasks.s3.vetting import Vetting, is_protected, protect_tag_problems

NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("protect", "protected"),
    [
        (["keep"], True),  # a key alone: any value
        (["keep=yes"], True),
        (["keep=no"], False),
        (["keep="], False),  # an empty value is a value
        (["Keep"], False),  # tag keys are case-sensitive
        (["other", "env=prod"], True),
        ([], False),
    ],
)
def test_a_protect_tag_is_a_key_or_a_key_and_its_value(protect: list[str], protected: bool) -> None:
    tags = [{"Key": "keep", "Value": "yes"}, {"Key": "env", "Value": "prod"}]
    assert is_protected(tags, protect) is protected


def test_an_empty_value_protects_only_an_empty_value() -> None:
    assert is_protected([{"Key": "keep", "Value": ""}], ["keep="])


def test_tag_problems_follow_s3s_limits() -> None:
    assert protect_tag_problems("k" * 128 + "=" + "v" * 256) == []
    assert protect_tag_problems("=value") != []
    assert protect_tag_problems("k" * 129) != []
    assert protect_tag_problems("k=" + "v" * 257) != []


@pytest.mark.parametrize(
    ("head", "locked"),
    [
        ({"ObjectLockLegalHoldStatus": "ON"}, True),
        ({"ObjectLockLegalHoldStatus": "OFF"}, False),
        ({"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": NOW + timedelta(1)}, True),
        ({"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": NOW + timedelta(1)}, True),
        ({"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": NOW}, False),  # over
        ({"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": NOW - timedelta(1)}, False),
        ({}, False),
    ],
)
def test_a_lock_holds_under_a_legal_hold_or_a_retention_not_yet_over(
    head: dict[str, object], locked: bool
) -> None:
    vetting = Vetting(None, "b", None, (), True, 1, NOW)  # type: ignore[arg-type]
    assert (vetting._lock(head) is not None) is locked


def test_a_lock_is_said_as_a_legal_hold_or_the_date_its_retention_ends() -> None:
    vetting = Vetting(None, "b", None, (), True, 1, NOW)  # type: ignore[arg-type]
    until = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    head = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": until}
    assert vetting._lock(head) == "retained until 2030-01-02T03:04:05+00:00"
    assert vetting._lock({"ObjectLockLegalHoldStatus": "ON", **head}) == "legal hold"
