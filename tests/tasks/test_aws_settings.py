"""What a run's AWS clients are built from, importable before any AWS SDK is."""

from __future__ import annotations

import subprocess
import sys

from tasks.aws import AwsSettings as FromTheFactory
from tasks.aws_settings import READ_TIMEOUT_S, AwsSettings


def test_is_the_factorys_own_when_imported_from_either_place() -> None:
    assert FromTheFactory is AwsSettings
    assert AwsSettings(region="eu-west-1").read_timeout_s == READ_TIMEOUT_S


def test_the_settings_load_without_the_aws_sdk_when_checked_before_a_run() -> None:
    # The command checks its settings before anything starts: boto3 (0.1 s) waits till then.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, flows.cli; print(sorted(m for m in sys.modules if m == 'boto3'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"
