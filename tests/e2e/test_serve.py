"""`make serve`'s program as a user starts it: everything comes up on loopback, Ctrl-C stops it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from deployments.bootstrap import ROOT
from deployments.local_aws import LOCAL_CREDENTIALS
from devtools.processes import free_port, http_ok, stop

pytestmark = pytest.mark.e2e

BANNER_END = "Press Ctrl-C to stop everything."


class Output:
    """The program's output, read on a thread so the test can wait with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, needle: str, process: subprocess.Popen[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while needle not in self.text:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"never printed {needle!r}:\n{self.text}")
            time.sleep(0.5)


def post(url: str, body: object) -> object:
    request = urllib.request.Request(  # noqa: S310 - loopback test server
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def processes_with_home(home: Path) -> list[int]:
    """Ids of the live processes whose environment names this Prefect home (the test's own:
    the server and workers serve started)."""
    marker = f"PREFECT_HOME={home}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_serve_starts_everything_then_stops_it_all_when_interrupted(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "prefect-local"
    process = subprocess.Popen(
        [sys.executable, "-m", "deployments.serve", "--port", str(port), "--home", str(home)],
        env={**os.environ, "LOCAL_AWS": "1", "PYTHONUNBUFFERED": "1"},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = Output(process)
    try:
        output.wait_for(BANNER_END, process, timeout_s=300)
        api = f"http://127.0.0.1:{port}/api"

        assert f"Prefect UI:  http://127.0.0.1:{port}" in output.text
        assert "credentials block s3-housekeeping-prod: created" in output.text
        assert LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in output.text
        deployments = post(f"{api}/deployments/filter", {})
        assert isinstance(deployments, list)
        assert {d["name"] for d in deployments} == {
            "s3-housekeeping-dev",
            "s3-housekeeping-staging",
            "s3-housekeeping-prod",
            "s3-housekeeping-prod-manual",
        }
        pools = post(f"{api}/work_pools/filter", {})
        assert isinstance(pools, list)
        assert {p["name"]: p["status"] for p in pools if p["name"].startswith("s3-")} == {
            "s3-housekeeping-dev": "READY",
            "s3-housekeeping-staging": "READY",
            "s3-housekeeping-prod": "READY",
        }
        assert http_ok(f"http://127.0.0.1:{port}/")  # the UI

        process.send_signal(signal.SIGINT)  # Ctrl-C
        assert process.wait(90) == 0, output.text
    finally:
        stop(process)  # type: ignore[arg-type]
        leftovers = processes_with_home(home)
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)

    assert "Stopped." in output.text
    assert leftovers == [], "serve left processes running"
    assert not http_ok(f"http://127.0.0.1:{port}/api/health")
