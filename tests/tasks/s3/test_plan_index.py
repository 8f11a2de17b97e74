"""The index of a plan made in shards: one line a part, the totals last, for its owner only."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tasks.errors import ConfigError, SafetyRefusal
from tasks.s3.manifest import PlanTarget, PlanTotals
from tasks.s3.plan_index import FORMAT, Part, is_index, read_index, write_index

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


class TestReadBack:
    def written(self, tmp_path: Path) -> Path:
        path = tmp_path / "run.index.jsonl"
        write_index(path, TARGET, [Part("p/1.jsonl.gz", "a" * 64, 10, 4, 400)])
        return path

    def test_gives_back_what_was_written(self, tmp_path: Path) -> None:
        index = read_index(self.written(tmp_path))

        assert index.target == TARGET
        assert index.parts == [Part("p/1.jsonl.gz", "a" * 64, 10, 4, 400)]
        assert index.totals == PlanTotals(10, 4, 400)

    def test_refuses_an_index_cut_short_before_its_totals(self, tmp_path: Path) -> None:
        path = self.written(tmp_path)
        path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))

        with pytest.raises(SafetyRefusal, match="no totals"):
            read_index(path)

    def test_refuses_totals_that_are_not_the_sums_of_its_parts(self, tmp_path: Path) -> None:
        path = self.written(tmp_path)
        *parts, end = path.read_text().splitlines(keepends=True)
        path.write_text("".join(parts) + end.replace('"matched": 4,', '"matched": 9,'))

        with pytest.raises(SafetyRefusal, match="not its parts' sums"):
            read_index(path)

    def test_refuses_a_count_of_unrecoverable_keys_that_is_not_its_parts_sum(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "run.index.jsonl"
        write_index(path, TARGET, [Part("p/1.jsonl.gz", "a" * 64, 10, 4, 400, 3, "p/0")])
        *parts, end = path.read_text().splitlines(keepends=True)
        assert '"unrecoverable_keys": 3' in end
        path.write_text(
            "".join(parts) + end.replace('"unrecoverable_keys": 3', '"unrecoverable_keys": 0')
        )

        with pytest.raises(SafetyRefusal, match="not its parts' sums"):
            read_index(path)

    def test_tells_an_index_from_a_plan_file_and_from_garbage(self, tmp_path: Path) -> None:
        (tmp_path / "garbage").write_bytes(b"\x1f\x8b not json")

        assert is_index(self.written(tmp_path))
        assert not is_index(tmp_path / "garbage")
        with pytest.raises(ConfigError, match="not a readable plan index"):
            read_index(tmp_path / "garbage")
