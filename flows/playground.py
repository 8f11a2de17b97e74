"""`s3-housekeeping demo --keep`: a local S3 holding objects of known ages, left running to try
the command against."""

from __future__ import annotations

import logging
import shlex
import shutil
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from deployments.local_aws import local_aws, seed_objects

BUCKET = "playground"
PREFIX = "tmp"
#: key -> age in days. Under tmp/, 30 days: eleven objects are old enough, two are not, and
#: tmp-keep/ shows why a prefix should end with "/".
OBJECTS = {
    **{f"tmp/builds/build-{n:04d}.tar.gz": 400 - 30 * n for n in range(1, 9)},
    "tmp/cache/layer-a.bin": 45,
    "tmp/cache/layer-b.bin": 31,
    "tmp/cache/layer-c.bin": 29,
    "tmp/scratch.txt": 60,
    "tmp/today.log": 0,
    "tmp-keep/precious.db": 400,
    "logs/2024/app.log": 400,
}
#: The commands the playground suggests (the docs' quick start runs them; a test too).
COMMANDS = (
    f"s3-housekeeping run s3://{BUCKET}/{PREFIX}/",
    f"s3-housekeeping run s3://{BUCKET}/{PREFIX}",
    f"s3-housekeeping run s3://{BUCKET}/{PREFIX}/ --execute",
)


def on_path() -> list[str]:
    """How the other terminal finds the command, when its PATH does not (a checkout's
    .venv/bin is not on it unless the environment is activated)."""
    if shutil.which("s3-housekeeping"):
        return []
    folder = Path(sys.argv[0]).resolve().parent
    return [f"  export PATH={shlex.quote(str(folder))}:$PATH   # where s3-housekeeping is"]


def run_playground(out: TextIO = sys.stdout, stop: threading.Event | None = None) -> int:
    """Start the local S3, fill it, print how to reach it, and wait for Ctrl-C (or `stop`)."""
    if stop is None:  # the command's: Ctrl-C and a termination end the wait
        stop = threading.Event()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signal_number, lambda *_: stop.set())
    # moto's web server would log every request it serves on this terminal.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with local_aws() as aws:
        seed_objects(aws, BUCKET, datetime.now(UTC), OBJECTS, create_bucket=True)
        environment = aws.environment()
        lines = [
            f"A local S3 is running at {aws.endpoint_url}, with bucket {BUCKET}: "
            f"{len(OBJECTS)} objects from 0 to 400 days old, under tmp/, tmp-keep/ and logs/.",
            "",
            "In another terminal, paste these lines:",
            "",
            f"  export AWS_ENDPOINT_URL={environment['AWS_ENDPOINT_URL']} "
            f"AWS_DEFAULT_REGION={environment['AWS_DEFAULT_REGION']}",
            f"  export AWS_ACCESS_KEY_ID={environment['AWS_ACCESS_KEY_ID']} "
            f"AWS_SECRET_ACCESS_KEY={environment['AWS_SECRET_ACCESS_KEY']}",
            *on_path(),
            "",
            "then try:",
            "",
            f"  {COMMANDS[0]}            # a dry run: what would be deleted",
            f"  {COMMANDS[1]}             # no trailing /: tmp-keep/ matches too",
            f"  {COMMANDS[2]}  # delete them",
            "",
            "Ctrl-C stops the local S3 (and forgets its objects).",
        ]
        print("\n".join(lines), file=out, flush=True)
        stop.wait()
    print("Local S3 stopped.", file=out, flush=True)
    return 0
