"""A canary secret value, read by a DEBUG-level run, appears nowhere the run leaves a trace."""

from __future__ import annotations

import json
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deployments.local_aws import LOCAL_ACCOUNT_ID, LocalAws, backdate
from devtools.prefect_server import PrefectServer
from tests.e2e.conftest import Cli

pytestmark = pytest.mark.e2e

CANARY = f"CANARY-{uuid.uuid4().hex}"
KMS_CANARY = f"alias/CANARY-KMS-{uuid.uuid4().hex[:12]}"


def files_containing(root: Path, needle: str) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and needle.encode() in path.read_bytes():
            found.append(path)
    return found


def api_post(server: PrefectServer, route: str) -> str:
    request = urllib.request.Request(  # noqa: S310 - loopback test server
        f"{server.api_url}/{route}",
        data=json.dumps({"limit": 200}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return str(response.read().decode())


def test_secret_values_appear_nowhere_when_run_at_debug_level(
    cli: Cli, moto_http: LocalAws, prefect_api: PrefectServer, tmp_path: Path
) -> None:
    bucket = f"canary-{uuid.uuid4().hex[:12]}"
    secret_name = f"canary/{uuid.uuid4().hex[:8]}"
    moto_http.client("secretsmanager").create_secret(
        Name=secret_name,
        SecretString=json.dumps(
            {
                "api_token": CANARY,
                "kms_key_id": KMS_CANARY,
                "expected_bucket_owner": LOCAL_ACCOUNT_ID,
            }
        ),
    )
    as_of = datetime.now(UTC) - timedelta(hours=1)
    s3 = moto_http.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="temp/old.log", Body=b"x")
    backdate(bucket, "temp/old.log", as_of - timedelta(days=90))
    report_path = tmp_path / "report.json"

    result = cli(
        "run",
        "--bucket",
        bucket,
        "--prefix",
        "temp/",
        "--older-than-days",
        "30",
        "--secret-name",
        secret_name,
        # An existing bucket is converged to the baseline only when asked: here, so that the
        # secret's KMS key is really used.
        "--converge-baseline",
        "--execute",
        "--as-of",
        as_of.isoformat(),
        "--report-json",
        str(report_path),
        env={"LOG_LEVEL": "DEBUG"},
    )

    assert result.code == 0, result.stderr
    # The secret was really used: the bucket's default encryption is the secret's KMS key.
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == KMS_CANARY
    assert '"level": "DEBUG"' in result.stdout  # the run did log at DEBUG
    report = report_path.read_text()
    assert json.loads(report)["deleted"] == 1
    traces = {
        "stdout": result.stdout,
        "stderr": result.stderr,
        "report": report,
        "artifacts": api_post(prefect_api, "artifacts/filter"),
        "flow runs": api_post(prefect_api, "flow_runs/filter"),
        "task runs": api_post(prefect_api, "task_runs/filter"),
        "logs": api_post(prefect_api, "logs/filter"),
    }
    # The places searched really hold this run's traces.
    assert f"Reading secret {secret_name}" in traces["logs"]
    assert bucket in traces["artifacts"]
    for value in (CANARY, KMS_CANARY):
        assert [name for name, text in traces.items() if value in text] == []
        for home in (
            prefect_api.home,
            Path(cli.env["PREFECT_HOME"]),
            Path(cli.env["MANIFEST_DIR"]),
        ):
            assert files_containing(home, value) == []
