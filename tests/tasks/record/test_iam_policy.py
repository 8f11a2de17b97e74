"""Tests for tasks.record.iam_policy: each configuration's exact actions, and resources that name
only what the run touches."""

from __future__ import annotations

import ast
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from moto.iam.policy_validation import IAMPolicyDocumentValidator

from tasks.record.iam_policy import LOCK_KEY_PREFIX, PolicyDocument, iam_policy
from tasks.s3.bucket_lock import LOCK_FOLDER, LOCK_KEY
from tasks.settings import RunSettings, load_settings

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
BUCKET_ARN = "arn:aws:s3:::my-team-scratch"
UNDER_PREFIX = f"{BUCKET_ARN}/tmp/*"
LOCK = f"{BUCKET_ARN}/.s3-housekeeping/*"
PREFIX_ONLY = {"StringLike": {"s3:prefix": ["tmp/*"]}}
TOPIC = "arn:aws:sns:eu-west-1:111122223333:housekeeping-notices"
BASELINE_READS = [
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "s3:GetEncryptionConfiguration",
]
#: Whether the bucket has Object Lock on: every run asks it once, when it would delete.
READS = ["s3:GetBucketObjectLockConfiguration", "s3:GetBucketVersioning"]
#: HeadObject of each object a plan would delete, when the bucket has Object Lock on.
ASK = ["s3:GetObject", "s3:GetObjectLegalHold", "s3:GetObjectRetention"]
ASKING = {"AskAboutTheLocksAndTagsOfObjectsToDelete": {"Action": ASK, "Resource": UNDER_PREFIX}}
BASELINE_WRITES = [
    "s3:CreateBucket",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketTagging",
    "s3:PutEncryptionConfiguration",
]


def settings(**given: Any) -> RunSettings:
    """A run's settings as the command line makes them: a dry run unless dry_run=False."""
    return load_settings({"bucket": "my-team-scratch", "prefix": "tmp/", **given}, now=NOW)


def statements(policy: PolicyDocument) -> dict[str, dict[str, Any]]:
    """The statements by Sid, without the Sid and the Effect (always Allow)."""
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    return {
        s["Sid"]: {k: v for k, v in s.items() if k not in {"Sid", "Effect"}}
        for s in policy["Statement"]
    }


def actions(policy: PolicyDocument) -> set[str]:
    return {action for s in policy["Statement"] for action in s["Action"]}


class TestBucketAndListing:
    def test_converging_without_creating_writes_the_baseline_but_creates_no_bucket(
        self,
    ) -> None:
        policy = iam_policy(settings(dry_run=False, create_bucket=False, converge_baseline=True))

        written = statements(policy)["WriteItsBaseline"]["Action"]
        assert "s3:CreateBucket" not in actions(policy)
        assert written == sorted(written)
        assert {"s3:PutBucketTagging", "s3:PutEncryptionConfiguration"} <= set(written)
        assert "HeadAndListTheBucket" in statements(policy)

    def test_dry_run_reads_the_bucket_and_lists_it_when_it_may_create_it(self) -> None:
        policy = iam_policy(settings())

        assert policy["Version"] == "2012-10-17"
        assert statements(policy) == {
            # HeadBucket is authorized as s3:ListBucket and names no prefix.
            "HeadAndListTheBucket": {"Action": ["s3:ListBucket"], "Resource": BUCKET_ARN},
            "ReadTheBucketSettings": {"Action": BASELINE_READS, "Resource": BUCKET_ARN},
            **ASKING,
        }

    def test_listing_is_limited_to_the_prefix_when_the_bucket_is_not_created(self) -> None:
        policy = iam_policy(settings(create_bucket=False))

        assert statements(policy) == {
            "ListUnderThePrefixOnly": {
                "Action": ["s3:ListBucket"],
                "Resource": BUCKET_ARN,
                "Condition": PREFIX_ONLY,
            },
            "ReadTheBucketSettings": {"Action": READS, "Resource": BUCKET_ARN},
            **ASKING,
        }

    def test_bucket_is_created_with_its_baseline_only_when_the_run_executes(self) -> None:
        executing = statements(iam_policy(settings(dry_run=False)))

        assert executing["CreateTheBucketWithItsBaseline"] == {
            "Action": BASELINE_WRITES,
            "Resource": BUCKET_ARN,
        }
        assert not actions(iam_policy(settings(dry_run=False, create_bucket=False))) & set(
            BASELINE_WRITES
        )

    @pytest.mark.parametrize("dry_run", [True, False])
    def test_converge_baseline_changes_nothing_when_set(self, dry_run: bool) -> None:
        # A bucket the run creates gets the same writes that converging an existing one makes.
        assert iam_policy(settings(dry_run=dry_run, converge_baseline=True)) == iam_policy(
            settings(dry_run=dry_run)
        )


class TestDeletes:
    def test_current_objects_are_deleted_if_unchanged_and_under_a_lock_when_executing(
        self,
    ) -> None:
        policy = iam_policy(settings(dry_run=False))

        assert statements(policy) == {
            "HeadAndListTheBucket": {"Action": ["s3:ListBucket"], "Resource": BUCKET_ARN},
            "ReadTheBucketSettings": {"Action": BASELINE_READS, "Resource": BUCKET_ARN},
            **ASKING,
            "CreateTheBucketWithItsBaseline": {"Action": BASELINE_WRITES, "Resource": BUCKET_ARN},
            # An ETag-conditional delete needs s3:GetObject as well.
            "DeleteUnchangedObjectsUnderThePrefix": {
                "Action": ["s3:DeleteObject", "s3:GetObject"],
                "Resource": UNDER_PREFIX,
            },
            "HoldTheRunLock": {
                "Action": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                "Resource": LOCK,
            },
        }

    @pytest.mark.parametrize("versions", ["noncurrent", "all"])
    def test_versions_are_listed_under_the_prefix_and_deleted_by_id_when_asked_for(
        self, versions: str
    ) -> None:
        policy = iam_policy(settings(dry_run=False, versions=versions, create_bucket=False))

        assert statements(policy) == {
            "ListUnderThePrefixOnly": {
                "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
                "Resource": BUCKET_ARN,
                "Condition": PREFIX_ONLY,
            },
            "ReadTheBucketSettings": {"Action": READS, "Resource": BUCKET_ARN},
            "AskAboutTheLocksAndTagsOfObjectsToDelete": {
                "Action": [*ASK, "s3:GetObjectVersion"],
                "Resource": UNDER_PREFIX,
            },
            "DeleteOldVersionsUnderThePrefix": {
                "Action": ["s3:DeleteObjectVersion"],
                "Resource": UNDER_PREFIX,
            },
            "HoldTheRunLock": {
                "Action": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                "Resource": LOCK,
            },
        }

    @pytest.mark.parametrize("versions", ["noncurrent", "all"])
    def test_version_listing_keeps_its_prefix_condition_when_the_bucket_may_be_created(
        self, versions: str
    ) -> None:
        policy = statements(iam_policy(settings(versions=versions)))

        assert policy["HeadAndListTheBucket"] == {
            "Action": ["s3:ListBucket"],
            "Resource": BUCKET_ARN,
        }
        assert policy["ListUnderThePrefixOnly"] == {
            "Action": ["s3:ListBucketVersions"],
            "Resource": BUCKET_ARN,
            "Condition": PREFIX_ONLY,
        }

    @pytest.mark.parametrize("versions", ["current", "noncurrent", "all"])
    def test_dry_run_may_neither_delete_nor_write_when_planning(self, versions: str) -> None:
        policy = iam_policy(settings(versions=versions))
        granted = actions(policy)

        assert not {a for a in granted if a.startswith(("s3:Delete", "s3:Put", "s3:Create"))}
        # It reads objects only to ask about their locks (HeadObject), under the prefix.
        reading = [s for s in policy["Statement"] if "s3:GetObject" in s["Action"]]
        assert [(s["Sid"], s["Resource"]) for s in reading] == [
            ("AskAboutTheLocksAndTagsOfObjectsToDelete", UNDER_PREFIX)
        ]

    @pytest.mark.parametrize(
        ("versions", "action"),
        [("current", "s3:GetObjectTagging"), ("all", "s3:GetObjectVersionTagging")],
    )
    def test_protect_tags_add_reading_the_tags_under_the_prefix(
        self, versions: str, action: str
    ) -> None:
        without = statements(iam_policy(settings(versions=versions)))
        policy = statements(iam_policy(settings(versions=versions, protect_tags=["keep"])))

        asking = policy["AskAboutTheLocksAndTagsOfObjectsToDelete"]
        assert action in asking["Action"]
        assert action not in without["AskAboutTheLocksAndTagsOfObjectsToDelete"]["Action"]
        assert asking["Resource"] == UNDER_PREFIX

    def test_lock_statement_covers_the_lock_the_run_takes_when_executing(self) -> None:
        lock = statements(iam_policy(settings(dry_run=False)))["HoldTheRunLock"]

        assert LOCK_KEY_PREFIX == LOCK_FOLDER == ".s3-housekeeping/"
        assert LOCK_KEY.startswith(LOCK_KEY_PREFIX)
        assert lock["Resource"] == f"{BUCKET_ARN}/{LOCK_KEY_PREFIX}*"


class TestPlans:
    def test_plans_are_written_under_their_location_and_the_bucket_when_kept_in_s3(self) -> None:
        policy = statements(iam_policy(settings(manifest_location="s3://plans-bucket/runs/")))

        assert policy["WritePlansAndJournals"] == {
            "Action": ["s3:AbortMultipartUpload", "s3:PutObject"],
            "Resource": "arn:aws:s3:::plans-bucket/runs/my-team-scratch/*",
        }

    def test_plans_go_under_the_bucket_name_when_the_location_is_a_whole_bucket(self) -> None:
        policy = statements(iam_policy(settings(manifest_location="s3://plans-bucket")))

        assert (
            policy["WritePlansAndJournals"]["Resource"]
            == "arn:aws:s3:::plans-bucket/my-team-scratch/*"
        )

    def test_saved_plan_is_read_by_its_key_and_nothing_written_when_a_dry_run_checks_it(
        self,
    ) -> None:
        policy = statements(
            iam_policy(
                settings(
                    plan="s3://plans-bucket/runs/my-team-scratch/p.jsonl.gz",
                    manifest_location="s3://plans-bucket/runs",
                )
            )
        )

        assert policy["ReadTheSavedPlan"] == {
            "Action": ["s3:GetObject"],
            "Resource": "arn:aws:s3:::plans-bucket/runs/my-team-scratch/p.jsonl.gz",
        }
        assert "WritePlansAndJournals" not in policy

    def test_journal_is_written_beside_the_plans_when_a_saved_plan_is_applied(self) -> None:
        policy = statements(
            iam_policy(
                settings(
                    dry_run=False,
                    plan="s3://plans-bucket/runs/my-team-scratch/p.jsonl.gz",
                    manifest_location="s3://plans-bucket/runs",
                )
            )
        )

        assert set(policy) >= {"ReadTheSavedPlan", "WritePlansAndJournals"}
        assert policy["WritePlansAndJournals"]["Resource"] == (
            "arn:aws:s3:::plans-bucket/runs/my-team-scratch/*"
        )

    @pytest.mark.parametrize(
        "given", [{}, {"plan": "saved/p.jsonl.gz"}, {"manifest_location": "plans"}], ids=str
    )
    def test_local_plans_need_no_permission_when_on_disk(self, given: dict[str, str]) -> None:
        policy = statements(iam_policy(settings(dry_run=False, **given)))

        assert not {"WritePlansAndJournals", "ReadTheSavedPlan"} & set(policy)


class TestSecretAndTopic:
    def test_secret_is_matched_by_name_and_suffix_in_any_account_when_none_is_known(self) -> None:
        policy = statements(iam_policy(settings(secret_name="s3-housekeeping/prod")))

        # No kms:Decrypt: the AWS managed key needs none, and another key is not known here.
        assert policy["ReadTheRunSecret"] == {
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": "arn:aws:secretsmanager:us-east-1:*:secret:s3-housekeeping/prod-??????",
        }

    def test_secret_is_in_the_expected_owners_account_when_one_is_given(self) -> None:
        policy = iam_policy(
            settings(
                secret_name="s3-housekeeping/prod",
                expected_bucket_owner="111122223333",
                region="eu-west-1",
            )
        )

        assert statements(policy)["ReadTheRunSecret"]["Resource"] == (
            "arn:aws:secretsmanager:eu-west-1:111122223333:secret:s3-housekeeping/prod-??????"
        )

    def test_secret_is_in_the_roles_account_when_a_role_is_assumed(self) -> None:
        policy = iam_policy(
            settings(
                secret_name="s3-housekeeping/prod",
                expected_bucket_owner="111122223333",
                role_arn="arn:aws:iam::444455556666:role/s3-housekeeping",
            )
        )

        assert statements(policy)["ReadTheRunSecret"]["Resource"] == (
            "arn:aws:secretsmanager:us-east-1:444455556666:secret:s3-housekeeping/prod-??????"
        )

    def test_secret_arn_is_taken_as_written_when_given(self) -> None:
        arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:s3-housekeeping/prod-AbCdEf"

        policy = statements(iam_policy(settings(secret_name=arn)))

        assert policy["ReadTheRunSecret"]["Resource"] == arn

    def test_notices_are_published_to_that_topic_only_when_one_is_set(self) -> None:
        policy = statements(iam_policy(settings(notify_topic_arn=TOPIC)))

        assert policy["PublishRunNotices"] == {"Action": ["sns:Publish"], "Resource": TOPIC}
        assert not {a for a in actions(iam_policy(settings())) if not a.startswith("s3:")}


class TestResources:
    @pytest.mark.parametrize(
        ("region", "partition"),
        [("eu-west-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")],
    )
    def test_arns_are_in_the_regions_partition_when_built(
        self, region: str, partition: str
    ) -> None:
        policy = iam_policy(
            settings(
                region=region,
                dry_run=False,
                secret_name="s3-housekeeping/prod",
                manifest_location="s3://plans-bucket/runs",
            )
        )

        assert {s["Resource"].split(":")[1] for s in policy["Statement"]} == {partition}

    def test_wildcards_in_the_prefix_are_matched_literally_when_written(self) -> None:
        policy = statements(iam_policy(settings(prefix="odd*key?$/", create_bucket=False)))

        assert policy["ListUnderThePrefixOnly"]["Condition"] == {
            "StringLike": {"s3:prefix": ["odd${*}key${?}${$}/*"]}
        }
        deleting = statements(iam_policy(settings(prefix="odd*key?$/", dry_run=False)))
        assert deleting["DeleteUnchangedObjectsUnderThePrefix"]["Resource"] == (
            f"{BUCKET_ARN}/odd${{*}}key${{?}}${{$}}/*"
        )

    @pytest.mark.parametrize("versions", ["current", "noncurrent", "all"])
    @pytest.mark.parametrize("dry_run", [True, False])
    @pytest.mark.parametrize("create_bucket", [True, False])
    def test_every_resource_is_one_the_run_touches_and_none_is_a_bare_star_when_built(
        self, versions: str, dry_run: bool, create_bucket: bool
    ) -> None:
        plans = "arn:aws:s3:::plans-bucket/runs/my-team-scratch/*"
        secret = "arn:aws:secretsmanager:us-east-1:111122223333:secret:s3-housekeeping/prod-??????"
        policy = iam_policy(
            settings(
                versions=versions,
                dry_run=dry_run,
                create_bucket=create_bucket,
                manifest_location="s3://plans-bucket/runs",
                secret_name="s3-housekeeping/prod",
                expected_bucket_owner="111122223333",
                notify_topic_arn=TOPIC,
            )
        )

        resources = {s["Resource"] for s in policy["Statement"]}
        assert resources <= {BUCKET_ARN, UNDER_PREFIX, LOCK, plans, secret, TOPIC}
        assert {BUCKET_ARN, plans, secret, TOPIC} <= resources
        # Only object ARNs and the secret's random suffix hold wildcards.
        assert all("*" not in r or r.endswith("/*") for r in resources)
        assert "*" not in resources


class TestDocument:
    @pytest.mark.parametrize(
        "given",
        [
            {},
            {"dry_run": False, "versions": "all", "create_bucket": False},
            {
                "dry_run": False,
                "secret_name": "s3-housekeeping/prod",
                "notify_topic_arn": TOPIC,
                "manifest_location": "s3://plans-bucket/runs",
            },
        ],
        ids=["default", "versions", "everything"],
    )
    def test_document_is_valid_with_unique_sids_and_sorted_actions_when_built(
        self, given: dict[str, Any]
    ) -> None:
        policy = iam_policy(settings(**given))

        # moto's validator: the checks IAM makes on a document it is given.
        IAMPolicyDocumentValidator(json.dumps(policy)).validate()
        sids = [s["Sid"] for s in policy["Statement"]]
        assert len(set(sids)) == len(sids)
        assert all(re.fullmatch(r"[A-Za-z0-9]+", sid) for sid in sids)
        assert all(
            s["Action"] == sorted(set(s["Action"])) and s["Action"] for s in policy["Statement"]
        )

    def test_same_settings_print_the_same_json_when_built_twice(self) -> None:
        given = {"dry_run": False, "secret_name": "s3-housekeeping/prod", "notify_topic_arn": TOPIC}

        assert json.dumps(iam_policy(settings(**given)), indent=2) == json.dumps(
            iam_policy(settings(**given)), indent=2
        )

    def test_module_imports_neither_prefect_nor_boto3_when_read(self) -> None:
        source = Path(__file__).resolve().parents[3] / "tasks" / "record" / "iam_policy.py"
        imported = {
            node.module or ""
            for node in ast.walk(ast.parse(source.read_text()))
            if isinstance(node, ast.ImportFrom)
        } | {
            alias.name
            for node in ast.walk(ast.parse(source.read_text()))
            if isinstance(node, ast.Import)
            for alias in node.names
        }

        assert not {name for name in imported if name.split(".")[0] in {"prefect", "boto3"}}


class TestScalingOut:
    @pytest.fixture(autouse=True)
    def operators_cluster(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ALLOWED_DASK_ADDRESSES", "tcp://d:8786")

    def test_inventory_is_read_under_its_configurations_folder_when_planned_from_one(
        self,
    ) -> None:
        manifest = "s3://inventory-reports/daily/source-bucket/all/2026-01-02T03-04Z/manifest.json"

        document = iam_policy(settings(inventory=manifest))

        assert statements(document)["ReadTheInventory"] == {
            "Action": ["s3:GetObject"],
            "Resource": "arn:aws:s3:::inventory-reports/daily/source-bucket/all/*",
        }

    def test_parts_are_read_back_from_the_plan_location_when_run_on_dask(self) -> None:
        document = iam_policy(
            settings(manifest_location="s3://team-plans/housekeeping", dask_address="tcp://d:8786")
        )

        kept = statements(document)["WritePlansAndJournals"]
        assert kept["Action"] == ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"]

    def test_a_saved_index_lets_its_parts_be_read_and_journaled_when_applied(self) -> None:
        index = "s3://team-plans/housekeeping/b/20260101T000000Z-run.index.jsonl"

        document = iam_policy(settings(plan=index, dask_address="tcp://d:8786", dry_run=False))

        parts = statements(document)["ApplyThePlansParts"]
        assert parts["Resource"] == (
            "arn:aws:s3:::team-plans/housekeeping/b/20260101T000000Z-run.parts/*"
        )
        assert "s3:GetObject" in parts["Action"]
