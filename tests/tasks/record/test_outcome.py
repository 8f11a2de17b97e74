"""A run's outcome: when it is worth a notice, its summary, and how a failure is described."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

import pytest

from tasks.errors import ConfigError, NetworkError
from tasks.record.outcome import (
    COUNTS,
    MESSAGE_MAX_CHARS,
    OutcomeStatus,
    RunOutcome,
    from_failure,
    from_report,
)
from tasks.record.report import RunReport


def outcome(status: OutcomeStatus, deleted: int = 0, **overrides: Any) -> RunOutcome:
    fields_: dict[str, Any] = {
        "status": status,
        "bucket": "outcome-bucket",
        "prefix": "temp/",
        "environment": "staging",
        "dry_run": status == "dry_run",
        "counts": {"deleted": deleted},
    }
    return RunOutcome(**(fields_ | overrides))


def report(**overrides: Any) -> RunReport:
    fields_: dict[str, Any] = {
        "status": "completed",
        "bucket": "outcome-bucket",
        "prefix": "temp/",
        "region": "us-east-1",
        "environment": "prod",
        "cutoff": "2026-01-01T00:00:00Z",
        "dry_run": False,
    }
    return RunReport(**(fields_ | overrides))


class TestWorthNotifying:
    @pytest.mark.parametrize(
        ("status", "deleted", "expected"),
        [
            ("dry_run", 0, False),
            ("completed", 0, False),
            ("completed", 3, True),
            ("refused", 0, True),
            ("partial_failure", 0, True),
            ("partial_failure", 5, True),
            ("failed", 0, True),
        ],
    )
    def test_notifies_deletions_refusals_and_failures_when_the_run_ends(
        self, status: OutcomeStatus, deleted: int, expected: bool
    ) -> None:
        assert outcome(status, deleted).worth_notifying is expected

    def test_counts_nothing_deleted_when_the_counts_are_empty(self) -> None:
        empty = outcome("completed", counts={})

        assert empty.deleted == 0
        assert not empty.worth_notifying


class TestSummary:
    def test_holds_every_field_and_its_source_when_summarised(self) -> None:
        summary = outcome("completed", 2, flow_run_id="run-1").summary()

        assert set(summary) == {"source"} | {f.name for f in fields(RunOutcome)}
        assert summary["source"] == "s3-housekeeping"
        assert (summary["status"], summary["counts"], summary["flow_run_id"]) == (
            "completed",
            {"deleted": 2},
            "run-1",
        )

    def test_stays_small_and_json_ready_when_every_field_is_at_its_largest(self) -> None:
        big = report(
            status="partial_failure",
            message="x" * 10_000,
            failed_by_code={f"Code{n}": n for n in range(10)},
            manifest="s3://plans/" + "k" * 1000,
        )

        text = json.dumps(from_report(big, "run-id", "https://ui/runs/run-id").summary())

        assert len(text.encode()) < 4096

    def test_counts_are_the_reports_numbers_only_when_built_from_a_report(self) -> None:
        source = report(scanned=9, matched=3, matched_bytes=30, deleted=2, skipped_changed=1)

        summary = from_report(source, None, None).summary()

        assert summary["counts"] == {name: getattr(source, name) for name in COUNTS}
        assert summary["counts"]["deleted"] == 2


class TestFromReport:
    def test_truncates_the_message_when_the_report_message_is_long(self) -> None:
        built = from_report(report(message="m" * (MESSAGE_MAX_CHARS * 3)), None, None)

        assert built.message == "m" * MESSAGE_MAX_CHARS

    def test_carries_the_run_id_and_url_when_given(self) -> None:
        built = from_report(report(), "run-7", "https://ui/runs/run-7")

        assert (built.flow_run_id, built.flow_run_url) == ("run-7", "https://ui/runs/run-7")
        assert built.error is None


class TestFromFailure:
    def test_reads_the_target_from_the_parameters_first_when_both_are_set(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("S3_BUCKET", "env-bucket")
        monkeypatch.setenv("CLEANUP_PREFIX", "env-prefix/")
        monkeypatch.setenv("ENVIRONMENT", "staging")
        parameters = {"bucket": "param-bucket", "prefix": "param/", "environment": "prod"}

        built = from_failure(NetworkError("unreachable"), parameters, None, None)

        assert (built.bucket, built.prefix, built.environment) == ("param-bucket", "param/", "prod")

    def test_reads_the_target_from_the_environment_when_parameters_are_unset(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("S3_BUCKET", "env-bucket")
        monkeypatch.setenv("CLEANUP_PREFIX", "env-prefix/")
        monkeypatch.setenv("ENVIRONMENT", "prod")
        parameters = {"bucket": None, "prefix": None}

        built = from_failure(NetworkError("unreachable"), parameters, None, None)

        assert (built.bucket, built.prefix, built.environment) == (
            "env-bucket",
            "env-prefix/",
            "prod",
        )

    def test_leaves_the_target_empty_in_dev_when_nothing_names_it(self) -> None:
        built = from_failure(NetworkError("unreachable"), {}, None, None)

        assert (built.bucket, built.prefix, built.environment) == ("", "", "dev")

    def test_is_a_failed_dry_run_when_dry_run_is_not_given(self) -> None:
        built = from_failure(NetworkError("unreachable"), {}, "run-3", None)

        assert (built.status, built.dry_run, built.flow_run_id) == ("failed", True, "run-3")
        assert built.counts == {}
        assert built.worth_notifying

    def test_is_not_a_dry_run_when_the_parameter_turns_it_off(self) -> None:
        built = from_failure(NetworkError("unreachable"), {"dry_run": False}, None, None)

        assert built.dry_run is False

    def test_is_not_a_dry_run_when_the_environment_turns_it_off(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("DRY_RUN", "false")

        built = from_failure(NetworkError("unreachable"), {"bucket": "b"}, None, None)

        assert built.dry_run is False

    def test_keeps_the_projects_message_and_names_its_class_when_the_error_is_ours(
        self,
    ) -> None:
        error = ConfigError("invalid configuration", ["bucket: Field required"])

        built = from_failure(error, {}, None, None)

        assert (built.error, built.message) == ("ConfigError", str(error))

    def test_truncates_the_message_when_the_projects_message_is_long(self) -> None:
        error = ConfigError("invalid configuration", [f"field{n}: a problem" for n in range(200)])
        assert len(str(error)) > MESSAGE_MAX_CHARS

        built = from_failure(error, {}, None, None)

        assert built.message == str(error)[:MESSAGE_MAX_CHARS]

    @pytest.mark.parametrize(
        "error",
        [KeyError("secret-looking-value"), RuntimeError("token=secret-looking-value")],
        ids=["key-error", "runtime-error"],
    )
    def test_names_the_class_only_when_the_exception_is_not_the_projects(
        self, error: Exception
    ) -> None:
        built = from_failure(error, {"bucket": "b"}, None, None)

        assert (built.error, built.message) == (type(error).__name__, "unexpected error")
        assert "secret-looking-value" not in json.dumps(built.summary())

    def test_ignores_a_report_attribute_when_it_is_not_a_run_report(self) -> None:
        error = NetworkError("unreachable")
        error.report = {"status": "completed"}  # type: ignore[attr-defined]

        built = from_failure(error, {}, None, None)

        assert built.status == "failed"


class TestKeptLink:
    def test_leaves_out_a_link_to_the_commands_temporary_api_when_one_is_in_use(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from tasks.record.outcome import SHORT_LIVED_API, kept_link

        url = "http://127.0.0.1:4200/runs/flow-run/1"
        assert kept_link(url) == url
        monkeypatch.setenv(SHORT_LIVED_API, "http://127.0.0.1:50123/api")
        assert kept_link(url) is None
