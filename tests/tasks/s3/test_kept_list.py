"""The kept list beside a plan: its header, a line an object with its reason, its owner only."""

from __future__ import annotations

import gzip
import json
import stat
from pathlib import Path

from tasks.s3.kept_list import FORMAT, KeptList, kept_list_name, read_kept_list
from tasks.s3.manifest import PlanTarget

TARGET = PlanTarget(
    "b", "us-east-1", "logs/", "2026-01-01T00:00:00+00:00", "2026-01-31T00:00:00+00:00"
)
OLD = "2025-01-01T00:00:00+00:00"


def test_is_named_beside_the_plan() -> None:
    assert kept_list_name("20260101T000000Z-run.jsonl.gz") == "20260101T000000Z-run.kept.jsonl.gz"


def test_lists_each_object_with_its_reason_and_what_s3_said(tmp_path: Path) -> None:
    path = tmp_path / "plans" / "x.kept.jsonl.gz"
    kept = KeptList(path, TARGET)
    kept.add("logs/a", None, 3, OLD, "exclude")
    kept.add("logs/b", "v1", 4, OLD, "locked", "legal hold")
    kept.close()

    with gzip.open(path, "rt", encoding="utf-8") as lines:
        header = json.loads(next(lines))
    assert header["format"] == FORMAT and header["prefix"] == "logs/"
    assert read_kept_list(path) == [
        {
            "key": "logs/a",
            "size": 3,
            "last_modified": "2025-01-01T00:00:00+00:00",
            "reason": "exclude",
        },
        {
            "key": "logs/b",
            "version_id": "v1",
            "size": 4,
            "last_modified": OLD,
            "reason": "locked",
            "detail": "legal hold",
        },
    ]
    assert kept.count == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_takes_the_object_lines_of_other_lists_after_its_own_header(tmp_path: Path) -> None:
    """A cluster's kept list is its parts' lines, one part after another."""
    parts = [tmp_path / "plan.parts" / f"part-{n}.kept.jsonl.gz" for n in (1, 2)]
    for number, path in enumerate(parts):
        part = KeptList(path, TARGET)
        part.add(f"logs/{number}", None, number, OLD, "exclude")
        part.close()
    empty = KeptList(tmp_path / "plan.parts" / "part-3.kept.jsonl.gz", TARGET)
    empty.close()
    merged = KeptList(tmp_path / "plan.kept.jsonl.gz", TARGET)
    for path in (*parts, empty.path):
        merged.add_lines_of(path)
    merged.close()

    assert [line["key"] for line in read_kept_list(merged.path)] == ["logs/0", "logs/1"]
    assert merged.count == 2
