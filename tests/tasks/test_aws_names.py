"""AWS name checks: each returns every rule broken, nothing when valid, never the value itself."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tasks.aws_names import (
    SNS_TOPIC_ARN_PATTERN,
    aws_partitions,
    bucket_name_problems,
    partition_of_region,
    prefix_problems,
    region_problems,
    role_arn_problems,
    secret_name_problems,
    sns_topic_problems,
)

ACCOUNT = "123456789012"
#: A marker no rule message could contain by chance.
CANARY = "CANARY7Q"


def assert_value_not_repeated(value: str, problems: list[str]) -> None:
    assert problems, "the value was expected to be invalid"
    assert len(set(problems)) == len(problems), "a rule was reported twice"
    assert not any(value in problem for problem in problems)


class TestBucketName:
    @pytest.mark.parametrize("name", ["abc", "a" * 63, "my.bucket-01", "0bucket9", "10.0.1"])
    def test_returns_nothing_when_the_name_is_valid(self, name: str) -> None:
        assert bucket_name_problems(name) == []

    def test_returns_every_broken_rule_when_the_name_breaks_several(self) -> None:
        name = f"xn--{CANARY}..{'a' * 60}-s3alias"

        problems = bucket_name_problems(name)

        assert problems == [
            "must be 3 to 63 characters long",
            "may hold only lowercase letters, digits, dots and hyphens",
            "must not contain two adjacent dots",
            "must not start with 'xn--'",
            "must not end with '-s3alias'",
        ]
        assert_value_not_repeated(name, problems)

    def test_reports_the_ends_when_the_name_starts_or_ends_with_punctuation(self) -> None:
        assert bucket_name_problems(".abc") == ["must start and end with a letter or digit"]
        assert bucket_name_problems("abc-") == ["must start and end with a letter or digit"]

    def test_reports_length_and_characters_but_not_ends_when_the_name_is_empty(self) -> None:
        assert bucket_name_problems("") == [
            "must be 3 to 63 characters long",
            "may hold only lowercase letters, digits, dots and hyphens",
        ]

    @pytest.mark.parametrize("name", ["192.168.5.4", "999.0.0.1", "001.002.003.004"])
    def test_reports_an_ip_address_when_the_name_is_shaped_like_one(self, name: str) -> None:
        problems = bucket_name_problems(name)

        assert problems == ["must not be formatted as an IP address"]
        assert_value_not_repeated(name, problems)


class TestPrefix:
    @pytest.mark.parametrize("prefix", ["tmp/", "a", "a..b/", "x/.../y", "a" * 1024, "é" * 512])
    def test_returns_nothing_when_the_prefix_is_valid(self, prefix: str) -> None:
        assert prefix_problems(prefix) == []

    def test_reports_only_emptiness_when_the_prefix_is_empty(self) -> None:
        assert prefix_problems("") == ["must not be empty (an empty prefix is the whole bucket)"]

    def test_returns_every_broken_rule_when_the_prefix_breaks_several(self) -> None:
        prefix = f"/{CANARY}{'é' * 600}/../\x00"

        problems = prefix_problems(prefix)

        assert problems == [
            "must be at most 1024 bytes in UTF-8",
            "must not start with '/' (S3 keys have no leading slash)",
            "must not contain a '..' segment",
            "must not contain control characters",
        ]
        assert_value_not_repeated(prefix, problems)

    def test_counts_bytes_not_characters_when_the_prefix_is_multibyte(self) -> None:
        assert prefix_problems("é" * 513) == ["must be at most 1024 bytes in UTF-8"]

    @pytest.mark.parametrize("control", ["\x00", "\x1f", "\x7f", "\x85", "\x9f", "\n"])
    def test_reports_a_control_character_when_one_is_anywhere_in_the_prefix(
        self, control: str
    ) -> None:
        assert prefix_problems(f"tmp/{control}x") == ["must not contain control characters"]


class TestRegion:
    @pytest.mark.parametrize(
        ("region", "partition"),
        [
            ("us-east-1", "aws"),
            ("eu-west-1", "aws"),
            ("cn-north-1", "aws-cn"),
            ("us-gov-west-1", "aws-us-gov"),
            ("us-iso-east-1", "aws-iso"),
            ("eusc-de-east-1", "aws-eusc"),
        ],
    )
    def test_finds_the_partition_and_no_problem_when_the_region_is_real(
        self, region: str, partition: str
    ) -> None:
        assert partition_of_region(region) == partition
        assert region_problems(region) == []

    @pytest.mark.parametrize(
        "region",
        ["", "US-EAST-1", "us-east-1 ", "us_east_1", "moon-base-1", "us-east-\u0661", CANARY],
    )
    def test_finds_no_partition_and_one_problem_when_the_region_is_not_real(
        self, region: str
    ) -> None:
        problems = region_problems(region)

        assert partition_of_region(region) is None
        assert len(problems) == 1
        if region:
            assert_value_not_repeated(region, problems)

    def test_knows_every_partition_botocore_ships_when_loaded(self) -> None:
        assert {"aws", "aws-cn", "aws-us-gov"} <= set(aws_partitions())


class TestRoleArn:
    @pytest.mark.parametrize(
        "arn",
        [
            f"arn:aws:iam::{ACCOUNT}:role/cleanup",
            f"arn:aws:iam::{ACCOUNT}:role/ops/cleanup/s3-housekeeping",
            f"arn:aws:iam::{ACCOUNT}:role/{'r' * 64}",
            f"arn:aws-cn:iam::{ACCOUNT}:role/cleanup",
        ],
    )
    def test_returns_nothing_when_the_arn_is_valid_and_no_region_is_known(self, arn: str) -> None:
        assert role_arn_problems(arn) == []

    @pytest.mark.parametrize(
        "arn",
        [
            f"arn:aws:iam::{ACCOUNT}:role/{'r' * 65}",
            f"arn:aws:iam::12345678901:role/{CANARY}",
            f"arn:aws:iam::{ACCOUNT}:user/{CANARY}",
            f"arn:aws:sts::{ACCOUNT}:role/{CANARY}",
            f"arn:aws-moon:iam::{ACCOUNT}:role/{CANARY}",
            f"arn:aws:iam:us-east-1:{ACCOUNT}:role/{CANARY}",
            f"arn:aws:iam::{ACCOUNT}:role/{CANARY} x",
            f"arn:aws:iam::{ACCOUNT}:role/",
        ],
    )
    def test_reports_the_expected_shape_once_when_the_arn_is_malformed(self, arn: str) -> None:
        problems = role_arn_problems(arn, "us-east-1")

        assert problems == ["must be an IAM role ARN: arn:PARTITION:iam::ACCOUNT:role/NAME"]
        assert_value_not_repeated(arn, problems)

    @pytest.mark.parametrize(
        ("partition", "region"),
        [("aws-cn", "us-east-1"), ("aws", "cn-north-1"), ("aws", "us-gov-west-1")],
    )
    def test_reports_the_partition_when_it_differs_from_the_regions(
        self, partition: str, region: str
    ) -> None:
        arn = f"arn:{partition}:iam::{ACCOUNT}:role/{CANARY}"

        problems = role_arn_problems(arn, region)

        assert problems == ["its partition does not match the region's partition"]
        assert_value_not_repeated(arn, problems)

    @pytest.mark.parametrize("region", ["cn-north-1", "not-a-region", None])
    def test_skips_the_partition_check_when_the_region_agrees_or_is_unknown(
        self, region: str | None
    ) -> None:
        assert role_arn_problems(f"arn:aws-cn:iam::{ACCOUNT}:role/cleanup", region) == []


class TestSecretName:
    @pytest.mark.parametrize(
        "name",
        [
            "s3-housekeeping/prod",
            "run_secret+=.@-",
            "s" * 512,
            f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:run/x-AbCdEf",
            f"arn:aws-cn:secretsmanager:cn-north-1:{ACCOUNT}:secret:run",
        ],
    )
    def test_returns_nothing_when_the_name_or_arn_is_valid(self, name: str) -> None:
        assert secret_name_problems(name) == []

    @pytest.mark.parametrize(
        "name",
        [
            "",
            "s" * 513,
            f"{CANARY} with spaces",
            f"{CANARY}:colon",
            f"arn:aws:s3:::{CANARY}",
            f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{CANARY} x",
        ],
    )
    def test_returns_one_problem_without_the_value_when_the_name_is_invalid(
        self, name: str
    ) -> None:
        problems = secret_name_problems(name)

        assert len(problems) == 1
        if name:
            assert_value_not_repeated(name, problems)


class TestSnsTopic:
    @pytest.mark.parametrize(
        "arn",
        [
            f"arn:aws:sns:us-east-1:{ACCOUNT}:s3-housekeeping",
            f"arn:aws:sns:eu-west-1:{ACCOUNT}:alerts_1.fifo",
            f"arn:aws-cn:sns:cn-north-1:{ACCOUNT}:alerts",
            f"arn:aws:sns:us-east-1:{ACCOUNT}:{'t' * 256}",
            f"arn:aws:sns:us-east-1:{ACCOUNT}:{'t' * 251}.fifo",
        ],
    )
    def test_returns_nothing_and_fits_the_forms_pattern_when_the_arn_is_valid(
        self, arn: str
    ) -> None:
        assert sns_topic_problems(arn) == []
        assert re.fullmatch(SNS_TOPIC_ARN_PATTERN, arn)

    @pytest.mark.parametrize(
        "arn",
        [
            f"arn:aws:sns:us-east-1:{ACCOUNT}",
            f"arn:aws:sns:us-east-1:{ACCOUNT}:{CANARY}:extra",
            f"arn:aws:sqs:us-east-1:{ACCOUNT}:{CANARY}",
            f"nra:aws:sns:us-east-1:{ACCOUNT}:{CANARY}",
            CANARY,
        ],
    )
    def test_reports_only_the_shape_when_the_arn_has_the_wrong_parts(self, arn: str) -> None:
        problems = sns_topic_problems(arn)

        assert problems == ["must be an SNS topic ARN: arn:PARTITION:sns:REGION:ACCOUNT:TOPIC"]
        assert_value_not_repeated(arn, problems)

    def test_returns_every_broken_rule_when_region_account_and_name_are_all_wrong(self) -> None:
        arn = f"arn:aws:sns:cn-north-1:12345:{CANARY} name"

        problems = sns_topic_problems(arn)

        assert problems == [
            "names a region that is not in the ARN's AWS partition",
            "must hold a 12-digit account ID",
            "must end with a topic name of 1-256 letters, digits, '-' and '_'",
        ]
        assert_value_not_repeated(arn, problems)

    @pytest.mark.parametrize(
        "arn",
        [
            f"arn:aws-moon:sns:us-east-1:{ACCOUNT}:t",
            f"arn:aws:sns:moon-base-1:{ACCOUNT}:t",
            f"arn:aws-us-gov:sns:us-east-1:{ACCOUNT}:t",
        ],
    )
    def test_reports_the_region_when_it_is_not_in_the_arns_partition(self, arn: str) -> None:
        assert sns_topic_problems(arn) == ["names a region that is not in the ARN's AWS partition"]

    @pytest.mark.parametrize("name", ["", "t" * 257, "t" * 256 + ".fifo", "bad.name", "name.FIFO"])
    def test_reports_the_name_when_it_breaks_the_topic_name_rules(self, name: str) -> None:
        assert sns_topic_problems(f"arn:aws:sns:us-east-1:{ACCOUNT}:{name}") == [
            "must end with a topic name of 1-256 letters, digits, '-' and '_'"
        ]


@pytest.mark.parametrize(
    "check",
    [
        bucket_name_problems,
        prefix_problems,
        region_problems,
        role_arn_problems,
        secret_name_problems,
        sns_topic_problems,
    ],
)
def test_returns_a_fresh_list_of_strings_when_called(check: Callable[[str], list[str]]) -> None:
    first = check(f"/{CANARY}..")
    second = check(f"/{CANARY}..")

    assert first == second
    assert first is not second
    assert all(isinstance(problem, str) for problem in first)


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:sns:us-east-1:123456789012:housekeeping",
        "arn:aws:sns:eu-west-1:123456789012:housekeeping.fifo",
        "arn:aws-cn:sns:cn-north-1:123456789012:housekeeping",
    ],
)
def test_topic_is_accepted_when_it_is_an_sns_topic_arn(arn: str) -> None:
    assert sns_topic_problems(arn) == []


@pytest.mark.parametrize(
    "arn",
    [
        "housekeeping",
        "arn:aws:sqs:us-east-1:123456789012:housekeeping",
        "arn:aws:sns:us-east-1:1234:housekeeping",
        "arn:aws:sns:cn-north-1:123456789012:housekeeping",
        "arn:aws:sns:us-east-1:123456789012:bad name",
    ],
)
def test_topic_is_refused_when_it_is_not_an_sns_topic_arn(arn: str) -> None:
    assert sns_topic_problems(arn)
