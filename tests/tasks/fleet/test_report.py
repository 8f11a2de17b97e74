"""The fleet report: totals, the worst target by the fleet's order of exit codes, its views."""

from __future__ import annotations

import json

import pytest

from tasks.errors import PermissionDeniedError, SafetyRefusal
from tasks.fleet.report import FleetReport, TargetOutcome, worst
from tasks.record.decision import Approval
from tasks.record.report import RunReport


def outcome(name: str, code: int, status: str = "completed", deleted: int = 0) -> TargetOutcome:
    counts = {"matched": deleted, "deleted": deleted}
    return TargetOutcome(name, "b-" + name, "tmp/", 3, status, code, "us-east-1", counts)


class TestWorst:
    @pytest.mark.parametrize(
        ("codes", "expected"),
        [
            ([0, 0], None),
            ([6, 0, 7], "t2"),  # a partial failure is worse than a refusal
            ([7, 4, 6], "t1"),  # an AWS error is worse than a partial failure
            ([5, 2, 99], "t2"),  # an unexpected error is the worst of all
            ([3, 1], "t0"),  # 1 to 5 rank alike: the first in the file's order
        ],
    )
    def test_follows_99_then_1_to_5_then_7_then_6_when_targets_differ(
        self, codes: list[int], expected: str | None
    ) -> None:
        outcomes = [outcome(f"t{n}", code) for n, code in enumerate(codes)]

        found = worst(outcomes)

        assert (found.name if found else None) == expected


class TestClose:
    def test_sums_the_counts_and_takes_the_worst_exit_when_closed(self) -> None:
        report = FleetReport("targets.yaml", dry_run=False)

        report.close([outcome("a", 0, deleted=3), outcome("b", 6, "refused"), outcome("c", 0)])

        assert (report.status, report.exit_code, report.worst_target) == ("refused", 6, "b")
        assert report.totals["deleted"] == 3 and report.totals["targets"] == 3
        assert report.message == "3 targets: 2 completed, 1 refused; worst: b (exit 6: refused)"

    def test_is_a_dry_run_when_every_child_planned_only(self) -> None:
        report = FleetReport("targets.yaml", dry_run=True).close([outcome("a", 0, "dry_run")])

        assert (report.status, report.exit_code, report.worst_target) == ("dry_run", 0, None)

    def test_exports_json_with_every_target_when_asked(self) -> None:
        report = FleetReport("targets.yaml", dry_run=False).close([outcome("a", 7, "x", 2)])

        exported = json.loads(json.dumps(report.to_dict()))

        assert exported["status"] == "partial_failure" and exported["exit_code"] == 7
        assert exported["targets"][0]["counts"] == {"matched": 2, "deleted": 2}
        assert "started" not in exported

    def test_tables_one_row_per_target_and_links_each_run_when_shown(self) -> None:
        linked = TargetOutcome(
            "a", "b", "tmp/", 3, "completed", 0, flow_run_id="r1", flow_run_url="http://ui/r1"
        )
        report = FleetReport("targets.yaml", dry_run=False).close([linked, outcome("c", 4)])

        rows = report.rows()
        markdown = report.to_markdown()

        assert [(row["target"], row["exit code"], row["run"]) for row in rows] == [
            ("a", 0, "http://ui/r1"),
            ("c", 4, ""),
        ]
        assert "| `s3://b/tmp/` (a) | completed | 0 |" in markdown
        assert "[r1](http://ui/r1)" in markdown

    def test_records_the_fleets_one_approval_when_a_person_answered(self) -> None:
        report = FleetReport("targets.yaml", dry_run=False)
        report.record_approval(Approval.answered(False, "Ana Ops", "not tonight"))
        report.close([outcome("a", 6, "refused")])

        exported = json.loads(json.dumps(report.to_dict()))

        assert exported["approval"]["by"] == "Ana Ops"
        assert exported["approval"]["decision"] == "rejected"
        assert "**Approval**: rejected by `Ana Ops`" in report.to_markdown()


class TestOutcomeOfAChild:
    def test_reads_the_report_an_error_carries_when_a_child_is_refused(self) -> None:
        report = RunReport(
            status="refused",
            bucket="b",
            prefix="tmp/",
            region="eu-west-1",
            environment="dev",
            cutoff="2026-01-01T00:00:00Z",
            dry_run=False,
        )
        report.matched = 12
        refusal = SafetyRefusal("max_deletions", 12, 10, report=report)

        found = TargetOutcome.of_error("t", 4, "b", "tmp/", refusal)

        assert (found.status, found.exit_code, found.counts["matched"]) == ("refused", 6, 12)
        assert found.region == "eu-west-1"

    def test_keeps_our_message_and_its_code_when_a_child_fails_before_its_report(self) -> None:
        found = TargetOutcome.of_error("t", 4, "b", "tmp/", PermissionDeniedError("denied"))

        assert (found.status, found.exit_code, found.message) == ("failed", 4, "denied")

    def test_says_only_the_error_type_when_a_child_fails_unexpectedly(self) -> None:
        found = TargetOutcome.of_error("t", 4, "b", "tmp/", KeyError("secret-looking-value"))

        assert (found.exit_code, found.message) == (99, "KeyError")
