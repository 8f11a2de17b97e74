"""Run a command as a person at a terminal meets it: stdout and stderr each a pseudo-terminal.

Each stream has a terminal of its own, so a test can tell what went where (a person's terminal
shows both; the command decides by asking whether each is a terminal). The terminals have a
fixed size, and what the command wrote is read from their masters until each is closed.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: The terminal's size (rows, columns): COLUMNS says the same to the command.
ROWS, COLUMNS = 40, 120


@dataclass(frozen=True)
class TerminalRun:
    """What the command wrote on each terminal (line ends as "\\n") and how it ended."""

    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def shell_environment(home: Path, aws: Mapping[str, str]) -> dict[str, str]:
    """What a person's shell would hold: `aws` (an endpoint and fake keys), no Prefect server,
    no AWS config files, nothing else from this machine. Prefect's telemetry stays off (the
    command's default, kept explicit: tests never call out)."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        **aws,
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "PREFECT_HOME": str(home / "prefect-home"),
        "MANIFEST_DIR": str(home / "plans"),
        "S3_HOUSEKEEPING_LOCAL_API": "off",
        "DO_NOT_TRACK": "1",
    }


def terminal_environment(environment: Mapping[str, str]) -> dict[str, str]:
    """`environment` with what a terminal session has: its type and its width."""
    return {**environment, "TERM": "xterm-256color", "COLUMNS": str(COLUMNS)}


def _terminal() -> tuple[int, int]:
    """A pseudo-terminal of the fixed size: (master, slave)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    return master, slave


def run_in_terminal(
    argv: Sequence[str], environment: Mapping[str, str], timeout_s: float = 240
) -> TerminalRun:
    """Run `argv` with stdout and stderr on two terminals (stdin empty), and read both to the
    end: until the command and every process holding a terminal (its temporary Prefect API)
    closed it, or `timeout_s`, when the command is killed and the test fails."""
    out_master, out_slave = _terminal()
    err_master, err_slave = _terminal()
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            list(argv),
            env=terminal_environment(environment),
            stdin=subprocess.DEVNULL,
            stdout=out_slave,
            stderr=err_slave,
            start_new_session=True,
        )
    finally:
        os.close(out_slave)
        os.close(err_slave)
    received: dict[int, bytearray] = {out_master: bytearray(), err_master: bytearray()}
    open_masters = set(received)
    try:
        while open_masters:
            left = started + timeout_s - time.monotonic()
            if left <= 0:
                process.kill()
                raise TimeoutError(f"{argv} did not end within {timeout_s} s")
            readable, _, _ = select.select(list(open_masters), [], [], min(left, 1.0))
            for master in readable:
                try:
                    chunk = os.read(master, 65536)
                except OSError as exc:  # Linux: EIO once every slave is closed
                    if exc.errno != errno.EIO:
                        raise
                    chunk = b""
                if chunk:
                    received[master] += chunk
                else:
                    open_masters.discard(master)
        code = process.wait(timeout=max(started + timeout_s - time.monotonic(), 1))
    finally:
        os.close(out_master)
        os.close(err_master)
        if process.poll() is None:
            process.kill()
            process.wait()
    return TerminalRun(
        code,
        _text(received[out_master]),
        _text(received[err_master]),
        time.monotonic() - started,
    )


def _text(raw: bytes) -> str:
    # A terminal turns each "\n" the command writes into "\r\n" (termios ONLCR).
    return raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
