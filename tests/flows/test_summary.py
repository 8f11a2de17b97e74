"""A run's summary for a person, and every planned key for a pipe, read from its plan."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flows.summary import FIRST_OBJECTS, age, list_plan, run_summary
from tasks.s3.manifest import ManifestWriter, PlannedObject, PlanTarget, PlanTotals

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
CUTOFF = "2026-11-07T12:00:00Z"
TARGET = PlanTarget("summary-bucket", "us-east-1", "tmp/", CUTOFF, "2026-12-07T12:00:00Z")


def planned(key: str, days: int, size: int = 2048) -> PlannedObject:
    moment = (NOW - timedelta(days=days)).isoformat().replace("+00:00", "Z")
    return PlannedObject(key, '"etag"', size, moment, "STANDARD")


def plan_file(path: Path, objects: list[PlannedObject]) -> Path:
    with ManifestWriter(path, TARGET) as writer:
        for entry in objects:
            writer.add(entry)
        writer.finish(PlanTotals(len(objects) + 2, len(objects), sum(o.size for o in objects)))
    return path


def report(manifest: Path | None, objects: list[PlannedObject], **fields: Any) -> dict[str, Any]:
    return {
        "status": "dry_run",
        "bucket": "summary-bucket",
        "prefix": "tmp/",
        "cutoff": CUTOFF,
        "scanned": len(objects) + 2,
        "matched": len(objects),
        "matched_bytes": sum(o.size for o in objects),
        "deleted": 0,
        "skipped_changed": 0,
        "failed": 0,
        "manifest": str(manifest) if manifest else None,
        "manifest_sha256": "ab" * 32,
        "notes": [],
        **fields,
    }


@pytest.fixture
def objects() -> list[PlannedObject]:
    """25 builds and 3 cache layers, and one object directly under tmp/."""
    builds = [planned(f"tmp/builds/b-{n:02d}.tgz", 40 + n) for n in range(25)]
    return [*builds, *(planned(f"tmp/cache/l-{n}", 35) for n in range(3)), planned("tmp/x", 90)]


class TestRunSummary:
    def test_says_what_the_rules_kept_by_reason_and_where_they_are_listed(
        self, tmp_path: Path, objects: list[PlannedObject]
    ) -> None:
        path = plan_file(tmp_path / "plan.jsonl.gz", objects)
        kept = {"locked": 1, "keep_daily": 7, "exclude": 3}

        text = run_summary(report(path, objects, kept=kept, kept_list="k.jsonl.gz"), now=NOW)

        lines = text.splitlines()
        assert lines[1] == "Old enough but kept by the rules: exclude 3, keep_daily 7, locked 1."
        assert lines[2] == "Each of them, with its rule: k.jsonl.gz"

    def test_names_each_shown_objects_rule_when_the_plan_was_made_under_rules(
        self, tmp_path: Path
    ) -> None:
        objects = [
            replace(planned("tmp/a.tgz", 40), rule="include:**/*.tgz"),
            replace(planned("tmp/b.log", 50), rule="age"),
        ]
        path = plan_file(tmp_path / "plan.jsonl.gz", objects)

        lines = run_summary(report(path, objects), now=NOW).splitlines()

        header = lines.index(next(line for line in lines if "planned object" in line))
        assert lines[header].split() == ["planned", "object", "age", "size", "rule"]
        assert lines[header + 1].split()[::5] == ["tmp/a.tgz", "include:**/*.tgz"]
        assert lines[header + 2].split()[::5] == ["tmp/b.log", "age"]

    def test_says_no_rule_kept_an_old_object_when_its_kept_list_is_empty(
        self, tmp_path: Path, objects: list[PlannedObject]
    ) -> None:
        path = plan_file(tmp_path / "plan.jsonl.gz", objects)

        text = run_summary(report(path, objects, kept={}, kept_list="k.jsonl.gz"), now=NOW)

        assert (
            text.splitlines()[1] == "No rule kept an old object (an empty kept list: k.jsonl.gz)."
        )

    def test_shows_folders_and_the_first_objects_with_age_and_size_when_a_dry_run_planned(
        self, tmp_path: Path, objects: list[PlannedObject]
    ) -> None:
        path = plan_file(tmp_path / "plan.jsonl.gz", objects)

        text = run_summary(report(path, objects), now=NOW)

        lines = text.splitlines()
        assert lines[0] == (
            "Dry run: 29 objects (58.0 KiB) under s3://summary-bucket/tmp/ would be deleted, "
            "last modified before 2026-11-07 12:00 UTC; 31 listed. Nothing was deleted."
        )
        assert "  tmp/builds/         25    50.0 KiB" in lines
        assert "  tmp/cache/           3     6.0 KiB" in lines
        assert "  tmp/                 1     2.0 KiB" in lines
        shown = [line for line in lines if "tmp/builds/b-" in line]
        assert len(shown) == FIRST_OBJECTS
        assert shown[0].split() == ["tmp/builds/b-00.tgz", "40", "days", "2.0", "KiB"]
        assert f"  ... and 9 more: the plan is at {path} (--list)" in lines
        assert f"--plan {path} --plan-sha256 {'ab' * 32} --execute" in text

    def test_never_says_none_when_no_plan_was_written(self) -> None:
        text = run_summary(
            report(None, [], status="refused", message="refused by max_deletions: 9 > 1"),
            now=NOW,
        )

        assert text == "Refused by max_deletions: 9 > 1."
        assert "None" not in text

    def test_counts_what_was_deleted_when_the_run_executed(
        self, tmp_path: Path, objects: list[PlannedObject]
    ) -> None:
        path = plan_file(tmp_path / "plan.jsonl.gz", objects)
        done = report(path, objects, status="completed", deleted=28, already_gone=1)

        headline = run_summary({**done, "skipped_changed": 1, "duration_s": 2.5}, now=NOW)

        assert headline.splitlines()[0] == (
            "Deleted 28 of 29 planned objects (58.0 KiB) under s3://summary-bucket/tmp/, last "
            "modified before 2026-11-07 12:00 UTC (1 already gone); 1 skipped (changed since "
            "listed), 0 failed, in 2.5 s."
        )

    def test_says_a_missing_bucket_is_created_only_when_asked(self) -> None:
        text = run_summary(report(None, [], bucket_action="would_create"), now=NOW)

        assert "bucket summary-bucket does not exist: an executing run with --create-bucket" in (
            text
        )


class TestListPlan:
    def test_prints_every_key_escaped_one_per_line_when_listed(self, tmp_path: Path) -> None:
        objects = [planned("tmp/a", 40), planned("tmp/new\nline", 41)]
        out = io.StringIO()

        list_plan(report(plan_file(tmp_path / "p.jsonl", objects), objects), False, out)

        assert out.getvalue() == "tmp/a\ntmp/new\\u000aline\n"

    def test_prints_each_planned_object_exactly_as_json_lines_when_asked(
        self, tmp_path: Path
    ) -> None:
        objects = [planned("tmp/a", 40), planned("tmp/new\nline", 41)]
        out = io.StringIO()

        list_plan(report(plan_file(tmp_path / "p.jsonl", objects), objects), True, out)

        rows = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [row["key"] for row in rows] == ["tmp/a", "tmp/new\nline"]
        assert rows[0] == {
            "key": "tmp/a",
            "etag": '"etag"',
            "size": 2048,
            "last_modified": objects[0].last_modified,
            "storage_class": "STANDARD",
        }

    def test_says_where_the_plan_is_when_it_is_not_on_this_machine(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        out = io.StringIO()

        list_plan({**report(None, []), "manifest": "s3://plans/p.jsonl.gz"}, False, out)

        assert out.getvalue() == ""
        assert "this run's is at s3://plans/p.jsonl.gz" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("before", "said"),
    [(timedelta(days=400), "400 days"), (timedelta(hours=5), "5 hours"), (timedelta(0), "0 s")],
)
def test_age_is_in_its_largest_whole_unit(before: timedelta, said: str) -> None:
    assert age((NOW - before).isoformat(), NOW) == said
