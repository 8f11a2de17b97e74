"""The command's own temporary Prefect API: a run without a server records its flow run, logs,
artifacts and events through it, and it is gone when the command ends, however it ends."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from deployments.local_aws import LocalAws, backdate
from devtools.processes import BIN
from flows.temporary_api import SWITCH, TemporaryApi, finish, use_temporary_api
from tasks.record.outcome import SHORT_LIVED_API
from tasks.s3.bucket_lock import LOCK_KEY
from tests.support.fault_proxy import FaultProxy, FaultRule
from tests.support.moto_backend import bulk_put

BUCKET = "temporary-api"
READY = re.compile(
    r"Temporary Prefect API ready at (http://127\.0\.0\.1:\d+/api) \(process (\d+)\)"
)
#: Generous: a busy two-core machine; a fresh Prefect home's first start also creates its
#: database.
COMMAND_TIMEOUT_S = 240

#: Every test starts the command's temporary API, a server process.
pytestmark = pytest.mark.server


@dataclass(frozen=True)
class Command:
    code: int
    stdout: str
    stderr: str

    def api(self) -> tuple[str, int]:
        """The temporary API's address and process id, as the run's log gives them."""
        found = READY.search(self.stdout)
        assert found, f"no temporary API in the output:\n{self.stdout}\n{self.stderr}"
        return found.group(1), int(found.group(2))


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Prefect home for the module: its database is created once."""
    return tmp_path_factory.mktemp("temporary-api-home")


@pytest.fixture(scope="module")
def bucket(moto_http: LocalAws) -> str:
    s3 = moto_http.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="logs/kept.log", Body=b"x")
    return BUCKET


@pytest.fixture
def environment(moto_http: LocalAws, prefect_home: Path, tmp_path: Path) -> dict[str, str]:
    """The command's environment: local AWS, no Prefect server of any kind configured."""
    environment = {
        **os.environ,
        **moto_http.environment(),
        "PREFECT_HOME": str(prefect_home),
        "MANIFEST_DIR": str(tmp_path / "manifests"),
        "S3_HOUSEKEEPING_LOCAL_API": "off",
    }
    for name in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE", SWITCH):
        environment.pop(name, None)
    return environment


def run(environment: dict[str, str], *options: str) -> Command:
    done = subprocess.run(
        [str(BIN / "s3-housekeeping"), "run", "--no-create-bucket", *options],
        env=environment,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    return Command(done.returncode, done.stdout, done.stderr)


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie that nobody reaped yet counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def answers(api_url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2):  # noqa: S310 - loopback
            return True
    except OSError:
        return False


def recorded(prefect_home: Path, flow_run_id: str) -> dict[str, list[str]]:
    """What the API wrote to its database (in the Prefect home) about one flow run."""
    with sqlite3.connect(prefect_home / "prefect.db") as db:
        return {
            "state": [
                r[0]
                for r in db.execute("SELECT state_type FROM flow_run WHERE id = ?", (flow_run_id,))
            ],
            "logs": [
                r[0]
                for r in db.execute("SELECT message FROM log WHERE flow_run_id = ?", (flow_run_id,))
            ],
            "artifacts": [
                r[0]
                for r in db.execute(
                    "SELECT key FROM artifact WHERE flow_run_id = ?", (flow_run_id,)
                )
            ],
            "events": [
                r[0]
                for r in db.execute(
                    "SELECT event FROM events WHERE resource_id = ?",
                    (f"prefect.flow-run.{flow_run_id}",),
                )
            ],
        }


def flow_run_id(stdout: str) -> str:
    found = re.search(r'"flow_run_id": "([0-9a-f-]{36})"', stdout)
    assert found, stdout
    return found.group(1)


class TestARunWithoutAServer:
    def test_records_the_run_through_its_own_api_then_stops_it_when_the_run_succeeds(
        self, environment: dict[str, str], bucket: str, prefect_home: Path
    ) -> None:
        done = run(environment, "--bucket", bucket, "--prefix", "tmp/")

        assert done.code == 0, done.stderr
        api_url, pid = done.api()
        # Prefect did not start one of its own beside it.
        assert "Starting temporary server" not in done.stdout + done.stderr
        assert api_url in done.stdout  # the run's "View at" link is on this API
        assert not alive(pid)
        assert not answers(api_url)
        run_id = flow_run_id(done.stdout)
        record = recorded(prefect_home, run_id)
        assert record["state"] == ["COMPLETED"]
        assert any(m.startswith("Run finished (dry_run)") for m in record["logs"])
        assert "s3-housekeeping-report" in record["artifacts"]
        # Sent at the very end: the API stopped only after the last events were stored.
        assert "prefect.flow-run.Completed" in record["events"]

    def test_stops_its_api_when_the_run_fails(
        self, environment: dict[str, str], prefect_home: Path
    ) -> None:
        done = run(environment, "--bucket", "no-such-bucket-here", "--prefix", "tmp/")

        assert done.code != 0
        api_url, pid = done.api()
        assert not alive(pid)
        assert not answers(api_url)
        assert recorded(prefect_home, flow_run_id(done.stdout))["state"] == ["FAILED"]

    def test_its_api_ends_when_the_command_is_killed(
        self, environment: dict[str, str], bucket: str
    ) -> None:
        command = subprocess.Popen(
            [
                str(BIN / "s3-housekeeping"),
                "run",
                "--no-create-bucket",
                "--bucket",
                bucket,
                "--prefix",
                "tmp/",
            ],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert command.stdout is not None
        said = ""
        for line in command.stdout:
            said += line
            if READY.search(line):
                command.send_signal(signal.SIGKILL)  # no handler, no hook, no cleanup runs
                break
        command.communicate(timeout=COMMAND_TIMEOUT_S)
        api_url, pid = Command(-9, said, "").api()

        # Its stdin closes with the command: it stops itself (uvicorn's clean shutdown).
        deadline = time.monotonic() + 60
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(pid)
        assert not answers(api_url)


def status(api_url: str, method: str, path: str, auth: str | None = None) -> int:
    """The HTTP status of one call to the API, with a password or without."""
    import base64
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{api_url}{path}", method=method)  # noqa: S310 - loopback
    if method == "POST":
        request.data = b"{}"
        request.add_header("Content-Type", "application/json")
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporaryApi]:
    """A temporary API, up: its health check answered, as a run waits for it."""
    home = tmp_path_factory.mktemp("password-home")
    api = TemporaryApi.start({**os.environ, "PREFECT_HOME": str(home)})
    try:
        assert api.wait_ready(COMMAND_TIMEOUT_S) is None  # its health check needs no password
        yield api
    finally:
        api.stop()


class TestItsPassword:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", "/block_documents/filter"),
            ("POST", "/flow_runs/00000000-0000-4000-8000-000000000000/resume"),
            ("GET", "/admin/version"),
        ],
        ids=["read-blocks", "resume-a-run", "version"],
    )
    def test_refuses_a_call_when_it_comes_without_the_runs_password(
        self, api: TemporaryApi, method: str, path: str
    ) -> None:
        assert status(api.api_url, method, path) == 401
        assert status(api.api_url, method, path, auth="run:guessed") == 401

    def test_answers_the_run_when_it_gives_the_password(self, api: TemporaryApi) -> None:
        assert status(api.api_url, "POST", "/block_documents/filter", auth=api.auth) == 200

    def test_makes_a_new_password_when_another_run_starts(
        self, api: TemporaryApi, tmp_path: Path
    ) -> None:
        other = TemporaryApi.start({**os.environ, "PREFECT_HOME": str(tmp_path)})
        other.stop()

        assert other.auth != api.auth
        assert len(api.auth) > 40

    def test_gives_the_client_its_password_then_the_exported_one_back_when_the_run_ends(
        self, tmp_path: Path
    ) -> None:
        api = TemporaryApi.start({**os.environ, "PREFECT_HOME": str(tmp_path)})
        environ = {"PREFECT_API_AUTH_STRING": "me:exported-for-another-server"}

        with temporary_settings(restore_defaults={PREFECT_API_URL}):
            assert use_temporary_api(api, environ)
            during = dict(environ)
            finish(api, environ)

        assert during == {
            "PREFECT_API_URL": api.api_url,
            "PREFECT_API_AUTH_STRING": api.auth,
            SHORT_LIVED_API: api.api_url,
        }
        assert environ == {"PREFECT_API_AUTH_STRING": "me:exported-for-another-server"}


@pytest.fixture
def old_objects(moto_http: LocalAws) -> tuple[str, list[str]]:
    """A bucket of 3,000 objects under tmp/ older than the default 30 days (3 delete batches)."""
    bucket = "killed-holding-the-bucket"
    moto_http.client("s3").create_bucket(Bucket=bucket)
    keys = [f"tmp/old-{n:05d}" for n in range(3000)]
    bulk_put(bucket, keys, datetime.now(UTC) - timedelta(days=40))
    return bucket, keys


class TestAKilledRun:
    def test_the_next_run_takes_the_bucket_over_when_the_killed_runs_lease_has_expired(
        self,
        environment: dict[str, str],
        moto_http: LocalAws,
        old_objects: tuple[str, list[str]],
        tmp_path: Path,
    ) -> None:
        # Deletes held 1 s each, one batch at a time: the run is killed while it holds the
        # bucket (its lease in the bucket; before, also a concurrency slot in the database of
        # the Prefect home both runs share, which the killed run's API took to its grave).
        bucket, keys = old_objects
        slow = FaultRule("DeleteObjects", "slow", delay_s=1.0)
        with FaultProxy(moto_http.endpoint_url, rules=[slow]) as proxy:
            env = {
                **environment,
                "AWS_ENDPOINT_URL": proxy.url,
                "LOCK_EXPIRY_MINUTES": "1",
                "DELETE_CONCURRENCY": "1",
            }
            arguments = [str(BIN / "s3-housekeeping"), "run", "--no-create-bucket", "--execute"]
            arguments += ["--bucket", bucket, "--prefix", "tmp/", "--max-deletions", "100000"]
            with (tmp_path / "killed.log").open("wb") as log:
                killed = subprocess.Popen(
                    arguments, env=env, stdout=log, stderr=log, start_new_session=True
                )
            try:
                assert proxy.wait_for("DeleteObjects", 1, COMMAND_TIMEOUT_S), (
                    tmp_path / "killed.log"
                ).read_text()
            finally:
                os.killpg(killed.pid, signal.SIGKILL)  # no handler, no hook, no cleanup runs
                killed.wait(COMMAND_TIMEOUT_S)
            assert proxy.wait_idle(60)
            proxy.rules = []
            # Its lease as a minute without renewal leaves it: expired (measured on the
            # server's clock), so the next run takes it over at once instead of in a minute.
            backdate(bucket, LOCK_KEY, datetime.now(UTC) - timedelta(minutes=2))

            rerun = run(
                env, "--execute", "--bucket", bucket, "--prefix", "tmp/", "--lock-wait-minutes", "2"
            )

        assert rerun.code == 0, rerun.stderr[-3000:]
        assert "it crashed or was killed" in rerun.stdout + rerun.stderr
        listed = moto_http.client("s3").list_objects_v2(Bucket=bucket, Prefix="tmp/")
        assert listed["KeyCount"] == 0, f"{listed['KeyCount']} of {len(keys)} left"


class TestFallingBack:
    @pytest.fixture
    def no_api_configured(self) -> Iterator[None]:
        with temporary_settings(restore_defaults={PREFECT_API_URL}):
            yield

    def test_leaves_prefect_to_start_its_own_when_the_api_does_not_come_up(
        self,
        no_api_configured: None,
        tmp_path: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        # An interpreter that cannot import uvicorn: the child exits at once.
        broken = tmp_path / "broken"
        broken.mkdir()
        (broken / "uvicorn.py").write_text("raise ImportError('not here')\n")
        api = TemporaryApi.start({**os.environ, "PYTHONPATH": str(broken)})
        environ: dict[str, str] = {}

        with caplog.at_level("WARNING", logger="flows.temporary_api"):
            assert use_temporary_api(api, environ) is False

        assert environ == {}  # Prefect is not pointed anywhere: it starts its own
        assert api.process.poll() is not None
        assert "did not start (it exited with code 1); Prefect starts its own" in caplog.text

    def test_stops_the_api_unused_when_prefect_settings_name_one(self, tmp_path: Path) -> None:
        api = TemporaryApi.start({**os.environ, "PREFECT_HOME": str(tmp_path)})
        environ: dict[str, str] = {}

        with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
            assert use_temporary_api(api, environ) is False

        assert environ == {}
        assert api.process.poll() is not None
