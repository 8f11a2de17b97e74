"""Blast-radius limits against a plan's totals: over a limit is refused whole, at it is allowed."""

from __future__ import annotations

import pytest

from tasks.errors import SafetyRefusal
from tasks.guards.limits import Guards, check_guards
from tasks.s3.manifest import PlanSummary, PlanTarget

TARGET = PlanTarget(
    "limits-bucket", "us-east-1", "temp/", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"
)
#: 3 of the 5 objects listed under temp/ (60%), 12 bytes.
PLAN = PlanSummary("plan.jsonl", TARGET, scanned=5, matched=3, matched_bytes=12)


class TestGuards:
    def test_refuses_when_plan_exceeds_max_deletions(self) -> None:
        with pytest.raises(SafetyRefusal) as refused:
            check_guards(PLAN, Guards(max_deletions=2))
        assert (refused.value.planned, refused.value.limit, refused.value.exit_code) == (3, 2, 6)
        check_guards(PLAN, Guards(max_deletions=3))  # at the limit is allowed
        check_guards(PLAN, Guards())

    def test_refuses_when_plan_exceeds_max_delete_bytes(self) -> None:
        with pytest.raises(SafetyRefusal, match="max_delete_bytes: the plan holds 12 bytes"):
            check_guards(PLAN, Guards(max_delete_bytes=11))
        check_guards(PLAN, Guards(max_delete_bytes=12))

    def test_refuses_when_plan_exceeds_max_delete_percent_of_listed(self) -> None:
        with pytest.raises(SafetyRefusal, match=r"60.00% of the 5 objects listed"):
            check_guards(PLAN, Guards(max_delete_percent=59.9))
        check_guards(PLAN, Guards(max_delete_percent=60))

    def test_any_is_true_only_when_a_limit_is_set(self) -> None:
        assert (Guards().any, Guards(max_delete_bytes=0).any) == (False, True)
