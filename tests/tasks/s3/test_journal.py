"""The journal of a run's deletes: written before each request, read back whole."""

from __future__ import annotations

import stat
from collections import Counter
from pathlib import Path

from tasks.s3.journal import Journal, journal_name, read_journal
from tasks.s3.manifest import PlannedObject


def planned(key: str) -> PlannedObject:
    return PlannedObject(key, '"e"', 1, "2026-01-01T00:00:00Z", "STANDARD")


def test_writes_each_request_before_its_answer_and_ends_with_the_totals(tmp_path: Path) -> None:
    path = tmp_path / "plans" / "b" / journal_name("20261129T000000Z-run.jsonl.gz")
    journal = Journal(path, {"bucket": "b", "prefix": "tmp/", "plan": "plan.jsonl.gz"})

    first = journal.sending([planned("tmp/a"), planned("tmp/b")])
    on_disk_before_the_answer = read_journal(path)
    journal.answered(first, 1, Counter({"PreconditionFailed": 1}))
    journal.finish({"planned": 2, "deleted": 1})
    journal.close()

    assert path.name == "20261129T000000Z-run.journal.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert on_disk_before_the_answer[-1] == {
        **on_disk_before_the_answer[-1],
        "sent": 1,
        "keys": 2,
        "first": "tmp/a",
        "last": "tmp/b",
    }
    records = read_journal(path)
    assert records[0] == {**records[0], "format": "s3-housekeeping/journal-v1", "bucket": "b"}
    assert records[2] == {"answered": 1, "deleted": 1, "errors": {"PreconditionFailed": 1}}
    assert records[3] == {**records[3], "end": True, "planned": 2, "deleted": 1}


def test_numbers_requests_in_the_order_they_are_sent(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.journal.jsonl", {})

    numbers = [journal.sending([planned(f"tmp/{n}")]) for n in range(3)]
    journal.close()
    journal.answered(1, 1, Counter())  # after close: dropped, never an error

    assert numbers == [1, 2, 3]
    assert len(read_journal(tmp_path / "j.journal.jsonl")) == 4
