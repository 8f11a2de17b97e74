"""The S3 lifecycle rule equivalent to a run: its filter, its actions by versions mode, its ID."""

from __future__ import annotations

import re

import pytest

from tasks.record.lifecycle import lifecycle_rule

#: What S3 accepts as a lifecycle rule ID: at most 255 characters.
RULE_ID_MAX_CHARS = 255


class TestActions:
    def test_expires_current_objects_only_when_versions_is_current(self) -> None:
        rule = lifecycle_rule("tmp/", 30, "current")

        assert rule["Expiration"] == {"Days": 30}
        assert "NoncurrentVersionExpiration" not in rule

    def test_expires_noncurrent_versions_only_when_versions_is_noncurrent(self) -> None:
        rule = lifecycle_rule("tmp/", 7, "noncurrent")

        assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7}
        assert "Expiration" not in rule

    def test_expires_both_when_versions_is_all(self) -> None:
        rule = lifecycle_rule("tmp/", 90, "all")

        assert rule["Expiration"] == {"Days": 90}
        assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90}

    @pytest.mark.parametrize("versions", ["current", "noncurrent", "all"])
    def test_filters_on_the_exact_prefix_and_is_enabled_when_built(self, versions: str) -> None:
        rule = lifecycle_rule("logs/2024 app/", 30, versions)

        assert rule["Filter"] == {"Prefix": "logs/2024 app/"}
        assert rule["Status"] == "Enabled"


class TestRuleId:
    @pytest.mark.parametrize(
        ("prefix", "rule_id"),
        [
            ("tmp/", "s3-housekeeping-tmp"),
            ("logs/2024 app/", "s3-housekeeping-logs-2024-app"),
            ("a/b_c.d/", "s3-housekeeping-a-b-c-d"),
            ("Temp-Keep/", "s3-housekeeping-Temp-Keep"),
            ("", "s3-housekeeping-all"),
            ("///", "s3-housekeeping-all"),
        ],
    )
    def test_names_the_rule_after_the_prefix_when_built(self, prefix: str, rule_id: str) -> None:
        assert lifecycle_rule(prefix, 30, "current")["ID"] == rule_id

    @pytest.mark.parametrize("prefix", ["é/ü/", "tmp/\x00x", "a" * 1024, "x/" * 300])
    def test_holds_only_letters_digits_and_hyphens_within_s3s_limit_when_prefix_is_unusual(
        self, prefix: str
    ) -> None:
        rule_id = lifecycle_rule(prefix, 30, "current")["ID"]

        assert re.fullmatch(r"s3-housekeeping-[A-Za-z0-9-]+", rule_id)
        assert len(rule_id) <= RULE_ID_MAX_CHARS

    def test_truncates_to_255_characters_when_the_prefix_is_long(self) -> None:
        assert len(lifecycle_rule("a" * 1024, 30, "current")["ID"]) == RULE_ID_MAX_CHARS
