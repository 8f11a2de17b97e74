"""Tests for tasks.settings.load_settings: every validation rule, precedence, and error hygiene."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from unittest.mock import patch

import pytest

from tasks.errors import ConfigError
from tasks.s3.deletion import DEFAULT_CONCURRENCY
from tasks.settings import (
    RunSettings,
    all_environment_variables,
    environment_variables,
    load_settings,
    parameters,
)
from tests.support.exceptions import exception_chain

#: A fixed reference time in the past, so the "not in the future" rule never interferes.
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
#: The two required settings, valid; every vector overrides or adds to these.
REQUIRED = {"bucket": "example-bucket", "prefix": "logs/"}
ACCOUNT = "123456789012"
#: The same twelve digits, written with FULLWIDTH DIGIT characters (U+FF10..U+FF19).
FULLWIDTH_ACCOUNT = "".join(chr(0xFF10 + int(digit)) for digit in ACCOUNT)


def load_config(
    given: Mapping[str, Any], environ: Mapping[str, str], now: datetime | None = None
) -> RunSettings:
    """load_settings where these are the only settings' environment variables set."""
    with patch.dict(os.environ):
        for name in all_environment_variables():
            os.environ.pop(name, None)
        os.environ.update(environ)
        return load_settings(given, now=now)


def load(
    given: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> RunSettings:
    """load_settings with a fixed `now` and the required parameters the environment does not
    set."""
    environ = environ or {}
    required = {
        name: value
        for name, value in REQUIRED.items()
        if not any(env_var in environ for env_var in environment_variables(name))
    }
    return load_config({**required, **(given or {})}, environ, now=NOW)


def refusal(
    parameters: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> ConfigError:
    """The ConfigError that loading this configuration raises."""
    with pytest.raises(ConfigError) as caught:
        load(parameters, environ)
    return caught.value


def problems_about(error: ConfigError, field: str) -> list[str]:
    """The problems of `error` that concern `field` ("field: ..." or "field (from X): ...")."""
    return [p for p in error.problems if p.split(":", 1)[0].split(" (from ", 1)[0] == field]


# --- every rule, table-driven -------------------------------------------------------------------

#: (parameters, environment, field, expected value once loaded)
VALID = [
    # bucket names
    pytest.param({"bucket": "abc"}, {}, "bucket", "abc", id="bucket-3-chars"),
    pytest.param({"bucket": "a" * 63}, {}, "bucket", "a" * 63, id="bucket-63-chars"),
    pytest.param({"bucket": "my.bucket-01"}, {}, "bucket", "my.bucket-01", id="bucket-dots-hyphen"),
    pytest.param({"bucket": "0bucket9"}, {}, "bucket", "0bucket9", id="bucket-digit-ends"),
    pytest.param({"bucket": "10.0.1"}, {}, "bucket", "10.0.1", id="bucket-3-numbers-not-ip"),
    pytest.param({"bucket": "a-xn--b"}, {}, "bucket", "a-xn--b", id="bucket-xn-not-at-start"),
    pytest.param({"bucket": "s3alias-b"}, {}, "bucket", "s3alias-b", id="bucket-s3alias-not-end"),
    # a saved plan from an inventory is applied by a run that names the same inventory
    pytest.param(
        {"plan": "plans/p.jsonl.gz", "inventory": "s3://inventories/m/manifest.json"},
        {},
        "inventory",
        "s3://inventories/m/manifest.json",
        id="inventory-with-its-plan",
    ),
    pytest.param(
        {"plan": "plans/p.jsonl.gz", "plan_sha256": "AB" * 32},
        {},
        "plan_sha256",
        "ab" * 32,
        id="digest-any-case",
    ),
    # prefix
    pytest.param({"prefix": "a"}, {}, "prefix", "a", id="prefix-one-char"),
    pytest.param({"prefix": "a..b/"}, {}, "prefix", "a..b/", id="prefix-dots-inside-segment"),
    pytest.param({"prefix": "x/.../y"}, {}, "prefix", "x/.../y", id="prefix-three-dot-segment"),
    pytest.param({"prefix": "a" * 1024}, {}, "prefix", "a" * 1024, id="prefix-1024-ascii-bytes"),
    pytest.param(
        {"prefix": "€" * 341 + "a"}, {}, "prefix", "€" * 341 + "a", id="prefix-1024-bytes-multibyte"
    ),
    pytest.param({"prefix": "é" * 512}, {}, "prefix", "é" * 512, id="prefix-1024-bytes-2-byte"),
    # older_than_days
    pytest.param({"older_than_days": 1}, {}, "older_than_days", 1, id="days-1"),
    pytest.param({"older_than_days": 36500}, {}, "older_than_days", 36500, id="days-36500"),
    pytest.param({}, {"CLEANUP_OLDER_THAN_DAYS": "7"}, "older_than_days", 7, id="days-env-7"),
    # region, one per partition
    pytest.param({"region": "us-east-1"}, {}, "region", "us-east-1", id="region-aws"),
    pytest.param({"region": "cn-north-1"}, {}, "region", "cn-north-1", id="region-aws-cn"),
    pytest.param({"region": "us-gov-west-1"}, {}, "region", "us-gov-west-1", id="region-gov"),
    pytest.param({"region": "us-iso-east-1"}, {}, "region", "us-iso-east-1", id="region-iso"),
    pytest.param({"region": "us-isob-east-1"}, {}, "region", "us-isob-east-1", id="region-iso-b"),
    pytest.param({"region": "eu-isoe-west-1"}, {}, "region", "eu-isoe-west-1", id="region-iso-e"),
    pytest.param({"region": "eusc-de-east-1"}, {}, "region", "eusc-de-east-1", id="region-eusc"),
    # role ARN
    pytest.param(
        {"role_arn": f"arn:aws:iam::{ACCOUNT}:role/s3-housekeeping"},
        {},
        "role_arn",
        f"arn:aws:iam::{ACCOUNT}:role/s3-housekeeping",
        id="role-plain",
    ),
    pytest.param(
        {"role_arn": f"arn:aws:iam::{ACCOUNT}:role/ops/cleanup/s3-housekeeping"},
        {},
        "role_arn",
        f"arn:aws:iam::{ACCOUNT}:role/ops/cleanup/s3-housekeeping",
        id="role-with-path",
    ),
    pytest.param(
        {"role_arn": f"arn:aws-cn:iam::{ACCOUNT}:role/cleanup", "region": "cn-north-1"},
        {},
        "role_arn",
        f"arn:aws-cn:iam::{ACCOUNT}:role/cleanup",
        id="role-cn-partition-cn-region",
    ),
    pytest.param(
        {"role_arn": f"arn:aws-us-gov:iam::{ACCOUNT}:role/cleanup", "region": "us-gov-west-1"},
        {},
        "role_arn",
        f"arn:aws-us-gov:iam::{ACCOUNT}:role/cleanup",
        id="role-gov-partition-gov-region",
    ),
    # expected bucket owner
    pytest.param(
        {"expected_bucket_owner": ACCOUNT}, {}, "expected_bucket_owner", ACCOUNT, id="owner-12"
    ),
    # environment
    pytest.param({"environment": "dev"}, {}, "environment", "dev", id="environment-dev"),
    pytest.param({"environment": "staging"}, {}, "environment", "staging", id="env-staging"),
    pytest.param({}, {"ENVIRONMENT": "prod"}, "environment", "prod", id="environment-env-prod"),
    # secret name
    pytest.param(
        {"secret_name": "s3-housekeeping/prod"},
        {},
        "secret_name",
        "s3-housekeeping/prod",
        id="secret-name-with-slash",
    ),
    pytest.param(
        {"secret_name": "run_secret+=.@-"},
        {},
        "secret_name",
        "run_secret+=.@-",
        id="secret-name-all-punctuation",
    ),
    pytest.param(
        {"secret_name": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:run/x-AbCdEf"},
        {},
        "secret_name",
        f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:run/x-AbCdEf",
        id="secret-arn",
    ),
    pytest.param({"secret_name": "s" * 512}, {}, "secret_name", "s" * 512, id="secret-name-512"),
    # credentials block
    pytest.param(
        {"aws_credentials_block": "aws-prod"}, {}, "aws_credentials_block", "aws-prod", id="block"
    ),
    pytest.param(
        {"aws_credentials_block": "0-dev"}, {}, "aws_credentials_block", "0-dev", id="block-digit"
    ),
    # max_deletions
    pytest.param({"max_deletions": 0}, {}, "max_deletions", 0, id="max-deletions-0"),
    pytest.param({}, {"MAX_DELETIONS": "500"}, "max_deletions", 500, id="max-deletions-env"),
    # booleans
    pytest.param({"dry_run": False}, {}, "dry_run", False, id="dry-run-false"),
    pytest.param({"create_bucket": False}, {}, "create_bucket", False, id="create-bucket-false"),
]

#: (parameters, environment, field, a fragment of the expected message)
INVALID = [
    # bucket names
    pytest.param({"bucket": "ab"}, {}, "bucket", "3 to 63", id="bucket-2-chars"),
    pytest.param({"bucket": "a" * 64}, {}, "bucket", "3 to 63", id="bucket-64-chars"),
    pytest.param({"bucket": ""}, {}, "bucket", "3 to 63", id="bucket-empty-parameter"),
    pytest.param({"bucket": "My-Bucket"}, {}, "bucket", "lowercase", id="bucket-uppercase"),
    pytest.param({"bucket": "my_bucket"}, {}, "bucket", "lowercase", id="bucket-underscore"),
    pytest.param({"bucket": "my bucket"}, {}, "bucket", "lowercase", id="bucket-space"),
    pytest.param({"bucket": "bücket"}, {}, "bucket", "lowercase", id="bucket-non-ascii"),
    pytest.param({"bucket": "-bucket"}, {}, "bucket", "start and end", id="bucket-leading-hyphen"),
    pytest.param({"bucket": "bucket-"}, {}, "bucket", "start and end", id="bucket-trailing-hyphen"),
    pytest.param({"bucket": ".bucket"}, {}, "bucket", "start and end", id="bucket-leading-dot"),
    pytest.param({"bucket": "bucket."}, {}, "bucket", "start and end", id="bucket-trailing-dot"),
    pytest.param({"bucket": "my..bucket"}, {}, "bucket", "adjacent dots", id="bucket-double-dot"),
    pytest.param({"bucket": "192.168.5.4"}, {}, "bucket", "IP address", id="bucket-ipv4"),
    pytest.param({"bucket": "xn--bucket"}, {}, "bucket", "'xn--'", id="bucket-prefix-xn"),
    pytest.param({"bucket": "sthree-bucket"}, {}, "bucket", "'sthree-'", id="bucket-prefix-sthree"),
    pytest.param(
        {"bucket": "amzn-s3-demo-bucket"}, {}, "bucket", "'amzn-s3-demo-'", id="bucket-prefix-demo"
    ),
    pytest.param({"bucket": "b-s3alias"}, {}, "bucket", "'-s3alias'", id="bucket-suffix-s3alias"),
    pytest.param({"bucket": "b--ol-s3"}, {}, "bucket", "'--ol-s3'", id="bucket-suffix-ol-s3"),
    pytest.param({"bucket": "bucket.mrap"}, {}, "bucket", "'.mrap'", id="bucket-suffix-mrap"),
    pytest.param({"bucket": "b--x-s3"}, {}, "bucket", "'--x-s3'", id="bucket-suffix-x-s3"),
    pytest.param({"bucket": "b--table-s3"}, {}, "bucket", "'--table-s3'", id="bucket-suffix-table"),
    pytest.param({}, {"S3_BUCKET": "Bad_Bucket"}, "bucket", "S3_BUCKET", id="bucket-from-env"),
    # prefix
    pytest.param({"prefix": ""}, {}, "prefix", "must not be empty", id="prefix-empty-parameter"),
    pytest.param({"prefix": "/logs"}, {}, "prefix", "start with '/'", id="prefix-leading-slash"),
    pytest.param({"prefix": ".."}, {}, "prefix", "'..' segment", id="prefix-only-dot-dot"),
    pytest.param({"prefix": "../logs"}, {}, "prefix", "'..' segment", id="prefix-dot-dot-first"),
    pytest.param({"prefix": "a/../b/"}, {}, "prefix", "'..' segment", id="prefix-dot-dot-middle"),
    pytest.param({"prefix": "logs/.."}, {}, "prefix", "'..' segment", id="prefix-dot-dot-last"),
    pytest.param({"prefix": "a" * 1025}, {}, "prefix", "1024 bytes", id="prefix-1025-ascii-bytes"),
    pytest.param(
        {"prefix": "€" * 342}, {}, "prefix", "1024 bytes", id="prefix-1026-bytes-342-chars"
    ),
    pytest.param({"prefix": "é" * 512 + "a"}, {}, "prefix", "1024 bytes", id="prefix-1025-bytes"),
    pytest.param({"prefix": "logs/\x00"}, {}, "prefix", "control", id="prefix-nul"),
    pytest.param({"prefix": "logs\n/"}, {}, "prefix", "control", id="prefix-newline"),
    pytest.param({"prefix": "lo\tgs/"}, {}, "prefix", "control", id="prefix-tab"),
    pytest.param({"prefix": "logs\x1f/"}, {}, "prefix", "control", id="prefix-unit-separator"),
    pytest.param({"prefix": "logs\x7f/"}, {}, "prefix", "control", id="prefix-del"),
    # older_than_days
    pytest.param({"older_than_days": 0}, {}, "older_than_days", "greater than", id="days-0"),
    pytest.param({"older_than_days": -1}, {}, "older_than_days", "greater than", id="days-neg"),
    pytest.param({"older_than_days": 36501}, {}, "older_than_days", "less than", id="days-36501"),
    pytest.param({"older_than_days": 1.5}, {}, "older_than_days", "integer", id="days-fraction"),
    pytest.param(
        {}, {"CLEANUP_OLDER_THAN_DAYS": "thirty"}, "older_than_days", "integer", id="days-env-word"
    ),
    pytest.param(
        {}, {"CLEANUP_OLDER_THAN_DAYS": "7.5"}, "older_than_days", "integer", id="days-env-decimal"
    ),
    # region
    pytest.param({"region": "mars-1"}, {}, "region", "AWS partition", id="region-mars"),
    pytest.param({"region": "US-EAST-1"}, {}, "region", "AWS partition", id="region-uppercase"),
    pytest.param({"region": "us-east"}, {}, "region", "AWS partition", id="region-no-number"),
    pytest.param({"region": ""}, {}, "region", "AWS partition", id="region-empty-parameter"),
    pytest.param({"region": "us-east-1 "}, {}, "region", "AWS partition", id="region-trailing-sp"),
    # role ARN
    pytest.param(
        {"role_arn": f"arn:aws:sts::{ACCOUNT}:role/cleanup"},
        {},
        "role_arn",
        "IAM role ARN",
        id="role-wrong-service",
    ),
    pytest.param(
        {"role_arn": f"arn:aws:iam::{ACCOUNT}:user/cleanup"},
        {},
        "role_arn",
        "IAM role ARN",
        id="role-user-not-role",
    ),
    pytest.param(
        {"role_arn": "arn:aws:iam::12345678901:role/cleanup"},
        {},
        "role_arn",
        "IAM role ARN",
        id="role-short-account",
    ),
    pytest.param(
        {"role_arn": f"arn:aws-mars:iam::{ACCOUNT}:role/cleanup"},
        {},
        "role_arn",
        "IAM role ARN",
        id="role-unknown-partition",
    ),
    pytest.param(
        {"role_arn": f"arn:aws:iam::{ACCOUNT}:role/" + "r" * 65},
        {},
        "role_arn",
        "IAM role ARN",
        id="role-name-65-chars",
    ),
    pytest.param(
        {"role_arn": f"arn:aws-cn:iam::{ACCOUNT}:role/cleanup", "region": "us-east-1"},
        {},
        "role_arn",
        "partition does not match",
        id="role-cn-partition-aws-region",
    ),
    pytest.param(
        {"role_arn": f"arn:aws:iam::{ACCOUNT}:role/cleanup", "region": "cn-north-1"},
        {},
        "role_arn",
        "partition does not match",
        id="role-aws-partition-cn-region",
    ),
    # expected bucket owner
    pytest.param(
        {"expected_bucket_owner": "12345678901"},
        {},
        "expected_bucket_owner",
        "12-digit",
        id="owner-11-digits",
    ),
    pytest.param(
        {"expected_bucket_owner": "1234567890123"},
        {},
        "expected_bucket_owner",
        "12-digit",
        id="owner-13-digits",
    ),
    pytest.param(
        {"expected_bucket_owner": "12345678901a"},
        {},
        "expected_bucket_owner",
        "12-digit",
        id="owner-letter",
    ),
    pytest.param(
        {"expected_bucket_owner": "1234-5678-9012"},
        {},
        "expected_bucket_owner",
        "12-digit",
        id="owner-dashes",
    ),
    # environment
    pytest.param({"environment": "qa"}, {}, "environment", "'prod'", id="environment-qa"),
    pytest.param({"environment": "Prod"}, {}, "environment", "'prod'", id="environment-case"),
    pytest.param({}, {"ENVIRONMENT": "qa"}, "environment", "ENVIRONMENT", id="environment-env-qa"),
    # secret name
    pytest.param({"secret_name": "run secret"}, {}, "secret_name", "secret", id="secret-space"),
    pytest.param({"secret_name": "run!secret"}, {}, "secret_name", "secret", id="secret-bang"),
    pytest.param({"secret_name": "s" * 513}, {}, "secret_name", "1-512", id="secret-513-chars"),
    pytest.param({"secret_name": ""}, {}, "secret_name", "1-512", id="secret-empty-parameter"),
    pytest.param(
        {"secret_name": f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/run"},
        {},
        "secret_name",
        "secret ARN",
        id="secret-arn-wrong-service",
    ),
    # credentials block
    pytest.param(
        {"aws_credentials_block": "My_Block"},
        {},
        "aws_credentials_block",
        "block name",
        id="block-uppercase-underscore",
    ),
    pytest.param(
        {"aws_credentials_block": "-block"},
        {},
        "aws_credentials_block",
        "block name",
        id="block-leading-hyphen",
    ),
    pytest.param(
        {"aws_credentials_block": "aws prod"},
        {},
        "aws_credentials_block",
        "block name",
        id="block-space",
    ),
    # max_deletions
    pytest.param(
        {"max_deletions": -1}, {}, "max_deletions", "greater than", id="max-deletions-neg"
    ),
    pytest.param(
        {},
        {"MAX_DELETIONS": "-5"},
        "max_deletions",
        "MAX_DELETIONS",
        id="max-deletions-env-negative",
    ),
    # booleans from the environment
    pytest.param({}, {"DRY_RUN": "maybe"}, "dry_run", "boolean", id="dry-run-env-not-bool"),
    # deployment-wide settings
    pytest.param({}, {"TASK_RETRIES": "11"}, "task_retries", "less than", id="task-retries-11"),
    pytest.param(
        {}, {"AWS_MAX_ATTEMPTS": "0"}, "aws_max_attempts", "greater than", id="max-attempts-0"
    ),
    pytest.param(
        {}, {"AWS_RETRY_MODE": "legacy"}, "aws_retry_mode", "'standard'", id="retry-mode-legacy"
    ),
    pytest.param(
        {},
        {"AWS_READ_TIMEOUT_SECONDS": "0"},
        "aws_read_timeout_seconds",
        "greater than",
        id="read-timeout-0",
    ),
    # locations: only a lowercase s3:// is an address; a plan names its key; plans never land
    # under the prefix the run cleans
    pytest.param({"plan": "S3://plans/p.jsonl"}, {}, "plan", "lowercase", id="plan-s3-upper"),
    pytest.param(
        {"manifest_location": "https://plans.example/x"},
        {},
        "manifest_location",
        "lowercase",
        id="location-https",
    ),
    pytest.param({"plan": "s3://example-plans"}, {}, "plan", "plan's key", id="plan-no-key"),
    pytest.param({"plan": "s3://example-plans/"}, {}, "plan", "plan's key", id="plan-empty-key"),
    pytest.param(
        {"manifest_location": "s3://example-bucket/logs/plans"},
        {},
        "manifest_location",
        "under the prefix this run cleans",
        id="location-under-prefix",
    ),
    pytest.param(
        {"manifest_location": "s3://example-bucket"},
        {"CLEANUP_PREFIX": "exam"},
        "manifest_location",
        "under the prefix this run cleans",
        id="location-bucket-root-under-prefix",
    ),
    # a saved plan's digest: 64 hex digits, with a plan
    pytest.param(
        {"plan": "plans/p.jsonl.gz", "plan_sha256": "ab" * 31},
        {},
        "plan_sha256",
        "SHA-256",
        id="digest-short",
    ),
    pytest.param(
        {"plan": "plans/p.jsonl.gz", "plan_sha256": "zz" * 32},
        {},
        "plan_sha256",
        "SHA-256",
        id="digest-not-hex",
    ),
    pytest.param(
        {"plan_sha256": "ab" * 32}, {}, "plan_sha256", "needs a saved plan", id="digest-alone"
    ),
    # a prefix that reads as another
    pytest.param({"prefix": "logs/\u202etxt.exe"}, {}, "prefix", "format characters", id="bidi"),
    pytest.param({"prefix": "lo\u200bgs/"}, {}, "prefix", "format characters", id="zero-width"),
    # as_of and the switch for test servers
    pytest.param(
        {"as_of": "0001-01-02T00:00:00+00:00"}, {}, "as_of", "year 1", id="as-of-overflows"
    ),
    pytest.param(
        {"environment": "prod"},
        {"ALLOW_FUTURE_AS_OF": "true"},
        "allow_future_as_of",
        "never in prod",
        id="future-as-of-in-prod",
    ),
]

#: Vectors the rules should refuse but the current code accepts (a bug each; see the failure).
#: (parameters, field, a fragment of the expected message, where the bug is)
INVALID_BUT_ACCEPTED = [
    pytest.param(
        {"expected_bucket_owner": FULLWIDTH_ACCOUNT},
        "expected_bucket_owner",
        "12-digit",
        r"tasks/aws_names.py ACCOUNT_ID = re.compile(r'\d{12}') has no re.ASCII: \d matches "
        "any Unicode decimal digit (fullwidth, Arabic-Indic ...)",
        id="owner-fullwidth-digits",
    ),
    pytest.param(
        {"region": "us-éast-1"},
        "region",
        "AWS partition",
        "tasks/aws_names.py compiles botocore's regionRegex without re.ASCII: \\w matches "
        "non-ASCII letters; botocore then raises InvalidRegionError when building the client",
        id="region-non-ascii",
    ),
    pytest.param(
        {"region": "us-east_x-1"},
        "region",
        "AWS partition",
        "tasks/aws_names.py botocore's regionRegex uses \\w, which also matches '_'; "
        "botocore then raises InvalidRegionError when building the client",
        id="region-underscore",
    ),
]


@pytest.mark.parametrize(("parameters", "environ", "field", "expected"), VALID)
def test_load_settings_keeps_value_when_vector_is_valid(
    parameters: dict[str, Any], environ: dict[str, str], field: str, expected: Any
) -> None:
    config = load(parameters, environ)

    assert getattr(config, field) == expected


@pytest.mark.parametrize(("parameters", "environ", "field", "fragment"), INVALID)
def test_load_settings_reports_field_when_vector_is_invalid(
    parameters: dict[str, Any], environ: dict[str, str], field: str, fragment: str
) -> None:
    error = refusal(parameters, environ)

    about_field = problems_about(error, field)
    assert about_field, f"no problem names {field!r}: {error.problems}"
    assert len(error.problems) == len(about_field), "only the broken field is reported"
    assert any(fragment in problem for problem in about_field), about_field
    assert error.exit_code == 1


@pytest.mark.parametrize(("parameters", "field", "fragment", "bug"), INVALID_BUT_ACCEPTED)
def test_load_settings_reports_field_when_value_slips_through_a_loose_regex(
    parameters: dict[str, Any], field: str, fragment: str, bug: str
) -> None:
    try:
        config = load(parameters)
    except ConfigError as error:
        assert any(fragment in problem for problem in problems_about(error, field))
    else:
        pytest.fail(f"BUG: {field}={getattr(config, field)!r} was accepted. {bug}")


def test_bucket_reports_every_broken_rule_when_name_breaks_several() -> None:
    error = refusal({"bucket": "-Xn--B..A-"})

    (problem,) = problems_about(error, "bucket")
    assert "lowercase" in problem
    assert "start and end" in problem
    assert "adjacent dots" in problem


# --- every problem at once ----------------------------------------------------------------------


def test_every_problem_is_reported_at_once_when_several_fields_are_invalid() -> None:
    parameters = {
        "bucket": "ab",
        "prefix": "/logs",
        "older_than_days": 0,
        "region": "mars-1",
        "expected_bucket_owner": "123",
    }
    environ = {"ENVIRONMENT": "qa", "MAX_DELETIONS": "-1", "SECRET_NAME": "bad name!"}

    with pytest.raises(ConfigError) as caught:
        load_config(parameters, environ, now=NOW)

    fields = {
        "bucket",
        "prefix",
        "older_than_days",
        "region",
        "expected_bucket_owner",
        "environment",
        "max_deletions",
        "secret_name",
    }
    assert {field for field in fields if problems_about(caught.value, field)} == fields
    assert len(caught.value.problems) == len(fields)
    for field in fields:
        assert f"\n  - {field}" in str(caught.value)


def test_required_fields_are_both_reported_when_missing() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({}, {}, now=NOW)

    assert caught.value.problems == [
        "bucket: required (a parameter, or S3_BUCKET)",
        "prefix: required (a parameter, or CLEANUP_PREFIX)",
    ]


def test_cross_field_problems_are_reported_when_other_fields_are_also_invalid() -> None:
    future = datetime.now(UTC) + timedelta(days=1)
    parameters = {
        "bucket": "ab",
        "as_of": future,
        "role_arn": f"arn:aws-cn:iam::{ACCOUNT}:role/cleanup",
    }

    error = refusal(parameters)

    reported = {field for field in ("bucket", "as_of", "role_arn") if problems_about(error, field)}
    # A rule joining two settings must not wait for the others: a model validator in "after"
    # mode is skipped when any field failed, and stops at its first raise.
    assert reported == {"bucket", "as_of", "role_arn"}, (
        f"BUG: not every problem reported at once, got only {sorted(reported)}"
    )


# --- precedence: parameter > environment variable > default -------------------------------------

PRECEDENCE = [
    pytest.param({}, {}, "dry_run", True, id="dry-run-default-true"),
    pytest.param({}, {"DRY_RUN": "false"}, "dry_run", False, id="dry-run-env-false"),
    pytest.param({"dry_run": True}, {"DRY_RUN": "false"}, "dry_run", True, id="dry-run-param-wins"),
    pytest.param({"dry_run": False}, {"DRY_RUN": "true"}, "dry_run", False, id="dry-run-param-f"),
    pytest.param({}, {}, "older_than_days", 30, id="days-default-30"),
    pytest.param({}, {"CLEANUP_OLDER_THAN_DAYS": "7"}, "older_than_days", 7, id="days-env"),
    pytest.param(
        {"older_than_days": 14},
        {"CLEANUP_OLDER_THAN_DAYS": "7"},
        "older_than_days",
        14,
        id="days-param-wins",
    ),
    pytest.param(
        {"older_than_days": None},
        {"CLEANUP_OLDER_THAN_DAYS": "7"},
        "older_than_days",
        7,
        id="days-none-param-is-unset",
    ),
    pytest.param({}, {}, "region", "us-east-1", id="region-default"),
    pytest.param({}, {"AWS_REGION": "eu-central-1"}, "region", "eu-central-1", id="region-aws-reg"),
    pytest.param(
        {},
        {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "eu-central-1"},
        "region",
        "eu-west-1",
        id="region-default-region-wins",
    ),
    pytest.param(
        {"region": "ap-southeast-2"},
        {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "eu-central-1"},
        "region",
        "ap-southeast-2",
        id="region-param-wins",
    ),
    pytest.param({}, {}, "environment", "dev", id="environment-default"),
    pytest.param(
        {"environment": "staging"},
        {"ENVIRONMENT": "prod"},
        "environment",
        "staging",
        id="environment-param-wins",
    ),
    pytest.param({}, {}, "max_deletions", None, id="max-deletions-default-none"),
    pytest.param(
        {"max_deletions": 3},
        {"MAX_DELETIONS": "9"},
        "max_deletions",
        3,
        id="max-deletions-param-wins",
    ),
    pytest.param({}, {}, "create_bucket", True, id="create-bucket-default"),
    pytest.param({}, {}, "secret_name", None, id="secret-default-none"),
    pytest.param({}, {"SECRET_NAME": "run/env"}, "secret_name", "run/env", id="secret-env"),
    pytest.param(
        {"secret_name": "run/param"},
        {"SECRET_NAME": "run/env"},
        "secret_name",
        "run/param",
        id="secret-param-wins",
    ),
    pytest.param(
        {},
        {"ASSUME_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/r"},
        "role_arn",
        f"arn:aws:iam::{ACCOUNT}:role/r",
        id="role-env",
    ),
    pytest.param(
        {}, {"EXPECTED_BUCKET_OWNER": ACCOUNT}, "expected_bucket_owner", ACCOUNT, id="owner-env"
    ),
    pytest.param(
        {}, {"AWS_CREDENTIALS_BLOCK": "aws-dev"}, "aws_credentials_block", "aws-dev", id="block-env"
    ),
]


@pytest.mark.parametrize(("parameters", "environ", "field", "expected"), PRECEDENCE)
def test_value_follows_precedence_when_parameter_environment_or_default_apply(
    parameters: dict[str, Any], environ: dict[str, str], field: str, expected: Any
) -> None:
    assert getattr(load(parameters, environ), field) == expected


def test_bucket_and_prefix_come_from_environment_when_parameters_are_absent() -> None:
    config = load_config({}, {"S3_BUCKET": "env-bucket", "CLEANUP_PREFIX": "tmp/"}, now=NOW)

    assert (config.bucket, config.prefix) == ("env-bucket", "tmp/")


def test_bucket_parameter_wins_when_environment_names_another_bucket() -> None:
    config = load({"bucket": "param-bucket"}, {"S3_BUCKET": "env-bucket"})

    assert config.bucket == "param-bucket"


def test_invalid_environment_value_is_ignored_when_parameter_overrides_it() -> None:
    config = load({"older_than_days": 10}, {"CLEANUP_OLDER_THAN_DAYS": "not-a-number"})

    assert config.older_than_days == 10


@pytest.mark.parametrize("blank", ["", " ", "\t \n"])
def test_environment_value_counts_as_unset_when_empty_or_blank(blank: str) -> None:
    environ = {
        "DRY_RUN": blank,
        "CLEANUP_OLDER_THAN_DAYS": blank,
        "ENVIRONMENT": blank,
        "AWS_DEFAULT_REGION": blank,
        "MAX_DELETIONS": blank,
        "SECRET_NAME": blank,
        "ASSUME_ROLE_ARN": blank,
        "TASK_RETRIES": blank,
    }

    config = load({}, environ)

    assert config.dry_run is True
    assert config.older_than_days == 30
    assert config.environment == "dev"
    assert config.region == "us-east-1"
    assert config.max_deletions is None
    assert config.secret_name is None
    assert config.role_arn is None
    assert config.task_retries == 3


def test_aws_region_is_used_when_aws_default_region_is_empty() -> None:
    config = load({}, {"AWS_DEFAULT_REGION": "", "AWS_REGION": "eu-north-1"})

    assert config.region == "eu-north-1"


def test_required_bucket_is_reported_when_its_environment_variable_is_empty() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"prefix": "logs/"}, {"S3_BUCKET": ""}, now=NOW)

    assert caught.value.problems == ["bucket: required (a parameter, or S3_BUCKET)"]


def test_environment_value_is_stripped_when_it_has_surrounding_whitespace() -> None:
    config = load({}, {"CLEANUP_OLDER_THAN_DAYS": " 12 ", "ENVIRONMENT": "prod\n"})

    assert (config.older_than_days, config.environment) == (12, "prod")


# --- unknown parameters --------------------------------------------------------------------------


def test_unknown_parameter_is_refused_when_misspelled() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({**REQUIRED, "older_then_days": 3}, {}, now=NOW)

    assert caught.value.problems == ["older_then_days: not a parameter"]
    assert "unknown parameters" in str(caught.value)


def test_unknown_parameters_are_all_listed_when_several_are_passed() -> None:
    # Deployment-wide settings come only from the environment, never as run parameters.
    with pytest.raises(ConfigError) as caught:
        load_config({**REQUIRED, "manifest_dir": "/tmp/x", "task_retries": 9}, {}, now=NOW)

    assert caught.value.problems == [
        "manifest_dir: not a parameter",
        "task_retries: not a parameter",
    ]


def test_every_documented_parameter_is_accepted_when_all_are_passed() -> None:
    given = {
        "bucket": "example-bucket",
        "prefix": "logs/",
        "older_than_days": 10,
        "dry_run": False,
        "environment": "prod",
        "region": "eu-west-1",
        "aws_credentials_block": "aws-prod",
        "role_arn": f"arn:aws:iam::{ACCOUNT}:role/cleanup",
        "secret_name": "run/prod",
        "expected_bucket_owner": ACCOUNT,
        "create_bucket": False,
        "max_deletions": 100,
        "as_of": NOW,
        "plan": "s3://example-plans/plans/run.jsonl.gz",
        "plan_sha256": "0123456789abcdef" * 4,
        "versions": "noncurrent",
        "max_delete_bytes": 10_000,
        "max_delete_percent": 12.5,
        "manifest_location": "s3://example-plans/plans",
        "max_plan_age_hours": 6.0,
        "require_approval": True,
        "approval_timeout_minutes": 15,
        "notify_topic_arn": f"arn:aws:sns:eu-west-1:{ACCOUNT}:housekeeping",
    }
    assert set(given) <= set(parameters())

    config = load_config(given, {}, now=NOW)

    assert {name: getattr(config, name) for name in given} == given


# --- error hygiene: no values, sources named -----------------------------------------------------

CANARIES = [
    pytest.param({"bucket": "CANARY_BAD_bucket"}, {}, "CANARY_BAD_bucket", id="bucket-param"),
    pytest.param({}, {"S3_BUCKET": "CANARY_BAD_bucket"}, "CANARY_BAD_bucket", id="bucket-env"),
    pytest.param({"prefix": "/CANARY_prefix"}, {}, "CANARY_prefix", id="prefix"),
    pytest.param({"prefix": "CANARY_" + "p" * 1100}, {}, "CANARY_ppp", id="prefix-long"),
    pytest.param({"secret_name": "CANARY_secret!#"}, {}, "CANARY_secret", id="secret-name"),
    pytest.param({}, {"SECRET_NAME": "CANARY secret"}, "CANARY secret", id="secret-name-env"),
    pytest.param(
        {"role_arn": "arn:aws:iam::CANARY_ROLE:role/x"}, {}, "CANARY_ROLE", id="role-arn-bad"
    ),
    pytest.param(
        {"role_arn": f"arn:aws-cn:iam::{ACCOUNT}:role/CANARY_ROLE"},
        {},
        "CANARY_ROLE",
        id="role-arn-partition",
    ),
    pytest.param({"region": "CANARY-REGION-1"}, {}, "CANARY-REGION", id="region"),
    pytest.param({"environment": "CANARY_ENV"}, {}, "CANARY_ENV", id="environment"),
    pytest.param({"expected_bucket_owner": "CANARY123456"}, {}, "CANARY123456", id="owner"),
    pytest.param({"aws_credentials_block": "CANARY_BLOCK"}, {}, "CANARY_BLOCK", id="block"),
    pytest.param({}, {"CLEANUP_OLDER_THAN_DAYS": "CANARY_DAYS"}, "CANARY_DAYS", id="days-env"),
    pytest.param({}, {"DRY_RUN": "CANARY_BOOL"}, "CANARY_BOOL", id="dry-run-env"),
    pytest.param({}, {"MAX_DELETIONS": "CANARY_MAX"}, "CANARY_MAX", id="max-deletions-env"),
    pytest.param({"as_of": "CANARY_DATE"}, {}, "CANARY_DATE", id="as-of-string"),
    pytest.param({}, {"AWS_RETRY_MODE": "CANARY_MODE"}, "CANARY_MODE", id="retry-mode-env"),
    pytest.param({"older_than_days": 987654321}, {}, "987654321", id="days-number"),
]


@pytest.mark.parametrize(("parameters", "environ", "canary"), CANARIES)
def test_error_never_shows_value_when_value_is_invalid(
    parameters: dict[str, Any], environ: dict[str, str], canary: str
) -> None:
    error = refusal(parameters, environ)

    assert error.problems, "the refusal lists its problems"
    assert error.__cause__ is None
    # Raised outside any handler, or with the handled exception hidden.
    assert error.__context__ is None or error.__suppress_context__ is True
    for exc in exception_chain(error):
        for text in (str(exc), repr(exc), *map(str, exc.args)):
            assert canary.casefold() not in text.casefold()
    assert all(canary.casefold() not in problem.casefold() for problem in error.problems)


@pytest.mark.parametrize(
    ("environ", "field", "env_var"),
    [
        pytest.param({"S3_BUCKET": "Bad_Bucket"}, "bucket", "S3_BUCKET", id="bucket"),
        pytest.param({"CLEANUP_PREFIX": "/logs"}, "prefix", "CLEANUP_PREFIX", id="prefix"),
        pytest.param(
            {"CLEANUP_OLDER_THAN_DAYS": "abc"},
            "older_than_days",
            "CLEANUP_OLDER_THAN_DAYS",
            id="days",
        ),
        pytest.param({"DRY_RUN": "perhaps"}, "dry_run", "DRY_RUN", id="dry-run"),
        pytest.param(
            {"AWS_DEFAULT_REGION": "mars-1"},
            "region",
            "AWS_DEFAULT_REGION",
            id="region-default-region",
        ),
        pytest.param({"AWS_REGION": "mars-1"}, "region", "AWS_REGION", id="region-aws-region"),
        pytest.param(
            {"ASSUME_ROLE_ARN": f"arn:aws-cn:iam::{ACCOUNT}:role/x"},
            "role_arn",
            "ASSUME_ROLE_ARN",
            id="role-partition",
        ),
        pytest.param(
            {"EXPECTED_BUCKET_OWNER": "123"},
            "expected_bucket_owner",
            "EXPECTED_BUCKET_OWNER",
            id="owner",
        ),
        pytest.param(
            {"AWS_CREDENTIALS_BLOCK": "Bad_Block"},
            "aws_credentials_block",
            "AWS_CREDENTIALS_BLOCK",
            id="block",
        ),
        pytest.param({"TASK_RETRIES": "many"}, "task_retries", "TASK_RETRIES", id="task-retries"),
    ],
)
def test_error_names_environment_variable_when_value_came_from_it(
    environ: dict[str, str], field: str, env_var: str
) -> None:
    error = refusal({}, environ)

    assert problems_about(error, field)
    assert all(p.startswith(f"{field} (from {env_var}): ") for p in problems_about(error, field))


def test_error_names_no_source_when_value_came_from_parameter() -> None:
    error = refusal({"older_than_days": 0}, {"CLEANUP_OLDER_THAN_DAYS": "5"})

    assert error.problems == ["older_than_days: Input should be greater than or equal to 1"]


# --- cutoff and as_of ----------------------------------------------------------------------------


@pytest.mark.parametrize("days", [1, 30, 365, 36500])
def test_cutoff_is_as_of_minus_days_when_both_are_set(days: int) -> None:
    as_of = datetime(2024, 3, 1, 6, 30, 15, tzinfo=UTC)

    config = load({"older_than_days": days, "as_of": as_of})

    assert config.cutoff == as_of - timedelta(days=days)


def test_as_of_defaults_to_now_when_not_set() -> None:
    config = load({}, {"CLEANUP_OLDER_THAN_DAYS": "10"})

    assert config.as_of == NOW
    assert config.cutoff == datetime(2024, 5, 22, 12, 0, tzinfo=UTC)


def test_as_of_defaults_to_the_clock_when_now_is_not_given() -> None:
    before = datetime.now(UTC)

    config = load_config(REQUIRED, {})

    assert before <= config.as_of <= datetime.now(UTC)
    assert config.as_of.tzinfo is not None


def test_as_of_is_read_as_utc_when_naive() -> None:
    config = load({"as_of": datetime(2024, 1, 2, 3, 4, 5)})

    assert config.as_of == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert config.as_of.utcoffset() == timedelta(0)


def test_as_of_is_read_as_utc_when_naive_iso_string() -> None:
    config = load({"as_of": "2024-01-02T03:04:05"})

    assert config.as_of == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_as_of_keeps_its_zone_when_aware() -> None:
    plus_two = timezone(timedelta(hours=2))
    as_of = datetime(2024, 1, 2, 3, 4, 5, tzinfo=plus_two)

    config = load({"as_of": as_of, "older_than_days": 1})

    assert config.as_of == as_of
    assert config.as_of.utcoffset() == timedelta(hours=2)
    assert config.cutoff == datetime(2024, 1, 1, 1, 4, 5, tzinfo=UTC)


def test_as_of_is_refused_when_in_the_future() -> None:
    error = refusal({"as_of": datetime.now(UTC) + timedelta(hours=1)})

    assert len(error.problems) == 1
    assert error.problems[0].startswith("as_of: must not be in the future")


def test_as_of_is_refused_when_naive_and_in_the_future() -> None:
    naive_future = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=2)

    error = refusal({"as_of": naive_future})

    assert problems_about(error, "as_of")


def test_as_of_is_accepted_when_within_clock_skew() -> None:
    slightly_ahead = datetime.now(UTC) + timedelta(minutes=1)

    assert load({"as_of": slightly_ahead}).as_of == slightly_ahead


# --- deployment-wide settings --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("db_password", ("db_password",), id="one"),
        pytest.param("db_password,api_token", ("db_password", "api_token"), id="two"),
        pytest.param(" db_password , api_token ,, ", ("db_password", "api_token"), id="spaces"),
        pytest.param(",", (), id="only-commas"),
    ],
)
def test_secret_required_keys_are_split_on_commas_when_set(
    raw: str, expected: tuple[str, ...]
) -> None:
    assert load({}, {"SECRET_REQUIRED_KEYS": raw}).secret_required_keys == expected


def test_deployment_settings_take_defaults_when_environment_is_empty() -> None:
    config = load()

    assert config.secret_required_keys == ()
    assert config.manifest_location == "manifests"
    assert (config.delete_concurrency, config.list_concurrency) == (DEFAULT_CONCURRENCY, 8)
    assert (config.versions, config.max_plan_age_hours) == ("current", 24)
    assert (config.aws_max_attempts, config.aws_retry_mode, config.task_retries) == (
        3,
        "standard",
        3,
    )


def test_deployment_settings_come_from_environment_when_set() -> None:
    environ = {
        "MANIFEST_DIR": "out/manifests",
        "DELETE_CONCURRENCY": "16",
        "CLEANUP_VERSIONS": "all",
        "AWS_MAX_ATTEMPTS": "7",
        "AWS_RETRY_MODE": "adaptive",
        "TASK_RETRIES": "0",
    }

    config = load({}, environ)

    assert config.manifest_location == "out/manifests"
    assert (config.delete_concurrency, config.versions) == (16, "all")
    assert (config.aws_max_attempts, config.aws_retry_mode, config.task_retries) == (
        7,
        "adaptive",
        0,
    )


def test_config_is_frozen_when_loaded() -> None:
    config = load()

    assert isinstance(config, RunSettings)
    with pytest.raises(ValueError, match="frozen"):
        config.bucket = "other-bucket"  # type: ignore[misc]


def test_future_cutoff_is_refused_even_when_a_future_as_of_is_allowed() -> None:
    # The switch lets as_of run ahead of the clock by up to older_than_days, never more.
    too_far = datetime.now(UTC) + timedelta(days=31)
    parameters = {"bucket": "valid-bucket", "prefix": "tmp/", "as_of": too_far}

    with pytest.raises(ConfigError, match=r"its cutoff .* may not"):
        load_config(parameters, {"ALLOW_FUTURE_AS_OF": "true"})


def test_future_as_of_is_accepted_when_explicitly_allowed_for_test_servers() -> None:
    future = datetime.now(UTC) + timedelta(days=3)
    parameters = {"bucket": "valid-bucket", "prefix": "tmp/", "as_of": future}

    config = load_config(parameters, {"ALLOW_FUTURE_AS_OF": "true"})

    assert config.as_of == future
    with pytest.raises(ConfigError, match="as_of: must not be in the future"):
        load_config(parameters, {})


@pytest.mark.parametrize(
    ("parameters", "problem"),
    [
        ({"plan": "s3://Bad_Bucket/plan.jsonl"}, "plan: names an invalid bucket"),
        ({"manifest_location": "  "}, "manifest_location: must be a local path"),
        ({"versions": "latest"}, "versions: Input should be 'current', 'noncurrent' or 'all'"),
        ({"max_delete_percent": 101}, "max_delete_percent: Input should be less than or equal"),
        ({"max_delete_bytes": -1}, "max_delete_bytes: Input should be greater than or equal"),
        ({"max_plan_age_hours": 0}, "max_plan_age_hours: Input should be greater than 0"),
    ],
)
def test_refuses_invalid_scale_settings_when_given(
    parameters: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config({"bucket": "valid-bucket", "prefix": "tmp/", **parameters}, {})
    assert any(found.startswith(problem) for found in refused.value.problems), refused.value
