"""The run's Prefect artifacts: the plan table, the manifest link, the report and the progress."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pytest
from prefect import flow

from tasks.record.artifacts import (
    MANIFEST_KEY,
    OUTCOME_FIELDS,
    OUTCOME_KEY,
    PLAN_KEY,
    PROGRESS_KEY,
    REPORT_KEY,
    ProgressArtifact,
    manifest_link,
    publish_plan,
    publish_report,
)
from tasks.record.lifecycle import NOTE, lifecycle_rule
from tasks.record.report import RunReport
from tasks.s3.manifest import PlannedObject, PlanSummary, PlanTarget
from tasks.s3.progress import ProgressSnapshot

#: An interval no test outlasts: after one update, only a finished snapshot is shown.
NEVER = 3600.0
PLAN = PlanSummary(
    manifest="s3://plan-bucket/plans/artifact-bucket/run 1.jsonl",
    target=PlanTarget(
        bucket="artifact-bucket",
        region="eu-west-1",
        prefix="temp/",
        cutoff="2026-01-01T00:00:00Z",
        created_at="2026-01-31T00:00:00Z",
        versions="noncurrent",
    ),
    scanned=12,
    matched=2,
    matched_bytes=300,
    first_rows=[
        PlannedObject("temp/a", '"e-a"', 100, "2025-01-01T00:00:00Z", "STANDARD", "v-a"),
        PlannedObject("temp/b", "", 200, "2025-02-01T00:00:00Z", "GLACIER", "v-b"),
    ],
)
REPORT = RunReport(
    status="dry_run",
    bucket="artifact-bucket",
    prefix="temp/",
    region="eu-west-1",
    environment="staging",
    cutoff="2026-01-01T00:00:00Z",
    dry_run=True,
    scanned=12,
    matched=2,
    matched_bytes=300,
)


class TestManifestLink:
    def test_opens_the_object_in_the_s3_console_when_the_manifest_is_in_s3(self) -> None:
        link = manifest_link("s3://plan-bucket/plans/run.jsonl", "eu-west-1")

        assert link == (
            "https://eu-west-1.console.aws.amazon.com/s3/object/plan-bucket"
            "?region=eu-west-1&prefix=plans/run.jsonl"
        )

    def test_quotes_the_key_so_it_reads_back_whole_when_it_holds_url_characters(self) -> None:
        key = "plans/my bucket/run #1&region=us-east-1?x=%20+é.jsonl"

        link = manifest_link(f"s3://plan-bucket/{key}", "eu-west-1")

        query = parse_qs(urlsplit(link).query, strict_parsing=True)
        assert query == {"region": ["eu-west-1"], "prefix": [key]}
        assert urlsplit(link).path == "/s3/object/plan-bucket"
        assert " " not in link

    def test_is_a_file_uri_of_the_absolute_path_when_the_manifest_is_local(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "my plans" / "run.jsonl"

        link = manifest_link(str(path), "eu-west-1")

        assert link == path.resolve().as_uri()
        assert link.startswith("file:///")
        assert "my%20plans" in link

    def test_resolves_a_relative_path_against_the_working_directory_when_local(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)

        link = manifest_link("manifests/bucket/run.jsonl", "us-east-1")

        assert link == (tmp_path.resolve() / "manifests" / "bucket" / "run.jsonl").as_uri()


def snapshot(planned: int, deleted: int, finished: bool = False) -> ProgressSnapshot:
    return ProgressSnapshot(
        listed=planned,
        matched=planned,
        deleted=deleted,
        planned=planned,
        elapsed_s=2.0,
        finished=finished,
    )


def read_artifact(artifact_id: UUID) -> tuple[Any, str | None]:
    """An artifact's data and description, as the API has them now."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterId

    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(id=ArtifactFilterId(any_=[artifact_id]))
        )
    return artifact.data, artifact.description


def run_artifacts(flow_run_id: UUID | None) -> dict[str, Any]:
    """A flow run's artifacts by key."""
    assert flow_run_id is not None
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {artifact.key or "": artifact for artifact in artifacts}


@flow(name="progress-artifact-probe")
def progress_probe() -> dict[str, Any]:
    """Drive two progress artifacts and read each back after every step."""
    seen: dict[str, Any] = {}
    deleting = ProgressArtifact(interval_s=0)
    deleting(snapshot(10, 1))  # before start(): there is no artifact to update yet
    deleting.start("Deleting under s3://artifact-bucket/temp/")
    assert deleting._artifact_id is not None
    seen["started"] = read_artifact(deleting._artifact_id)
    deleting(snapshot(10, 4))
    seen["first"] = read_artifact(deleting._artifact_id)
    deleting.interval_s = NEVER
    deleting(snapshot(10, 7))
    seen["within_interval"] = read_artifact(deleting._artifact_id)
    deleting(snapshot(10, 10, finished=True))
    seen["finished"] = read_artifact(deleting._artifact_id)
    deleting(snapshot(10, 12, finished=True))
    seen["over_planned"] = read_artifact(deleting._artifact_id)

    nothing_planned = ProgressArtifact(interval_s=0)
    nothing_planned.start("Deleting 0 planned objects")
    assert nothing_planned._artifact_id is not None
    nothing_planned(snapshot(0, 0, finished=True))
    seen["nothing_planned"] = read_artifact(nothing_planned._artifact_id)
    seen["ids"] = [deleting._artifact_id, nothing_planned._artifact_id]
    return seen


@flow(name="publish-artifacts-probe")
def publish_probe() -> None:
    publish_plan(PLAN, dry_run=True, older_than_days=30)
    publish_report(REPORT)


@pytest.fixture(scope="module")
def progress_run(prefect_harness: None) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """The progress probe's readings and its run's artifacts."""
    state = progress_probe(return_state=True)
    yield state.result(), run_artifacts(state.state_details.flow_run_id)


@pytest.fixture(scope="module")
def published(prefect_harness: None) -> Iterator[dict[str, Any]]:
    """The artifacts of one run that published the plan and the report."""
    state = publish_probe(return_state=True)
    assert state.is_completed()
    yield run_artifacts(state.state_details.flow_run_id)


class TestProgressArtifact:
    def test_starts_at_zero_with_its_description_when_started(
        self, progress_run: tuple[dict[str, Any], dict[str, Any]]
    ) -> None:
        seen, _ = progress_run

        assert seen["started"] == (0, "Deleting under s3://artifact-bucket/temp/")

    def test_shows_the_share_deleted_and_the_rate_when_updated(
        self, progress_run: tuple[dict[str, Any], dict[str, Any]]
    ) -> None:
        seen, _ = progress_run

        assert seen["first"] == (40, "4 of 10 planned objects deleted (2/s)")

    def test_skips_an_update_when_it_comes_within_the_interval(
        self, progress_run: tuple[dict[str, Any], dict[str, Any]]
    ) -> None:
        seen, _ = progress_run

        assert seen["within_interval"] == seen["first"]

    def test_shows_the_final_count_when_finished_within_the_interval(
        self, progress_run: tuple[dict[str, Any], dict[str, Any]]
    ) -> None:
        seen, _ = progress_run

        assert seen["finished"] == (100, "10 of 10 planned objects deleted (5/s)")

    def test_caps_at_one_hundred_percent_when_more_than_planned_is_counted(
        self, progress_run: tuple[dict[str, Any], dict[str, Any]]
    ) -> None:
        seen, _ = progress_run

        assert seen["over_planned"][0] == 100

    def test_is_left_at_its_start_when_nothing_was_planned(
        self, progress_run: tuple[dict[str, Any], dict[str, Any]]
    ) -> None:
        seen, _ = progress_run

        assert seen["nothing_planned"] == (0, "Deleting 0 planned objects")

    def test_belongs_to_the_flow_run_when_started_in_its_thread(
        self, progress_run: tuple[dict[str, Any], dict[str, Any]]
    ) -> None:
        seen, artifacts = progress_run

        assert artifacts[PROGRESS_KEY].id in seen["ids"]
        assert artifacts[PROGRESS_KEY].type == "progress"


class TestPublish:
    def test_publishes_exactly_the_plan_manifest_and_report_when_a_plan_and_report_exist(
        self, published: dict[str, Any]
    ) -> None:
        assert set(published) == {PLAN_KEY, MANIFEST_KEY, REPORT_KEY, OUTCOME_KEY}

    def test_tables_the_first_rows_when_the_plan_is_published(
        self, published: dict[str, Any]
    ) -> None:
        rows = json.loads(published[PLAN_KEY].data)

        assert rows == PLAN.rows()
        assert [row["key"] for row in rows] == ["temp/a", "temp/b"]

    def test_describes_the_totals_mode_and_lifecycle_rule_when_the_plan_is_published(
        self, published: dict[str, Any]
    ) -> None:
        description = published[PLAN_KEY].description

        assert "s3://artifact-bucket/temp/ (noncurrent versions)" in description
        assert "dry run: nothing will be deleted" in description
        assert "2 of 12 listed objects, 300 bytes" in description
        assert "First 2 rows below" in description
        assert json.dumps(lifecycle_rule("temp/", 30, "noncurrent")) in description
        assert NOTE in description

    def test_links_the_manifest_in_the_s3_console_when_it_is_kept_in_s3(
        self, published: dict[str, Any]
    ) -> None:
        artifact = published[MANIFEST_KEY]

        link = manifest_link(PLAN.manifest, "eu-west-1")
        assert artifact.data == f"[{PLAN.manifest}]({link})"
        assert "2 objects (300 bytes) under s3://artifact-bucket/temp/" in artifact.description

    def test_shows_the_report_as_markdown_when_the_report_is_published(
        self, published: dict[str, Any]
    ) -> None:
        artifact = published[REPORT_KEY]

        assert artifact.data == REPORT.to_markdown()
        assert artifact.description == "s3-housekeeping dry_run: s3://artifact-bucket/temp/"


class TestOutcomeTable:
    def test_holds_the_status_and_counts_only_when_the_report_is_published(
        self, published: dict[str, Any]
    ) -> None:
        (row,) = json.loads(published[OUTCOME_KEY].data)

        assert tuple(row) == OUTCOME_FIELDS
        assert row == {name: REPORT.to_dict()[name] for name in OUTCOME_FIELDS}
        assert "requests" not in row and "lifecycle_rule" not in row
