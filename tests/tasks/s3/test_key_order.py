"""Rows put in key order through files on disk: every row once, keys ascending, a key's rows in
the order they came."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tasks.s3.key_order import in_key_order
from tasks.s3.listing import ListedObject

MOMENT = datetime(2026, 1, 1, tzinfo=UTC)


def rows_of(keys: list[str]) -> list[ListedObject]:
    return [
        ListedObject(
            key,
            f'"e{number}"',
            number,
            MOMENT + timedelta(seconds=number),
            version_id=f"v{number}" if number % 3 else None,
            is_delete_marker=number % 5 == 0,
        )
        for number, key in enumerate(keys)
    ]


@given(
    keys=st.lists(st.sampled_from(["a", "b/é", "b/中", "c\U0010ffff", "c", "a/b"]), max_size=80),
    chunk_rows=st.integers(min_value=1, max_value=9),
)
def test_yields_every_row_once_by_key_each_keys_rows_in_arrival_order(
    keys: list[str], chunk_rows: int
) -> None:
    rows = rows_of(keys)

    ordered = list(in_key_order(rows, chunk_rows=chunk_rows))

    assert ordered == sorted(rows, key=lambda row: row.key)  # sorted() is stable too


def test_holds_the_rows_in_memory_when_they_fit_one_chunk() -> None:
    rows = rows_of(["b", "a", "b"])

    assert [row.key for row in in_key_order(rows)] == ["a", "b", "b"]
