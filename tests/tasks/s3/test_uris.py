"""s3:// addresses: parsing into bucket and key, printing back, and joining under a prefix."""

from __future__ import annotations

import pytest

from tasks.s3.uris import S3Uri, is_s3_uri, parse_s3_uri


class TestIsS3Uri:
    @pytest.mark.parametrize(
        "location", ["s3://bucket", "s3://bucket/", "s3://bucket/plans/run.jsonl"]
    )
    def test_is_true_when_the_location_starts_with_the_scheme(self, location: str) -> None:
        assert is_s3_uri(location)

    @pytest.mark.parametrize(
        "location",
        [
            "manifests",
            "/var/plans/run.jsonl",
            "./s3://bucket/key",
            "S3://bucket/key",
            "s3:/bucket/key",
            "https://bucket.s3.amazonaws.com/key",
            "",
        ],
    )
    def test_is_false_when_the_location_is_a_path_or_another_scheme(self, location: str) -> None:
        assert not is_s3_uri(location)


class TestParse:
    @pytest.mark.parametrize(
        ("location", "bucket", "key"),
        [
            ("s3://plan-bucket/plans/run.jsonl", "plan-bucket", "plans/run.jsonl"),
            ("s3://plan-bucket/a/b/c/", "plan-bucket", "a/b/c/"),
            ("s3://plan-bucket/", "plan-bucket", ""),
            ("s3://plan-bucket", "plan-bucket", ""),
            ("s3://plan-bucket//double", "plan-bucket", "/double"),
        ],
    )
    def test_splits_bucket_from_key_at_the_first_slash_when_parsing(
        self, location: str, bucket: str, key: str
    ) -> None:
        assert parse_s3_uri(location) == S3Uri(bucket, key)

    @pytest.mark.parametrize(
        "location", ["s3://plan-bucket/plans/run.jsonl", "s3://plan-bucket/", "s3://b/a b/c#d"]
    )
    def test_prints_the_same_address_when_parsed_then_printed(self, location: str) -> None:
        assert str(parse_s3_uri(location)) == location

    def test_raises_value_error_without_the_location_when_it_is_not_an_s3_address(self) -> None:
        location = "/home/someone/private-plan-name.jsonl"

        with pytest.raises(ValueError, match="not an s3:// address") as raised:
            parse_s3_uri(location)

        assert location not in str(raised.value)


class TestJoin:
    @pytest.mark.parametrize("prefix", ["plans", "plans/", "plans//"])
    def test_puts_parts_under_the_prefix_with_one_slash_when_joining(self, prefix: str) -> None:
        joined = S3Uri("plan-bucket", prefix).join("target-bucket", "run.jsonl")

        assert joined == S3Uri("plan-bucket", "plans/target-bucket/run.jsonl")
        assert str(joined) == "s3://plan-bucket/plans/target-bucket/run.jsonl"

    def test_starts_the_key_with_the_first_part_when_the_prefix_is_empty(self) -> None:
        joined = S3Uri("plan-bucket", "").join("target-bucket", "run.jsonl")

        assert joined.key == "target-bucket/run.jsonl"

    def test_skips_empty_parts_when_joining(self) -> None:
        joined = S3Uri("plan-bucket", "plans").join("", "run.jsonl", "")

        assert joined.key == "plans/run.jsonl"

    def test_leaves_the_original_unchanged_when_joining(self) -> None:
        base = S3Uri("plan-bucket", "plans/")

        base.join("x")

        assert base == S3Uri("plan-bucket", "plans/")
