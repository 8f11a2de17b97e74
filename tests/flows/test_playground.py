"""The playground: a local S3 holding objects of known ages, and how to reach it."""

from __future__ import annotations

import io
import re
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from flows.playground import BUCKET, COMMANDS, OBJECTS, on_path, run_playground


def test_serves_its_objects_backdated_and_says_how_to_reach_them_until_stopped() -> None:
    out, stop = io.StringIO(), threading.Event()
    playground = threading.Thread(target=run_playground, args=(out, stop))
    playground.start()
    try:
        deadline = time.monotonic() + 60
        while "Ctrl-C" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
        printed = out.getvalue()
        exported = dict(re.findall(r"(AWS_[A-Z_]+)=(\S+)", printed))
        s3 = boto3.client(
            "s3",
            endpoint_url=exported["AWS_ENDPOINT_URL"],
            region_name=exported["AWS_DEFAULT_REGION"],
            aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"],
        )
        listed = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    finally:
        stop.set()
        playground.join(timeout=30)

    now = datetime.now(UTC)
    ages = {entry["Key"]: (now - entry["LastModified"]).days for entry in listed}
    assert ages == OBJECTS
    assert printed.count("  export AWS_") == 2
    assert all(command in printed for command in COMMANDS)
    assert out.getvalue().endswith("Local S3 stopped.\n")
    assert not playground.is_alive()


def test_says_where_the_command_is_when_the_path_does_not_hold_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(sys, "argv", ["/opt/tool/bin/s3-housekeeping", "demo", "--keep"])

    assert on_path() == ["  export PATH=/opt/tool/bin:$PATH   # where s3-housekeeping is"]


def test_says_nothing_of_the_path_when_it_holds_the_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    command = tmp_path / "s3-housekeeping"
    command.write_text("#!/bin/sh\n")
    command.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))

    assert on_path() == []
