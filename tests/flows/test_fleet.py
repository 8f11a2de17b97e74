"""The s3_housekeeping_fleet flow in-process: every target's child run, the report, the worst."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from flows.cli import main
from flows.fleet import s3_housekeeping_fleet
from tasks.aws import AwsClients
from tasks.errors import ConfigError, FleetFailure
from tests.support.approval import APPROVER, answer, resume_when_paused
from tests.support.audit import audit_requests
from tests.support.hooks import on_every_new_client
from tests.support.inventory import put_inventory, row
from tests.support.moto_backend import bulk_put

pytestmark = pytest.mark.usefixtures("prefect_harness")

OLD = datetime.now(UTC) - timedelta(days=400)
YOUNG = datetime.now(UTC) - timedelta(days=2)
ROLE = "arn:aws:iam::123456789012:role/s3-housekeeping-other-account"
BUCKETS = {"fleet-build-cache": "us-east-1", "fleet-logs": "eu-west-1", "fleet-ml": "us-east-1"}


@pytest.fixture
def fleet_buckets(aws: AwsClients) -> None:
    """Three buckets (one in eu-west-1), each with old and young objects under tmp/ and old
    ones beside it."""
    for bucket, region in BUCKETS.items():
        s3 = boto3.client("s3", region_name=region)
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
            )
        bulk_put(bucket, (f"tmp/old-{n}" for n in range(25)), OLD)
        bulk_put(bucket, (f"tmp/young-{n}" for n in range(5)), YOUNG)
        bulk_put(bucket, (f"tmp-keep/old-{n}" for n in range(5)), OLD)


def targets_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "targets.yaml"
    path.write_text(text)
    return str(path)


THREE_TARGETS = f"""\
defaults:
  older_than_days: 30
  create_bucket: false
targets:
  - bucket: fleet-build-cache
    prefix: tmp/
  - bucket: fleet-logs
    prefix: tmp/
    region: eu-west-1
  - name: ml-scratch
    bucket: fleet-ml
    prefix: tmp/
    role_arn: {ROLE}
"""


def left(bucket: str) -> set[str]:
    s3 = boto3.client("s3", region_name=BUCKETS[bucket])
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {entry["Key"] for page in pages for entry in page.get("Contents", [])}


def expected_left() -> set[str]:
    return {f"tmp/young-{n}" for n in range(5)} | {f"tmp-keep/old-{n}" for n in range(5)}


class TestEveryTarget:
    def test_deletes_exactly_the_old_objects_of_each_target_when_executed(
        self, fleet_buckets: None, tmp_path: Path
    ) -> None:
        with audit_requests() as audit:
            report = s3_housekeeping_fleet(
                targets=targets_file(tmp_path, THREE_TARGETS), dry_run=False
            )

        assert (report.status, report.exit_code, report.worst_target) == ("completed", 0, None)
        assert [o.name for o in report.targets] == [
            "fleet-build-cache/tmp/",
            "fleet-logs/tmp/",
            "ml-scratch",
        ]
        for outcome in report.targets:
            assert (outcome.status, outcome.exit_code) == ("completed", 0)
            assert (outcome.counts["matched"], outcome.counts["deleted"]) == (25, 25)
            assert outcome.flow_run_id is not None  # the child run, linked
            assert left(outcome.bucket) == expected_left()
        assert report.totals["deleted"] == 75 and report.totals["targets"] == 3
        # The third target went through the assumed role, the second to its own region.
        assumed = [call for call in audit.of("AssumeRole") if call.params["RoleArn"] == ROLE]
        assert len(assumed) == 1
        assert [o.region for o in report.targets] == ["us-east-1", "eu-west-1", "us-east-1"]

    def test_deletes_nothing_when_the_fleet_is_a_dry_run(
        self, fleet_buckets: None, tmp_path: Path
    ) -> None:
        with audit_requests() as audit:
            report = s3_housekeeping_fleet(targets=targets_file(tmp_path, THREE_TARGETS))

        assert report.status == "dry_run"
        assert [o.counts["matched"] for o in report.targets] == [25, 25, 25]
        assert audit.of("DeleteObjects") == []
        assert all(len(left(bucket)) == 35 for bucket in BUCKETS)

    def test_each_target_applies_its_own_retention_rules_when_it_has_some(
        self, fleet_buckets: None, tmp_path: Path
    ) -> None:
        """Rules are target fields like any parameter: the first keeps its 7 newest (5 young,
        so 2 old), the second excludes old-1 and old-10 to old-19, the third has none."""
        text = THREE_TARGETS.replace(
            "  - bucket: fleet-build-cache\n    prefix: tmp/\n",
            "  - bucket: fleet-build-cache\n    prefix: tmp/\n    keep_newest: 7\n",
        ).replace("    region: eu-west-1\n", "    region: eu-west-1\n    exclude: ['old-1*']\n")

        report = s3_housekeeping_fleet(targets=targets_file(tmp_path, text), dry_run=False)

        assert report.status == "completed", report.targets
        assert [o.counts["deleted"] for o in report.targets] == [23, 14, 25]
        excluded = {"tmp/old-1", *(f"tmp/old-1{n}" for n in range(10))}
        assert left("fleet-logs") == expected_left() | excluded
        assert left("fleet-ml") == expected_left()

    def test_runs_only_the_group_asked_for_when_a_group_is_given(
        self, fleet_buckets: None, tmp_path: Path
    ) -> None:
        region = "    region: eu-west-1\n"
        text = THREE_TARGETS.replace(region, region + "    group: hourly\n")

        report = s3_housekeeping_fleet(
            targets=targets_file(tmp_path, text), dry_run=False, group="hourly"
        )

        assert [o.name for o in report.targets] == ["fleet-logs/tmp/"]
        assert left("fleet-logs") == expected_left()
        assert len(left("fleet-build-cache")) == 35


@contextmanager
def access_denied_on(bucket: str) -> Iterator[None]:
    """AccessDenied for every S3 call naming `bucket`, as AWS answers a role without rights."""

    def deny(params: dict[str, Any], **_: Any) -> Any:
        url = params.get("url", "")  # the request: virtual-hosted (bucket.s3...) or path style
        if f"//{bucket}." not in url and f"/{bucket}/" not in url and not url.endswith(bucket):
            return None
        response = AWSResponse(url="", status_code=403, headers={}, raw=None)
        return response, {
            "Error": {"Code": "AccessDenied", "Message": "injected"},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }

    with on_every_new_client([("before-call.s3", deny)]):
        yield


class TestOneTargetDoesNotStopTheOthers:
    def test_others_complete_and_the_worst_is_named_when_one_is_refused_and_one_denied(
        self, fleet_buckets: None, tmp_path: Path
    ) -> None:
        text = THREE_TARGETS.replace(
            "  - bucket: fleet-build-cache\n    prefix: tmp/\n",
            "  - bucket: fleet-build-cache\n    prefix: tmp/\n    max_deletions: 10\n",
        )
        with access_denied_on("fleet-logs"), pytest.raises(FleetFailure) as failed:
            s3_housekeeping_fleet(targets=targets_file(tmp_path, text), dry_run=False)

        report = failed.value.report
        refused, denied, done = report.targets
        assert (refused.status, refused.exit_code) == ("refused", 6)
        assert (denied.status, denied.exit_code) == ("failed", 4)
        assert (done.status, done.counts["deleted"]) == ("completed", 25)
        # 4 (permission) is worse than 6 (a refusal): the fleet exits 4 and names the target.
        assert (report.exit_code, report.worst_target) == (4, "fleet-logs/tmp/")
        assert failed.value.exit_code == 4
        assert len(left("fleet-build-cache")) == 35  # refused: nothing deleted
        assert left("fleet-ml") == expected_left()

    def test_command_exits_with_the_worst_and_writes_the_report_when_a_target_fails(
        self, fleet_buckets: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        targets = targets_file(tmp_path, THREE_TARGETS)
        report_path = tmp_path / "fleet.json"
        with access_denied_on("fleet-ml"):
            code = main(
                ["fleet", "--targets", targets, "--execute", "--report-json", str(report_path)]
            )

        written = json.loads(report_path.read_text())
        assert code == 4
        assert (written["exit_code"], written["worst_target"]) == (4, "ml-scratch")
        assert [t["status"] for t in written["targets"]] == ["completed", "completed", "failed"]
        assert "s3-housekeeping fleet: failed" in capsys.readouterr().err


class TestTargetsFileErrors:
    def test_exits_1_naming_three_problems_with_lines_and_sends_nothing_when_invalid(
        self, aws: AwsClients, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        broken = """\
defaults:
  older_than_days: 30
targets:
  - bucket: Not_A_Bucket
    prefix: tmp/
  - bucket: fleet-logs
    prefix: tmp/
    older_than_days: 0
  - bucket: fleet-ml
    prefix: tmp/
    olderthan_days: 7
"""
        with audit_requests() as audit:
            code = main(["fleet", "--targets", targets_file(tmp_path, broken)])

        err = capsys.readouterr().err
        assert code == 1
        problems = [line.strip() for line in err.splitlines() if line.strip().startswith("- ")]
        assert len(problems) == 3
        assert problems[0].startswith("- line 4: targets[1]") and "bucket" in problems[0]
        assert problems[1].startswith("- line 6: targets[2]") or problems[1].startswith(
            "- line 8: targets[2]"
        )
        assert "older_than_days" in problems[1]
        assert problems[2].startswith("- line 11: targets[3]") and "olderthan_days" in problems[2]
        assert audit.calls == []

    def test_refuses_before_any_child_when_the_file_is_missing(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="cannot read targets file"):
            s3_housekeeping_fleet(targets=str(tmp_path / "nowhere.yaml"))


class TestOneDecision:
    def test_plans_every_target_asks_once_then_applies_each_plan_when_approved(
        self, fleet_buckets: None, tmp_path: Path
    ) -> None:
        answering = resume_when_paused(answer(True, "fleet reviewed"))
        with audit_requests() as audit:
            report = s3_housekeeping_fleet(
                targets=targets_file(tmp_path, THREE_TARGETS),
                dry_run=False,
                require_approval=True,
                approval_timeout_minutes=5,
            )
        answering.join(5)

        assert (report.status, report.exit_code) == ("completed", 0)
        assert [o.counts["deleted"] for o in report.targets] == [25, 25, 25]
        assert (report.approval.decision, report.approval.by) == ("approved", APPROVER)
        assert report.approval.reason == "fleet reviewed"
        assert all(o.manifest for o in report.targets)
        assert all(left(bucket) == expected_left() for bucket in BUCKETS)
        # Planned first (one listing per target), then each applied its saved plan.
        assert len(audit.of("DeleteObjects")) == 3

    def test_deletes_nothing_anywhere_and_refuses_every_target_when_rejected(
        self, fleet_buckets: None, tmp_path: Path
    ) -> None:
        answering = resume_when_paused(answer(False, "not tonight"))
        with audit_requests() as audit, pytest.raises(FleetFailure) as refused:
            s3_housekeeping_fleet(
                targets=targets_file(tmp_path, THREE_TARGETS),
                dry_run=False,
                require_approval=True,
                approval_timeout_minutes=5,
            )
        answering.join(5)

        report = refused.value.report
        assert (report.status, report.exit_code) == ("refused", 6)
        assert [o.status for o in report.targets] == ["refused"] * 3
        assert all("rejected by Ana Ops (not tonight)" in o.message for o in report.targets)
        assert (report.approval.decision, report.approval.by) == ("rejected", APPROVER)
        assert audit.of("DeleteObjects") == []
        assert all(len(left(bucket)) == 35 for bucket in BUCKETS)

    def test_refuses_a_target_whose_plan_was_replaced_after_it_was_shown_when_approved(
        self, fleet_buckets: None, tmp_path: Path
    ) -> None:
        # While the fleet waits, one target's plan file is replaced: one old object and two
        # written two days ago, given old dates; the totals add up.
        def replace_plan_then_approve(_paused: object) -> None:
            plans = tmp_path / "manifests" / "fleet-build-cache"
            while not list(plans.glob("*.jsonl.gz")):
                time.sleep(0.2)
            (plan,) = plans.glob("*.jsonl.gz")
            with gzip.open(plan, "rt", encoding="utf-8") as lines:
                records = [json.loads(line) for line in lines]
            old = records[1]
            young = [{**old, "key": f"tmp/young-{n}"} for n in range(2)]
            totals = {**records[-1], "matched": 3, "matched_bytes": 3 * old["size"]}
            with gzip.open(plan, "wt", encoding="utf-8") as out:
                for record in (records[0], old, *young, totals):
                    out.write(json.dumps(record) + "\n")

        answering = resume_when_paused(
            answer(True, "fleet reviewed"), before=replace_plan_then_approve
        )
        with pytest.raises(FleetFailure) as refused:
            s3_housekeeping_fleet(
                targets=targets_file(tmp_path, THREE_TARGETS),
                dry_run=False,
                require_approval=True,
                approval_timeout_minutes=5,
            )
        answering.join(5)

        report = refused.value.report
        outcomes = {o.bucket: o for o in report.targets}
        assert (outcomes["fleet-build-cache"].status, report.exit_code) == ("refused", 6)
        assert "refused by plan_digest" in outcomes["fleet-build-cache"].message
        assert len(left("fleet-build-cache")) == 35
        assert [outcomes[b].counts["deleted"] for b in ("fleet-logs", "fleet-ml")] == [25, 25]

    def test_applies_a_target_planned_from_an_inventory_when_approved(
        self, fleet_buckets: None, tmp_path: Path
    ) -> None:
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="fleet-inventories")
        stamp = OLD.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        rows = [row(f"tmp/old-{n}", LastModifiedDate=stamp, Size="0") for n in range(25)]
        written = put_inventory(s3, "fleet-inventories", "fleet-build-cache", [rows])
        text = THREE_TARGETS.replace(
            "  - bucket: fleet-build-cache\n    prefix: tmp/\n",
            "  - bucket: fleet-build-cache\n    prefix: tmp/\n"
            f"    inventory: {written.manifest_uri}\n",
        )
        answering = resume_when_paused(answer(True, "fleet reviewed"))
        report = s3_housekeeping_fleet(
            targets=targets_file(tmp_path, text),
            dry_run=False,
            require_approval=True,
            approval_timeout_minutes=5,
        )
        answering.join(5)

        assert (report.status, report.exit_code) == ("completed", 0)
        assert [o.counts["deleted"] for o in report.targets] == [25, 25, 25]
        assert left("fleet-build-cache") == expected_left()
