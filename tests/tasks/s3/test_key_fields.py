"""A key's group (group_by) and its time (time_from_key), and what makes either unusable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tasks.s3.key_fields import group_by_problems, group_of, time_from_key_problems, time_of

DATED = r"(?P<year>\d{4})-(?P<month>\d\d)-(?P<day>\d\d)"


@pytest.mark.parametrize(
    ("group_by", "key", "group"),
    [
        ("", "db1/2024/x.sql", ""),
        ("depth:1", "db1/2024/x.sql", "db1"),
        ("depth:2", "db1/2024/x.sql", "db1/2024"),
        ("depth:3", "db1/2024/x.sql", "db1/2024"),  # fewer folders: the ones it has
        ("depth:1", "x.sql", ""),  # directly under the prefix
        (r"^(?P<group>[a-z]+)-", "orders-2024-01-01.sql", "orders"),
        (r"^(?P<group>[a-z]+)-", "2024-01-01.sql", None),  # no match: no group
        (r"^(?P<group>[a-z]+)?/", "/x", None),  # the group took part in no match
    ],
)
def test_a_keys_group(group_by: str, key: str, group: str | None) -> None:
    assert group_of(group_by, key) == group


@pytest.mark.parametrize(
    ("expression", "key", "when"),
    [
        (DATED, "db/2024-02-29.sql", datetime(2024, 2, 29, tzinfo=UTC)),
        (DATED, "db/2023-02-29.sql", None),  # no such day
        (DATED, "db/latest.sql", None),
        (r"(?P<year>\d{4})", "y/2021/x", datetime(2021, 1, 1, tzinfo=UTC)),
        (
            DATED + r"T(?P<hour>\d\d)(?P<minute>\d\d)(?P<second>\d\d)",
            "2024-05-06T070809.tar",
            datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
        ),
        (r"(?P<year>\d{4})-(?P<month>\d\d)?", "2024-x", datetime(2024, 1, 1, tzinfo=UTC)),
    ],
)
def test_a_keys_time(expression: str, key: str, when: datetime | None) -> None:
    assert time_of(expression, key) == when


@pytest.mark.parametrize(
    ("group_by", "says"),
    [
        ("depth:0", "from 1"),
        ("depth:x", "whole number"),
        (r"^(\w+)/", "(?P<group>"),
        ("(unclosed", "not a regular expression"),
    ],
)
def test_an_unusable_group_by_is_named(group_by: str, says: str) -> None:
    assert says in " ".join(group_by_problems(group_by))


def test_usable_group_bys_have_no_problem() -> None:
    assert group_by_problems("") == group_by_problems("depth:2") == []
    assert group_by_problems(r"^(?P<group>[^/]+)/") == []


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        (r"(?P<month>\d\d)", "(?P<year>"),
        (r"(?P<year>\d{4})(?P<week>\d\d)", "week"),
        ("(?P<year>", "not a regular expression"),
    ],
)
def test_an_unusable_time_from_key_is_named(expression: str, says: str) -> None:
    assert says in " ".join(time_from_key_problems(expression))
