"""A plan from a file confirmed against a fresh listing: only what a listing now would plan goes,
with few requests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tasks.aws import AwsClients, AwsSettings, create_clients
from tasks.s3.confirmation import confirmed, just_before
from tasks.s3.manifest import PlannedObject, isoformat
from tests.support.audit import audit_requests
from tests.support.moto_backend import bulk_put

BUCKET = "confirmed-bucket"
NOW = datetime.now(UTC).replace(microsecond=0)
CUTOFF = NOW - timedelta(days=30)
OLD = NOW - timedelta(days=60)
#: The ETag of an empty object (bulk_put's), as listings quote it.
EMPTY_ETAG = '"d41d8cd98f00b204e9800998ecf8427e"'


def line(key: str, last_modified: datetime = OLD) -> PlannedObject:
    return PlannedObject(key, EMPTY_ETAG, 0, isoformat(last_modified), "STANDARD")


def confirm(
    aws: AwsClients, planned: list[PlannedObject], prefix: str = "p/"
) -> tuple[list[str], list[str], list[str]]:
    """The keys sent, those gone already, those changed."""
    gone: list[PlannedObject] = []
    changed: list[PlannedObject] = []
    sent = confirmed(aws.s3, BUCKET, prefix, None, CUTOFF, planned, gone.append, changed.append)
    return [e.key for e in sent], [e.key for e in gone], [e.key for e in changed]


def new_clients() -> AwsClients:
    """Clients made now (an audit sees the requests of clients made inside it)."""
    return create_clients(AwsSettings(region="us-east-1"))


@pytest.fixture
def bucket(aws: AwsClients) -> AwsClients:
    aws.s3.create_bucket(Bucket=BUCKET)
    return aws


class TestWhatGoes:
    def test_sends_the_planned_objects_a_listing_now_shows_old_and_unchanged(
        self, bucket: AwsClients
    ) -> None:
        bulk_put(BUCKET, ["p/a", "p/b", "p/c"], OLD)

        assert confirm(bucket, [line("p/c"), line("p/a")]) == (["p/c", "p/a"], [], [])

    def test_keeps_an_object_written_since_the_cutoff_whatever_date_its_line_gives(
        self, bucket: AwsClients
    ) -> None:
        bulk_put(BUCKET, ["p/old"], OLD)
        bulk_put(BUCKET, ["p/today"], NOW)

        assert confirm(bucket, [line("p/old"), line("p/today")]) == (["p/old"], [], ["p/today"])

    def test_keeps_an_object_whose_etag_or_size_is_not_the_lines(self, bucket: AwsClients) -> None:
        bulk_put(BUCKET, ["p/a", "p/b", "p/c"], OLD)
        planned = [line("p/a"), replace(line("p/b"), etag='"other"'), replace(line("p/c"), size=1)]

        assert confirm(bucket, planned) == (["p/a"], [], ["p/b", "p/c"])

    def test_counts_an_object_no_longer_there_as_gone_already(self, bucket: AwsClients) -> None:
        bulk_put(BUCKET, ["p/a"], OLD)

        assert confirm(bucket, [line("p/a"), line("p/deleted-since")]) == (
            ["p/a"],
            ["p/deleted-since"],
            [],
        )

    def test_never_sends_a_key_outside_the_prefix_or_the_tools_own_folder(
        self, bucket: AwsClients
    ) -> None:
        bulk_put(BUCKET, ["p/a", "q/a"], OLD)

        sent, gone, _ = confirm(bucket, [line("p/a"), line("q/a")])

        assert (sent, gone) == (["p/a"], ["q/a"])  # the listing of p/ never shows q/a


class TestRequests:
    def test_one_request_a_batch_when_the_planned_keys_lie_together(
        self, bucket: AwsClients
    ) -> None:
        keys = [f"p/k{n:05d}" for n in range(2500)]
        bulk_put(BUCKET, keys, OLD)
        bulk_put(BUCKET, [f"p/a{n:05d}" for n in range(3000)], NOW)  # before them, not planned

        with audit_requests() as audit:
            sent, _, _ = confirm(new_clients(), [line(key) for key in keys])

        assert len(sent) == 2500
        assert len(audit.of("ListObjectsV2")) == 3  # ceil(2500 / 1000)

    def test_skips_the_gap_between_two_runs_of_planned_keys(self, bucket: AwsClients) -> None:
        bulk_put(BUCKET, [f"p/k{n:05d}" for n in range(5000)], OLD)
        planned = [f"p/k{n:05d}" for n in (*range(0, 10), *range(4000, 4010))]

        with audit_requests() as audit:
            sent, _, _ = confirm(new_clients(), [line(key) for key in planned])

        assert sorted(sent) == planned
        starts = [call.params.get("StartAfter") for call in audit.of("ListObjectsV2")]
        assert len(starts) == 2 and all(starts)


KEY_CHARACTERS = st.characters(
    codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="\x00"
)


@hypothesis_settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    names=st.sets(st.text(KEY_CHARACTERS, min_size=1, max_size=6), min_size=1, max_size=60),
    data=st.data(),
)
def test_finds_exactly_the_planned_keys_that_exist_whatever_they_hold(
    bucket: AwsClients, names: set[str], data: st.DataObject
) -> None:
    # Keys with "/", é, 中 and the last code point; some planned, some of those deleted since.
    existing = {f"h/{name}" for name in names}
    planned = data.draw(st.sets(st.sampled_from(sorted(existing)), max_size=len(existing)))
    deleted = data.draw(st.sets(st.sampled_from(sorted(existing)), max_size=len(existing)))
    bulk_put(BUCKET, sorted(existing - deleted), OLD)
    try:
        sent, gone, changed = confirm(bucket, [line(key) for key in planned], prefix="h/")
    finally:
        for key in existing:
            bucket.s3.delete_object(Bucket=BUCKET, Key=key)

    assert sorted(sent) == sorted(planned - deleted)
    assert sorted(gone) == sorted(planned & deleted)
    assert changed == []


@given(st.text(KEY_CHARACTERS, min_size=1, max_size=20))
def test_a_start_just_before_a_key_is_below_it_and_above_its_prefix(name: str) -> None:
    key = f"h/{name}"

    start = just_before(key, "h/")

    assert start is None or "h/" < start < key
    assert start is None or len(start.encode("utf-8")) <= 1024
