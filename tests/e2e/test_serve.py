"""`make serve`'s program as a user starts it: everything comes up on loopback, Ctrl-C stops it."""

from __future__ import annotations

import base64
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from deployments.bootstrap import ROOT
from deployments.local_aws import LOCAL_CREDENTIALS
from devtools.processes import free_port, http_ok, stop
from flows.local_api import API_URL_FILE, LOCAL_HOME

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


def post(
    url: str, body: object, auth: str | None = None, headers: dict[str, str] | None = None
) -> object:
    sent = {"Content-Type": "application/json", **(headers or {})}
    if auth is not None:
        sent["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    request = urllib.request.Request(  # noqa: S310 - loopback test server
        url, data=json.dumps(body).encode(), headers=sent
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def refused_without_password(url: str) -> int:
    try:
        post(url, {})
    except urllib.error.HTTPError as error:
        return error.code
    return 200


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
    home = tmp_path / LOCAL_HOME  # as in a checkout: a command run in tmp_path finds it
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
        assert "credentials block s3-housekeeping-fleet: created" in output.text
        assert LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in output.text
        # Its home is its owner's only; the API wants the password kept there.
        auth = (home / "api-auth").read_text().strip()
        assert auth not in output.text
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        assert stat.S_IMODE((home / "api-auth").stat().st_mode) == 0o600
        assert stat.S_IMODE((home / API_URL_FILE).stat().st_mode) == 0o600
        assert refused_without_password(f"{api}/deployments/filter") == 401
        # Only the UI's own page may call the API from a browser.
        evil = urllib.request.Request(  # noqa: S310 - loopback test server
            f"{api}/deployments/filter",
            method="OPTIONS",
            headers={
                "Origin": "http://attacker.example",
                "Access-Control-Request-Method": "POST",
            },
        )
        try:
            with urllib.request.urlopen(evil, timeout=10) as preflight:  # noqa: S310
                allowed = preflight.headers.get("Access-Control-Allow-Origin")
        except urllib.error.HTTPError as error:
            allowed = error.headers.get("Access-Control-Allow-Origin")
        assert allowed is None
        deployments = post(f"{api}/deployments/filter", {}, auth)
        assert isinstance(deployments, list)
        assert {d["name"] for d in deployments} == {
            "s3-housekeeping-dev",
            "s3-housekeeping-staging",
            "s3-housekeeping-prod",
            "s3-housekeeping-prod-manual",
            "s3-housekeeping-fleet-child",
            "s3-housekeeping-fleet",
        }
        pools = post(f"{api}/work_pools/filter", {}, auth)
        assert isinstance(pools, list)
        assert {p["name"]: p["status"] for p in pools if p["name"].startswith("s3-")} == {
            "s3-housekeeping-dev": "READY",
            "s3-housekeeping-staging": "READY",
            "s3-housekeeping-prod": "READY",
            "s3-housekeeping-fleet": "READY",
            "s3-housekeeping-fleet-control": "READY",
        }
        assert http_ok(f"http://127.0.0.1:{port}/")  # the UI
        # A command run here with no PREFECT_API_URL uses this server (no temporary one).
        assert (home / API_URL_FILE).read_text().strip() == api
        endpoint = output.text.split("Local AWS (moto) on ", 1)[1].split(",", 1)[0]
        command_env = {
            name: value
            for name, value in os.environ.items()
            if name not in ("PREFECT_API_URL", "S3_HOUSEKEEPING_LOCAL_API", "PREFECT_HOME")
        }
        command_env |= {**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}
        command_env["PREFECT_HOME"] = str(tmp_path / "command-home")
        run = subprocess.run(
            [
                str(Path(sys.executable).parent / "s3-housekeeping"),
                "run",
                "--bucket",
                "s3-housekeeping-dev",
                "--prefix",
                "tmp/",
                "--no-create-bucket",
            ],
            cwd=tmp_path,
            env=command_env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        assert f"using make serve's Prefect server, {api}" in run.stderr
        assert "Starting temporary server" not in run.stderr + run.stdout
        runs = post(f"{api}/flow_runs/filter", {}, auth)
        assert [r["state_type"] for r in runs if r["deployment_id"] is None] == ["COMPLETED"]

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
    assert not (home / API_URL_FILE).exists()  # no address left behind for the next command
