"""A person's answer as it is recorded: one line, hidden characters escaped, safe in markdown."""

from __future__ import annotations

import json
import re

from tasks.record.decision import NAME_MAX_CHARS, Approval, code_span, typed_text


class TestTypedText:
    def test_becomes_one_line_when_typed_over_several(self) -> None:
        assert typed_text("  checked\n\nthe   plan\t", 500) == "checked the plan"

    def test_escapes_what_would_hide_or_reorder_text_when_it_is_typed(self) -> None:
        assert typed_text("Ana\u202e sdrawkcab\u200b\u0007", 500) == (
            "Ana\\u202e sdrawkcab\\u200b\\u0007"
        )

    def test_keeps_accents_and_scripts_when_they_are_printable(self) -> None:
        assert typed_text("José Núñez 李雷", NAME_MAX_CHARS) == "José Núñez 李雷"

    def test_is_cut_at_its_limit_when_longer(self) -> None:
        assert typed_text("a" * 150, NAME_MAX_CHARS) == "a" * NAME_MAX_CHARS


class TestAnswered:
    def test_records_the_name_and_reason_cleaned_when_approved(self) -> None:
        approval = Approval.answered(True, " Ana\n Ops ", "looks\nright")

        assert (approval.decision, approval.by, approval.reason) == (
            "approved",
            "Ana Ops",
            "looks right",
        )
        assert approval.approved and approval.at.endswith("Z")

    def test_records_no_name_when_only_spaces_were_typed(self) -> None:
        approval = Approval.answered(False, "   ", "")

        assert (approval.decision, approval.by) == ("rejected", None)
        assert not approval.approved

    def test_records_no_name_and_no_reason_when_no_one_answered(self) -> None:
        approval = Approval.timed_out()

        assert (approval.decision, approval.by, approval.reason) == ("timed_out", None, "")


class TestShown:
    def test_hostile_text_stays_inside_its_code_spans_when_rendered(self) -> None:
        # Inside a code span markdown and HTML are shown as typed; only a backtick ends it.
        approval = Approval.answered(False, "Eve` **Admin** <img src=x>", "no`\n# <script>x")

        line = approval.to_markdown()

        assert "\n" not in line
        assert re.findall(r"`[^`]*`", line) == [
            "`Eve\\u0060 **Admin** <img src=x>`",
            "`no\\u0060 # <script>x`",
        ]
        outside = re.sub(r"`[^`]*`", "", line)
        assert "<" not in outside and "Admin" not in outside and "#" not in outside

    def test_an_empty_reason_is_a_dash_when_rendered(self) -> None:
        assert code_span("") == "-"
        assert "reason: -." in Approval.answered(True, "Ana", "").to_markdown()

    def test_says_the_name_is_not_verified_when_rendered(self) -> None:
        assert "(name as typed, not verified)" in Approval.answered(True, "Ana", "").to_markdown()

    def test_says_no_one_answered_when_timed_out(self) -> None:
        assert "no answer" in Approval.timed_out().to_markdown()

    def test_is_plain_json_when_exported(self) -> None:
        from dataclasses import asdict

        exported = json.loads(json.dumps(asdict(Approval.answered(True, 'A "q" \\', "r"))))

        assert exported["by"] == 'A "q" \\'
        assert set(exported) == {"decision", "by", "reason", "at"}
