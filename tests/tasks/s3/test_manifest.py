"""The plan manifest: every field of a planned object survives the round trip."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.errors import ConfigError
from tasks.s3.manifest import (
    FIRST_ROWS,
    ManifestWriter,
    PlannedObject,
    PlanTally,
    PlanTarget,
    PlanTotals,
    read_objects,
    read_target,
    read_totals,
)

TARGET = PlanTarget(
    bucket="manifest-bucket",
    region="eu-west-1",
    prefix="tmp/",
    cutoff="2026-10-28T00:00:00Z",
    created_at="2026-11-27T00:00:00Z",
    owner="123456789012",
    versions="all",
)
CURRENT = PlannedObject("tmp/a", '"e1"', 10, "2026-01-01T00:00:00Z", "STANDARD")
VERSION = PlannedObject("tmp/b", "", 0, "2026-01-02T00:00:00Z", "", "v-2", is_delete_marker=True)


@pytest.mark.parametrize("name", ["plan.jsonl", "plan.jsonl.gz"])
def test_reads_back_every_field_when_written(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with ManifestWriter(path, TARGET) as manifest:
        manifest.add(CURRENT)
        manifest.add(VERSION)
        manifest.finish(PlanTotals(scanned=5, matched=2, matched_bytes=10))

    assert read_target(path) == TARGET
    assert list(read_objects(path)) == [CURRENT, VERSION]
    assert read_totals(path) == PlanTotals(5, 2, 10)


def test_writes_every_field_that_differs_from_its_default(tmp_path: Path) -> None:
    # The record is built by hand for speed; a new field must not be dropped silently.
    changed = {
        field.name: f"value-{field.name}" if field.type == "str | None" else True
        for field in dataclasses.fields(PlannedObject)
        if field.default is not dataclasses.MISSING
    }
    entry = dataclasses.replace(VERSION, **changed)
    path = tmp_path / "plan.jsonl"
    with ManifestWriter(path, TARGET) as manifest:
        manifest.add(entry)
        manifest.finish(PlanTotals(1, 1, 0))

    assert list(read_objects(path)) == [entry]


def test_plan_is_readable_by_its_owner_only_when_written(tmp_path: Path) -> None:
    path = tmp_path / "plans" / "bucket" / "plan.jsonl.gz"
    with ManifestWriter(path, TARGET) as manifest:
        manifest.finish(PlanTotals(0, 0, 0))

    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_unwritable_location_is_a_config_error_when_the_plan_is_started(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):  # root writes anywhere: a file in the way does it instead
        locked = tmp_path / "a-file"
        locked.write_text("")

    with pytest.raises(ConfigError, match="cannot write the plan in") as caught:
        ManifestWriter(locked / "bucket" / "plan.jsonl", TARGET)

    assert caught.value.exit_code == 1


def test_file_that_is_not_gzip_is_a_config_error_when_read(tmp_path: Path) -> None:
    path = tmp_path / "plan.jsonl.gz"
    path.write_bytes(b"not gzip at all\n")

    with pytest.raises(ConfigError, match="is not a readable plan"):
        read_target(path)


def test_tally_counts_every_line_and_keeps_only_the_first_rows_when_lines_go_by() -> None:
    tally = PlanTally()
    entries = [dataclasses.replace(CURRENT, key=f"tmp/{n}", size=n) for n in range(FIRST_ROWS + 7)]
    for entry in entries:
        tally.add(entry)

    plan = tally.summary("plan.jsonl", TARGET, scanned=100)

    assert (plan.matched, plan.matched_bytes, plan.scanned) == (
        len(entries),
        sum(range(FIRST_ROWS + 7)),
        100,
    )
    assert plan.first_rows == entries[:FIRST_ROWS]


TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=20)


@settings(max_examples=300, deadline=None)
@given(
    entry=st.builds(
        PlannedObject,
        key=TEXT,
        etag=TEXT,
        size=st.integers(0, 5 * 2**40),
        last_modified=TEXT,
        storage_class=TEXT,
        version_id=st.none() | TEXT,
        is_delete_marker=st.booleans(),
        rule=st.none() | TEXT,
    )
)
def test_writes_the_line_json_dumps_writes_when_any_object_is_added(
    tmp_path_factory: pytest.TempPathFactory, entry: PlannedObject
) -> None:
    path = tmp_path_factory.mktemp("lines") / "plan.jsonl"
    with ManifestWriter(path, TARGET) as manifest:
        manifest.add(entry)

    record = {name: value for name, value in dataclasses.asdict(entry).items()}
    if entry.version_id is None:
        del record["version_id"]
    if not entry.is_delete_marker:
        del record["is_delete_marker"]
    if entry.rule is None:
        del record["rule"]
    expected = json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
    assert path.read_bytes().split(b"\n")[1] + b"\n" == expected.encode()
    assert list(read_objects(path)) == [entry]
