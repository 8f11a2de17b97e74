"""The s3_housekeeping flow end to end on a Prefect test harness and in-process moto."""

from __future__ import annotations

import inspect
import json
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deployments.local_aws import LOCAL_ACCOUNT_ID, backdate
from flows.s3_housekeeping import s3_housekeeping
from tasks.aws import AwsClients
from tasks.errors import AwsApiError, ConfigError, CredentialsError, PartialFailure, SafetyRefusal
from tasks.s3.bucket_lock import LOCK_KEY, BucketLocked, Lease
from tasks.s3.journal import read_journal
from tests.support.audit import audit_requests, lock_calls, on_objects
from tests.support.calls import product_calls
from tests.support.faults import fail_calls_after, fail_first_calls, inject_delete_errors
from tests.support.hooks import on_every_new_client
from tests.support.moto_backend import bulk_put
from tests.support.plans import readable_lines

pytestmark = pytest.mark.usefixtures("prefect_harness")

BUCKET = "flow-test-bucket"
OLD_UNDER_PREFIX = {"temp/a.log", "temp/b/c.log", "temp/d.bin"}
KEPT = {"temp/new.log", "temp-keep/old.db", "logs/old.log"}


@pytest.fixture
def seeded(aws: AwsClients, as_of: datetime) -> None:
    aws.s3.create_bucket(Bucket=BUCKET)
    ages = {key: 400 for key in OLD_UNDER_PREFIX} | {
        "temp/new.log": 2,
        "temp-keep/old.db": 400,
        "logs/old.log": 400,
    }
    for key, days in ages.items():
        aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"0123456789")
        backdate(BUCKET, key, as_of - timedelta(days=days))


def keys(aws: AwsClients) -> set[str]:
    pages = aws.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def run(as_of: datetime, **overrides: Any) -> Any:
    parameters: dict[str, Any] = {
        "bucket": BUCKET,
        "prefix": "temp/",
        "older_than_days": 30,
        "as_of": as_of,
    }
    return s3_housekeeping(**(parameters | overrides))


class TestDryRun:
    def test_sends_no_mutating_request_when_dry_run_is_the_default(
        self, aws: AwsClients, seeded: None, as_of: datetime
    ) -> None:
        with audit_requests() as audit:
            report = run(as_of)

        assert audit.mutating() == []
        assert {call.operation for call in audit.calls} >= {"HeadBucket", "ListObjectsV2"}
        assert report.status == "dry_run" and report.dry_run is True
        assert (report.scanned, report.matched, report.deleted) == (4, 3, 0)
        assert report.matched_bytes == 30
        assert report.bucket_action == "drifted"  # reported, never written by default
        assert keys(aws) == OLD_UNDER_PREFIX | KEPT

    def test_does_not_create_a_missing_bucket_when_dry_run(
        self, aws: AwsClients, as_of: datetime
    ) -> None:
        with audit_requests() as audit:
            report = run(as_of)

        assert audit.mutating() == []
        assert (report.bucket_action, report.matched) == ("would_create", 0)
        assert aws.s3.list_buckets()["Buckets"] == []


class TestExecute:
    def test_deletes_exactly_old_objects_under_prefix_then_nothing_when_run_again(
        self, aws: AwsClients, seeded: None, as_of: datetime
    ) -> None:
        with audit_requests() as audit:
            first = run(as_of, dry_run=False, converge_baseline=True)
        second = run(as_of, dry_run=False, converge_baseline=True)

        assert keys(aws) == KEPT
        assert first.status == "completed"
        assert (first.matched, first.deleted, first.failed) == (3, 3, 0)
        assert first.bucket_action == "changed"
        assert first.requests["DeleteObjects"] == 1
        # One listing of temp/ (with a delimiter), one of its sub-prefix temp/b/.
        assert first.requests["ListObjectsV2"] == 2
        deletes = audit.of("DeleteObjects")
        assert {o["Key"] for o in deletes[0].params["Delete"]["Objects"]} == OLD_UNDER_PREFIX
        assert (second.matched, second.deleted, second.bucket_action) == (0, 0, "unchanged")
        assert "DeleteObjects" not in second.requests

    def test_deletes_but_leaves_an_existing_buckets_settings_alone_when_not_asked(
        self, aws: AwsClients, seeded: None, as_of: datetime
    ) -> None:
        with audit_requests() as audit:
            report = run(as_of, dry_run=False)

        assert (report.bucket_action, report.deleted) == ("drifted", 3)
        assert report.bucket_changes == ["public_access_block", "encryption", "tags"]
        assert {call.operation for call in on_objects(audit.mutating())} == {"DeleteObjects"}
        assert lock_calls(audit) == ["PutObject", "DeleteObject"]

    def test_falls_back_to_environment_when_parameters_are_unset(
        self, aws: AwsClients, seeded: None, as_of: datetime, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("S3_BUCKET", BUCKET)
        monkeypatch.setenv("CLEANUP_PREFIX", "temp/")
        monkeypatch.setenv("CLEANUP_OLDER_THAN_DAYS", "30")
        monkeypatch.setenv("DRY_RUN", "false")

        report = s3_housekeeping(as_of=as_of)

        assert (report.status, report.deleted) == ("completed", 3)
        assert keys(aws) == KEPT


class TestOnePath:
    """Planning and applying are one pipeline: a dry run takes the executing run's path and
    stops where the delete consumer would start."""

    @staticmethod
    def consumer(name: str) -> bool:
        """The delete consumer: the pipeline that sends DeleteObjects, its journal, and the
        apply step that feeds it the checked plan (when it waited for it) and collects the
        outcomes."""
        return name.startswith(
            (
                "tasks.s3.deletion.",
                "tasks.cleanup.apply_cleanup",
                "tasks.execution.local.InThisProcess.apply",
                "tasks.cleanup.deleting",
                "tasks.cleanup.journal_file",
                "tasks.s3.journal.",
                "tasks.s3.plan_store.kept_as_it_goes",
            )
        )

    @staticmethod
    def lock(name: str) -> bool:
        """The bucket's lock, which only an executing run takes."""
        return name.startswith(("tasks.s3.bucket_lock.", "tasks.guards.locking."))

    @pytest.mark.parametrize(
        "guards",
        [
            pytest.param({}, id="deletes-while-listing"),
            pytest.param({"max_deletions": 100}, id="deletes-after-the-whole-plan"),
        ],
    )
    def test_dry_run_takes_the_executing_path_up_to_the_consumer_when_both_run(
        self, aws: AwsClients, seeded: None, as_of: datetime, guards: dict[str, Any]
    ) -> None:
        # First converge the bucket's baseline (a prefix with nothing in it, nothing deleted),
        # so that both runs below find it as it should be, and fill the caches.
        run(as_of, dry_run=False, prefix="nothing-here/")

        def outside(name: str) -> bool:
            return self.consumer(name) or self.lock(name)

        with audit_requests() as dry_audit, product_calls(outside) as dry:
            dry_report = run(as_of, dry_run=True, **guards)
        with audit_requests() as audit, product_calls(outside) as executed:
            report = run(as_of, dry_run=False, **guards)

        # Where the dry run stops, the executing run hands the plan to the consumer, shows its
        # progress and records its outcomes; every other function is the same.
        assert dry - executed == {"tasks.record.report.RunReport.record_dry_run"}
        assert executed - dry == {
            "tasks.record.report.RunReport.record_apply",
            "tasks.record.artifacts.ProgressArtifact.start",
        }
        assert {"tasks.cleanup.record_plan", "tasks.s3.selection.Selection.__iter__"} <= dry
        assert [call.operation for call in dry_audit.mutating()] == []
        assert len(audit.of("DeleteObjects")) == 1
        assert (dry_report.matched, report.matched, report.deleted) == (3, 3, 3)


class TestRetries:
    def test_secret_step_is_retried_when_its_first_call_fails_transiently(
        self, aws: AwsClients, seeded: None, as_of: datetime, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        aws.secretsmanager.create_secret(Name="flow/retried", SecretString='{"k": "v"}')
        monkeypatch.setenv("TASK_RETRIES", "1")

        with fail_first_calls("secrets-manager.GetSecretValue", times=1) as failing:
            report = run(as_of, secret_name="flow/retried")

        assert failing.calls == 2
        assert report.status == "dry_run"

    def test_secret_step_fails_at_once_when_task_retries_is_zero(
        self, aws: AwsClients, seeded: None, as_of: datetime
    ) -> None:
        aws.secretsmanager.create_secret(Name="flow/retried", SecretString='{"k": "v"}')

        with (
            fail_first_calls("secrets-manager.GetSecretValue", times=1) as failing,
            pytest.raises(AwsApiError, match="ServiceUnavailable") as failed,
        ):
            run(as_of, secret_name="flow/retried")

        assert failing.calls == 1
        assert failed.value.transient is True


class TestRefusalsAndFailures:
    def test_refuses_and_deletes_nothing_when_plan_exceeds_max_deletions(
        self, aws: AwsClients, seeded: None, as_of: datetime
    ) -> None:
        with audit_requests() as audit, pytest.raises(SafetyRefusal) as refused:
            run(as_of, dry_run=False, max_deletions=2)

        assert audit.of("DeleteObjects") == []
        assert keys(aws) == OLD_UNDER_PREFIX | KEPT
        report = refused.value.report
        assert (report.status, report.matched, report.deleted) == ("refused", 3, 0)
        assert refused.value.exit_code == 6

    def test_partial_failure_accounts_every_object_when_some_keys_are_denied(
        self, aws: AwsClients, seeded: None, as_of: datetime
    ) -> None:
        denied = "temp/b/c.log"
        with (
            inject_delete_errors(lambda key, _: "AccessDenied" if key == denied else None),
            pytest.raises(PartialFailure) as partial,
        ):
            run(as_of, dry_run=False)

        report = partial.value.report
        assert report.status == "partial_failure"
        assert (report.deleted, report.failed, report.failed_by_code) == (2, 1, {"AccessDenied": 1})
        assert partial.value.exit_code == 7
        assert keys(aws) == KEPT | {denied}

    def test_rejects_invalid_input_before_any_aws_call_when_validating(
        self, aws: AwsClients, as_of: datetime
    ) -> None:
        with audit_requests() as audit, pytest.raises(ConfigError) as invalid:
            run(as_of, bucket="Bad_Bucket", prefix="/abs", older_than_days=0)

        assert audit.calls == []
        message = str(invalid.value)
        assert "bucket:" in message and "prefix:" in message and "older_than_days:" in message

    def test_refuses_when_parameter_and_secret_name_different_owners(
        self, aws: AwsClients, seeded: None, as_of: datetime
    ) -> None:
        aws.secretsmanager.create_secret(
            Name="flow/test", SecretString=json.dumps({"expected_bucket_owner": "111122223333"})
        )
        with pytest.raises(ConfigError, match="different accounts"):
            run(as_of, secret_name="flow/test", expected_bucket_owner=LOCAL_ACCOUNT_ID)


class TestPrefectIntegration:
    def test_publishes_plan_and_report_artifacts_when_run(
        self, aws: AwsClients, seeded: None, as_of: datetime
    ) -> None:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        state = s3_housekeeping(
            bucket=BUCKET, prefix="temp/", older_than_days=30, as_of=as_of, return_state=True
        )
        flow_run_id = state.state_details.flow_run_id

        with get_client(sync_client=True) as client:
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
                )
            )
        by_key = {artifact.key: artifact for artifact in artifacts}
        assert set(by_key) == {
            "s3-housekeeping-plan",
            "s3-housekeeping-report",
            "s3-housekeeping-manifest",
            "s3-housekeeping-outcome",
        }
        assert by_key["s3-housekeeping-manifest"].data.count("file://") == 1
        (outcome,) = json.loads(by_key["s3-housekeeping-outcome"].data)
        assert (outcome["status"], outcome["matched"]) == ("dry_run", len(OLD_UNDER_PREFIX))
        plan_rows = json.loads(by_key["s3-housekeeping-plan"].data)
        assert {row["key"] for row in plan_rows} == OLD_UNDER_PREFIX
        assert "dry_run" in by_key["s3-housekeeping-report"].data

    def test_every_parameter_has_help_text_when_rendered_for_the_ui(self) -> None:
        from prefect.utilities.callables import parameter_schema

        schema = parameter_schema(s3_housekeeping).model_dump()
        properties = schema["properties"]
        assert set(properties) == set(inspect.signature(s3_housekeeping.fn).parameters)
        missing = [name for name, spec in properties.items() if not spec.get("description")]
        assert missing == []


class TestBucketLock:
    @staticmethod
    def held_by_another_run(aws: AwsClients) -> None:
        lease = Lease("run-elsewhere", "temp/", "2026-11-29T08:00:00Z", expiry_s=600)
        aws.s3.put_object(Bucket=BUCKET, Key=LOCK_KEY, Body=json.dumps(asdict(lease)).encode())

    def test_refuses_an_executing_run_naming_the_holder_and_deletes_nothing(
        self, aws: AwsClients, seeded: None, as_of: datetime
    ) -> None:
        self.held_by_another_run(aws)

        with audit_requests() as audit, pytest.raises(BucketLocked) as refused:
            run(as_of, dry_run=False)

        assert refused.value.exit_code == 6
        assert "locked by run run-elsewhere (prefix 'temp/') since 2026-11-29T08:00:00Z" in str(
            refused.value
        )
        assert audit.of("DeleteObjects") == [] and audit.of("ListObjectsV2") == []
        assert keys(aws) == OLD_UNDER_PREFIX | KEPT | {LOCK_KEY}
        # The refusal carries the run's report (the command writes it with --report-json).
        report = refused.value.report
        assert report is not None and report.status == "refused"
        assert "locked by run run-elsewhere" in report.message and report.deleted == 0

    def test_a_dry_run_needs_no_lock(self, aws: AwsClients, seeded: None, as_of: datetime) -> None:
        self.held_by_another_run(aws)

        with audit_requests() as audit:
            report = run(as_of)

        assert report.matched == 3
        assert lock_calls(audit) == []

    def test_never_plans_its_own_lock_when_the_prefix_covers_it(
        self, aws: AwsClients, seeded: None, as_of: datetime
    ) -> None:
        self.held_by_another_run(aws)
        backdate(BUCKET, LOCK_KEY, as_of - timedelta(days=400))  # an old lease, still held

        report = run(as_of, prefix=".s3-housekeeping/")

        assert (report.scanned, report.matched) == (1, 0)


class TestFailureMidApply:
    """A run that fails after deleting some of its plan says what it did, and a re-run deletes
    exactly what is left."""

    @pytest.fixture
    def many(self, aws: AwsClients, seeded: None, as_of: datetime) -> set[str]:
        old = {f"temp/bulk/{n:04d}" for n in range(2500)}
        bulk_put(BUCKET, sorted(old), as_of - timedelta(days=400))
        return old | OLD_UNDER_PREFIX

    def test_reports_the_deletes_done_and_journals_every_request_when_credentials_expire(
        self, aws: AwsClients, many: set[str], as_of: datetime, tmp_path: Path
    ) -> None:
        manifests = tmp_path / "manifests"
        with (
            fail_calls_after("s3.DeleteObjects", 1, "ExpiredToken", 400),
            pytest.raises(CredentialsError) as expired,
        ):
            run(as_of, dry_run=False, max_deletions=10_000, manifest_location=str(manifests))

        report = expired.value.report  # type: ignore[attr-defined]
        left = keys(aws)
        assert len(many - left) == report.deleted == 1000  # the first batch only
        assert report.status == "failed" and report.message.startswith("failed after 1000")
        # Every planned object has one outcome: deleted, or failed with why.
        assert report.deleted + report.skipped_changed + report.failed == report.matched == 2503
        # Batches are sent concurrently: the one that failed, and any sent beside it, have no
        # outcome of their own (Unconfirmed); what was never handed to the deletes, NotSent.
        assert set(report.failed_by_code) <= {"Unconfirmed", "NotSent"}
        assert report.failed_by_code["Unconfirmed"] >= 1000
        records = read_journal(Path(report.journal))
        assert records[0]["format"] == "s3-housekeeping/journal-v1"
        sent = {r["sent"]: (n, r) for n, r in enumerate(records) if "sent" in r}
        answered = {r["answered"]: (n, r) for n, r in enumerate(records) if "answered" in r}
        assert set(sent) == set(answered) and len(sent) >= 2
        for number, (line, request) in sent.items():
            answer_line, answer = answered[number]
            assert answer_line > line  # written down before it was sent
            assert answer["deleted"] + sum(answer["errors"].values()) == request["keys"]
        assert sorted(answer["deleted"] for _, answer in answered.values())[-1] == 1000
        assert sum(answer["deleted"] for _, answer in answered.values()) == 1000
        assert records[-1]["end"] is True and records[-1]["deleted"] == 1000

        again = run(as_of, dry_run=False, max_deletions=10_000, manifest_location=str(manifests))

        assert again.deleted == 1503 and again.failed == 0
        assert keys(aws) == KEPT

    def test_the_journal_and_the_manifest_hold_a_batch_before_it_is_sent(
        self, aws: AwsClients, many: set[str], as_of: datetime, tmp_path: Path
    ) -> None:
        manifests = tmp_path / "manifests"
        seen: list[tuple[set[str], set[str], int]] = []

        def at_send(params: dict[str, Any], **_: Any) -> None:
            (plan,) = manifests.glob("*/*.jsonl.gz")
            (journal,) = manifests.glob("*/*.journal.jsonl")
            sent = {entry["Key"] for entry in params["Delete"]["Objects"]}
            on_disk = {line["key"] for line in readable_lines(plan) if "key" in line}
            requests = [r for r in read_journal(journal) if "sent" in r]
            seen.append((sent, on_disk, len(requests)))

        with on_every_new_client([("before-parameter-build.s3.DeleteObjects", at_send)]):
            report = run(as_of, dry_run=False, manifest_location=str(manifests))

        assert report.deleted == 2503 and len(seen) == 3  # deleted while listing
        for number, (sent, on_disk, journaled) in enumerate(seen, start=1):
            assert sent <= on_disk  # every key of the request is in the plan file already
            assert journaled >= number  # and the request is in the journal
