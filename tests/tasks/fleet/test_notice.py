"""The fleet's one event and one notice: totals, the worst target, each target's status."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tasks.fleet.notice import fleet_event_name, fleet_summary, notify_fleet
from tasks.fleet.report import FleetReport, TargetOutcome
from tasks.record.decision import Approval
from tests.support.sns import received


def fleet(*codes: int, dry_run: bool = False) -> FleetReport:
    statuses = {0: "dry_run" if dry_run else "completed", 6: "refused", 7: "partial_failure"}
    outcomes = [
        TargetOutcome(
            f"t{n}",
            f"bucket-{n}",
            "tmp/",
            n + 3,
            statuses.get(code, "failed"),
            code,
            counts={"deleted": 2},
        )
        for n, code in enumerate(codes)
    ]
    return FleetReport("targets.yaml", dry_run).close(outcomes)


@pytest.mark.parametrize(
    ("codes", "dry_run", "name"),
    [
        ((0, 0), True, "s3-housekeeping.fleet.completed"),
        ((0, 0), False, "s3-housekeeping.fleet.completed"),
        ((0, 6), False, "s3-housekeeping.fleet.refused"),
        ((7, 6), False, "s3-housekeeping.fleet.partial-failure"),
        ((4, 7), False, "s3-housekeeping.fleet.failed"),
    ],
)
def test_names_the_event_by_the_fleets_status_when_it_ends(
    codes: tuple[int, ...], dry_run: bool, name: str
) -> None:
    assert fleet_event_name(fleet(*codes, dry_run=dry_run)) == name


def test_summary_says_which_target_was_worst_and_stays_small_when_built() -> None:
    summary = fleet_summary(fleet(0, 4, 6))

    assert (summary["status"], summary["exit_code"], summary["worst_target"]) == ("failed", 4, "t1")
    assert summary["totals"]["deleted"] == 6
    assert [t["exit_code"] for t in summary["targets"]] == [0, 4, 6]
    assert len(json.dumps(summary)) < 2_000


def test_sends_one_notice_with_the_summary_when_a_topic_is_set(
    sns_queue: dict[str, Any],
) -> None:
    report = fleet(0, 7)

    assert notify_fleet(report, sns_queue["topic_arn"]) is True

    (envelope,) = received(sns_queue)
    assert envelope["Subject"] == "s3-housekeeping fleet partial_failure: targets.yaml"
    assert json.loads(envelope["Message"]) == json.loads(json.dumps(fleet_summary(report)))
    assert envelope["MessageAttributes"]["status"]["Value"] == "partial_failure"


def test_notice_and_event_say_who_approved_the_fleet_and_why_when_a_person_answered(
    sns_queue: dict[str, Any],
) -> None:
    report = fleet(0, 0)
    report.record_approval(Approval.answered(True, "Ana Ops", "fleet reviewed"))

    notify_fleet(report, sns_queue["topic_arn"])

    (envelope,) = received(sns_queue)
    approval = json.loads(envelope["Message"])["approval"]
    assert (approval["decision"], approval["by"], approval["reason"]) == (
        "approved",
        "Ana Ops",
        "fleet reviewed",
    )
    assert fleet_summary(fleet(0))["approval"] is None


def test_keeps_the_outcome_when_the_topic_cannot_be_reached(sns_queue: dict[str, Any]) -> None:
    missing = sns_queue["topic_arn"].rsplit(":", 1)[0] + ":no-such-topic"

    assert notify_fleet(fleet(0), missing) is False
    assert received(sns_queue) == []
