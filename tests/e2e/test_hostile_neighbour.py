"""Another user on the same machine, as a hostile neighbour: files planted where the command reads
them, folders anyone can write, and servers on loopback. Nothing planted is used, no password
reaches another user, and nothing is deleted on the strength of a file someone else could write.

The tests run as root (as in the project's containers): they give files to `nobody` with
os.chown and use 1777 folders like /tmp, as the neighbour would find or make them.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deployments.local_aws import LocalAws
from devtools.prefect_server import PrefectServer
from devtools.processes import BIN, free_port, wait_until
from flows.local_api import (
    API_AUTH_FILE,
    API_URL_FILE,
    LOCAL_HOME,
    socket_owners,
    use_local_api,
)
from flows.temporary_api import SWITCH
from tasks.aws import AwsSettings
from tasks.cleanup import PlanRequest
from tasks.errors import ConfigError, SafetyRefusal
from tasks.execution.shards import ShardOrder, journal_beside, plan_part, saved_in_shards
from tasks.fleet.targets import load_targets
from tasks.s3.listing import Shard
from tasks.s3.manifest import PlanTarget, isoformat
from tasks.s3.plan_index import write_index
from tests.support.moto_backend import bulk_put
from tests.support.neighbour import (
    NeighboursServer,
    as_root,
    give_to_nobody,
    nobody,
    shared_folder,
)

pytestmark = [pytest.mark.e2e, pytest.mark.chaos, as_root]

#: The password this user exported for some server of theirs: it must reach no other one.
USERS_PASSWORD = "me:exported-for-my-own-server"
#: What the neighbour writes as make serve's password, to look the part.
NEIGHBOURS_PASSWORD = "admin:planted-by-the-neighbour"
#: A busy two-core machine; a fresh Prefect home's first start also creates its database.
COMMAND_TIMEOUT_S = 240
READY = re.compile(
    r"Temporary Prefect API ready at (http://127\.0\.0\.1:\d+/api) \(process (\d+)\)"
)
WAITING = "for approval to delete"
#: A fleet's targets file, as the neighbour would have the user's fleet clean their choice.
TARGETS = "targets:\n  - bucket: neighbours-choice\n    prefix: tmp/\n"


def plant_local_api(folder: Path, api_url: str, auth: str = NEIGHBOURS_PASSWORD) -> Path:
    """FOLDER/.prefect-local as make serve leaves it while it runs, private to its owner."""
    home = folder / LOCAL_HOME
    home.mkdir(mode=0o700)
    for name, text in ((API_URL_FILE, api_url), (API_AUTH_FILE, auth)):
        (home / name).write_text(text + "\n")
        (home / name).chmod(0o600)
    return home


def planted(folder: Path, api_url: str, how: str) -> Path:
    """A .prefect-local another user could have written: theirs, or this user's with files or
    a folder anyone can write."""
    home = plant_local_api(folder, api_url)
    files = [home / API_URL_FILE, home / API_AUTH_FILE]
    if how == "another-users":
        give_to_nobody(home, *files)
    elif how == "files-anyone-can-write":
        for file in files:
            file.chmod(0o666)
    else:
        home.chmod(0o777)
    return home


#: How the neighbour plants it, and the reason the command gives for ignoring it.
PLANTINGS = {
    "another-users": "belongs to another user (uid {uid})",
    "files-anyone-can-write": "is writable by its group and others (mode 0666)",
    "folder-anyone-can-write": "is writable by its group and others (mode 0777)",
}


@pytest.fixture
def neighbours_server() -> Iterator[NeighboursServer]:
    with NeighboursServer() as server:
        yield server


@pytest.fixture
def prefect_home(tmp_path: Path) -> dict[str, str]:
    """A Prefect home without profiles: this machine's ~/.prefect stays out."""
    return {"PREFECT_HOME": str(tmp_path / "prefect-home")}


class TestAPlantedLocalApi:
    @pytest.mark.parametrize("how", list(PLANTINGS))
    def test_ignores_it_with_a_warning_and_sends_it_nothing_when_another_user_could_write_it(
        self,
        tmp_path: Path,
        neighbours_server: NeighboursServer,
        prefect_home: dict[str, str],
        capsys: pytest.CaptureFixture[str],
        how: str,
    ) -> None:
        shared = shared_folder(tmp_path / "shared")
        planted(shared, neighbours_server.api_url, how)
        environ = {**prefect_home, "PREFECT_API_AUTH_STRING": USERS_PASSWORD}

        assert use_local_api(environ, [shared]) is None

        assert environ == {**prefect_home, "PREFECT_API_AUTH_STRING": USERS_PASSWORD}
        assert neighbours_server.received == []
        said = capsys.readouterr().err
        assert said.startswith(f"s3-housekeeping: ignoring make serve's {shared / LOCAL_HOME}")
        assert PLANTINGS[how].format(uid=nobody()[0]) in said
        assert USERS_PASSWORD not in said and NEIGHBOURS_PASSWORD not in said

    def test_ignores_its_address_when_another_user_listens_on_the_port(
        self, tmp_path: Path, prefect_home: dict[str, str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        # make serve was killed and left its address; the neighbour took the port since.
        with neighbours_listener() as (port, listener):
            plant_local_api(tmp_path, f"http://127.0.0.1:{port}/api")
            environ = dict(prefect_home)

            assert use_local_api(environ, [tmp_path]) is None

        assert listener.connections() == 0  # not even a health check reached it
        assert "another user listens on its port" in capsys.readouterr().err


#: A listener `nobody` runs on a port: it counts the connections it is offered until stopped.
LISTENER = """
import socket, sys
listener = socket.socket()
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen()
listener.settimeout(0.2)
while True:
    try:
        connection, _ = listener.accept()
    except TimeoutError:
        continue
    print("connection", flush=True)
    connection.close()
"""
SYSTEM_PYTHON = Path("/usr/bin/python3")


@dataclass
class Listener:
    process: subprocess.Popen[str]

    def connections(self) -> int:
        """How many connections it accepted (once stopped)."""
        stdout, _ = self.process.communicate(timeout=10)
        return stdout.count("connection")


@contextmanager
def neighbours_listener() -> Iterator[tuple[int, Listener]]:
    """A socket `nobody` listens on (the interpreter of this project's environment is under
    root's home, which `nobody` cannot enter: the system's one runs it)."""
    if not SYSTEM_PYTHON.exists():
        pytest.skip("no system Python for the other user to run")
    port = free_port()
    process = subprocess.Popen(
        [str(SYSTEM_PYTHON), "-c", LISTENER, str(port)],
        user=nobody()[0],
        group=nobody()[1],
        cwd="/",
        stdout=subprocess.PIPE,
        text=True,
    )
    listener = Listener(process)
    try:
        wait_until(lambda: bool(socket_owners(port)), 30, "the neighbour's listener")
        assert socket_owners(port) == {nobody()[0]}
        yield port, listener
    finally:
        # SIGTERM, not SIGINT: a process started where SIGINT is ignored inherits that, and
        # would never stop (seen under pytest-xdist in a full run).
        process.terminate()


# The installed command, run in a folder the neighbour shares.


@dataclass(frozen=True)
class Done:
    code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def command_env(moto_http: LocalAws, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The command's environment: local AWS, no Prefect server configured (the command looks
    for make serve's, then starts its temporary API), a Prefect home of the module's own."""
    home = tmp_path_factory.mktemp("neighbour-prefect-home")
    environment = {
        **os.environ,
        **moto_http.environment(),
        "PREFECT_HOME": str(home),
        "MANIFEST_DIR": str(home / "manifests"),
    }
    for name in (
        "PREFECT_API_URL",
        "PREFECT_API_KEY",
        "PREFECT_PROFILE",
        "PREFECT_API_AUTH_STRING",
        "S3_HOUSEKEEPING_LOCAL_API",  # the tests' default is off; a user's is on
        SWITCH,
    ):
        environment.pop(name, None)
    return environment


def old_bucket(moto_http: LocalAws, bucket: str, count: int = 50) -> set[str]:
    """A bucket of `count` objects under tmp/, 40 days old; returns their keys."""
    moto_http.client("s3").create_bucket(Bucket=bucket)
    keys = {f"tmp/old-{n:04d}" for n in range(count)}
    bulk_put(bucket, sorted(keys), datetime.now(UTC) - timedelta(days=40))
    return keys


def left(moto_http: LocalAws, bucket: str) -> set[str]:
    """The keys still under tmp/ (beside them: the lease of a run holding the bucket)."""
    s3 = moto_http.client("s3")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="tmp/").get("Contents", [])
    return {item["Key"] for item in listed}


def command(env: dict[str, str], cwd: Path, *arguments: str) -> Done:
    done = subprocess.run(
        [str(BIN / "s3-housekeeping"), *arguments],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    return Done(done.returncode, done.stdout, done.stderr)


def status(api_url: str, method: str, path: str, auth: str | None = None) -> int:
    """The HTTP status of one call, with a password (USER:PASSWORD) or without."""
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


def called(api_url: str, method: str, path: str, auth: str, body: object = None) -> object:
    """One call's JSON answer, with the password."""
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{api_url}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={
            "Authorization": "Basic " + base64.b64encode(auth.encode()).decode(),
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback
        return json.loads(answer.read() or b"null")


@pytest.fixture(scope="module")
def paused(
    command_env: dict[str, str], moto_http: LocalAws, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PausedRun]:
    """An executing run that must be approved, started in a shared folder where the neighbour
    planted make serve's files naming a server of theirs, and an exported password; yielded
    once it waits, paused, for the approval (it is killed at the end)."""
    with NeighboursServer() as server:
        folder = tmp_path_factory.mktemp("paused")
        shared = shared_folder(folder / "shared")
        planted(shared, server.api_url, "another-users")
        keys = old_bucket(moto_http, "paused-for-approval")
        env = {**command_env, "PREFECT_API_AUTH_STRING": USERS_PASSWORD}
        arguments = ["run", "--bucket", "paused-for-approval", "--prefix", "tmp/", "--execute"]
        arguments += ["--require-approval", "--approval-timeout-minutes", "5"]
        log = folder / "paused.log"
        with log.open("w") as stdout, log.with_suffix(".err").open("w") as stderr:
            process = subprocess.Popen(
                [str(BIN / "s3-housekeeping"), *arguments],
                env=env,
                cwd=shared,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        try:
            wait_until(
                lambda: WAITING in log.read_text() or process.poll() is not None,
                COMMAND_TIMEOUT_S,
                "the run's approval wait",
            )
            said = log.read_text()
            assert WAITING in said, said[-3000:] + log.with_suffix(".err").read_text()
            warned = log.with_suffix(".err").read_text()
            yield PausedRun(process, said, warned, shared, server, keys, moto_http)
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(60)


class TestARunBesideAPlantedLocalApi:
    def test_sends_make_serves_server_its_own_password_never_the_exported_one(
        self,
        command_env: dict[str, str],
        moto_http: LocalAws,
        neighbours_server: NeighboursServer,
        tmp_path: Path,
    ) -> None:
        # This user's own make serve files, private, naming a server that records what it
        # gets (it answers as no Prefect server would: the run fails, having said enough).
        plant_local_api(tmp_path, neighbours_server.api_url, auth="admin:make-serves-own")
        old_bucket(moto_http, "exported-password")
        env = {**command_env, "PREFECT_API_AUTH_STRING": USERS_PASSWORD}

        done = command(env, tmp_path, "run", "--bucket", "exported-password", "--prefix", "tmp/")

        assert "using make serve's Prefect server" in done.stderr
        assert len(neighbours_server.received) > 1  # the health check, then the run's calls
        assert neighbours_server.passwords() == {"admin:make-serves-own"}

    def test_pauses_on_its_own_api_and_never_talks_to_the_planted_one(
        self, paused: PausedRun
    ) -> None:
        api_url, auth = paused.api()

        def state() -> object:
            run = called(api_url, "GET", f"/flow_runs/{paused.flow_run_id()}", auth)
            return run["state"]["type"] if isinstance(run, dict) else None

        # It logs that it waits, then pauses.
        wait_until(lambda: state() == "PAUSED", 60, "the run's pause")
        # The planted API could answer a paused run with an approval only if the run asked it
        # anything: it is never asked, nor given a password.
        assert paused.neighbours_server.received == []
        assert f"ignoring make serve's {paused.shared / LOCAL_HOME}: it belongs" in paused.warned
        assert left(paused.moto_http, "paused-for-approval") == paused.keys

    @pytest.mark.parametrize(
        ("method", "path"),
        [("POST", "/block_documents/filter"), ("POST", "/flow_runs/{run}/resume")],
        ids=["read-blocks", "resume-the-paused-run"],
    )
    def test_its_api_refuses_another_user_when_the_call_has_not_the_runs_password(
        self, paused: PausedRun, method: str, path: str
    ) -> None:
        api_url, auth = paused.api()
        path = path.format(run=paused.flow_run_id())

        assert status(api_url, method, path) == 401
        assert status(api_url, method, path, NEIGHBOURS_PASSWORD) == 401
        assert status(api_url, method, path, USERS_PASSWORD) == 401
        assert status(api_url, "POST", "/block_documents/filter", auth) == 200

    def test_never_shows_the_runs_password_when_it_logs(self, paused: PausedRun) -> None:
        _, auth = paused.api()
        password = auth.split(":", 1)[1]

        assert password not in paused.said
        assert password not in paused.warned


@dataclass
class PausedRun:
    process: subprocess.Popen[bytes]
    #: What the command wrote on stdout (its JSON logs) up to the approval wait ...
    said: str
    #: ... and on stderr.
    warned: str
    #: The folder it runs in, shared with the neighbour.
    shared: Path
    neighbours_server: NeighboursServer
    keys: set[str]
    moto_http: LocalAws

    def api(self) -> tuple[str, str]:
        """The run's temporary API and its password, read where only this user can: the
        API's own environment (/proc/PID/environ)."""
        found = READY.search(self.said)
        assert found, self.said[-3000:]
        environ = Path(f"/proc/{found.group(2)}/environ").read_bytes().split(b"\0")
        (auth,) = [v for v in environ if v.startswith(b"PREFECT_SERVER_API_AUTH_STRING=")]
        return found.group(1), auth.split(b"=", 1)[1].decode()

    def flow_run_id(self) -> str:
        found = re.search(r'"flow_run_id": "([0-9a-f-]{36})"', self.said)
        assert found, self.said[-3000:]
        return found.group(1)


#: The password of a server started as `make serve` starts it.
SERVE_PASSWORD = "admin:make-serve-test-only"


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, prefect_database: Path
) -> Iterator[PrefectServer]:
    """A Prefect server as `make serve` starts it: every call wants its password."""
    home = tmp_path_factory.mktemp("served")
    password = {"PREFECT_SERVER_API_AUTH_STRING": SERVE_PASSWORD}
    with PrefectServer(home, extra_env=password, database=prefect_database) as server:
        yield server


class TestMakeServesServer:
    def test_refuses_reading_blocks_when_the_call_has_not_its_password(
        self, served: PrefectServer
    ) -> None:
        assert status(served.api_url, "POST", "/block_documents/filter") == 401
        assert status(served.api_url, "POST", "/block_documents/filter", USERS_PASSWORD) == 401
        assert status(served.api_url, "POST", "/block_documents/filter", SERVE_PASSWORD) == 200

    def test_refuses_resuming_a_paused_run_when_the_call_has_not_its_password(
        self, served: PrefectServer
    ) -> None:
        flow = called(served.api_url, "POST", "/flows/", SERVE_PASSWORD, {"name": "neighbour"})
        assert isinstance(flow, dict)
        paused = {"type": "PAUSED", "name": "Paused", "state_details": {"pause_reschedule": False}}
        run = called(
            served.api_url,
            "POST",
            "/flow_runs/",
            SERVE_PASSWORD,
            {"flow_id": flow["id"], "state": paused},
        )
        assert isinstance(run, dict)
        resume = f"/flow_runs/{run['id']}/resume"

        assert status(served.api_url, "POST", resume) == 401
        assert status(served.api_url, "POST", resume, USERS_PASSWORD) == 401
        again = called(served.api_url, "GET", f"/flow_runs/{run['id']}", SERVE_PASSWORD)
        assert isinstance(again, dict) and again["state"]["type"] == "PAUSED"


# Plans, journals and targets files.


@pytest.fixture(scope="module")
def saved_plan(
    command_env: dict[str, str], moto_http: LocalAws, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A dry run's plan of the bucket `saved-plan` (its objects are old enough)."""
    old_bucket(moto_http, "saved-plan")
    folder = tmp_path_factory.mktemp("saved-plan")
    report = folder / "report.json"
    done = command(
        command_env,
        folder,
        "run",
        "--bucket",
        "saved-plan",
        "--prefix",
        "tmp/",
        "--report-json",
        str(report),
    )
    assert done.code == 0, done.stderr[-3000:]
    return Path(json.loads(report.read_text())["manifest"])


class TestLocalFiles:
    @pytest.mark.parametrize("how", ["another-users", "anyone-can-write"])
    def test_refuses_a_saved_plan_and_deletes_nothing_when_another_user_could_write_it(
        self,
        command_env: dict[str, str],
        moto_http: LocalAws,
        saved_plan: Path,
        tmp_path: Path,
        how: str,
    ) -> None:
        plan = tmp_path / "plans" / saved_plan.name
        plan.parent.mkdir()
        shutil.copyfile(saved_plan, plan)
        if how == "another-users":
            give_to_nobody(plan)
            reason = f"it belongs to another user (uid {nobody()[0]})"
        else:
            plan.chmod(0o666)
            reason = "it is writable by its group and others (mode 0666)"
        before = left(moto_http, "saved-plan")

        done = command(
            command_env,
            tmp_path,
            "run",
            "--bucket",
            "saved-plan",
            "--prefix",
            "tmp/",
            "--plan",
            str(plan),
            "--execute",
        )

        assert done.code == 6, done.stderr[-3000:]
        assert (
            f"refused by plan_file: the plan file '{plan}' cannot be trusted: {reason}; "
            "nothing was deleted"
        ) in done.stderr
        assert left(moto_http, "saved-plan") == before

    def test_refuses_a_manifest_folder_before_writing_in_it_when_anyone_can_write_it(
        self, command_env: dict[str, str], moto_http: LocalAws, tmp_path: Path
    ) -> None:
        keys = old_bucket(moto_http, "open-manifests")
        manifests = tmp_path / "manifests"
        manifests.mkdir()
        manifests.chmod(0o777)

        done = command(
            {**command_env, "MANIFEST_DIR": str(manifests)},
            tmp_path,
            "run",
            "--bucket",
            "open-manifests",
            "--prefix",
            "tmp/",
            "--execute",
        )

        assert done.code == 6, done.stderr[-3000:]
        assert (
            f"the folder '{manifests}' where plans are written cannot be trusted: it is "
            "writable by its group and others (mode 0777)"
        ) in done.stderr
        assert list(manifests.iterdir()) == []
        assert left(moto_http, "open-manifests") == keys

    def test_rejects_a_targets_file_when_another_user_owns_it(
        self, command_env: dict[str, str], tmp_path: Path
    ) -> None:
        targets = tmp_path / "targets.yaml"
        targets.write_text(TARGETS)
        give_to_nobody(targets)

        done = command(command_env, tmp_path, "fleet", "--targets", str(targets))

        assert done.code == 1, done.stderr[-3000:]
        assert f"targets file '{targets}' cannot be trusted" in done.stderr
        assert f"{targets}: it belongs to another user (uid {nobody()[0]})" in done.stderr

    def test_rejects_a_targets_file_when_anyone_can_write_it(self, tmp_path: Path) -> None:
        targets = tmp_path / "targets.yaml"
        targets.write_text(TARGETS)
        targets.chmod(0o666)

        with pytest.raises(ConfigError) as rejected:
            load_targets(targets)

        assert rejected.value.problems == [
            f"{targets}: it is writable by its group and others (mode 0666)"
        ]


class TestAPartsJournal:
    """A journal beside a part of a plan made in shards says the part was applied: a second
    apply leaves it out. One another user could have written is refused instead."""

    BUCKET = "journaled-parts"

    @pytest.fixture
    def index(
        self, moto_http: LocalAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> tuple[Path, PlanRequest, Path]:
        """A plan of one part and its index, and where the part's journal goes."""
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto_http.endpoint_url)
        old_bucket(moto_http, self.BUCKET, count=20)
        as_of = datetime.now(UTC).replace(microsecond=0)
        cutoff = as_of - timedelta(days=30)
        target = PlanTarget(self.BUCKET, "us-east-1", "tmp/", isoformat(cutoff), isoformat(as_of))
        location = tmp_path / "plans"
        aws = AwsSettings(region="us-east-1")
        order = ShardOrder(
            Shard("tmp/"), aws, target, cutoff, str(location), "part-0.jsonl.gz", 1000, False
        )
        part = plan_part(order).part
        index = location / self.BUCKET / "run.index.jsonl"
        write_index(index, target, [part])
        journal = Path(journal_beside(part))
        journal.write_text(
            "\n".join(
                json.dumps(line)
                for line in (
                    {"format": "s3-housekeeping/journal-v1"},
                    {"end": True, "planned": 20, "deleted": 20, "skipped_changed": 0},
                )
            )
            + "\n"
        )
        journal.chmod(0o600)
        request = PlanRequest(target, cutoff, str(location), "run.jsonl.gz", shard_size=1000)
        return index, request, journal

    def test_leaves_the_part_out_when_its_journal_is_this_users(
        self, moto_http: LocalAws, index: tuple[Path, PlanRequest, Path], tmp_path: Path
    ) -> None:
        path, request, _ = index
        (tmp_path / "scratch").mkdir()

        saved = saved_in_shards(moto_http.client("s3"), str(path), request, tmp_path / "scratch")

        assert saved.parts == []

    @pytest.mark.parametrize("how", ["another-users", "anyone-can-write"])
    def test_refuses_the_plan_when_another_user_could_have_written_the_journal(
        self,
        moto_http: LocalAws,
        index: tuple[Path, PlanRequest, Path],
        tmp_path: Path,
        how: str,
    ) -> None:
        path, request, journal = index
        if how == "another-users":
            give_to_nobody(journal)
        else:
            journal.chmod(0o666)

        (tmp_path / "scratch").mkdir()

        with pytest.raises(SafetyRefusal) as refused:
            saved_in_shards(moto_http.client("s3"), str(path), request, tmp_path / "scratch")

        assert refused.value.guard == "plan_file"
        assert f"the plan file '{journal}' cannot be trusted" in str(refused.value)
