"""A Dask scheduler and workers started from the command line on 127.0.0.1, each worker with an
environment of its own (its AWS identity), for tests and benchmarks."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from devtools.processes import BIN, free_port, stop


@dataclass
class DaskCluster:
    """The scheduler's address and the worker processes (a test may kill one)."""

    address: str
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)


@contextmanager
def dask_cluster(
    workdir: Path, worker_environments: Sequence[Mapping[str, str]], threads: int = 1
) -> Iterator[DaskCluster]:
    """`dask scheduler` and one `dask worker` a given environment, until the block ends; ready
    once every worker has joined."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"DASK_DISTRIBUTED__LOGGING__DISTRIBUTED": "warning"}
    with ExitStack() as started:
        scheduler = _start(
            [
                "dask",
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-dashboard",
            ],
            {**os.environ, **quiet},
            workdir / "scheduler.log",
        )
        started.callback(stop, scheduler)
        cluster = DaskCluster(address)
        for number, environment in enumerate(worker_environments, start=1):
            worker = _start(
                [
                    "dask",
                    "worker",
                    address,
                    "--name",
                    f"worker-{number}",
                    "--nthreads",
                    str(threads),
                    "--no-dashboard",
                    "--local-directory",
                    str(workdir / f"worker-{number}"),
                ],
                {**environment, **quiet},
                workdir / f"worker-{number}.log",
            )
            started.callback(stop, worker)
            cluster.workers.append(worker)
        with Client(address, timeout=60) as client:  # type: ignore[no-untyped-call]
            client.wait_for_workers(len(worker_environments), timeout=90)
        yield cluster


def _start(command: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        return subprocess.Popen(  # noqa: S603 - our own fixed command lines
            [str(BIN / command[0]), *command[1:]],
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
