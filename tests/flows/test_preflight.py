"""Checked before anything starts: the s3:// target, the AWS CLI's options and the profile."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from flows.cli import checked, parse
from flows.preflight import given_environment, profile_region, s3_target
from tasks.errors import CredentialsError
from tasks.s3.uris import S3Uri


@pytest.fixture
def aws_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An AWS config file with one profile, `team`, whose region is eu-west-1."""
    config = tmp_path / "config"
    config.write_text("[profile team]\nregion = eu-west-1\n")
    credentials = tmp_path / "credentials"
    credentials.write_text("[team]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    return config


class TestTarget:
    def test_is_the_bucket_and_the_prefix_when_given_as_an_s3_address(self) -> None:
        args = parse(["run", "s3://team-bucket/tmp/builds/"])

        assert (args.bucket, args.prefix) == ("team-bucket", "tmp/builds/")
        assert s3_target("s3://b") == S3Uri("b", "")

    @pytest.mark.parametrize(
        "argv",
        [
            ["run", "s3://b/tmp/", "--bucket", "b"],
            ["run", "s3://b/tmp/", "--prefix", "tmp/"],
            ["run", "b/tmp/"],
            ["iam-policy", "s3://b/tmp/", "--bucket", "other"],
        ],
    )
    def test_is_a_usage_error_when_given_both_ways_or_not_as_an_address(
        self, argv: list[str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(SystemExit) as stopped:
            parse(argv)

        assert stopped.value.code == 1
        assert "s3://BUCKET/PREFIX" in capsys.readouterr().err


class TestGivenEnvironment:
    def test_gives_the_run_the_aws_cli_options_for_the_command_only(self) -> None:
        args = parse(
            ["run", "s3://b/p/", "--endpoint-url", "http://127.0.0.1:9000", "--profile", "team"]
        )

        with given_environment(args):
            assert os.environ["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:9000"
            assert os.environ["AWS_PROFILE"] == "team"

        assert "AWS_ENDPOINT_URL_S3" not in os.environ
        assert "AWS_PROFILE" not in os.environ


class TestProfile:
    def test_gives_the_profiles_region_when_the_profile_is_found(
        self, aws_config: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AWS_PROFILE", "team")

        assert profile_region(uses_a_block=False) == "eu-west-1"

    def test_is_a_credentials_error_naming_it_when_no_config_file_holds_it(
        self, aws_config: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AWS_PROFILE", "nosuchprofile")

        with pytest.raises(CredentialsError, match="AWS profile 'nosuchprofile' not found"):
            profile_region(uses_a_block=False)
        assert profile_region(uses_a_block=True) is None  # a block's credentials are used


class TestChecked:
    def run(self, *argv: str) -> argparse.Namespace:
        return parse(["run", *argv])

    def test_exits_2_naming_a_missing_profile_before_anything_starts(
        self, aws_config: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert checked(self.run("s3://b/tmp/", "--profile", "nosuchprofile")) == 2
        assert "AWS profile 'nosuchprofile' not found" in capsys.readouterr().err

    def test_runs_in_the_profiles_region_unless_one_is_given(self, aws_config: Path) -> None:
        args = self.run("s3://team-bucket/tmp/", "--profile", "team")
        assert checked(args) is None
        assert args.region == "eu-west-1"

        args = self.run("s3://team-bucket/tmp/", "--profile", "team", "--region", "us-west-2")
        assert checked(args) is None
        assert args.region == "us-west-2"

    def test_exits_1_with_every_problem_when_the_settings_are_invalid(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert checked(self.run("--bucket", "Bad_Bucket", "--older-than-days", "0")) == 1

        said = capsys.readouterr().err
        assert "bucket" in said and "older_than_days" in said and "prefix" in said
        assert said.rstrip().endswith("(exit 1)")

    def test_exits_1_when_a_targets_file_is_invalid(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        targets = tmp_path / "targets.yaml"
        targets.write_text("targets:\n  - bucket: b\n")

        assert checked(parse(["fleet", "--targets", str(targets)])) == 1
        assert "(exit 1)" in capsys.readouterr().err

    def test_says_how_to_give_the_target_when_it_is_missing(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert checked(self.run()) == 1

        said = capsys.readouterr().err
        assert "bucket: required (a parameter, or S3_BUCKET)" in said
        assert "the target: s3://BUCKET/PREFIX, or --bucket and --prefix (exit 1)" in said
