"""Selection: which listed objects and versions a plan takes, and which listing feeds it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tasks.aws import AwsClients, AwsSettings, create_clients
from tasks.s3.listing import ListedObject
from tasks.s3.manifest import PlanTarget
from tasks.s3.progress import Progress
from tasks.s3.selection import Selection, is_selected, listing, planned
from tests.support.audit import audit_requests
from tests.support.moto_backend import bulk_put

BUCKET = "selection-test-bucket"
CUTOFF = datetime(2026, 1, 1, tzinfo=UTC)
BEFORE = CUTOFF - timedelta(seconds=1)
AFTER = CUTOFF + timedelta(seconds=1)
VERSIONS_MODES = ["current", "noncurrent", "all"]


def listed(
    key: str = "temp/a.log",
    last_modified: datetime = BEFORE,
    noncurrent_since: datetime | None = None,
    **fields: Any,
) -> ListedObject:
    entry = ListedObject(
        key=key,
        etag='"etag-1"',
        size=10,
        last_modified=last_modified,
        noncurrent_since=noncurrent_since,
    )
    return replace(entry, **fields)


def target(versions: str = "current", owner: str | None = None) -> PlanTarget:
    return PlanTarget(
        bucket=BUCKET,
        region="us-east-1",
        prefix="temp/",
        cutoff=CUTOFF.isoformat(),
        created_at=CUTOFF.isoformat(),
        owner=owner,
        versions=versions,
    )


class TestIsSelected:
    @pytest.mark.parametrize("versions", ["current", "all"])
    @pytest.mark.parametrize(
        ("last_modified", "expected"),
        [(BEFORE, True), (CUTOFF, False), (AFTER, False)],
        ids=["before", "at-cutoff", "after"],
    )
    def test_compares_last_modified_strictly_when_versions_is_current_or_all(
        self, versions: str, last_modified: datetime, expected: bool
    ) -> None:
        assert is_selected(listed(last_modified=last_modified), "temp/", CUTOFF, versions) is (
            expected
        )

    @pytest.mark.parametrize("versions", VERSIONS_MODES)
    def test_refuses_a_key_outside_the_prefix_when_the_server_returned_it(
        self, versions: str
    ) -> None:
        # "temp" would match "temp-keep/" on the server; the prefix is checked again here.
        wrong = listed(key="temp-keep/precious.db", last_modified=BEFORE, noncurrent_since=BEFORE)

        assert not is_selected(wrong, "temp/", CUTOFF, versions)
        assert is_selected(replace(wrong, key="temp/precious.db"), "temp/", CUTOFF, versions)

    @pytest.mark.parametrize(
        ("noncurrent_since", "expected"),
        [(BEFORE, True), (CUTOFF, False), (AFTER, False)],
        ids=["before", "at-cutoff", "after"],
    )
    def test_compares_when_the_version_was_superseded_when_versions_is_noncurrent(
        self, noncurrent_since: datetime, expected: bool
    ) -> None:
        old_version = listed(last_modified=BEFORE - timedelta(days=400))

        selected = is_selected(
            replace(old_version, noncurrent_since=noncurrent_since), "temp/", CUTOFF, "noncurrent"
        )

        assert selected is expected

    def test_never_selects_the_current_version_when_versions_is_noncurrent(self) -> None:
        current = listed(last_modified=BEFORE - timedelta(days=400), noncurrent_since=None)

        assert not is_selected(current, "temp/", CUTOFF, "noncurrent")
        assert is_selected(current, "temp/", CUTOFF, "all")

    def test_selects_an_old_delete_marker_when_versions_is_all(self) -> None:
        marker = listed(last_modified=BEFORE, is_delete_marker=True, etag="", size=0)

        assert is_selected(marker, "temp/", CUTOFF, "all")
        assert not is_selected(replace(marker, last_modified=AFTER), "temp/", CUTOFF, "all")

    def test_selects_an_old_version_superseded_recently_only_when_versions_is_all(self) -> None:
        superseded_recently = listed(last_modified=BEFORE, noncurrent_since=AFTER)

        assert is_selected(superseded_recently, "temp/", CUTOFF, "all")
        assert not is_selected(superseded_recently, "temp/", CUTOFF, "noncurrent")


class TestPlanned:
    def test_drops_the_version_id_when_versions_is_current(self) -> None:
        entry = planned(listed(version_id="v-1"), "current")

        assert entry.version_id is None

    @pytest.mark.parametrize("versions", ["noncurrent", "all"])
    def test_keeps_the_version_id_when_versions_are_asked_for(self, versions: str) -> None:
        entry = planned(listed(version_id="v-1", is_delete_marker=True), versions)

        assert (entry.version_id, entry.is_delete_marker) == ("v-1", True)

    def test_carries_the_listed_fields_with_a_utc_z_time_when_planned(self) -> None:
        moment = datetime(2025, 6, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
        source = listed(last_modified=moment, storage_class="GLACIER", size=1234, etag='"e-9"')

        entry = planned(source, "current")

        assert (entry.key, entry.etag, entry.size, entry.storage_class) == (
            "temp/a.log",
            '"e-9"',
            1234,
            "GLACIER",
        )
        assert entry.last_modified == "2025-06-01T12:30:00Z"
        assert entry.is_delete_marker is False


class TestSelection:
    def test_refuses_a_naive_cutoff_when_created(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            Selection([], target(), CUTOFF.replace(tzinfo=None))

    def test_yields_the_selected_in_listing_order_and_counts_every_listed_when_iterated(
        self,
    ) -> None:
        entries = [
            listed(key="temp/1", last_modified=BEFORE),
            listed(key="temp/2", last_modified=AFTER),
            listed(key="temp-keep/3", last_modified=BEFORE),
            listed(key="temp/4", last_modified=BEFORE - timedelta(days=9)),
            listed(key="temp/5", last_modified=CUTOFF),
        ]
        progress = Progress(interval_s=3600)
        selection = Selection(entries, target(), CUTOFF, progress)

        keys = [entry.key for entry in selection]

        assert keys == ["temp/1", "temp/4"]
        assert selection.scanned == len(entries)
        assert (progress.listed, progress.matched) == (len(entries), 2)

    def test_counts_only_what_was_consumed_when_iteration_stops_early(self) -> None:
        entries = [listed(key=f"temp/{n}") for n in range(5)]
        selection = Selection(entries, target(), CUTOFF)

        first = next(iter(selection))

        assert first.key == "temp/0"
        assert selection.scanned == 1

    def test_scans_nothing_when_the_listing_is_empty(self) -> None:
        selection = Selection([], target(), CUTOFF)

        assert list(selection) == []
        assert selection.scanned == 0


class TestListing:
    @pytest.fixture
    def bucket(self, aws: AwsClients) -> None:
        aws.s3.create_bucket(Bucket=BUCKET)
        aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        for body in (b"v1", b"v2"):
            aws.s3.put_object(Bucket=BUCKET, Key="temp/a.log", Body=body)
        aws.s3.put_object(Bucket=BUCKET, Key="temp/sub/b.log", Body=b"b")

    def test_uses_list_objects_v2_only_when_versions_is_current(self, bucket: None) -> None:
        with audit_requests() as audit:
            s3 = create_clients(AwsSettings(region="us-east-1")).s3
            found = list(listing(s3, target("current"), workers=2))

        operations = {call.operation for call in audit.calls}
        assert operations == {"ListObjectsV2"}
        assert all(call.params["Bucket"] == BUCKET for call in audit.calls)
        assert sorted(entry.key for entry in found) == ["temp/a.log", "temp/sub/b.log"]
        assert all(entry.version_id is None for entry in found)

    @pytest.mark.parametrize("versions", ["noncurrent", "all"])
    def test_uses_list_object_versions_only_when_versions_are_asked_for(
        self, bucket: None, versions: str
    ) -> None:
        with audit_requests() as audit:
            s3 = create_clients(AwsSettings(region="us-east-1")).s3
            found = list(listing(s3, target(versions), workers=2))

        calls = audit.of("ListObjectVersions")
        assert {call.operation for call in audit.calls} == {"ListObjectVersions"}
        assert [(call.params["Bucket"], call.params["Prefix"]) for call in calls] == [
            (BUCKET, "temp/")
        ]
        assert sorted(entry.key for entry in found) == [
            "temp/a.log",
            "temp/a.log",
            "temp/sub/b.log",
        ]
        assert all(entry.version_id for entry in found)

    @pytest.mark.parametrize("versions", VERSIONS_MODES)
    def test_sends_the_expected_owner_with_every_listing_when_the_target_has_one(
        self, bucket: None, versions: str
    ) -> None:
        owner = "123456789012"
        with audit_requests() as audit:
            s3 = create_clients(AwsSettings(region="us-east-1")).s3
            list(listing(s3, target(versions, owner=owner), workers=2))

        assert audit.calls
        assert all(call.params.get("ExpectedBucketOwner") == owner for call in audit.calls)

    def test_selects_only_old_objects_under_the_prefix_when_fed_from_moto(
        self, aws: AwsClients
    ) -> None:
        aws.s3.create_bucket(Bucket=BUCKET)
        bulk_put(BUCKET, ["temp/old-1", "temp/deep/old-2", "temp-keep/old", "other/old"], BEFORE)
        bulk_put(BUCKET, ["temp/new", "temp/deep/new"], AFTER)

        selection = Selection(listing(aws.s3, target("current"), workers=2), target(), CUTOFF)

        assert sorted(entry.key for entry in selection) == ["temp/deep/old-2", "temp/old-1"]
        assert selection.scanned == 4
