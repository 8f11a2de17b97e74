"""`s3-housekeeping iam-policy` is enough and needed: each kind of run, as an IAM user holding only
the policy the command printed for it (in the names moto checks), against a moto server that
enforces IAM."""

from __future__ import annotations

import itertools
import json
import os
import shlex
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from deployments.local_aws import LOCAL_ACCOUNT_ID
from devtools.prefect_server import PrefectServer
from tasks.record.iam_policy import LOCK_KEY_PREFIX
from tests.e2e.conftest import Cli, CliResult
from tests.support.servers import moto_server_process

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
PREFIX = "temp/"
#: Requests moto serves before it enforces IAM: the admin's CreateUser, PutUserPolicy and
#: CreateAccessKey. Every later request, setup included, is signed by an IAM user.
ADMIN_SETUP_REQUESTS = 3
ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
#: moto 5.2.5 checks some S3 requests under other action names than AWS does
#: (moto/s3/responses.py, ACTION_MAP): for an action of a printed policy, the names moto checks
#: for the same requests, on the same resource. Apart from s3:HeadBucket, each is granted on that
#: resource by the printed policy already wherever those requests are made, so they widen
#: nothing; and moto cannot tell when one of these actions alone is missing.
MOTO_NAMES = {
    # HeadBucket; AWS checks it as s3:ListBucket, refused under an s3:prefix condition.
    "s3:ListBucket": ("s3:HeadBucket",),
    # GET ?publicAccessBlock and ?encryption fall through to moto's default, ListBucket.
    "s3:GetBucketPublicAccessBlock": ("s3:ListBucket",),
    "s3:GetEncryptionConfiguration": ("s3:ListBucket",),
    # PUT ?publicAccessBlock and ?encryption fall through to moto's default, CreateBucket.
    "s3:PutBucketPublicAccessBlock": ("s3:CreateBucket",),
    "s3:PutEncryptionConfiguration": ("s3:CreateBucket",),
}
#: Objects in each unversioned bucket, put before or after the cutoff; outside the prefix and
#: new ones must survive.
OLD = {"temp/a.log", "temp/b/c.log"}
KEPT = {"temp/new.log", "temp-keep/old.db"}
#: Buckets made before the runs, each for one test (a test that creates its bucket has none).
UNVERSIONED = (
    "current-dry",
    "current-exec",
    "no-create",
    "planned",
    "with-secret",
    "with-topic",
    "denied-versioning",
    "denied-listing",
    "denied-secret",
    "denied-plans",
    "denied-deletes",
)
VERSIONED = ("noncurrent", "all-versions")
PLANS_BUCKET = "housekeeping-plans"
SECRET = "s3-housekeeping/e2e-iam"


@dataclass(frozen=True)
class IamMoto:
    """A moto server enforcing IAM, its buckets filled, and the admin's signing keys."""

    url: str
    admin: dict[str, str]
    #: The runs' reference time: with 30 days, its cutoff falls between the old and new puts.
    as_of: datetime

    def client(self, service: str) -> Any:
        """A client signing as the admin (every request after the first three is checked)."""
        return admin_client(self.url, service, self.admin)

    def user_holding(self, printed: dict[str, Any], held: dict[str, Any]) -> dict[str, str]:
        """A new IAM user whose only policy is `held`; its environment. The `printed` policy
        goes through IAM's validation of a policy document as well (CreatePolicy)."""
        iam = self.client("iam")
        name = f"run-{next(USERS)}"
        iam.create_policy(PolicyName=f"{name}-printed", PolicyDocument=json.dumps(printed))
        iam.create_user(UserName=name)
        arn = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(held))["Policy"]["Arn"]
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        }


USERS = itertools.count()


def admin_client(url: str, service: str, keys: dict[str, str]) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
    )


@pytest.fixture(scope="module")
def iam_moto() -> Iterator[IamMoto]:
    with moto_server_process({"INITIAL_NO_AUTH_ACTION_COUNT": str(ADMIN_SETUP_REQUESTS)}) as url:
        unchecked = {"AccessKeyId": "testing", "SecretAccessKey": "testing"}
        iam = admin_client(url, "iam", unchecked)
        iam.create_user(UserName="admin")
        iam.put_user_policy(
            UserName="admin", PolicyName="admin", PolicyDocument=json.dumps(ADMIN_POLICY)
        )
        admin = iam.create_access_key(UserName="admin")["AccessKey"]
        admin_client(url, "secretsmanager", admin).create_secret(
            Name=SECRET, SecretString=json.dumps({"expected_bucket_owner": LOCAL_ACCOUNT_ID})
        )
        yield IamMoto(url=url, admin=admin, as_of=fill(admin_client(url, "s3", admin)))


def fill(s3: Any) -> datetime:
    """Put old objects (and old noncurrent versions), then new ones a moment later, in every
    bucket. The server cannot backdate: returns the as_of whose 30-day cutoff falls between
    the two (LastModified has whole seconds)."""
    s3.create_bucket(Bucket=PLANS_BUCKET)
    for bucket in UNVERSIONED + VERSIONED:
        s3.create_bucket(Bucket=bucket)
    for bucket in VERSIONED:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    def put(bucket: str, key: str) -> None:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())

    for bucket in UNVERSIONED:
        for key in sorted(OLD | {"temp-keep/old.db"}):
            put(bucket, key)
    for bucket in VERSIONED:
        for key in ("temp/v.log", "temp/v.log", "temp-keep/x.log", "temp-keep/x.log"):
            put(bucket, key)  # the first of each pair is noncurrent since the second
    time.sleep(1.5)
    between = datetime.now(UTC) - timedelta(seconds=0.7)
    time.sleep(1.5)
    for bucket in UNVERSIONED:
        put(bucket, "temp/new.log")
    for bucket in VERSIONED:
        for key in ("temp/w.log", "temp/w.log"):
            put(bucket, key)  # noncurrent only since after the cutoff
    return between + timedelta(days=30)


@pytest.fixture
def cli(prefect_api: PrefectServer, tmp_path: Path) -> Cli:
    return Cli(
        {
            **os.environ,
            "PREFECT_API_URL": prefect_api.api_url,
            "PREFECT_HOME": str(tmp_path / "client-prefect-home"),
            "MANIFEST_DIR": str(tmp_path / "manifests"),
            # The server cannot backdate objects: the reference time is a moment to come.
            "ALLOW_FUTURE_AS_OF": "true",
            # No other run holds these buckets, but on a busy machine the Prefect server can
            # take more than the 1 s that a wait of 0 allows to hand out a new limit's slot.
            "LOCK_WAIT_MINUTES": "1",
        }
    )


def options(aws: IamMoto, bucket: str, *extra: str) -> list[str]:
    return [
        "--bucket",
        bucket,
        "--prefix",
        PREFIX,
        "--older-than-days",
        "30",
        "--as-of",
        aws.as_of.isoformat(),
        "--region",
        REGION,
        *extra,
    ]


def printed_policy(cli: Cli, run_options: Sequence[str]) -> dict[str, Any]:
    """What `s3-housekeeping iam-policy` prints for these options."""
    printed = cli("iam-policy", *run_options)
    assert printed.code == 0, printed.stderr
    policy: dict[str, Any] = json.loads(printed.stdout)
    return policy


def as_moto_reads_it(policy: dict[str, Any], bucket: str) -> dict[str, Any]:
    """The same grants as moto 5.2.5 checks them: the printed statements, then moto's names of
    their actions (MOTO_NAMES), then DeleteObjects as moto checks it.

    moto checks S3 requests against the bucket's or the key's ARN, as AWS does, but Secrets
    Manager and SNS requests against "*" (it does not model their resources, and its matcher
    takes "?" for a regular expression): there only the action is checked. AWS checks each key
    a DeleteObjects request names, as s3:DeleteObject or s3:DeleteObjectVersion on the key;
    moto checks the request once, as s3:DeleteObject on the bucket.
    """
    bucket_arn = f"arn:aws:s3:::{bucket}"
    printed = [
        s if s["Action"][0].startswith("s3:") else {**s, "Resource": "*"}
        for s in policy["Statement"]
    ]
    renamed = []
    for statement in policy["Statement"]:
        moto_actions = {
            name
            for action in statement["Action"]
            for name in MOTO_NAMES.get(action, ())
            if not (name == "s3:HeadBucket" and "Condition" in statement)
        }
        if moto_actions:
            renamed.append(
                {
                    "Sid": f"{statement['Sid']}AsMotoNamesIt",
                    "Effect": "Allow",
                    "Action": sorted(moto_actions),
                    "Resource": statement["Resource"],
                }
            )
        deletes = {"s3:DeleteObject", "s3:DeleteObjectVersion"} & set(statement["Action"])
        if deletes and statement["Resource"] == f"{bucket_arn}/{PREFIX}*":
            renamed.append(
                {
                    "Sid": "DeleteObjectsAsMotoChecksIt",
                    "Effect": "Allow",
                    "Action": ["s3:DeleteObject"],
                    "Resource": bucket_arn,
                }
            )
    return {"Version": policy["Version"], "Statement": printed + renamed}


def without(policy: dict[str, Any], action: str, sid: str | None = None) -> dict[str, Any]:
    """The policy less one action, in statement `sid` or wherever it is granted (a statement
    left empty goes)."""
    statements = [
        {**s, "Action": [a for a in s["Action"] if a != action or sid not in (None, s["Sid"])]}
        for s in policy["Statement"]
    ]
    return {**policy, "Statement": [s for s in statements if s["Action"]]}


@dataclass
class Run:
    result: CliResult
    report: dict[str, Any] | None
    policy: dict[str, Any]


def run_as_printed(
    cli: Cli,
    aws: IamMoto,
    tmp_path: Path,
    bucket: str,
    *extra: str,
    less: str | None = None,
    less_in: str | None = None,
) -> Run:
    """Print the policy for these options, then run with them as a user holding only that
    policy (less one action, if asked: in statement `less_in`, or everywhere), as moto names
    it."""
    run_options = options(aws, bucket, *extra)
    policy = printed_policy(cli, run_options)
    held = without(policy, less, less_in) if less else policy
    env = aws.user_holding(held, as_moto_reads_it(held, bucket))
    report_path = tmp_path / f"report-{bucket}.json"
    result = cli("run", *run_options, "--report-json", str(report_path), env=env)
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return Run(result, report, policy)


def keys(aws: IamMoto, bucket: str) -> set[str]:
    """The bucket's current keys: a run's lock object among them only if it was not released."""
    listed = aws.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"] for o in listed}


def versions(aws: IamMoto, bucket: str) -> list[tuple[str, bool]]:
    """(key, is_latest) of every version left, by key, newest first; not the lock object's
    (in a versioned bucket its released versions stay, as noncurrent ones)."""
    listed = aws.client("s3").list_object_versions(Bucket=bucket).get("Versions", [])
    kept = [(v["Key"], v["IsLatest"]) for v in listed if not v["Key"].startswith(LOCK_KEY_PREFIX)]
    return sorted(kept, key=lambda kv: (kv[0], not kv[1]))


def warnings(result: CliResult) -> list[str]:
    """Our log lines at WARNING or above: a step that failed without failing the run (a notice
    not sent, a journal not uploaded) says so there."""
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return [
        r["message"]
        for r in records
        if r["level"] in {"WARNING", "ERROR", "CRITICAL"} and r["logger"].startswith("tasks.")
    ]


def sids(policy: dict[str, Any]) -> set[str]:
    return {s["Sid"] for s in policy["Statement"]}


class TestPrintedPolicyIsEnough:
    def test_dry_run_plans_and_deletes_nothing_when_the_policy_is_held(
        self, cli: Cli, iam_moto: IamMoto, tmp_path: Path
    ) -> None:
        bucket = "current-dry"

        run = run_as_printed(cli, iam_moto, tmp_path, bucket)

        assert run.result.code == 0, run.result.stderr
        assert warnings(run.result) == []
        assert run.report is not None
        assert (run.report["status"], run.report["matched"]) == ("dry_run", 2)
        assert keys(iam_moto, bucket) == OLD | KEPT

    def test_executing_run_deletes_the_old_objects_when_the_policy_is_held(
        self, cli: Cli, iam_moto: IamMoto, tmp_path: Path
    ) -> None:
        bucket = "current-exec"

        run = run_as_printed(cli, iam_moto, tmp_path, bucket, "--execute", "--create-bucket")

        assert run.result.code == 0, run.result.stderr
        assert warnings(run.result) == []
        assert run.report is not None
        assert (run.report["status"], run.report["deleted"]) == ("completed", 2)
        assert run.report["bucket_action"] == "drifted"  # read, left as it is
        assert keys(iam_moto, bucket) == KEPT

    def test_run_lists_under_the_prefix_only_when_it_may_not_create_the_bucket(
        self, cli: Cli, iam_moto: IamMoto, tmp_path: Path
    ) -> None:
        bucket = "no-create"

        run = run_as_printed(cli, iam_moto, tmp_path, bucket, "--execute", "--no-create-bucket")

        assert run.result.code == 0, run.result.stderr
        assert warnings(run.result) == []
        assert "HeadAndListTheBucket" not in sids(run.policy)  # so no s3:HeadBucket for moto
        assert keys(iam_moto, bucket) == KEPT

    def test_run_creates_the_bucket_with_its_baseline_when_the_policy_is_held(
        self, cli: Cli, iam_moto: IamMoto, tmp_path: Path
    ) -> None:
        bucket = "created-by-run"

        run = run_as_printed(cli, iam_moto, tmp_path, bucket, "--execute", "--create-bucket")

        assert run.result.code == 0, run.result.stderr
        assert warnings(run.result) == []
        assert run.report is not None
        assert run.report["bucket_action"] == "created"
        s3 = iam_moto.client("s3")
        tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
        assert tags["ManagedBy"] == "s3-housekeeping"
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values())

    def test_noncurrent_run_deletes_old_noncurrent_versions_when_the_policy_is_held(
        self, cli: Cli, iam_moto: IamMoto, tmp_path: Path
    ) -> None:
        bucket = "noncurrent"

        run = run_as_printed(
            cli, iam_moto, tmp_path, bucket, "--execute", "--versions", "noncurrent"
        )

        assert run.result.code == 0, run.result.stderr
        assert warnings(run.result) == []
        assert run.report is not None
        assert run.report["deleted"] == 1
        assert keys(iam_moto, bucket) == {"temp-keep/x.log", "temp/v.log", "temp/w.log"}
        assert versions(iam_moto, bucket) == [
            ("temp-keep/x.log", True),
            ("temp-keep/x.log", False),
            ("temp/v.log", True),
            ("temp/w.log", True),
            ("temp/w.log", False),
        ]

    def test_all_versions_run_deletes_every_old_version_when_the_policy_is_held(
        self, cli: Cli, iam_moto: IamMoto, tmp_path: Path
    ) -> None:
        bucket = "all-versions"

        run = run_as_printed(cli, iam_moto, tmp_path, bucket, "--execute", "--versions", "all")

        assert run.result.code == 0, run.result.stderr
        assert warnings(run.result) == []
        assert run.report is not None
        assert run.report["deleted"] == 2
        assert keys(iam_moto, bucket) == {"temp-keep/x.log", "temp/w.log"}
        assert versions(iam_moto, bucket) == [
            ("temp-keep/x.log", True),
            ("temp-keep/x.log", False),
            ("temp/w.log", True),
            ("temp/w.log", False),
        ]

    def test_plan_kept_in_s3_is_written_then_applied_when_each_policy_is_held(
        self, cli: Cli, iam_moto: IamMoto, tmp_path: Path
    ) -> None:
        bucket = "planned"
        location = f"s3://{PLANS_BUCKET}/runs"

        planned = run_as_printed(cli, iam_moto, tmp_path, bucket, "--manifest-location", location)
        assert planned.result.code == 0, planned.result.stderr
        assert warnings(planned.result) == []
        assert planned.report is not None
        manifest = planned.report["manifest"]
        assert manifest.startswith(f"{location}/{bucket}/")
        assert "WritePlansAndJournals" in sids(planned.policy)

        # The same location: whatever an executing run of a saved plan keeps there is covered.
        applied = run_as_printed(
            cli,
            iam_moto,
            tmp_path,
            bucket,
            "--execute",
            "--plan",
            manifest,
            "--manifest-location",
            location,
        )

        assert applied.result.code == 0, applied.result.stderr
        assert warnings(applied.result) == []
        assert applied.report is not None
        assert (applied.report["plan_source"], applied.report["deleted"]) == (manifest, 2)
        assert "ReadTheSavedPlan" in sids(applied.policy)
        assert keys(iam_moto, bucket) == KEPT

    def test_run_reads_its_secret_when_the_policy_is_held(
        self, cli: Cli, iam_moto: IamMoto, tmp_path: Path
    ) -> None:
        bucket = "with-secret"
        owner = ("--expected-bucket-owner", LOCAL_ACCOUNT_ID)

        run = run_as_printed(
            cli, iam_moto, tmp_path, bucket, "--execute", "--secret-name", SECRET, *owner
        )

        assert run.result.code == 0, run.result.stderr
        assert warnings(run.result) == []
        assert keys(iam_moto, bucket) == KEPT

    def test_run_publishes_its_notice_when_the_policy_is_held(
        self, cli: Cli, iam_moto: IamMoto, tmp_path: Path
    ) -> None:
        bucket = "with-topic"
        sns, sqs = iam_moto.client("sns"), iam_moto.client("sqs")
        topic = sns.create_topic(Name="housekeeping-e2e-iam")["TopicArn"]
        queue = sqs.create_queue(QueueName="housekeeping-e2e-iam")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

        run = run_as_printed(
            cli, iam_moto, tmp_path, bucket, "--execute", "--notify-topic-arn", topic
        )

        assert run.result.code == 0, run.result.stderr
        assert warnings(run.result) == []
        assert keys(iam_moto, bucket) == KEPT
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        notices = [json.loads(json.loads(m["Body"])["Message"]) for m in messages]
        assert [(n["status"], n["counts"]["deleted"]) for n in notices] == [("completed", 2)]


class TestEachActionIsNeeded:
    @pytest.mark.parametrize(
        ("bucket", "extra", "removed", "refused", "code"),
        [
            pytest.param(
                "denied-versioning",
                (),
                "s3:GetBucketVersioning",
                "GetBucketVersioning on bucket",
                "AccessDenied",
                id="versioning",
            ),
            pytest.param(
                "denied-listing",
                ("--no-create-bucket",),
                "s3:ListBucket",
                "ListObjectsV2 on bucket",
                "AccessDenied",
                id="listing",
            ),
            pytest.param(
                "denied-secret",
                ("--secret-name", SECRET),
                "secretsmanager:GetSecretValue",
                "GetSecretValue on secret",
                # AWS: AccessDeniedException. moto answers this JSON service's refusal in a
                # shape botocore cannot read a code from, so the HTTP status stands for it.
                "403",
                id="secret",
            ),
            pytest.param(
                "denied-plans",
                ("--manifest-location", f"s3://{PLANS_BUCKET}/denied"),
                "s3:PutObject",
                "PutObject on plan",
                "AccessDenied",
                id="plans",
            ),
        ],
    )
    def test_run_fails_naming_the_aws_code_when_one_action_is_missing(
        self,
        cli: Cli,
        iam_moto: IamMoto,
        tmp_path: Path,
        bucket: str,
        extra: tuple[str, ...],
        removed: str,
        refused: str,
        code: str,
    ) -> None:
        run = run_as_printed(cli, iam_moto, tmp_path, bucket, *extra, less=removed)

        assert run.result.code == 4, run.result.stderr
        assert f"{refused} '" in run.result.stderr
        assert f"permission denied ({code})" in run.result.stderr
        assert keys(iam_moto, bucket) == OLD | KEPT

    def test_planned_deletes_fail_as_access_denied_when_delete_object_is_missing(
        self, cli: Cli, iam_moto: IamMoto, tmp_path: Path
    ) -> None:
        bucket = "denied-deletes"

        run = run_as_printed(
            cli,
            iam_moto,
            tmp_path,
            bucket,
            "--execute",
            less="s3:DeleteObject",
            less_in="DeleteUnchangedObjectsUnderThePrefix",
        )

        assert run.result.code == 7, run.result.stderr
        assert run.report is not None
        assert (run.report["deleted"], run.report["failed_by_code"]) == (0, {"AccessDenied": 2})
        assert keys(iam_moto, bucket) == OLD | KEPT


class TestCommand:
    """The command itself, as a user runs it; it makes no AWS call."""

    @pytest.fixture
    def plain(self) -> Cli:
        return Cli(dict(os.environ))

    def test_policy_is_json_on_stdout_and_alone_there_when_options_are_valid(
        self, plain: Cli
    ) -> None:
        result = plain("iam-policy", "--bucket", "my-team-scratch", "--prefix", "tmp/")

        assert result.code == 0, result.stderr
        policy = json.loads(result.stdout)
        assert policy["Version"] == "2012-10-17"
        assert result.stderr == ""

    def test_exit_1_naming_the_setting_when_an_option_is_invalid(self, plain: Cli) -> None:
        result = plain("iam-policy", "--bucket", "Not_A_Bucket", "--prefix", "tmp/")

        assert result.code == 1
        assert "bucket:" in result.stderr
        assert result.stdout == ""

    def test_options_fall_back_to_the_environment_when_left_out(self, plain: Cli) -> None:
        result = plain(
            "iam-policy",
            "--execute",
            env={"S3_BUCKET": "from-env-bucket", "CLEANUP_PREFIX": "tmp/"},
        )

        assert result.code == 0, result.stderr
        resources = {s["Resource"] for s in json.loads(result.stdout)["Statement"]}
        assert "arn:aws:s3:::from-env-bucket/tmp/*" in resources

    def test_role_is_named_as_the_policys_holder_when_one_is_assumed(self, plain: Cli) -> None:
        role = "arn:aws:iam::111122223333:role/s3-housekeeping"

        result = plain(
            "iam-policy", "--bucket", "my-team-scratch", "--prefix", "tmp/", "--role-arn", role
        )
        usage = plain("iam-policy", "--help")

        assert result.code == 0, result.stderr
        assert f"the policy is for the role {role}" in result.stderr
        assert "the policy is for that role" in " ".join(usage.stdout.split())

    def test_the_guides_example_is_what_the_command_prints_when_run(self, plain: Cli) -> None:
        guide = (Path(__file__).resolve().parents[2] / "docs/guides/real-aws.md").read_text()
        section = guide.split("## Least-privilege IAM policy\n")[1].split("\n## ")[0]
        command = section.split("```bash\n")[1].split("```")[0].replace("\\\n", " ")
        words = shlex.split(command)
        example = section.split("```json\n")[1].split("```")[0]

        assert words[:2] == [".venv/bin/s3-housekeeping", "iam-policy"]
        assert words[-2:] == [">", "policy.json"]
        result = plain(*words[1:-2])
        assert result.code == 0, result.stderr
        assert result.stdout == example
