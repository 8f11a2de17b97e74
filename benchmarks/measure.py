"""Run one command as a child process: wall time, CPU time and peak RSS (wait4's rusage)."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

POLL_S = 0.005


@dataclass(frozen=True)
class Measurement:
    """Wall time from start to exit (or to the time limit), CPU time, peak RSS, and how it
    ended."""

    seconds: float
    peak_rss_mb: float
    returncode: int
    timed_out: bool
    #: User + system CPU seconds of the child and the descendants it waited for.
    cpu_s: float = 0.0


def _wait(pid: int, deadline: float | None) -> tuple[int, resource.struct_rusage] | None:
    """wait4 until the child exits (status, rusage), or None once the deadline passes."""
    while True:
        waited, status, usage = os.wait4(pid, os.WNOHANG)
        if waited:
            return status, usage
        if deadline is not None and time.perf_counter() >= deadline:
            return None
        time.sleep(POLL_S)


def run_measured(
    command: list[str],
    env: dict[str, str],
    timeout_s: float,
    log_prefix: Path,
    cwd: Path | None = None,
) -> Measurement:
    """Run `command`; stop its process group at the time limit (SIGTERM, SIGKILL after 5 s).

    Peak RSS is `ru_maxrss` of wait4 on that one child: the largest resident set of the child
    or of any descendant it waited for (not their sum).

    Args:
        log_prefix: stdout and stderr go to `<log_prefix>.out` and `<log_prefix>.err`.
    """
    log_prefix.parent.mkdir(parents=True, exist_ok=True)
    with (
        log_prefix.with_suffix(".out").open("wb") as out,
        log_prefix.with_suffix(".err").open("wb") as err,
    ):
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            waited = _wait(process.pid, started + timeout_s)
            seconds = time.perf_counter() - started
            timed_out = waited is None
            if waited is None:
                os.killpg(process.pid, signal.SIGTERM)
                waited = _wait(process.pid, time.perf_counter() + 5)
            if waited is None:
                os.killpg(process.pid, signal.SIGKILL)
                waited = _wait(process.pid, None)
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM): leave no tool running behind us.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
        assert waited is not None
        status, usage = waited
        process.returncode = os.waitstatus_to_exitcode(status)
    return Measurement(
        seconds=seconds,
        peak_rss_mb=usage.ru_maxrss / 1024,  # kilobytes on Linux
        returncode=process.returncode,
        timed_out=timed_out,
        cpu_s=usage.ru_utime + usage.ru_stime,
    )


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def process_tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds used so far by a running process (all its threads) and every
    live descendant, from /proc (Linux). For a server measured before and after a tool's run:
    the difference is what the server spent meanwhile."""
    parents: dict[str, str] = {}
    cpu: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry.name)
        if fields is None:
            continue
        # After the name: state, ppid, ..., utime (14th field of the file), stime (15th).
        parents[entry.name] = fields[1]
        cpu[entry.name] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    tree, total = {str(pid)}, 0.0
    for candidate in sorted(cpu, key=int):
        chain, ancestor = [], candidate
        while ancestor not in tree and ancestor in parents and ancestor != "0":
            chain.append(ancestor)
            ancestor = parents[ancestor]
        if ancestor in tree:
            tree.update(chain)
    for member in tree:
        total += cpu.get(member, 0.0)
    return total


def self_cpu_s() -> float:
    """User + system CPU seconds of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def wait_until_idle(
    pid: int, busy_fraction: float = 0.05, window_s: float = 1.0, limit_s: float = 60.0
) -> float:
    """Wait until a process tree uses less than `busy_fraction` of one core over a window (a
    server done with the work of the previous step), at most `limit_s`; the seconds waited."""
    started = time.perf_counter()
    before = process_tree_cpu_s(pid)
    while time.perf_counter() - started < limit_s:
        time.sleep(window_s)
        after = process_tree_cpu_s(pid)
        if after - before < busy_fraction * window_s:
            break
        before = after
    return time.perf_counter() - started
