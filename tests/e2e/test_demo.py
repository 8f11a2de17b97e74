"""`make demo`'s command: the whole job against the embedded local AWS, from a user's shell."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from devtools.prefect_server import PrefectServer
from devtools.processes import BIN

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("server", [True, False], ids=["prefect-server", "no-server"])
def test_demo_creates_plans_deletes_and_reports_when_run(
    prefect_api: PrefectServer, tmp_path: Path, server: bool
) -> None:
    report_path = tmp_path / "demo-report.json"
    environment = {
        **os.environ,
        "PREFECT_API_URL": prefect_api.api_url if server else "",
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "S3_HOUSEKEEPING_LOCAL_API": "off",
    }
    completed = subprocess.run(
        [str(BIN / "s3-housekeeping"), "demo", "--report-json", str(report_path)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    # Without a server (`make demo` on a fresh machine), the command's own temporary API.
    assert ("Temporary Prefect API ready" in completed.stdout) is not server
    assert "Starting temporary server" not in completed.stdout + completed.stderr
    assert completed.returncode == 0, completed.stderr
    narration = completed.stderr
    assert "bucket s3-housekeeping-demo: created" in narration
    assert "would delete 4 of 6 objects" in narration
    assert "Demo done: 4 deleted, 4 kept." in narration
    report = json.loads(report_path.read_text())
    assert (report["status"], report["deleted"], report["failed"]) == ("completed", 4, 0)
    for line in completed.stdout.splitlines():
        json.loads(line)  # every stdout line is a JSON log record
