"""The credentials blocks of `make serve` and `make deploy`: settings from the environment,
applied idempotently, described without a secret."""

from __future__ import annotations

import pytest

from deployments.blocks import apply_block, block_settings, describe

SECRET = "testing-fake-secret-for-blocks"


def test_environment_suffixed_variable_wins_when_both_are_set() -> None:
    environ = {
        "AWS_PROFILE": "shared",
        "AWS_PROFILE_PROD": "prod-profile",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "  ",
    }

    assert block_settings("prod", environ) == {
        "profile_name": "prod-profile",
        "region_name": "eu-west-1",
    }
    assert block_settings("dev", environ)["profile_name"] == "shared"


def test_block_holds_no_key_when_nothing_is_set() -> None:
    assert block_settings("prod", {}) == {}
    assert describe({}) == "the worker's default AWS chain (role)"


def test_description_names_the_kind_but_never_the_secret_when_keys_are_set() -> None:
    settings = {"aws_access_key_id": "testing-fake-id", "aws_secret_access_key": SECRET}

    assert SECRET not in describe(settings)


@pytest.mark.usefixtures("prefect_harness")
def test_block_is_created_then_unchanged_then_updated_then_kept_when_applied_again() -> None:
    from prefect_aws import AwsCredentials

    name = "s3-housekeeping-blocks-test"
    first = {"aws_access_key_id": "testing-fake-id", "aws_secret_access_key": SECRET}
    second = {**first, "aws_secret_access_key": SECRET + "-rotated"}

    assert apply_block(name, first) == "created"
    assert apply_block(name, first) == "unchanged"
    assert apply_block(name, second) == "updated"
    assert apply_block(name, first, overwrite=False) == "kept"
    stored = AwsCredentials.load(name)
    assert stored.aws_secret_access_key.get_secret_value() == SECRET + "-rotated"
