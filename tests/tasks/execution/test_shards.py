"""Shards as a worker runs them, against moto: planned parts that cover the prefix exactly once,
and parts applied only while the run holds the bucket and only as they were planned."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from tasks.aws import AwsClients, AwsSettings
from tasks.cleanup import PlanRequest, plan_cleanup
from tasks.errors import ConfigError, SafetyRefusal
from tasks.execution.shards import (
    ApplyOrder,
    PartApplier,
    PartPlan,
    ShardedPlan,
    ShardOrder,
    apply_part,
    check_unchanged,
    journal_beside,
    plan_in_shards,
    plan_part,
    saved_in_shards,
)
from tasks.s3.bucket_lock import BucketLock, LockLost, new_lease
from tasks.s3.deletion import ApplyResult
from tasks.s3.listing import Shard
from tasks.s3.manifest import PlanTarget, isoformat, read_objects
from tasks.s3.plan_index import Part
from tests.support.audit import audit_requests
from tests.support.inventory import CREATED, VERSIONS_FIELDS, put_inventory, row
from tests.support.moto_backend import backdate_versions, bulk_put

BUCKET = "sharded-bucket"
AS_OF = datetime.now(UTC).replace(microsecond=0)
CUTOFF = AS_OF - timedelta(days=30)
AWS = AwsSettings(region="us-east-1")
TARGET = PlanTarget(BUCKET, "us-east-1", "data/", isoformat(CUTOFF), isoformat(AS_OF))


def fill(aws: AwsClients, per_folder: int, flat: int) -> set[str]:
    """Two folders of `per_folder` old keys and a flat part of `flat` keys, half of them old,
    under data/, and an old key beside it; returns the old keys under data/."""
    aws.s3.create_bucket(Bucket=BUCKET)
    old = {f"data/day-{d}/k{n:04d}" for d in (1, 2) for n in range(per_folder)}
    old |= {f"data/flat-{n:06d}" for n in range(0, flat, 2)}
    bulk_put(BUCKET, sorted(old | {"data-keep/old"}), AS_OF - timedelta(days=60))
    bulk_put(BUCKET, [f"data/flat-{n:06d}" for n in range(1, flat, 2)], AS_OF)
    return old


@pytest.fixture
def filled(aws: AwsClients) -> set[str]:
    """Folders and a flat part under data/, old and young, and old keys beside it."""
    return fill(aws, per_folder=1100, flat=8000)


def plan_everything(location: Path) -> list[PartPlan]:
    """Run the shards as the parent would, one after another, each follow-up in turn."""
    queue = [(Shard("data/", delimited=True), True)]
    planned: list[PartPlan] = []
    while queue:
        shard, first = queue.pop(0)
        order = ShardOrder(
            shard,
            AWS,
            TARGET,
            CUTOFF,
            str(location),
            f"parts/p{len(planned):04d}.jsonl.gz",
            shard_size=1000,
            may_split=True,
            first=first,
        )
        planned.append(plan_part(order))
        queue += [(follow_up, False) for follow_up in planned[-1].follow_ups]
    return planned


class TestPlanningInShards:
    def test_every_old_key_is_in_exactly_one_part_when_the_prefix_is_split(
        self, filled: set[str], tmp_path: Path
    ) -> None:
        planned = plan_everything(tmp_path)

        keys = Counter(
            entry.key for part in planned for entry in read_objects(Path(part.part.location))
        )
        assert set(keys) == filled and set(keys.values()) == {1}
        assert sum(part.part.matched for part in planned) == len(filled)
        assert sum(part.part.scanned for part in planned) == len(filled) + 4000
        # The flat part was cut into key ranges, and the folders became shards of their own.
        ranges = [s for p in planned for s in p.follow_ups if s.keys.start_after is not None]
        assert len(ranges) >= 3
        assert {"data/day-1/", "data/day-2/"} <= {s.prefix for p in planned for s in p.follow_ups}

    def test_a_shard_lists_at_most_about_its_size_before_handing_the_rest_on(
        self, filled: set[str], tmp_path: Path
    ) -> None:
        order = ShardOrder(
            Shard("data/flat-"),
            AWS,
            TARGET,
            CUTOFF,
            str(tmp_path),
            "one.jsonl.gz",
            shard_size=1000,
            may_split=False,
        )

        planned = plan_part(order)

        assert planned.part.scanned == 1000
        assert [s.keys.start_after for s in planned.follow_ups] == ["data/flat-000999"]


class TestApplyingAPart:
    def part(self, tmp_path: Path) -> Part:
        planned = plan_part(
            ShardOrder(
                Shard("data/day-1/"),
                AWS,
                TARGET,
                CUTOFF,
                str(tmp_path),
                "a.jsonl.gz",
                shard_size=100_000,
                may_split=False,
            )
        )
        return planned.part

    def order(self, part: Part, tmp_path: Path, run_id: str = "run-holding") -> ApplyOrder:
        journal = str(tmp_path / BUCKET / "a.journal.jsonl")
        return ApplyOrder(part, AWS, TARGET, journal, run_id, 4, 60)

    def test_deletes_exactly_its_part_while_the_run_holds_the_bucket(
        self, aws: AwsClients, filled: set[str], tmp_path: Path
    ) -> None:
        part = self.part(tmp_path)

        with BucketLock(aws.s3, BUCKET, new_lease("run-holding", "data/", 600)):
            applied = apply_part(self.order(part, tmp_path))

        assert (applied.result.planned, applied.result.deleted) == (1100, 1100)
        pages = aws.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="data/day")
        left = {entry["Key"] for page in pages for entry in page.get("Contents", [])}
        assert left == {key for key in filled if key.startswith("data/day-2/")}
        assert (tmp_path / BUCKET / "a.journal.jsonl").is_file()

    def test_deletes_nothing_when_another_run_holds_the_bucket(
        self, aws: AwsClients, filled: set[str], tmp_path: Path
    ) -> None:
        part = self.part(tmp_path)

        with (
            BucketLock(aws.s3, BUCKET, new_lease("run-other", "data/", 600)),
            audit_requests() as audit,
            pytest.raises(LockLost, match="run-other"),
        ):
            apply_part(self.order(part, tmp_path))

        assert audit.of("DeleteObjects") == []

    def test_refuses_a_part_changed_since_it_was_planned(
        self, aws: AwsClients, filled: set[str], tmp_path: Path
    ) -> None:
        part = self.part(tmp_path)
        Path(part.location).write_bytes(Path(part.location).read_bytes() + b"\n")

        with (
            BucketLock(aws.s3, BUCKET, new_lease("run-holding", "data/", 600)),
            audit_requests() as audit,
            pytest.raises(SafetyRefusal, match="changed after it was checked"),
        ):
            apply_part(self.order(part, tmp_path))

        assert audit.of("DeleteObjects") == []


@flow
def planned_on_threads(request: PlanRequest, scratch: Path) -> ShardedPlan:
    """The run's side of planning in shards, with Prefect's thread pool as the cluster."""
    from tasks.aws import create_clients

    with ThreadPoolTaskRunner(max_workers=3) as runner:
        return plan_in_shards(runner, AWS, request, scratch, create_clients(AWS).s3, 3)


@pytest.mark.usefixtures("prefect_harness")
class TestTheRunsSide:
    def request(self, tmp_path: Path, target: PlanTarget = TARGET) -> PlanRequest:
        return PlanRequest(target, CUTOFF, str(tmp_path / "plans"), "run.jsonl.gz", shard_size=1000)

    def test_the_index_holds_every_part_once_and_their_totals_when_the_prefix_is_split(
        self, filled: set[str], tmp_path: Path
    ) -> None:
        scratch = tmp_path / "scratch"
        scratch.mkdir()

        plan = planned_on_threads(self.request(tmp_path), scratch)

        keys = Counter(e.key for part in plan.parts for e in read_objects(Path(part.location)))
        assert set(keys) == filled and set(keys.values()) == {1}
        assert plan.summary.matched == len(filled) and len(plan.parts) > 3
        assert plan.summary.manifest.endswith(f"{BUCKET}/run.index.jsonl")
        assert len(plan.summary.first_rows) == 20

    def test_reads_one_data_file_a_shard_when_planned_from_an_inventory(
        self, aws: AwsClients, tmp_path: Path
    ) -> None:
        aws.s3.create_bucket(Bucket=BUCKET)
        old = "2025-06-01T12:00:00.000Z"
        written = put_inventory(
            aws.s3,
            BUCKET,
            BUCKET,
            [
                [row("data/a", LastModifiedDate=old), row("data-keep/x", LastModifiedDate=old)],
                [row("data/b", LastModifiedDate=old), row("data/c", LastModifiedDate=old)],
            ],
            destination_prefix="inventories",
        )
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        target = PlanTarget(**{**TARGET.__dict__, "inventory": written.manifest_uri})

        with audit_requests() as audit:
            plan = planned_on_threads(self.request(tmp_path, target), scratch)

        assert sorted(part.matched for part in plan.parts) == [1, 2]
        assert plan.summary.target.inventory_created == isoformat(CREATED)
        assert audit.of("ListObjectsV2") == []

    def test_refuses_a_row_repeated_in_two_data_files_before_any_part_is_applied(
        self, aws: AwsClients, tmp_path: Path
    ) -> None:
        aws.s3.create_bucket(Bucket=BUCKET)
        old = "2025-06-01T12:00:00.000Z"
        rows = [row("data/a", LastModifiedDate=old), row("data/b", LastModifiedDate=old)]
        written = put_inventory(
            aws.s3, BUCKET, BUCKET, [rows, rows[1:]], destination_prefix="inventories"
        )
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        target = PlanTarget(**{**TARGET.__dict__, "inventory": written.manifest_uri})

        with pytest.raises(SafetyRefusal, match="more than once"):
            planned_on_threads(self.request(tmp_path, target), scratch)

    def test_reads_every_data_file_in_one_shard_when_planned_for_versions(
        self, aws: AwsClients, tmp_path: Path
    ) -> None:
        aws.s3.create_bucket(Bucket=BUCKET)
        old = "2025-06-01T12:00:00.000Z"
        versions = {"IsLatest": "false", "LastModifiedDate": old}
        written = put_inventory(
            aws.s3,
            BUCKET,
            BUCKET,
            [
                [
                    row("data/b", VersionId="b1", **versions),
                    row("data/a", VersionId="a1", **versions),
                ],
                [row("data/a", VersionId="a2", LastModifiedDate=old)],
            ],
            fields=VERSIONS_FIELDS,
            destination_prefix="inventories",
        )
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        target = PlanTarget(
            **{**TARGET.__dict__, "inventory": written.manifest_uri, "versions": "all"}
        )

        plan = planned_on_threads(self.request(tmp_path, target), scratch)

        (part,) = plan.parts  # a key's versions in two files: read by one shard, in key order
        planned = [(e.key, e.version_id) for e in read_objects(Path(part.location))]
        assert planned == [("data/a", "a1"), ("data/a", "a2"), ("data/b", "b1")]
        assert plan.summary.unrecoverable_keys == 2

    def test_a_second_apply_of_a_saved_plan_leaves_out_the_parts_already_applied(
        self, aws: AwsClients, filled: set[str], tmp_path: Path
    ) -> None:
        (tmp_path / "scratch").mkdir()
        (tmp_path / "again").mkdir()
        plan = planned_on_threads(self.request(tmp_path), tmp_path / "scratch")
        applied = [part for part in plan.parts if part.matched][:2]
        with BucketLock(aws.s3, BUCKET, new_lease("run-first", "data/", 600)):
            for part in applied:
                apply_part(ApplyOrder(part, AWS, TARGET, journal_beside(part), "run-first", 4, 60))

        again = saved_in_shards(
            aws.s3, plan.summary.manifest, self.request(tmp_path), tmp_path / "again"
        )

        assert [p.location for p in again.parts] == [
            p.location for p in plan.parts if p not in applied
        ]
        assert again.summary.matched == plan.summary.matched == len(filled)

    def test_refuses_a_plan_made_in_one_process_when_applied_in_shards(
        self, aws: AwsClients, tmp_path: Path
    ) -> None:
        aws.s3.create_bucket(Bucket=BUCKET)
        single = plan_part(
            ShardOrder(
                Shard("data/"), AWS, TARGET, CUTOFF, str(tmp_path), "one.jsonl.gz", 1000, False
            )
        )

        with pytest.raises(ConfigError, match="made in one process"):
            saved_in_shards(aws.s3, single.part.location, self.request(tmp_path), tmp_path)

    def test_outcomes_known_when_stopped_early_are_the_applied_parts_and_the_rest_unknown(
        self, aws: AwsClients, filled: set[str], tmp_path: Path
    ) -> None:
        (tmp_path / "scratch").mkdir()
        plan = planned_on_threads(self.request(tmp_path), tmp_path / "scratch")
        parts = [part for part in plan.parts if part.matched]
        tampered = parts[0]
        Path(tampered.location).write_bytes(Path(tampered.location).read_bytes() + b"\n")

        with BucketLock(aws.s3, BUCKET, new_lease("run-holding", "data/", 600)):
            settled = applied_on_threads(parts)

        assert settled.planned == len(filled)
        assert settled.deleted == len(filled) - tampered.matched
        assert settled.failed == settled.skipped_changed == 0  # the tampered part: no outcome


def edit_index(path: Path, change: Callable[[list[dict[str, Any]]], None]) -> None:
    """Rewrite a plan index (header, parts, totals) with `change`; the totals are then made the
    parts' sums again, so only what `change` did is wrong."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    parts = records[1:-1]
    change(parts)
    sums = {
        name: sum(part["part"][name] for part in parts)
        for name in ("scanned", "matched", "matched_bytes", "unrecoverable_keys")
    }
    path.write_text("".join(json.dumps(r) + "\n" for r in [records[0], *parts, {"end": sums}]))


def rewrite_part(part: dict[str, Any], change: Callable[[list[str]], list[str]]) -> None:
    """Rewrite a part's plan file with `change` (its gzip lines) and give the index its new
    digest: a part that checks out by its digest."""
    location = Path(part["part"]["location"])
    lines = gzip.decompress(location.read_bytes()).decode().splitlines()
    location.write_bytes(gzip.compress(("\n".join(change(lines)) + "\n").encode()))
    part["part"]["sha256"] = hashlib.sha256(location.read_bytes()).hexdigest()


@pytest.mark.usefixtures("prefect_harness")
class TestASavedIndexIsVerifiedWhole:
    """Every part of a saved plan made in shards is read and checked by the run before the
    first part goes to a worker: its digest, its lines, and the counts the index gives it."""

    @pytest.fixture
    def filled(self, aws: AwsClients) -> set[str]:
        """The module's bucket, smaller: each test plans it anew."""
        return fill(aws, per_folder=150, flat=400)

    @pytest.fixture
    def saved(self, filled: set[str], tmp_path: Path) -> tuple[ShardedPlan, PlanRequest]:
        (tmp_path / "scratch").mkdir()
        (tmp_path / "again").mkdir()
        request = PlanRequest(
            TARGET, CUTOFF, str(tmp_path / "plans"), "run.jsonl.gz", shard_size=100
        )
        return planned_on_threads(request, tmp_path / "scratch"), request

    def refusal(
        self, aws: AwsClients, plan: ShardedPlan, request: PlanRequest, tmp_path: Path
    ) -> SafetyRefusal:
        with audit_requests() as audit, pytest.raises(SafetyRefusal) as refused:
            saved_in_shards(aws.s3, plan.summary.manifest, request, tmp_path / "again")
        assert audit.of("DeleteObjects") == []
        return refused.value

    def test_refuses_an_index_whose_count_for_a_part_is_not_the_parts(
        self, aws: AwsClients, saved: tuple[ShardedPlan, PlanRequest], tmp_path: Path
    ) -> None:
        plan, request = saved

        def claim_one(parts: list[dict[str, Any]]) -> None:
            big = next(part for part in parts if part["part"]["matched"] > 50)
            big["part"]["matched"] = 1

        edit_index(Path(plan.summary.manifest), claim_one)
        refused = self.refusal(aws, plan, request, tmp_path)

        assert refused.guard == "plan_complete"
        assert "part" in str(refused)

    def test_refuses_an_index_that_names_a_part_twice(
        self, aws: AwsClients, saved: tuple[ShardedPlan, PlanRequest], tmp_path: Path
    ) -> None:
        plan, request = saved
        edit_index(Path(plan.summary.manifest), lambda parts: parts.append(parts[1]))

        refused = self.refusal(aws, plan, request, tmp_path)

        assert refused.guard == "plan_entries"

    def test_refuses_two_parts_that_name_one_object(
        self, aws: AwsClients, saved: tuple[ShardedPlan, PlanRequest], tmp_path: Path
    ) -> None:
        plan, request = saved

        def copy_a_line(parts: list[dict[str, Any]]) -> None:
            with_lines = [part for part in parts if part["part"]["matched"]]
            line = gzip.decompress(Path(with_lines[0]["part"]["location"]).read_bytes())
            taken = json.loads(line.decode().splitlines()[1])

            def add(lines: list[str]) -> list[str]:
                totals = json.loads(lines[-1])
                totals["matched"] += 1
                totals["scanned"] += 1
                totals["matched_bytes"] += taken["size"]
                return [*lines[:-1], json.dumps(taken), json.dumps(totals)]

            rewrite_part(with_lines[1], add)
            for count in ("matched", "scanned"):
                with_lines[1]["part"][count] += 1
            with_lines[1]["part"]["matched_bytes"] += taken["size"]

        edit_index(Path(plan.summary.manifest), copy_a_line)
        refused = self.refusal(aws, plan, request, tmp_path)

        assert (refused.guard, "more than once" in str(refused)) == ("plan_entries", True)

    def test_refuses_before_any_delete_when_a_later_part_changed_since_it_was_planned(
        self, aws: AwsClients, saved: tuple[ShardedPlan, PlanRequest], tmp_path: Path
    ) -> None:
        plan, request = saved
        last = [part for part in plan.parts if part.matched][-1]
        Path(last.location).write_bytes(Path(last.location).read_bytes() + b"\n")

        refused = self.refusal(aws, plan, request, tmp_path)

        assert refused.guard == "plan_digest"

    def test_the_totals_shown_are_the_sums_of_the_parts_read(
        self,
        aws: AwsClients,
        saved: tuple[ShardedPlan, PlanRequest],
        filled: set[str],
        tmp_path: Path,
    ) -> None:
        plan, request = saved

        again = saved_in_shards(aws.s3, plan.summary.manifest, request, tmp_path / "again")

        assert (again.summary.matched, len(again.parts)) == (len(filled), len(plan.parts))


@pytest.mark.usefixtures("prefect_harness")
class TestAPartChangedSinceItWasChecked:
    @pytest.fixture
    def filled(self, aws: AwsClients) -> set[str]:
        """The module's bucket, smaller (as for the saved index): a part is a part at any size."""
        return fill(aws, per_folder=150, flat=400)

    def request(self, tmp_path: Path) -> PlanRequest:
        return PlanRequest(TARGET, CUTOFF, str(tmp_path / "plans"), "run.jsonl.gz", shard_size=100)

    def test_is_refused_before_any_part_is_sent_when_read_again(
        self, aws: AwsClients, filled: set[str], tmp_path: Path
    ) -> None:
        (tmp_path / "scratch").mkdir()
        plan = planned_on_threads(self.request(tmp_path), tmp_path / "scratch")
        last = [part for part in plan.parts if part.matched][-1]
        check_unchanged(aws.s3, plan.parts, tmp_path)
        Path(last.location).write_bytes(Path(last.location).read_bytes() + b"\n")

        with pytest.raises(SafetyRefusal, match="changed after it was checked"):
            check_unchanged(aws.s3, plan.parts, tmp_path)

    def test_its_objects_fail_by_the_guard_and_the_other_parts_stand_when_its_worker_refuses_it(
        self, aws: AwsClients, filled: set[str], tmp_path: Path
    ) -> None:
        (tmp_path / "scratch").mkdir()
        plan = planned_on_threads(self.request(tmp_path), tmp_path / "scratch")
        parts = [part for part in plan.parts if part.matched]
        assert len(parts) > 1
        changed = parts[0]
        Path(changed.location).write_bytes(Path(changed.location).read_bytes() + b"\n")

        with BucketLock(aws.s3, BUCKET, new_lease("run-holding", "data/", 600)):
            result = all_applied_on_threads(parts)

        assert (result.planned, result.deleted) == (len(filled), len(filled) - changed.matched)
        assert result.failed_by_code == Counter({"plan_digest": changed.matched})


@flow
def all_applied_on_threads(parts: list[Part]) -> ApplyResult:
    """Parts applied by Prefect's thread pool, every outcome read (as a run that goes on)."""
    with ThreadPoolTaskRunner(max_workers=2) as runner:
        applier = PartApplier(runner, AWS, TARGET, "run-holding", 4, 60)
        for part in parts:
            applier.submit(part)
        result, _, _ = applier.results()
        return result


@flow
def applied_on_threads(parts: list[Part]) -> ApplyResult:
    """Parts applied by Prefect's thread pool, then the outcomes known (as when stopped)."""
    with ThreadPoolTaskRunner(max_workers=2) as runner:
        applier = PartApplier(runner, AWS, TARGET, "run-holding", 4, 60)
        for part in parts:
            applier.submit(part)
        for future in applier.futures:
            future.wait()
        return applier.settled()


VERSIONS_TARGET = PlanTarget(
    BUCKET, "us-east-1", "data/", isoformat(CUTOFF), isoformat(AS_OF), versions="noncurrent"
)


@pytest.fixture
def histories(aws: AwsClients) -> dict[str, int]:
    """A versioned bucket: 1200 keys under data/ with three versions each, superseded long
    ago, and 120 whose only data is noncurrent (a delete marker on top); returns how many
    versions each key has (markers included)."""
    aws.s3.create_bucket(Bucket=BUCKET)
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    counts: dict[str, int] = {}
    for n in range(1200):
        key = f"data/k{n:04d}"
        bulk_put(BUCKET, [key] * 3, AS_OF)
        if n % 10 == 0:
            aws.s3.delete_object(Bucket=BUCKET, Key=key)
        counts[key] = 3 + (n % 10 == 0)
        backdate_versions(BUCKET, key, [AS_OF - timedelta(days=90 - d) for d in range(counts[key])])
    return counts


@pytest.mark.usefixtures("prefect_harness")
class TestVersionsInShards:
    def request(self, tmp_path: Path) -> PlanRequest:
        return PlanRequest(
            VERSIONS_TARGET, CUTOFF, str(tmp_path / "plans"), "run.jsonl.gz", shard_size=100
        )

    def test_parts_keep_each_key_whole_and_plan_what_one_process_plans(
        self, aws: AwsClients, histories: dict[str, int], tmp_path: Path
    ) -> None:
        (tmp_path / "scratch").mkdir()
        single = plan_cleanup(aws.s3, VERSIONS_TARGET, CUTOFF, tmp_path / "single.jsonl.gz")

        plan = planned_on_threads(self.request(tmp_path), tmp_path / "scratch")

        parts = [list(read_objects(Path(part.location))) for part in plan.parts]
        in_parts = Counter(key for part in parts for key in {entry.key for entry in part})
        assert len(plan.parts) > 3 and set(in_parts.values()) == {1}
        planned = sorted((e.key, e.version_id) for part in parts for e in part)
        assert planned == sorted((e.key, e.version_id) for e in read_objects(single.path))
        assert (plan.summary.scanned, plan.summary.matched) == (single.scanned, single.matched)
        # The 120 deleted keys lose their last data: counted in the parts, summed in the index.
        assert plan.summary.unrecoverable_keys == single.unrecoverable_keys == 120

    def test_keeps_a_version_whose_key_was_undeleted_after_the_plan(
        self, aws: AwsClients, histories: dict[str, int], tmp_path: Path
    ) -> None:
        (tmp_path / "scratch").mkdir()
        plan = planned_on_threads(self.request(tmp_path), tmp_path / "scratch")
        # Undelete data/k0150: its newest version is current again, so it must stay.
        markers = aws.s3.list_object_versions(Bucket=BUCKET, Prefix="data/k0150")["DeleteMarkers"]
        aws.s3.delete_object(Bucket=BUCKET, Key="data/k0150", VersionId=markers[0]["VersionId"])

        with BucketLock(aws.s3, BUCKET, new_lease("run-holding", "data/", 600)):
            applied = [
                apply_part(
                    ApplyOrder(
                        part, AWS, VERSIONS_TARGET, journal_beside(part), "run-holding", 4, 60
                    )
                ).result
                for part in plan.parts
                if part.matched
            ]

        assert sum(result.skipped_changed for result in applied) == 1
        assert sum(result.deleted for result in applied) == plan.summary.matched - 1
        pages = aws.s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET, Prefix="data/")
        left = [(v["Key"], v["IsLatest"]) for page in pages for v in page.get("Versions", [])]
        # Every key keeps its current version, the undeleted one included; a deleted key
        # keeps only its delete marker.
        assert sorted(left) == [(f"data/k{n:04d}", True) for n in range(1200) if n % 10 or n == 150]
