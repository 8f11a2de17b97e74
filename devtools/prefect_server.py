"""A local Prefect server and its workers, each a process on loopback with its own log."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

from devtools.processes import BIN, ServerProcess, free_port, http_ok, wait_until

#: Where a server keeps its SQLite database: Prefect's default, in its home.
DATABASE = "prefect.db"


def migrated_database(path: Path) -> Path:
    """A new SQLite database at `path` with Prefect's schema (`prefect server database
    upgrade`): a server whose home starts with a copy skips its migrations (9 s of CPU)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "PREFECT_HOME": str(path.parent), "PREFECT_API_URL": ""}
    environment["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{path}"
    subprocess.run(  # noqa: S603 - our own fixed command line
        [str(BIN / "prefect"), "server", "database", "upgrade", "--yes"],
        env=environment,
        capture_output=True,
        check=True,
        timeout=300,
    )
    return path


class PrefectServer(ServerProcess):
    """`prefect server start` on 127.0.0.1 with SQLite under `home`, healthy at /api/health;
    its database a copy of `database` (made by `migrated_database`) when given."""

    name = "the Prefect server"
    ready_timeout_s = 120.0

    def __init__(
        self,
        home: Path,
        port: int | None = None,
        extra_env: Mapping[str, str] | None = None,
        database: Path | None = None,
    ) -> None:
        super().__init__(home / "server.log")
        self.home = home
        self.port = port or free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.extra_env = dict(extra_env or {})
        self.database = database

    def command(self) -> list[str]:
        port = str(self.port)
        return [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", port]

    def environment(self) -> dict[str, str]:
        self.home.mkdir(parents=True, exist_ok=True)
        return {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # The UI must be told where its API is on any port but 4200.
            "PREFECT_UI_API_URL": self.api_url,
            "PREFECT_API_URL": "",
            **self.extra_env,
        }

    def ready(self) -> bool:
        return http_ok(f"{self.api_url}/health")

    def start(self) -> None:
        if self.database is not None and not (self.home / DATABASE).exists():
            self.home.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.database, self.home / DATABASE)
        super().start()

    def __enter__(self) -> PrefectServer:
        self.start()
        return self


def pool_ready(api_url: str, pool: str, auth: str | None = None) -> bool:
    """True once a worker polls the pool (the server then reports it READY). `auth` is the
    API's USER:PASSWORD when it has one."""
    request = urllib.request.Request(f"{api_url}/work_pools/{pool}")  # noqa: S310 - our server
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
            return bool(json.loads(response.read()).get("status") == "READY")
    except OSError:
        return False


class PrefectWorker(ServerProcess):
    """`prefect worker start` for one process work pool; with a `worker_name` (how the server
    and the flow runs' labels name it) and a `limit` (flow runs at once) when given."""

    def __init__(
        self,
        pool: str,
        env: Mapping[str, str],
        log: Path,
        cwd: Path,
        worker_name: str | None = None,
        limit: int | None = None,
    ) -> None:
        super().__init__(log, cwd)
        named = f" {worker_name}" if worker_name else ""
        self.name = f"the worker{named} of {pool}"
        self.pool = pool
        self.env = env
        self.worker_name = worker_name
        self.limit = limit

    def command(self) -> list[str]:
        command = [str(BIN / "prefect"), "worker", "start", "--pool", self.pool]
        command += ["--type", "process"]
        if self.worker_name:
            command += ["--name", self.worker_name]
        if self.limit is not None:
            command += ["--limit", str(self.limit)]
        return command

    def environment(self) -> Mapping[str, str]:
        return self.env


@contextmanager
def workers(
    pools: Sequence[str],
    env: Mapping[str, str],
    log_dir: Path,
    cwd: Path,
    ready_timeout_s: float = 120,
) -> Iterator[dict[str, Path]]:
    """One worker per pool, all started before any is awaited; each logs to
    log_dir/worker-POOL.log. Yields the logs by pool."""
    logs = {pool: log_dir / f"worker-{pool}.log" for pool in pools}
    with ExitStack() as stack:
        for pool in pools:
            # Started at once (a worker has no port to wait for); ready once its pool is.
            stack.enter_context(PrefectWorker(pool, env, logs[pool], cwd))
        for pool in pools:
            ready = partial(
                pool_ready, env["PREFECT_API_URL"], pool, env.get("PREFECT_API_AUTH_STRING")
            )
            wait_until(ready, ready_timeout_s, pool)
        yield logs
