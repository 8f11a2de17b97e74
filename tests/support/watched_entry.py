"""Run the command's entry point as its console script does, and record every process it starts.

Python's audit hook sees each subprocess as it is created ("subprocess.Popen"), so a test can
prove that a command started no temporary Prefect API, rather than only that it said nothing
about one, and whether the flow's modules (and Prefect) were loaded by then.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The entry point with the hook installed; the children are printed as the process ends.
WATCHED_ENTRY = """
import json, sys
children = []
def watch(event, args):
    if event == "subprocess.Popen":
        loaded = "flows.s3_housekeeping" in sys.modules or "prefect" in sys.modules
        children.append({"argv": [str(a) for a in args[1]], "flow_loaded": loaded})
sys.addaudithook(watch)
sys.argv = ["s3-housekeeping", *sys.argv[1:]]
from flows.entry import main
try:
    sys.exit(main())
finally:
    print("CHILDREN " + json.dumps(children), flush=True)
"""


@dataclass(frozen=True)
class WatchedRun:
    code: int
    #: Each child process started, in order: its argv, and whether the flow's modules (and
    #: Prefect) were loaded by then.
    children: list[dict[str, Any]]
    stdout: str
    stderr: str
    seconds: float


def watched_run(environment: Mapping[str, str], *arguments: str) -> WatchedRun:
    """Run `s3-housekeeping ARGUMENTS` in a new interpreter, watching what it starts."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", WATCHED_ENTRY, *arguments],
        env=dict(environment),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    seconds = time.monotonic() - started
    marker = next(line for line in done.stdout.splitlines() if line.startswith("CHILDREN "))
    stdout = "".join(
        line for line in done.stdout.splitlines(keepends=True) if not line.startswith("CHILDREN ")
    )
    return WatchedRun(
        done.returncode,
        json.loads(marker.removeprefix("CHILDREN ")),
        stdout,
        done.stderr,
        seconds,
    )
