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


def test_demo_creates_plans_deletes_and_reports_when_run(
    prefect_api: PrefectServer, tmp_path: Path
) -> None:
    report_path = tmp_path / "demo-report.json"
    completed = subprocess.run(
        [str(BIN / "s3-housekeeping"), "demo", "--report-json", str(report_path)],
        env={
            **os.environ,
            "PREFECT_API_URL": prefect_api.api_url,
            "PREFECT_HOME": str(tmp_path / "prefect-home"),
        },
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    narration = completed.stderr
    assert "bucket s3-housekeeping-demo: created" in narration
    assert "would delete 4 of 6 objects" in narration
    assert "Demo done: 4 deleted, 4 kept." in narration
    report = json.loads(report_path.read_text())
    assert (report["status"], report["deleted"], report["failed"]) == ("completed", 4, 0)
    for line in completed.stdout.splitlines():
        json.loads(line)  # every stdout line is a JSON log record
