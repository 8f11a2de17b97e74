"""A run's outcome and its Prefect event: names, target resource and counts, never a secret."""

from __future__ import annotations

import json

import pytest

from tasks.errors import ConfigError, SafetyRefusal
from tasks.record.decision import Approval
from tasks.record.events import event_name, event_resource
from tasks.record.outcome import from_failure, from_report
from tasks.record.report import RunReport


def report(status: str = "completed", **overrides: object) -> RunReport:
    fields: dict[str, object] = {
        "status": status,
        "bucket": "events-bucket",
        "prefix": "tmp/",
        "region": "us-east-1",
        "environment": "staging",
        "cutoff": "2026-01-01T00:00:00Z",
        "dry_run": status == "dry_run",
        "scanned": 9,
        "matched": 4,
        "matched_bytes": 400,
        "deleted": 0 if status in {"dry_run", "refused"} else 4,
    }
    return RunReport(**(fields | overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "event"),
    [
        ("dry_run", "s3-housekeeping.run.completed"),
        ("completed", "s3-housekeeping.run.completed"),
        ("refused", "s3-housekeeping.run.refused"),
        ("partial_failure", "s3-housekeeping.run.partial-failure"),
    ],
)
def test_event_is_named_for_the_outcome_when_the_run_ends(status: str, event: str) -> None:
    assert event_name(from_report(report(status), None, None)) == event


def test_event_carries_the_counts_and_the_target_when_built_from_a_report() -> None:
    outcome = from_report(report(), "run-1", None)

    assert outcome.summary()["counts"] == {
        "scanned": 9,
        "matched": 4,
        "matched_bytes": 400,
        "deleted": 4,
        "skipped_changed": 0,
        "failed": 0,
    }
    assert event_resource(outcome) == {
        "prefect.resource.id": "s3-housekeeping.target.events-bucket/tmp/",
        "prefect.resource.name": "s3://events-bucket/tmp/",
        "s3-housekeeping.bucket": "events-bucket",
        "s3-housekeeping.prefix": "tmp/",
        "s3-housekeeping.environment": "staging",
    }


def test_event_carries_who_rejected_and_why_when_a_person_refused_the_plan() -> None:
    rejected = report("refused")
    rejected.record_approval(Approval.answered(False, "Ana Ops", "not during the release"))
    refusal = SafetyRefusal("approval", 4, 0, report=rejected, reason="rejected")

    payload = json.loads(json.dumps(from_failure(refusal, {}, "run-3", None).summary()))

    assert payload["approval"]["decision"] == "rejected"
    assert (payload["approval"]["by"], payload["approval"]["reason"]) == (
        "Ana Ops",
        "not during the release",
    )
    assert from_report(report(), None, None).summary()["approval"] is None


def test_refusal_uses_the_report_it_carries_when_the_run_raised_it() -> None:
    refusal = SafetyRefusal("max_deletions", 4, 1, report=report("refused"))

    outcome = from_failure(refusal, {}, "run-2", None)

    assert (outcome.status, outcome.counts["matched"]) == ("refused", 4)
    assert event_name(outcome) == "s3-housekeeping.run.refused"


def test_failure_is_named_by_class_only_when_the_exception_is_not_ours() -> None:
    outcome = from_failure(ValueError("value-that-could-be-secret"), {"bucket": "b"}, None, None)

    assert (outcome.status, outcome.error, outcome.message) == (
        "failed",
        "ValueError",
        "unexpected error",
    )
    assert "value-that-could-be-secret" not in json.dumps(outcome.summary())
    assert event_name(outcome) == "s3-housekeeping.run.failed"


def test_failure_takes_its_target_from_the_environment_when_parameters_are_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("S3_BUCKET", "env-bucket")
    monkeypatch.setenv("ENVIRONMENT", " prod ")

    outcome = from_failure(
        ConfigError("invalid configuration", ["prefix: Field required"]), {}, None, None
    )

    assert (outcome.bucket, outcome.environment) == ("env-bucket", "prod")
    assert "prefix: Field required" in outcome.message
    assert outcome.worth_notifying
