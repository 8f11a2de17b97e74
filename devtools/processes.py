"""Local processes on loopback: free ports, readiness polling, and start/stop by process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

#: Where the virtual environment's commands are (prefect, weed, s3-housekeeping ...).
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(ready: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `ready()` until it is true, or fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} was not ready within {timeout_s} s")


def http_answers(url: str, ok_only: bool = False) -> bool:
    """True when a GET of the (loopback) URL answers HTTP at all, or with 200 when `ok_only`."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
            return bool(response.status == 200) or not ok_only
    except urllib.error.HTTPError:
        return not ok_only
    except OSError:
        return False


def http_ok(url: str) -> bool:
    """True when a GET of the (loopback) URL answers 200."""
    return http_answers(url, ok_only=True)


def stop(process: subprocess.Popen[bytes], grace_s: float = 10) -> None:
    """SIGTERM the process group, then SIGKILL what is left after the grace period."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


class ServerProcess:
    """A child in its own process group (Ctrl-C reaches us, we stop it), its output in `log`,
    started and awaited as a context manager, and stopped however the block ends."""

    name = "server"
    ready_timeout_s = 60.0
    #: Seconds between SIGTERM and SIGKILL when stopping.
    stop_grace_s = 10.0

    def __init__(self, log: Path, cwd: Path | None = None) -> None:
        self.log = log
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> Sequence[str]:
        raise NotImplementedError

    def environment(self) -> Mapping[str, str]:
        return os.environ

    def ready(self) -> bool:
        """Whether the server answers; the default is as soon as it started."""
        return True

    def start(self) -> None:
        """Start the process and wait until it is ready; fail if it exits first."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own fixed command lines
                list(self.command()),
                env=dict(self.environment()),
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            wait_until(self._ready_or_dead, self.ready_timeout_s, self.name)
        except BaseException:
            self.stop()
            raise

    def _ready_or_dead(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited early; see {self.log}")
        return self.ready()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period."""
        if self.process is not None:
            stop(self.process, self.stop_grace_s)
            self.process = None

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
