"""A canary secret value, read by a DEBUG-level run, appears nowhere the run leaves a trace."""

from __future__ import annotations

import base64
import gzip
import json
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deployments.local_aws import LOCAL_ACCOUNT_ID, LocalAws, backdate
from devtools.prefect_server import PrefectServer
from tests.e2e.conftest import Cli
from tests.support.sns import received, subscribed_queue_over_http

pytestmark = pytest.mark.e2e

CANARY = f"CANARY-{uuid.uuid4().hex}"
KMS_CANARY = f"alias/CANARY-KMS-{uuid.uuid4().hex[:12]}"


def files_containing(root: Path, needle: str) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and needle.encode() in path.read_bytes():
            found.append(path)
    return found


def api_post(server: PrefectServer, route: str, sort: str | None = None) -> str:
    """The newest 200 of a kind (the server is shared by every e2e test of the session)."""
    body: dict[str, object] = {"limit": 200, **({"sort": sort} if sort else {})}
    request = urllib.request.Request(  # noqa: S310 - loopback test server
        f"{server.api_url}/{route}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return str(response.read().decode())


def forms(value: str) -> list[str]:
    """A value as it could leak: as it is, and base64-encoded (standard and URL-safe)."""
    raw = value.encode()
    return [value, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()]


def events_of(server: PrefectServer, wait_for: str | None, timeout_s: float = 30) -> str:
    """The server's events of the last hour (the newest 50 of each kind asked for), waiting
    until `wait_for` is among them: a run's hooks emit after its end, stored asynchronously."""
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    deadline = time.monotonic() + timeout_s
    while True:
        found = ""
        for prefix in ("s3-housekeeping.", "prefect."):
            body = {"filter": {"occurred": {"since": since}, "event": {"prefix": [prefix]}}}
            request = urllib.request.Request(  # noqa: S310 - loopback test server
                f"{server.api_url}/events/filter",
                data=json.dumps({**body, "limit": 50}).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                found += response.read().decode()
        if wait_for is None or wait_for in found or time.monotonic() > deadline:
            return found
        time.sleep(1)


@pytest.mark.parametrize("ending", ["completed", "failed", "killed"])
def test_secret_values_appear_nowhere_when_run_at_debug_level(
    cli: Cli, moto_http: LocalAws, prefect_api: PrefectServer, tmp_path: Path, ending: str
) -> None:
    bucket = f"canary-{uuid.uuid4().hex[:12]}"
    secret_name = f"canary/{uuid.uuid4().hex[:8]}"
    secret_string = json.dumps(
        {"api_token": CANARY, "kms_key_id": KMS_CANARY, "expected_bucket_owner": LOCAL_ACCOUNT_ID}
    )
    moto_http.client("secretsmanager").create_secret(Name=secret_name, SecretString=secret_string)
    topic, queue = subscribed_queue_over_http(moto_http)
    as_of = datetime.now(UTC) - timedelta(hours=1)
    s3 = moto_http.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="temp/old.log", Body=b"x")
    backdate(bucket, "temp/old.log", as_of - timedelta(days=90))
    report_path = tmp_path / "report.json"
    arguments = [
        "run",
        "--bucket",
        bucket if ending != "failed" else f"{bucket}-missing",
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
        "--notify-topic-arn",
        topic,
        *(["--no-create-bucket"] if ending == "failed" else []),
        *(["--require-approval"] if ending == "killed" else []),
    ]

    if ending == "killed":
        # Killed outright while it waits for approval: after the secret, the bucket, the plan.
        result = cli.killed_when(*arguments, said="Waiting up to", env={"LOG_LEVEL": "DEBUG"})
    else:
        result = cli(*arguments, env={"LOG_LEVEL": "DEBUG"})

    assert result.code == {"completed": 0, "failed": 1, "killed": -9}[ending], result.stderr
    if ending == "completed":
        # The secret was really used: the bucket's default encryption is its KMS key.
        encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
        by_default = encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]
        assert by_default["KMSMasterKeyID"] == KMS_CANARY
        assert json.loads(report_path.read_text())["deleted"] == 1
        # The owner the secret named is enforced, and its plan says only where it came from.
        (plan,) = Path(cli.env["MANIFEST_DIR"]).rglob("*.jsonl.gz")
        header = json.loads(gzip.decompress(plan.read_bytes()).splitlines()[0])
        assert (header["owner"], header["owner_from"]) == (None, "secret")
        assert files_containing(Path(cli.env["MANIFEST_DIR"]), LOCAL_ACCOUNT_ID) == []
    assert '"level": "DEBUG"' in result.stdout  # the run did log at DEBUG
    traces = {
        "stdout": result.stdout,
        "stderr": result.stderr,
        "report": report_path.read_text() if report_path.exists() else "",
        "artifacts": api_post(prefect_api, "artifacts/filter", "CREATED_DESC"),
        "flow runs": api_post(prefect_api, "flow_runs/filter", "START_TIME_DESC"),
        "task runs": api_post(prefect_api, "task_runs/filter", "EXPECTED_START_TIME_DESC"),
        "logs": api_post(prefect_api, "logs/filter", "TIMESTAMP_DESC"),
        "events": events_of(prefect_api, None if ending == "killed" else bucket),
        "notices": json.dumps(received(queue)),
    }
    # The places searched really hold this run's traces.
    # (a killed run's last logs never reach the server: its stdout has them)
    shipped = traces["stdout"] if ending == "killed" else traces["logs"]
    assert f"Reading secret {secret_name}" in shipped
    assert '"event":"prefect.' in traces["events"]
    if ending != "killed":
        assert bucket in traces["notices"]
    for value in (CANARY, KMS_CANARY, secret_string):
        for form in forms(value):
            assert [name for name, text in traces.items() if form in text] == []
            for home in (
                prefect_api.home,
                Path(cli.env["PREFECT_HOME"]),
                Path(cli.env["MANIFEST_DIR"]),  # plans and journals
            ):
                assert files_containing(home, form) == []
