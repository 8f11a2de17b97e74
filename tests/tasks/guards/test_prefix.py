"""A prefix that spans folders: a note, or a refusal before any listing, in one request."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.aws import AwsClients, AwsSettings, create_clients
from tasks.errors import SafetyRefusal
from tasks.guards.prefix import check_prefix
from tasks.settings import RunSettings, load_settings
from tests.support.audit import audit_requests

BUCKET = "prefix-guard"


def settings(prefix: str, **given: Any) -> RunSettings:
    return load_settings({"bucket": BUCKET, "prefix": prefix, **given})


@pytest.fixture
def spanned(aws: AwsClients) -> AwsClients:
    """tmp/ and tmp-keep/ both start with "tmp"."""
    aws.s3.create_bucket(Bucket=BUCKET)
    for key in ("tmp/a.log", "tmp/b/c.log", "tmp-keep/precious.db"):
        aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    return aws


class TestCheckPrefix:
    def test_notes_every_folder_it_matches_when_it_has_no_trailing_slash(
        self, spanned: AwsClients
    ) -> None:
        with audit_requests() as audit:
            s3 = create_clients(AwsSettings(region="us-east-1")).s3
            note = check_prefix(s3, settings("tmp"), None)

        assert note == (
            "prefix 'tmp' has no trailing '/' and matches 2 folders or keys: tmp-keep/, tmp/; "
            "all are cleaned (end it with '/' for one folder)"
        )
        assert [call.operation for call in audit.calls] == ["ListObjectsV2"]

    def test_refuses_naming_them_when_told_to(self, spanned: AwsClients) -> None:
        with pytest.raises(SafetyRefusal) as refused:
            check_prefix(spanned.s3, settings("tmp", ambiguous_prefix="refuse"), None)

        assert refused.value.guard == "ambiguous_prefix"
        assert refused.value.exit_code == 6
        assert "tmp-keep/, tmp/" in str(refused.value)

    @pytest.mark.parametrize("prefix", ["tmp/", "tmp-keep", "nothing-here"])
    def test_says_nothing_when_the_prefix_matches_one_folder_or_none(
        self, spanned: AwsClients, prefix: str
    ) -> None:
        assert check_prefix(spanned.s3, settings(prefix, ambiguous_prefix="refuse"), None) is None

    def test_sends_no_request_when_the_prefix_is_a_folder(self, spanned: AwsClients) -> None:
        with audit_requests() as audit:
            s3 = create_clients(AwsSettings(region="us-east-1")).s3
            check_prefix(s3, settings("tmp/"), None)

        assert audit.calls == []

    def test_escapes_what_a_terminal_cannot_show_when_a_folder_holds_it(
        self, spanned: AwsClients
    ) -> None:
        spanned.s3.put_object(Bucket=BUCKET, Key="tmp\x1b[2Jx/y", Body=b"x")

        note = check_prefix(spanned.s3, settings("tmp"), None)

        assert note is not None
        assert "\x1b" not in note
        assert "tmp\\u001b[2Jx/" in note
