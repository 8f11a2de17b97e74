"""What the keep rules read from a key: its group (`group_by`) and its time (`time_from_key`).

A `group_by` is `depth:N` (the first N folders below the prefix; a key in fewer folders is in
the group of the folders it has) or a regular expression with a named group `group`, searched
in the key below the prefix: a key it does not match is in no group, and is kept. A
`time_from_key` is a regular expression whose named groups `year` (required), `month`, `day`,
`hour`, `minute` and `second` give the time, in UTC; a key it does not match, or whose date does
not exist, has no time, and is kept. User expressions run on keys of at most 1024 bytes; an
expression written to backtrack without end is the user's to avoid, as in any tool taking one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

from tasks.s3.key_ranges import DELIMITER

#: The time fields a `time_from_key` expression may name, with their value when it does not.
TIME_FIELDS = {"year": None, "month": 1, "day": 1, "hour": 0, "minute": 0, "second": 0}
_DEPTH = re.compile(r"depth:(\d+)")
#: The most folders a `depth:N` can name: S3 keys are at most 1024 bytes.
MAX_DEPTH = 512


def group_by_problems(group_by: str) -> list[str]:
    """What is wrong with a `group_by` ('' is the whole prefix as one group); [] when usable."""
    if not group_by:
        return []
    depth = _DEPTH.fullmatch(group_by)
    if depth is not None:
        if not 1 <= int(depth.group(1)) <= MAX_DEPTH:
            return [f"depth:N takes N from 1 to {MAX_DEPTH}"]
        return []
    if group_by.startswith("depth:"):
        return ["depth:N takes a whole number N"]
    problem = _regex_problem(group_by)
    if problem is not None:
        return [problem]
    if "group" not in re.compile(group_by).groupindex:
        return ["a regular expression needs a named group (?P<group>...), or use depth:N"]
    return []


def time_from_key_problems(expression: str) -> list[str]:
    """What is wrong with a `time_from_key` ('' is LastModified); [] when usable."""
    if not expression:
        return []
    problem = _regex_problem(expression)
    if problem is not None:
        return [problem]
    names = set(re.compile(expression).groupindex)
    problems = []
    if "year" not in names:
        problems.append("needs a named group (?P<year>...); month, day, hour, minute, second")
    unknown = sorted(names - set(TIME_FIELDS))
    if unknown:
        problems.append(
            f"names groups that are no time field: {', '.join(unknown)} (year, month, day, "
            "hour, minute, second)"
        )
    return problems


def _regex_problem(expression: str) -> str | None:
    try:
        re.compile(expression)
    except re.error as error:
        return f"is not a regular expression: {error}"
    return None


@lru_cache(maxsize=64)
def _compiled(expression: str) -> re.Pattern[str]:
    return re.compile(expression)


def group_of(group_by: str, key_below_prefix: str) -> str | None:
    """The group of a key below the prefix under a usable `group_by`; None when a regular
    expression does not match it (the key is then kept)."""
    if not group_by:
        return ""
    depth = _DEPTH.fullmatch(group_by)
    if depth is not None:
        folders = key_below_prefix.split(DELIMITER)[:-1]
        return DELIMITER.join(folders[: int(depth.group(1))])
    found = _compiled(group_by).search(key_below_prefix)
    return None if found is None or found.group("group") is None else found.group("group")


def time_of(expression: str, key_below_prefix: str) -> datetime | None:
    """The time a usable `time_from_key` reads from a key below the prefix, in UTC; None when
    it does not match, or the date it gives does not exist (the key is then kept)."""
    found = _compiled(expression).search(key_below_prefix)
    if found is None:
        return None
    fields = found.groupdict()
    try:
        values = {
            name: int(fields[name]) if fields.get(name) is not None else default
            for name, default in TIME_FIELDS.items()
        }
        return datetime(tzinfo=UTC, **values)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None  # no year matched, not digits, or no such date (a 31 June)
