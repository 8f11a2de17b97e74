"""The wheel: built from this checkout, installed with uv into a clean virtual environment, and
its command run from there (help, a dry run against moto), never from the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.parser import HeaderParser
from pathlib import Path

import pytest

from deployments.local_aws import LocalAws, backdate
from devtools.prefect_server import PrefectServer
from tests.support.fault_proxy import FaultProxy

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
AS_OF = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
OLD = {"temp/a.log", "temp/b/c.log"}
KEPT = {"temp/new.log", "temp-keep/old.db"}


def uv() -> str:
    """The uv the Makefile runs: `uv run` names itself in UV; else uv on PATH, else the one
    `make install` bootstraps into .tools/."""
    return os.environ.get("UV") or shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")


def run(command: Sequence[str | Path], cwd: Path) -> None:
    completed = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


@dataclass(frozen=True)
class Installed:
    """The built wheel and the virtual environment it was installed into."""

    wheel: Path
    venv: Path

    def run(
        self, home: Path, program: str, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run one of the venv's programs from `home`, as from a user's bare shell: nothing of
        the checkout's environment, a home of its own, and `env` on top."""
        bare = {
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{os.defpath}",
            "HOME": str(home),
            "PREFECT_HOME": str(home / ".prefect"),
            "MANIFEST_DIR": str(home / "manifests"),
            "AWS_CONFIG_FILE": str(home / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        return subprocess.run(
            [str(self.venv / "bin" / program), *args],
            env={**bare, **(env or {})},
            cwd=home,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """`uv build --wheel` out of the checkout, then `uv pip install` of it with its local-aws
    extra into a new venv, at the versions uv.lock pins (so the install comes from uv's cache)."""
    work = tmp_path_factory.mktemp("wheel")
    run([uv(), "build", "--wheel", "--quiet", "--out-dir", work / "dist", ROOT], cwd=ROOT)
    [wheel] = (work / "dist").glob("*.whl")
    constraints = work / "constraints.txt"
    run(
        [
            uv(),
            "export",
            "--frozen",
            "--quiet",
            "--no-default-groups",
            "--extra",
            "local-aws",
            "--no-emit-project",
            "--no-hashes",
            "--output-file",
            constraints,
        ],
        cwd=ROOT,
    )
    # Outside the checkout, so its [tool.uv] settings do not apply to the install.
    venv = work / "venv"
    run([uv(), "venv", "--quiet", "--python", sys.executable, venv], cwd=work)
    install: list[str | Path] = [
        uv(),
        "pip",
        "install",
        "--quiet",
        "--python",
        venv / "bin" / "python",
    ]
    run([*install, "--constraints", constraints, f"{wheel}[local-aws]"], cwd=work)
    return Installed(wheel, venv)


class TestWheel:
    def test_wheel_carries_the_license_and_the_logging_config_when_built(
        self, installed: Installed
    ) -> None:
        dist_info = "-".join(installed.wheel.name.split("-")[:2]) + ".dist-info"
        with zipfile.ZipFile(installed.wheel) as wheel:
            names = set(wheel.namelist())
            metadata = HeaderParser().parsestr(wheel.read(f"{dist_info}/METADATA").decode())

        assert f"{dist_info}/licenses/LICENSE" in names
        assert metadata["License-Expression"] == "Apache-2.0"
        assert "deployments/logging.yml" in names
        assert {"flows/entry.py", "tasks/settings.py"} <= names

    def test_modules_and_data_come_from_the_venv_when_run_outside_the_checkout(
        self, installed: Installed, tmp_path: Path
    ) -> None:
        probe = (
            "import flows, tasks, importlib.resources as r; "
            "print(flows.__file__); print(tasks.__file__); "
            "print(r.files('deployments').joinpath('logging.yml'))"
        )
        completed = installed.run(tmp_path, "python", "-c", probe)

        assert completed.returncode == 0, completed.stderr
        paths = [Path(line) for line in completed.stdout.splitlines()]
        assert all(path.is_relative_to(installed.venv) for path in paths), paths
        assert paths[2].is_file()


class TestInstalledCommand:
    def test_help_prints_the_usage_when_installed_from_the_wheel(
        self, installed: Installed, tmp_path: Path
    ) -> None:
        completed = installed.run(tmp_path, "s3-housekeeping", "--help")

        assert completed.returncode == 0, completed.stderr
        assert completed.stdout.startswith("usage: s3-housekeeping")
        assert "{run,demo,settings,iam-policy,fleet}" in completed.stdout

    def test_dry_run_plans_and_sends_no_mutating_request_when_installed_from_the_wheel(
        self, installed: Installed, moto_http: LocalAws, prefect_api: PrefectServer, tmp_path: Path
    ) -> None:
        bucket = f"wheel-{uuid.uuid4().hex[:12]}"
        s3 = moto_http.client("s3")
        s3.create_bucket(Bucket=bucket)
        ages = {key: 400 for key in OLD} | {"temp/new.log": 1, "temp-keep/old.db": 400}
        for key, days in ages.items():
            s3.put_object(Bucket=bucket, Key=key, Body=b"0123456789")
            backdate(bucket, key, AS_OF - timedelta(days=days))
        report = tmp_path / "report.json"

        # Through a recording proxy: what reached the server is counted outside the command.
        # Reporting to the session's Prefect server: a temporary API would cost its start (on a
        # busy machine, most of this test); the command's own is proven by tests/e2e/test_demo.py
        # and tests/flows/test_temporary_api.py.
        with FaultProxy(moto_http.endpoint_url) as proxy:
            completed = installed.run(
                tmp_path,
                "s3-housekeeping",
                "run",
                *("--bucket", bucket, "--prefix", "temp/", "--older-than-days", "30"),
                *("--as-of", AS_OF.isoformat(), "--report-json", str(report)),
                env={
                    **moto_http.environment(),
                    "AWS_ENDPOINT_URL": proxy.url,
                    "PREFECT_API_URL": prefect_api.api_url,
                },
            )
            assert proxy.wait_idle(10)
            operations = {exchange.operation for exchange in proxy.exchanges}

        assert completed.returncode == 0, completed.stderr
        outcome = json.loads(report.read_text())
        assert (outcome["status"], outcome["dry_run"]) == ("dry_run", True)
        assert (outcome["matched"], outcome["deleted"]) == (len(OLD), 0)
        assert "ListObjectsV2" in operations
        assert [op for op in operations if not op.startswith(("Get", "Head", "List"))] == []
        left = s3.list_objects_v2(Bucket=bucket)["Contents"]
        assert {entry["Key"] for entry in left} == OLD | KEPT
