"""Listings: sub-prefixes in parallel with exact request counts; versions with their history."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.aws import AwsClients, AwsSettings, create_clients
from tasks.errors import AwsApiError
from tasks.s3.listing import (
    ListedObject,
    Rest,
    Shard,
    list_current_objects,
    list_object_versions,
    list_versions_shard,
)
from tests.support.audit import audit_requests
from tests.support.moto_backend import backdate_versions, bulk_put

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "listing-test-bucket"
OLD = datetime.now(UTC) - timedelta(days=90)


class TestCurrentObjects:
    def test_lists_every_object_once_with_one_request_per_1000_when_prefix_is_flat(
        self, aws: AwsClients
    ) -> None:
        aws.s3.create_bucket(Bucket=BUCKET)
        bulk_put(BUCKET, (f"flat/k{n:05d}" for n in range(2500)), OLD)
        bulk_put(BUCKET, ["flat-sibling/x", "other/y"], OLD)

        with audit_requests() as audit:
            s3 = create_clients(AwsSettings(region="us-east-1")).s3
            keys = [listed.key for listed in list_current_objects(s3, BUCKET, "flat/")]

        assert len(keys) == len(set(keys)) == 2500
        assert all(key.startswith("flat/") for key in keys)
        assert len(audit.of("ListObjectsV2")) == 3  # ceil(2500 / 1000)

    def test_lists_sub_prefixes_in_parallel_when_the_prefix_has_folders(
        self, aws: AwsClients
    ) -> None:
        aws.s3.create_bucket(Bucket=BUCKET)
        folders = [f"tree/day-{day:02d}/" for day in range(12)]
        for folder in folders:
            bulk_put(BUCKET, (f"{folder}part-{n:04d}" for n in range(1100)), OLD)
        bulk_put(BUCKET, ["tree/top-level.txt"], OLD)

        with audit_requests() as audit:
            s3 = create_clients(AwsSettings(region="us-east-1")).s3
            keys = [listed.key for listed in list_current_objects(s3, BUCKET, "tree/", workers=4)]

        assert len(keys) == len(set(keys)) == 12 * 1100 + 1
        calls = audit.of("ListObjectsV2")
        discovery = [call for call in calls if call.params.get("Delimiter") == "/"]
        assert len(discovery) == 1
        listed_prefixes = sorted(call.params["Prefix"] for call in calls if call not in discovery)
        assert listed_prefixes == sorted(folder for folder in folders for _ in range(2))

    def test_stops_cleanly_when_the_consumer_stops_early(self, aws: AwsClients) -> None:
        aws.s3.create_bucket(Bucket=BUCKET)
        for day in range(6):
            bulk_put(BUCKET, (f"tree/d{day}/k{n:05d}" for n in range(3000)), OLD)

        listing = list_current_objects(aws.s3, BUCKET, "tree/", workers=2)
        first = [next(listing) for _ in range(10)]
        listing.close()  # must not hang on workers blocked by a full queue

        assert len(first) == 10


# Keys with shared starts, folders, letters beyond the Basic Multilingual Plane and the
# largest code point: S3 orders keys by their UTF-8 bytes, which is code point order.
LETTERS = st.sampled_from(
    ["0", "1", "9", "a", "z", "-", "/", "é", "中", "\U0001f600", "\U0010ffff"]
)
BUCKETS = (f"split-{n}" for n in itertools.count())


class TestKeyRangesListedInParallel:
    @settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        names=st.lists(st.text(LETTERS, min_size=1, max_size=7), max_size=60, unique=True),
        page_size=st.integers(1, 5),
        shard_size=st.integers(1, 30),
        workers=st.integers(1, 4),
    )
    def test_lists_every_key_exactly_once_when_ranges_split_at_any_size(
        self, aws: AwsClients, names: list[str], page_size: int, shard_size: int, workers: int
    ) -> None:
        bucket = next(BUCKETS)
        aws.s3.create_bucket(Bucket=bucket)
        keys = [f"p/{name}" for name in names]
        bulk_put(bucket, [*keys, "p", "p-sibling/x", "o/\U0010ffff"], OLD)

        listed = list_current_objects(
            aws.s3, bucket, "p/", workers=workers, shard_size=shard_size, page_size=page_size
        )

        assert Counter(entry.key for entry in listed) == Counter(keys)

    def test_spreads_a_flat_prefix_over_key_ranges_when_it_proves_large(
        self, aws: AwsClients
    ) -> None:
        aws.s3.create_bucket(Bucket=BUCKET)
        bulk_put(BUCKET, (f"flat/{n:06d}" for n in range(20_000)), OLD)

        with audit_requests() as audit:
            s3 = create_clients(AwsSettings(region="us-east-1")).s3
            keys = [
                e.key for e in list_current_objects(s3, BUCKET, "flat/", workers=4, shard_size=2000)
            ]

        assert sorted(keys) == [f"flat/{n:06d}" for n in range(20_000)]
        calls = audit.of("ListObjectsV2")
        starts = {call.params.get("StartAfter") for call in calls}
        assert len(starts) >= 4  # ranges listed, not one page after another
        # 20 pages, plus one request per range for the page that crosses its end or finds
        # it empty.
        assert 20 <= len(calls) <= 20 + len(starts)

    def test_lists_one_page_after_another_when_the_prefix_is_small(self, aws: AwsClients) -> None:
        aws.s3.create_bucket(Bucket=BUCKET)
        bulk_put(BUCKET, (f"small/{n:04d}" for n in range(1500)), OLD)

        with audit_requests() as audit:
            s3 = create_clients(AwsSettings(region="us-east-1")).s3
            keys = [listed.key for listed in list_current_objects(s3, BUCKET, "small/", workers=8)]

        assert len(keys) == len(set(keys)) == 1500
        assert len(audit.of("ListObjectsV2")) == 2


class TestVersions:
    def test_reports_when_each_noncurrent_version_was_superseded(self, aws: AwsClients) -> None:
        aws.s3.create_bucket(Bucket=BUCKET)
        aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        for body in (b"v1", b"v2", b"v3"):
            aws.s3.put_object(Bucket=BUCKET, Key="ver/a", Body=body)
        aws.s3.put_object(Bucket=BUCKET, Key="ver/b", Body=b"only")
        aws.s3.delete_object(Bucket=BUCKET, Key="ver/b")

        listed = list(list_object_versions(aws.s3, BUCKET, "ver/"))

        a = [entry for entry in listed if entry.key == "ver/a"]
        assert [entry.noncurrent_since is None for entry in a] == [True, False, False]
        assert a[1].noncurrent_since == a[0].last_modified
        assert a[2].noncurrent_since == a[1].last_modified
        b = [entry for entry in listed if entry.key == "ver/b"]
        assert [(entry.is_delete_marker, entry.noncurrent_since is None) for entry in b] == [
            (True, True),
            (False, False),
        ]
        assert b[1].noncurrent_since == b[0].last_modified


def versioned_bucket(aws: AwsClients, histories: dict[str, int], deleted: set[str]) -> str:
    """A versioned bucket where key p/NAME has `histories[NAME]` versions a day apart, oldest
    first, and a delete marker on top for the names in `deleted`."""
    bucket = next(BUCKETS)
    aws.s3.create_bucket(Bucket=bucket)
    aws.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for name, count in histories.items():
        key = f"p/{name}"
        bulk_put(bucket, [key] * count, OLD)
        if name in deleted:
            aws.s3.delete_object(Bucket=bucket, Key=key)
        moments = [OLD + timedelta(days=n) for n in range(count + (name in deleted))]
        backdate_versions(bucket, key, moments)
    bulk_put(bucket, ["p", "p-sibling/x", "o/\U0010ffff"], OLD)
    return bucket


def listed_in_ranges(
    s3: S3Client, bucket: str, shard_size: int, page_size: int, stop_after: int
) -> list[list[ListedObject]]:
    """The versions of p/ listed as the shards of a run list them: every shard splits when it
    can and stops once it has listed `stop_after` entries, handing its rest on."""
    queue = [Shard("p/")]
    pieces: list[list[ListedObject]] = []
    while queue:
        shard, rest, handed = queue.pop(0), Rest(None), []
        piece: list[ListedObject] = []
        pages = list_versions_shard(
            s3, {"Bucket": bucket}, shard, shard_size, lambda: 1, handed.append, page_size, rest
        )
        for page in pages:
            piece += page
            if rest.shard is not None and len(piece) >= stop_after:
                handed.append(rest.shard)
                break
        pieces.append(piece)
        queue += handed
    return pieces


def identity(entry: ListedObject) -> tuple[str, str | None]:
    return entry.key, entry.version_id


class TestVersionRanges:
    @settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        histories=st.dictionaries(
            st.text(LETTERS, min_size=1, max_size=6), st.integers(1, 4), max_size=25
        ),
        deleted_every=st.integers(2, 5),
        page_size=st.integers(1, 6),
        shard_size=st.integers(1, 20),
        stop_after=st.integers(1, 15),
    )
    def test_ranges_list_every_version_once_with_each_key_whole_and_its_serial_history(
        self,
        aws: AwsClients,
        histories: dict[str, int],
        deleted_every: int,
        page_size: int,
        shard_size: int,
        stop_after: int,
    ) -> None:
        deleted = set(sorted(histories)[::deleted_every])
        bucket = versioned_bucket(aws, histories, deleted)
        serial = list(list_object_versions(aws.s3, bucket, "p/"))

        pieces = listed_in_ranges(aws.s3, bucket, shard_size, page_size, stop_after)

        listed = [entry for piece in pieces for entry in piece]
        assert Counter(map(identity, listed)) == Counter(map(identity, serial))
        assert len(serial) == sum(histories.values()) + len(deleted)
        owners = Counter(key for piece in pieces for key in {entry.key for entry in piece})
        assert set(owners.values()) <= {1}  # a key's versions are never in two pieces
        history = {identity(entry): entry.noncurrent_since for entry in serial}
        assert {identity(entry): entry.noncurrent_since for entry in listed} == history

    def test_splits_a_large_prefix_at_current_keys_with_one_probe_a_split(
        self, aws: AwsClients
    ) -> None:
        bucket = versioned_bucket(aws, {f"{n:04d}": 2 for n in range(600)}, set())

        with audit_requests() as audit:
            s3 = create_clients(AwsSettings(region="us-east-1")).s3
            pieces = listed_in_ranges(s3, bucket, 100, 100, 10_000)

        assert sum(map(len, pieces)) == 1200 and len(pieces) >= 3
        probes = audit.of("ListObjectsV2")
        pages = audit.of("ListObjectVersions")
        # A range starts, and a page goes on, only after a key that exists: servers differ on
        # a KeyMarker that is no key.
        markers = {call.params["KeyMarker"] for call in pages if "KeyMarker" in call.params}
        assert markers <= {f"p/{n:04d}" for n in range(600)}
        assert len(pieces) - 1 <= len(probes) and all(c.params["MaxKeys"] == 1 for c in probes)
        # 12 pages of 100 versions, plus one a range for the page that crosses its end.
        assert 12 <= len(pages) <= 12 + len(pieces)

    def test_refuses_a_key_whose_latest_version_the_server_left_out(self, aws: AwsClients) -> None:
        bucket = versioned_bucket(aws, {"a": 1, "b": 3}, set())

        # moto answers a KeyMarker that is no key without the next key's newest version.
        with pytest.raises(AwsApiError, match="without its latest one"):
            list(list_object_versions(aws.s3, bucket, "p/", start_after="p/a0"))
