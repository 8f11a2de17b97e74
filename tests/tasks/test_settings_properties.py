"""Property tests of the settings' boundary: a value that breaks one rule is refused with a
ConfigError naming its setting and never the value; values that keep every rule load unchanged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tasks.aws_names import bucket_name_problems, prefix_problems
from tasks.errors import ConfigError
from tasks.settings import load_settings
from tests.support.exceptions import exception_chain
from tests.support.setting_values import (
    BASE,
    LOWER_ALNUM,
    Broken,
    bucket_rules_broken,
    invalid_buckets,
    invalid_prefixes,
    invalid_settings,
    partition_of,
    past_as_of,
    prefix_rules_broken,
    regions,
    valid_accounts,
    valid_buckets,
    valid_manifest_locations,
    valid_numbers,
    valid_prefixes,
    valid_role_arns,
    valid_topic_arns,
)

#: Per setting and rule, configurations that break only it.
INVALID = invalid_settings()
#: A fixed reference time in the past, so the "not in the future" rule never interferes.
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def refusal(given_settings: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_settings(given_settings, now=NOW)
    return caught.value


def assert_value_hidden(error: ConfigError, value: Any) -> None:
    """Neither the refusal nor anything chained to it repeats the value."""
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__ is True
    texts = [text for exc in exception_chain(error) for text in (str(exc), repr(exc))]
    assert not any("input_value" in text for text in texts)
    # Long enough not to be found in a rule's own words by chance.
    if isinstance(value, str) and len(value.strip()) >= 8:
        assert not any(value in text for text in [*texts, *error.problems])


class TestOneBrokenRule:
    @pytest.mark.parametrize("case", sorted(INVALID))
    @settings(max_examples=12)
    @given(data=st.data())
    def test_refusal_names_only_that_setting_and_rule_when_one_rule_is_broken(
        self, case: str, data: st.DataObject
    ) -> None:
        self.assert_refused(data.draw(INVALID[case], label="broken"))

    @pytest.mark.parametrize(
        "broken",
        [
            Broken("bucket", {**BASE, "bucket": "my-.bucket"}, "dot next to a hyphen"),
            Broken("bucket", {**BASE, "bucket": "192.168.5.4"}, "IP address"),
            Broken("bucket", {**BASE, "bucket": "Example-Bucket"}, "lowercase"),
            Broken("prefix", {**BASE, "prefix": "logs/\u202etxt.exe"}, "format characters"),
            Broken("prefix", {**BASE, "prefix": "é" * 513}, "1024 bytes"),
            Broken("prefix", {**BASE, "prefix": "logs/\udcff"}, "not UTF-8"),
            Broken("manifest_location", {**BASE, "manifest_location": "S3://plans/x"}, "lowercase"),
            Broken("plan", {**BASE, "plan": "s3://plans"}, "plan's key"),
            Broken(
                "manifest_location",
                {"bucket": "b-1", "prefix": "b-1/2", "manifest_location": "s3://b-1"},
                "under the prefix this run cleans",
            ),
            Broken("approval_timeout_minutes", {**BASE, "approval_timeout_minutes": True}),
        ],
        ids=lambda broken: f"{broken.setting}-{broken.says}",
    )
    def test_refusal_names_only_that_setting_and_rule_when_a_known_case_breaks_it(
        self, broken: Broken
    ) -> None:
        self.assert_refused(broken)

    @staticmethod
    def assert_refused(broken: Broken) -> None:
        error = refusal(broken.given)

        assert error.exit_code == 1
        (problem,) = error.problems
        assert problem.startswith(f"{broken.setting}: "), problem
        assert broken.says in problem
        assert "; " not in problem, "the checks found one broken rule, not several"
        assert_value_hidden(error, broken.value)


class TestEveryRuleKept:
    @settings(max_examples=100)
    @given(
        bucket=valid_buckets(),
        prefix=valid_prefixes(),
        region=regions(),
        data=st.data(),
        owner=st.none() | valid_accounts(),
        topic=st.none() | valid_topic_arns(),
        numbers=valid_numbers(),
        as_of=past_as_of(),
    )
    @example(
        bucket="a" * 63,
        prefix="a" * 1024,
        region="us-east-1",
        data=None,
        owner="000000000000",
        topic="arn:aws:sns:us-east-1:123456789012:" + "t" * 256,
        numbers={"older_than_days": 36500, "max_delete_percent": 100.0},
        as_of=NOW,
    )
    @example(
        bucket="abc",
        prefix="é" * 512,
        region="cn-north-1",
        data=None,
        owner=None,
        topic="arn:aws-cn:sns:cn-north-1:123456789012:" + "t" * 251 + ".fifo",
        numbers={"older_than_days": 1, "max_delete_percent": 0.0, "approval_timeout_minutes": 1},
        as_of=NOW,
    )
    def test_every_value_loads_unchanged_when_it_keeps_every_rule(
        self,
        bucket: str,
        prefix: str,
        region: str,
        data: st.DataObject | None,
        owner: str | None,
        topic: str | None,
        numbers: dict[str, Any],
        as_of: datetime,
    ) -> None:
        role = data.draw(st.none() | valid_role_arns(partition_of(region))) if data else None
        given_settings = {
            "bucket": bucket,
            "prefix": prefix,
            "region": region,
            "role_arn": role,
            "expected_bucket_owner": owner,
            "notify_topic_arn": topic,
            "as_of": as_of,
            **numbers,
        }

        loaded = load_settings(given_settings, now=NOW)

        for name, value in given_settings.items():
            if name == "as_of":
                assert loaded.as_of == (as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC))
            elif value is not None:
                assert getattr(loaded, name) == value, name

    @settings(max_examples=100)
    @given(valid_manifest_locations())
    def test_manifest_location_loads_when_plans_stay_out_of_the_cleaned_prefix(
        self, given_settings: dict[str, Any]
    ) -> None:
        loaded = load_settings(given_settings, now=NOW)

        assert loaded.manifest_location == given_settings["manifest_location"]


class TestRulesAgreeWithAws:
    """On any text, the checks refuse exactly what AWS's rules (tests/support) refuse."""

    @settings(max_examples=200)
    @given(
        st.text(LOWER_ALNUM + ".-A_")
        | st.text()
        | valid_buckets()
        | st.one_of(list(invalid_buckets().values()))
    )
    def test_bucket_check_refuses_exactly_the_names_aws_refuses_when_given_any_text(
        self, name: str
    ) -> None:
        problems = bucket_name_problems(name)

        assert bool(problems) == bool(bucket_rules_broken(name)), (problems, name)

    @settings(max_examples=200)
    @given(
        st.text(max_size=40)
        | st.text(st.characters(categories=("Cs", "Cc", "Cf", "Ll")) | st.sampled_from("/."))
        | valid_prefixes()
        | st.one_of(list(invalid_prefixes().values()))
    )
    def test_prefix_check_refuses_exactly_the_prefixes_the_rules_refuse_when_given_any_text(
        self, prefix: str
    ) -> None:
        problems = prefix_problems(prefix)

        assert bool(problems) == bool(prefix_rules_broken(prefix)), (problems, prefix)
