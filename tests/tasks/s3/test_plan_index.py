"""The index of a plan made in shards: one line a part, the totals last, for its owner only."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tasks.s3.manifest import PlanTarget, PlanTotals
from tasks.s3.plan_index import FORMAT, Part, write_index

TARGET = PlanTarget(
    "index-bucket", "us-east-1", "tmp/", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"
)


def test_lists_every_part_and_sums_their_totals_when_written(tmp_path: Path) -> None:
    parts = [Part("p/1.jsonl.gz", "a" * 64, 10, 4, 400), Part("p/2.jsonl.gz", "b" * 64, 5, 0, 0)]
    path = tmp_path / "plans" / "index.jsonl"

    totals = write_index(path, TARGET, parts)

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert totals == PlanTotals(scanned=15, matched=4, matched_bytes=400)
    assert lines[0]["format"] == FORMAT and lines[0]["bucket"] == "index-bucket"
    assert [line["part"]["location"] for line in lines[1:-1]] == ["p/1.jsonl.gz", "p/2.jsonl.gz"]
    assert lines[-1] == {
        "end": {"scanned": 15, "matched": 4, "matched_bytes": 400, "unrecoverable_keys": 0}
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_keeps_an_owner_read_from_a_secret_out_of_the_file(tmp_path: Path) -> None:
    target = PlanTarget(**{**TARGET.__dict__, "owner": "111122223333", "owner_from": "secret"})

    write_index(tmp_path / "index.jsonl", target, [])

    assert "111122223333" not in (tmp_path / "index.jsonl").read_text()
