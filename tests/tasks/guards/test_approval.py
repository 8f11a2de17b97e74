"""Approval in a local flow run: what the request shows, what the form takes, and how yes, no
and silence end and are recorded."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any
from uuid import UUID

import pytest
from prefect import flow

from tasks.cleanup import PlanSummary
from tasks.errors import SafetyRefusal
from tasks.guards.approval import ApprovalInput, approval_request, request_approval
from tasks.record.decision import Approval
from tasks.s3.manifest import PlannedObject, PlanTarget
from tests.support.approval import APPROVER, answer, resume_when_paused

TARGET = PlanTarget(
    bucket="approval-bucket",
    region="eu-west-1",
    prefix="tmp/",
    cutoff="2026-01-01T00:00:00Z",
    created_at="2026-01-31T00:00:00Z",
)


def plan(matched: int = 25) -> PlanSummary:
    rows = [
        PlannedObject(f"tmp/{n:03d}.log", f'"etag{n}"', 100, "2025-06-01T00:00:00Z", "STANDARD")
        for n in range(min(matched, 20))
    ]
    return PlanSummary(
        manifest="manifests/approval-bucket/plan.jsonl.gz",
        target=TARGET,
        scanned=40,
        matched=matched,
        matched_bytes=100 * matched,
        first_rows=rows,
        sha256="ab" * 32,
    )


#: Every decision the test flow recorded, in order.
RECORDED: list[Approval] = []


@flow(name="approval-test")
def approve_flow(timeout_s: int) -> Approval:
    return request_approval(plan(), timeout_s, record=RECORDED.append)


@pytest.fixture
def recorded() -> list[Approval]:
    RECORDED.clear()
    return RECORDED


def form_problems(run_input: dict[str, Any]) -> list[str]:
    """What the server says of an answer: the check its resume endpoint makes, against the
    form's schema (the run itself saves it: TestDecision goes through that)."""
    from prefect.utilities.schema_tools import validate

    form = ApprovalInput.with_initial_data(description="the request")
    return [error.message for error in validate(run_input, form.model_json_schema())]


def test_request_shows_counts_bytes_first_keys_and_manifest_when_published() -> None:
    text = approval_request(plan(25), 3600)

    assert "Delete **25** objects (**2.4 KiB**)" in text
    assert "`s3://approval-bucket/tmp/`" in text and "2026-01-01T00:00:00Z" in text
    assert "`tmp/000.log`" in text and "`tmp/009.log`" in text and "tmp/010.log" not in text
    assert "... and 15 more" in text
    assert "`manifests/approval-bucket/plan.jsonl.gz`, SHA-256 `" + "ab" * 32 + "`" in text
    assert "within 60 minutes nothing is deleted" in text
    assert "restored" not in text and "holding data" not in text  # current objects: none


@pytest.mark.parametrize(
    ("versions", "lost", "says"),
    [
        ("noncurrent", 0, "Every key keeps at least one version holding data."),
        ("all", 7, "**7** keys will have no version holding data left: they cannot be restored"),
    ],
)
def test_request_says_how_many_keys_a_versions_plan_leaves_unrecoverable(
    versions: str, lost: int, says: str
) -> None:
    versioned = replace(plan(25), target=replace(TARGET, versions=versions))

    text = approval_request(replace(versioned, unrecoverable_keys=lost), 3600)

    assert says in text


def test_request_escapes_keys_when_a_key_could_rewrite_the_text() -> None:
    hostile = replace(plan(1).first_rows[0], key="tmp/a`b\n**Approved by security** \u202e.gol")
    text = approval_request(replace(plan(1), first_rows=[hostile]), 3600)

    line = next(line for line in text.splitlines() if line.startswith("- `tmp/a"))
    assert line.startswith("- `tmp/a\\u0060b\\n**Approved by security** \\u202e.gol` (")
    assert "\n**Approved" not in text and "\u202e" not in text


def test_request_asks_for_a_name_either_way_when_published() -> None:
    assert "Type your name (required either way" in approval_request(plan(1), 3600)


class TestForm:
    @pytest.mark.parametrize(
        ("run_input", "problem"),
        [
            ({"approve": True, "reason": "ok"}, "'approver' is a required property"),
            ({"approve": False, "reason": "no"}, "'approver' is a required property"),
            (answer(True, approver=""), "should be non-empty"),
            (answer(True, approver="   "), "does not match"),
            (answer(True, approver="Ana\nApproved by security"), "does not match"),
            (answer(True, approver="Ana \u202eyevE"), "does not match"),  # bidi override
            (answer(True, approver="Ana\u200b"), "does not match"),  # zero-width space
            (answer(True, approver="A" * 101), "is too long"),
            (answer(False, "x" * 501), "is too long"),
        ],
    )
    def test_server_refuses_the_answer_when_the_name_is_missing_blank_hidden_or_long(
        self, run_input: dict[str, Any], problem: str
    ) -> None:
        assert any(problem in message for message in form_problems(run_input))

    @pytest.mark.parametrize("name", ["Ana Ops", "José O'Neil-Núñez", "李雷", "ops@example.org"])
    def test_server_takes_the_answer_when_the_name_is_printable(self, name: str) -> None:
        assert form_problems(answer(True, "checked", approver=name)) == []
        assert form_problems(answer(False, approver=name)) == []

    def test_the_form_keeps_its_descriptions_and_limits_when_shown_with_the_request(self) -> None:
        form = ApprovalInput.with_initial_data(description="the request")
        fields = form.model_json_schema()["properties"]

        assert "not" in fields["approver"]["description"]  # says the name is not checked
        assert fields["reason"]["maxLength"] == 500
        assert form.model_json_schema()["required"] == ["approver"]


@pytest.mark.usefixtures("prefect_harness")
class TestDecision:
    def test_name_and_reason_are_returned_and_recorded_when_approved(
        self, recorded: list[Approval]
    ) -> None:
        answering = resume_when_paused(answer(True, "  looks \n right ", approver=" Ana  Ops "))

        approval = approve_flow(60)
        answering.join(5)

        assert (approval.decision, approval.by, approval.reason) == (
            "approved",
            APPROVER,
            "looks right",
        )
        assert recorded == [approval]

    def test_refused_with_the_name_and_reason_and_recorded_when_rejected(
        self, recorded: list[Approval]
    ) -> None:
        answering = resume_when_paused(answer(False, "not today"))

        with pytest.raises(
            SafetyRefusal, match=r"rejected by Ana Ops \(not today\); nothing was deleted"
        ):
            approve_flow(60)
        answering.join(5)

        assert [(a.decision, a.by, a.reason) for a in recorded] == [
            ("rejected", APPROVER, "not today")
        ]

    def test_typed_text_is_recorded_on_one_line_with_hidden_characters_escaped_when_approved(
        self, recorded: list[Approval]
    ) -> None:
        reason = "ok\n\n**Approved by security**\u202e `x` <b>\u0007"
        answering = resume_when_paused(answer(True, reason, approver="Eve `**x**` <i>"))

        approve_flow(60)
        answering.join(5)

        (approval,) = recorded
        assert approval.reason == "ok **Approved by security**\\u202e `x` <b>\\u0007"
        assert approval.by == "Eve `**x**` <i>"

    def test_server_refuses_an_answer_without_a_name_and_the_run_waits_on_when_approved(
        self, recorded: list[Approval]
    ) -> None:
        refusals: list[str] = []

        def nameless_approval(run_id: UUID) -> None:
            from prefect.client.orchestration import get_client

            with get_client(sync_client=True) as client:
                for _ in range(40):  # the run is PAUSED a moment before its form is saved
                    outcome = client.resume_flow_run(run_id, run_input={"approve": True})
                    reason = getattr(outcome.details, "reason", "") or ""
                    if "schema not found" not in reason:
                        refusals.append(f"{outcome.status.value}: {reason}")
                        return
                    time.sleep(0.25)

        answering = resume_when_paused(answer(False, "named now"), before=nameless_approval)

        with pytest.raises(SafetyRefusal, match="rejected by Ana Ops"):
            approve_flow(60)
        answering.join(5)

        assert len(refusals) == 1 and refusals[0].startswith("REJECT: ")
        assert "'approver' is a required property" in refusals[0]
        assert [a.decision for a in recorded] == ["rejected"]

    def test_refused_when_an_answer_without_a_name_reaches_the_run_around_the_servers_check(
        self, recorded: list[Approval]
    ) -> None:
        # Someone writes the answer themselves and forces the run to Running: no resume, so
        # the server never checked it against the form.
        def write_answer_and_force_running(run_id: UUID) -> None:
            from prefect.client.orchestration import get_client
            from prefect.states import Running

            with get_client(sync_client=True) as client:
                state = client.read_flow_run(run_id).state
                keyset = state.state_details.run_input_keyset if state else None
                assert keyset is not None
                client.create_flow_run_input(run_id, keyset["response"], '{"approve": true}')
                client.set_flow_run_state(run_id, Running(), force=True)

        forcing = resume_when_paused(None, before=write_answer_and_force_running)

        with pytest.raises(SafetyRefusal, match="the answer did not fit the form"):
            approve_flow(60)
        forcing.join(5)

        assert [(a.decision, a.by) for a in recorded] == [("rejected", None)]

    def test_run_fails_with_its_own_message_and_records_it_when_no_one_answers_in_time(
        self, recorded: list[Approval]
    ) -> None:
        state = approve_flow(2, return_state=True)  # type: ignore[call-arg]

        assert state.is_failed()
        assert "refused by approval: no approval within 2 seconds" in (state.message or "")
        assert [(a.decision, a.by) for a in recorded] == [("timed_out", None)]


def test_fleet_request_tables_every_target_and_escapes_prefixes_when_published() -> None:
    from tasks.fleet.report import FleetReport, TargetOutcome
    from tasks.guards.approval import fleet_approval_request

    plans = [
        TargetOutcome(
            "a",
            "bucket-a",
            "tmp/",
            3,
            "dry_run",
            0,
            counts={"matched": 25, "matched_bytes": 2500},
            manifest="manifests/a.jsonl.gz",
        ),
        TargetOutcome("b", "bucket-b", "odd`\n**yes**/", 5, "failed", 4),
    ]

    text = fleet_approval_request(FleetReport("targets.yaml", dry_run=False), plans, 3600)

    assert "| `s3://bucket-a/tmp/` | 25 | 2.4 KiB | `manifests/a.jsonl.gz` |" in text
    assert "| `s3://bucket-b/odd\\u0060\\n**yes**/` | not planned: failed | | |" in text
    assert "\n**yes**" not in text
    assert "no answer within 60 minutes, deletes nothing" in text
