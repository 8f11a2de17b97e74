"""The folders below a prefix: a key's folder one level down, and what a prefix matches."""

from __future__ import annotations

import pytest

from tasks.aws import AwsClients, AwsSettings, create_clients
from tasks.s3.folders import PLACES_SHOWN, folder_of, places_matched
from tests.support.audit import audit_requests


@pytest.mark.parametrize(
    ("key", "prefix", "folder"),
    [
        ("tmp/a/x.log", "tmp/", "tmp/a/"),
        ("tmp/a/b/x.log", "tmp/", "tmp/a/"),
        ("tmp/x.log", "tmp/", "tmp/"),
        ("tmp/x.log", "tmp", "tmp/"),
        ("tmp-keep/x.db", "tmp", "tmp-keep/"),
        ("tmpfile", "tmp", "tmp"),
    ],
)
def test_is_one_level_below_the_prefix_when_a_key_has_one(
    key: str, prefix: str, folder: str
) -> None:
    assert folder_of(key, prefix) == folder


class TestPlacesMatched:
    def test_names_folders_and_keys_outside_a_folder_in_one_request_when_listed(
        self, aws: AwsClients
    ) -> None:
        aws.s3.create_bucket(Bucket="places")
        for key in ("tmp/a", "tmp/b/c", "tmp-keep/d", "tmpfile", "other/e"):
            aws.s3.put_object(Bucket="places", Key=key, Body=b"x")

        with audit_requests() as audit:
            s3 = create_clients(AwsSettings(region="us-east-1")).s3
            places, more = places_matched(s3, "places", "tmp", None)

        assert (places, more) == (["tmp-keep/", "tmp/", "tmpfile"], False)
        assert [call.operation for call in audit.calls] == ["ListObjectsV2"]

    def test_says_there_are_more_when_past_the_ones_it_names(self, aws: AwsClients) -> None:
        aws.s3.create_bucket(Bucket="places")
        for n in range(PLACES_SHOWN + 3):
            aws.s3.put_object(Bucket="places", Key=f"logs-{n:02d}/x", Body=b"x")

        places, more = places_matched(aws.s3, "places", "logs", None)

        assert (len(places), more) == (PLACES_SHOWN + 1, True)
