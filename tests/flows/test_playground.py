"""The playground: a local S3 holding objects of known ages, and how to reach it."""

from __future__ import annotations

import io
import re
import threading
import time
from datetime import UTC, datetime

import boto3

from flows.playground import BUCKET, COMMANDS, OBJECTS, run_playground


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
    assert printed.count("  export ") == 2
    assert all(command in printed for command in COMMANDS)
    assert out.getvalue().endswith("Local S3 stopped.\n")
    assert not playground.is_alive()
