"""Retention rules: why each candidate is kept, their checks, the plan header's round trip, and
what of them an S3 lifecycle rule can hold."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
from botocore.validate import validate_parameters
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.s3.patterns import matches
from tasks.s3.rules import FILTER_REASONS, STORAGE_CLASSES, Rules
from tasks.s3.sizes import MAX_SIZE

PREFIX = "logs/"


class TestKeptBy:
    def test_keeps_nothing_when_no_rule_is_set(self) -> None:
        assert Rules().kept_by("any/key", 0, "GLACIER") is None

    def test_keeps_by_exclude_when_a_key_matches_both_include_and_exclude(self) -> None:
        rules = Rules(include=("**/*.log",), exclude=("keep/**",))
        assert rules.kept_by("keep/a.log", 1, "STANDARD") == "exclude"
        assert rules.kept_by("drop/a.log", 1, "STANDARD") is None

    def test_keeps_by_include_when_no_include_pattern_matches(self) -> None:
        rules = Rules(include=("*.tmp", "*.log"))
        assert rules.kept_by("a.csv", 1, "STANDARD") == "include"
        assert rules.kept_by("a.log", 1, "STANDARD") is None


class TestSelectedBy:
    def test_names_the_first_include_pattern_that_matches_when_several_do(self) -> None:
        rules = Rules(include=("*.tmp", "**/*.log", "a.*"))
        assert rules.decision("a.log", 1, "STANDARD") == (None, "**/*.log")
        assert rules.selected_by("**/*.log") == "include:**/*.log"
        assert rules.decision("b.csv", 1, "STANDARD") == ("include", None)

    def test_names_no_pattern_when_a_later_rule_keeps_the_object(self) -> None:
        assert Rules(include=("*",), min_size=5).decision("a", 1, "STANDARD") == ("size", None)

    @pytest.mark.parametrize(
        ("rules", "expected"),
        [
            (Rules(keep_newest=2), "age"),
            (Rules(min_size=1), "age"),
            (Rules(time_from_key=r"(?P<year>\d{4})"), "time_from_key"),
        ],
    )
    def test_names_the_age_when_no_include_pattern_is_set(
        self, rules: Rules, expected: str
    ) -> None:
        assert rules.selected_by(None) == expected

    @pytest.mark.parametrize(
        ("size", "expected"), [(9, "size"), (10, None), (20, None), (21, "size")]
    )
    def test_keeps_by_size_when_the_size_is_outside_the_inclusive_bounds(
        self, size: int, expected: str | None
    ) -> None:
        assert Rules(min_size=10, max_size=20).kept_by("a", size, "STANDARD") == expected

    def test_keeps_by_storage_class_when_the_class_is_not_listed(self) -> None:
        rules = Rules(storage_classes=("STANDARD_IA", "GLACIER"))
        assert rules.kept_by("a", 1, "STANDARD") == "storage_class"
        assert rules.kept_by("a", 1, "GLACIER") is None

    def test_keeps_a_delete_marker_when_storage_classes_are_given(self) -> None:
        assert Rules(storage_classes=("STANDARD",)).kept_by("a", 0, "") == "storage_class"

    def test_gives_the_first_reason_when_every_rule_would_keep(self) -> None:
        rules = Rules(include=("x",), exclude=("a",), min_size=5, storage_classes=("GLACIER",))
        assert rules.kept_by("a", 1, "STANDARD") == "exclude"
        assert rules.kept_by("b", 1, "STANDARD") == "include"
        assert Rules(min_size=5, storage_classes=("GLACIER",)).kept_by("b", 1, "X") == "size"

    def test_raises_when_a_pattern_is_broken(self) -> None:
        with pytest.raises(ValueError, match="unclosed"):
            Rules(exclude=("[a",)).kept_by("a", 1, "STANDARD")


PATTERNS = ["*.log", "**/*.log", "a/**", "*", "a/*", "b?", "[ab]*", "**/tmp/**"]
KEYS = ["a.log", "a/b.log", "a/", "b1", "tmp/x", "x/tmp/y", "b", "a/b/c.log", ""]
CLASSES = ["STANDARD", "GLACIER", "STANDARD_IA", ""]
sizes = st.none() | st.integers(min_value=0, max_value=100)
rules_strategy = st.builds(
    Rules,
    include=st.lists(st.sampled_from(PATTERNS), max_size=3).map(tuple),
    exclude=st.lists(st.sampled_from(PATTERNS), max_size=3).map(tuple),
    min_size=sizes,
    max_size=sizes,
    storage_classes=st.lists(st.sampled_from(CLASSES[:-1]), max_size=2).map(tuple),
)


def reference_kept_by(rules: Rules, key: str, size: int, storage_class: str) -> str | None:
    """Every rule that would keep the candidate, then the first of them in FILTER_REASONS order."""
    keeping = {
        "exclude": any(matches(pattern, key) for pattern in rules.exclude),
        "include": bool(rules.include) and not any(matches(p, key) for p in rules.include),
        "size": not (
            (rules.min_size or 0)
            <= size
            <= (MAX_SIZE if rules.max_size is None else rules.max_size)
        ),
        "storage_class": bool(rules.storage_classes) and storage_class not in rules.storage_classes,
    }
    return next((reason for reason in FILTER_REASONS if keeping[reason]), None)


class TestKeptByProperties:
    @settings(max_examples=500)
    @given(
        rules=rules_strategy,
        key=st.sampled_from(KEYS),
        size=st.integers(min_value=0, max_value=100),
        storage_class=st.sampled_from(CLASSES),
    )
    def test_agrees_with_the_reference_when_given_any_rules_and_candidate(
        self, rules: Rules, key: str, size: int, storage_class: str
    ) -> None:
        assert rules.kept_by(key, size, storage_class) == reference_kept_by(
            rules, key, size, storage_class
        )

    @settings(max_examples=300)
    @given(
        rules=rules_strategy,
        extra=st.sampled_from(PATTERNS),
        key=st.sampled_from(KEYS),
        size=st.integers(min_value=0, max_value=100),
    )
    def test_keeps_what_it_kept_when_an_exclude_pattern_is_added(
        self, rules: Rules, extra: str, key: str, size: int
    ) -> None:
        more = Rules(**{**vars(rules), "exclude": (*rules.exclude, extra)})
        if rules.kept_by(key, size, "STANDARD") is not None:
            assert more.kept_by(key, size, "STANDARD") is not None


class TestProblems:
    def test_finds_none_when_every_rule_is_usable(self) -> None:
        rules = Rules(("**/*.log",), ("keep/**",), 0, MAX_SIZE, ("STANDARD", "GLACIER_IR"))
        assert rules.problems(PREFIX) == []

    @pytest.mark.parametrize(
        ("rules", "problem"),
        [
            (Rules(include=("a", "[b")), "include[1]: has an unclosed '['"),
            (Rules(exclude=("",)), "exclude[0]: must not be empty"),
            (Rules(exclude=("/x",)), "exclude[0]: starts with '/'"),
            (Rules(min_size=-1), "min_size: must be from 0 to 5 PiB"),
            (Rules(max_size=MAX_SIZE + 1), "max_size: must be from 0 to 5 PiB"),
            (Rules(min_size=2, max_size=1), "min_size: must not be above max_size"),
            (Rules(storage_classes=("STANDARD", "standard")), "storage_classes[1]: is not an S3"),
        ],
    )
    def test_names_the_setting_when_one_rule_is_broken(self, rules: Rules, problem: str) -> None:
        (found,) = rules.problems(PREFIX)
        assert found.startswith(problem)

    def test_says_every_problem_when_several_rules_are_broken(self) -> None:
        rules = Rules(include=("[",), exclude=("a**",), min_size=3, max_size=2)
        assert [problem.split(":")[0] for problem in rules.problems(PREFIX)] == [
            "include[0]",
            "exclude[0]",
            "min_size",
        ]

    def test_knows_the_storage_classes_of_botocores_s3_model_when_compared(self) -> None:
        model = botocore.session.get_session().get_service_model("s3")
        assert set(STORAGE_CLASSES) == set(model.shape_for("ObjectStorageClass").enum)


class TestHeader:
    def test_is_empty_when_no_rule_is_set(self) -> None:
        assert Rules().as_header() == {}
        assert not Rules().any

    def test_holds_only_the_rules_set_when_some_are(self) -> None:
        rules = Rules(exclude=("a/**",), min_size=0)
        assert rules.as_header() == {"exclude": ["a/**"], "min_size": 0}
        assert rules.any

    @settings(max_examples=200)
    @given(rules=rules_strategy)
    def test_reads_back_as_the_same_rules_when_it_went_through_json(self, rules: Rules) -> None:
        header = json.loads(json.dumps(rules.as_header()))
        assert Rules.from_header(header) == rules

    @pytest.mark.parametrize(
        ("header", "says"),
        [
            (
                {"include": ["a"], "tags": [], "owner": 1},
                "unknown rules in the plan's header: owner, tags",
            ),
            ({"include": "a/**"}, "include: must be a list of texts"),
            ({"storage_classes": [1]}, "storage_classes: must be a list of texts"),
            ({"min_size": True}, "min_size: must be a whole number of bytes"),
            ({"max_size": 1.5}, "max_size: must be a whole number of bytes"),
            ({"max_size": "10MiB"}, "max_size: must be a whole number of bytes"),
        ],
    )
    def test_refuses_when_the_header_is_not_one_as_header_writes(
        self, header: dict[str, Any], says: str
    ) -> None:
        with pytest.raises(ValueError, match=says):
            Rules.from_header(header)


def lifecycle_input_errors(rule_filter: dict[str, Any]) -> None:
    """Raises unless botocore's S3 model accepts the filter in a lifecycle configuration."""
    operation = (
        botocore.session.get_session()
        .get_service_model("s3")
        .operation_model("PutBucketLifecycleConfiguration")
    )
    rule = {"ID": "cleanup", "Status": "Enabled", "Filter": rule_filter, "Expiration": {"Days": 30}}
    validate_parameters(
        {"Bucket": "b", "LifecycleConfiguration": {"Rules": [rule]}}, operation.input_shape
    )


class TestLifecycle:
    @pytest.mark.parametrize(
        ("rules", "blocker"),
        [
            (Rules(include=("*.log",)), "include:"),
            (Rules(exclude=("*.log",), storage_classes=("GLACIER",)), "exclude:"),
            (Rules(storage_classes=("GLACIER",), min_size=1), "storage_classes:"),
        ],
    )
    def test_names_the_rule_when_a_lifecycle_filter_cannot_hold_it(
        self, rules: Rules, blocker: str
    ) -> None:
        assert str(rules.lifecycle_blocker()).startswith(blocker)
        with pytest.raises(ValueError, match=blocker):
            rules.lifecycle_filter(PREFIX)

    @pytest.mark.parametrize(
        ("rules", "expected"),
        [
            (Rules(), {"Prefix": PREFIX}),
            (Rules(min_size=0), {"Prefix": PREFIX}),
            (
                Rules(min_size=10),
                {"And": {"Prefix": PREFIX, "ObjectSizeGreaterThan": 9}},
            ),
            (
                Rules(max_size=20),
                {"And": {"Prefix": PREFIX, "ObjectSizeLessThan": 21}},
            ),
            (
                Rules(min_size=10, max_size=20),
                {
                    "And": {
                        "Prefix": PREFIX,
                        "ObjectSizeGreaterThan": 9,
                        "ObjectSizeLessThan": 21,
                    }
                },
            ),
        ],
    )
    def test_maps_inclusive_bounds_to_strict_ones_when_sizes_are_set(
        self, rules: Rules, expected: dict[str, Any]
    ) -> None:
        assert rules.lifecycle_blocker() is None
        assert rules.lifecycle_filter(PREFIX) == expected
        lifecycle_input_errors(expected)

    def test_gives_a_lone_predicate_when_there_is_no_prefix(self) -> None:
        assert Rules(max_size=0).lifecycle_filter("") == {"ObjectSizeLessThan": 1}

    @settings(max_examples=200)
    @given(
        min_size=sizes,
        max_size=sizes,
        size=st.integers(min_value=0, max_value=101),
    )
    def test_selects_the_sizes_kept_by_selects_when_read_as_s3_reads_it(
        self, min_size: int | None, max_size: int | None, size: int
    ) -> None:
        rules = Rules(min_size=min_size, max_size=max_size)
        predicates = rules.lifecycle_filter(PREFIX)
        predicates = predicates.get("And", predicates)
        s3_applies = size > predicates.get("ObjectSizeGreaterThan", -1) and size < predicates.get(
            "ObjectSizeLessThan", MAX_SIZE + 1
        )
        assert s3_applies is (rules.kept_by("k", size, "STANDARD") is None)
