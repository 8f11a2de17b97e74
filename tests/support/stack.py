"""The end-to-end tests' deployed stack: prefect.yaml on a real server, a worker, moto.

Also the Prefect REST calls the tests make against it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from deployments.bootstrap import ROOT, bootstrap, client_env
from deployments.local_aws import LocalAws, local_aws, seed_objects
from devtools.prefect_server import PrefectServer, workers
from devtools.processes import BIN
from tasks.settings import all_environment_variables

#: The pools whose workers the tests need: they run the dev deployment (the others are deployed
#: and checked, never run; test_serve.py starts a worker for every pool).
TEST_POOLS = ("s3-housekeeping-dev", "s3-housekeeping-prod")
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}
#: What seed_objects' demo set leaves under tmp/ after a 30-day cleanup, and what it deletes.
DEMO_OLD = {
    "tmp/build-0001.tar.gz",
    "tmp/build-0002.tar.gz",
    "tmp/cache/layer-a.bin",
    "tmp/cache/layer-b.bin",
}
DEMO_KEPT = {"tmp/cache/layer-c.bin", "tmp/today.log", "tmp-keep/precious.db", "logs/2024/app.log"}


@dataclass(frozen=True)
class Stack:
    api_url: str
    aws: LocalAws
    env: dict[str, str]
    home: Path

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")

    # --- REST ---------------------------------------------------------------------------------

    def get(self, route: str) -> Any:
        with urllib.request.urlopen(f"{self.api_url}/{route}", timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def post(self, route: str, body: Mapping[str, Any], attempts: int = 3) -> Any:
        """POST JSON; a 503 (the SQLite server busy) is tried again, as Prefect's client does."""
        request = urllib.request.Request(  # noqa: S310 - loopback test server
            f"{self.api_url}/{route}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        for attempt in range(1, attempts + 1):
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                    text = response.read()
                    return json.loads(text) if text else None
            except urllib.error.HTTPError as error:
                if error.code != 503 or attempt == attempts:
                    raise
                time.sleep(1)
        raise AssertionError("unreachable")

    def deployment(self, name: str) -> dict[str, Any]:
        found = self.post("deployments/filter", {"deployments": {"name": {"any_": [name]}}})
        assert len(found) == 1, f"deployment {name} not found"
        return dict(found[0])

    def flow_run(self, run_id: str) -> dict[str, Any]:
        return dict(self.get(f"flow_runs/{run_id}"))

    def wait_for_state(
        self, run_id: str, types: set[str], timeout_s: float = 180
    ) -> dict[str, Any]:
        """Poll the run until its state type is one of `types`; fail on another final state."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            run = self.flow_run(run_id)
            state = run["state"]["type"]
            if state in types:
                return run
            if state in TERMINAL:
                raise AssertionError(f"run {run_id} ended {state}: {run['state']['message']}")
            time.sleep(1)
        raise TimeoutError(f"run {run_id} did not reach {types} within {timeout_s} s")

    def artifacts(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's artifacts by key (the latest of each)."""
        found = self.post(
            "artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}, "limit": 50}
        )
        return {a["key"]: a for a in sorted(found, key=lambda a: a["created"]) if a.get("key")}

    def events(
        self, run_id: str, prefix: str = "s3-housekeeping.", timeout_s: float = 30
    ) -> list[dict[str, Any]]:
        """The run's events whose names start with `prefix`; waits for at least one (a run's
        hooks emit them after its final state, and the server stores them asynchronously)."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self._events(run_id, prefix)
            if found or time.monotonic() > deadline:
                return found
            time.sleep(1)

    def _events(self, run_id: str, prefix: str) -> list[dict[str, Any]]:
        body = {
            "filter": {
                "event": {"prefix": [prefix]},
                "related": {"id": [f"prefect.flow-run.{run_id}"]},
                "occurred": {"since": (datetime.now(UTC) - timedelta(hours=1)).isoformat()},
            },
            "limit": 20,
        }
        return list(self.post("events/filter", body)["events"])

    def resume(self, run_id: str, run_input: Mapping[str, Any]) -> Any:
        return self.post(f"flow_runs/{run_id}/resume", {"run_input": dict(run_input)})

    def cancel(self, run_id: str) -> None:
        """Stop a run a failed test left behind, so the next test gets the pool."""
        run = self.flow_run(run_id)
        if run["state"]["type"] not in TERMINAL:
            self.post(
                f"flow_runs/{run_id}/set_state",
                {"state": {"type": "CANCELLED", "message": "test cleanup"}, "force": True},
            )

    # --- the CLI and S3 -----------------------------------------------------------------------

    def prefect(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "prefect"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def run_deployment(self, name: str, **parameters: Any) -> str:
        """`prefect deployment run --param ...`, as a person would; returns the run's id."""
        params = [f"--param={key}={json_value(value)}" for key, value in parameters.items()]
        result = self.prefect("deployment", "run", f"s3-housekeeping/{name}", *params)
        assert result.returncode == 0, result.stdout + result.stderr
        match = re.search(r"UUID: ([0-9a-f-]{36})", result.stdout)
        assert match, result.stdout
        return match.group(1)

    def seeded_bucket(self, name_prefix: str) -> str:
        """A fresh bucket holding the demo objects (see DEMO_OLD and DEMO_KEPT)."""
        bucket = f"{name_prefix}-{uuid.uuid4().hex[:10]}"
        seed_objects(self.aws, bucket, datetime.now(UTC), create_bucket=True)
        return bucket

    def keys(self, bucket: str) -> set[str]:
        listed = self.aws.client("s3").list_objects_v2(Bucket=bucket)
        return {item["Key"] for item in listed.get("Contents", [])}


def json_value(value: Any) -> str:
    """How `prefect deployment run --param` reads a value: JSON, or else a plain string."""
    return value if isinstance(value, str) else json.dumps(value)


def worker_environment(api_url: str, home: Path) -> dict[str, str]:
    """The workers' (and so the flow runs') environment: nothing of the machine's AWS or
    s3-housekeeping settings; plans under test-output/ (gitignored)."""
    base = dict(os.environ)
    for name in list(base):
        if name.startswith("AWS_"):
            del base[name]
    for name in all_environment_variables():
        base.pop(name, None)
    base.pop("PREFECT_LOGGING_CONFIG_PATH", None)
    return {
        **client_env(api_url, home, base),
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        # Relative to the flow run's directory (the checkout): the UI then shows no machine path.
        "MANIFEST_DIR": "test-output/manifests",
        "TASK_RETRIES": "0",
        # A run is picked up within a second, not Prefect's ten.
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }


@contextmanager
def deployed_stack(home: Path, database: Path | None = None) -> Iterator[Stack]:
    """A Prefect server of its own (deployments, blocks and runs stay out of the other tests'
    server; its database a copy of `database` when given), moto over HTTP in this process,
    prefect.yaml applied with its blocks pointing at moto, and one worker per test pool."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = PrefectServer(home / "server-home", database=database)
    with server, local_aws() as aws:
        env = worker_environment(server.api_url, home)
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            bootstrap(env, aws.environment(), overwrite_blocks=True)
        with workers(TEST_POOLS, env, home / "logs", cwd=ROOT):
            yield Stack(api_url=server.api_url, aws=aws, env=env, home=home)
