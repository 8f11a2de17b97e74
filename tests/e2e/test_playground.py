"""`s3-housekeeping demo --keep`, the playground, as its user follows it: start it, paste its two
`export` lines into another terminal, run its three commands there, then Ctrl-C it."""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest

from devtools.processes import BIN
from flows.playground import BUCKET, COMMANDS
from tests.support.terminal import TerminalRun, run_in_terminal, shell_environment

pytestmark = pytest.mark.e2e

#: The line the playground ends its instructions with, once its S3 is up and filled.
LAST_LINE = "Ctrl-C stops the local S3 (and forgets its objects)."
#: What the playground says its objects are: under tmp/ and 30 days, eleven are old enough.
OLD_UNDER_TMP = 11
KEPT = {"tmp/cache/layer-c.bin", "tmp/today.log", "tmp-keep/precious.db", "logs/2024/app.log"}


@dataclass
class Playground:
    process: subprocess.Popen[str]
    #: Each line it prints, as it prints it; None once its output ends.
    lines: queue.Queue[str | None]
    #: What it printed up to its last line of instructions.
    printed: list[str]
    #: The variables its `export` lines set.
    exported: dict[str, str]

    def rest(self, timeout_s: float) -> list[str]:
        """What it printed after its instructions, to the end of its output."""
        rest = []
        deadline = time.monotonic() + timeout_s
        while (line := self.lines.get(timeout=max(deadline - time.monotonic(), 0.1))) is not None:
            rest.append(line)
        return rest


def exported_by(lines: list[str]) -> dict[str, str]:
    """The variables the `export NAME=VALUE ...` lines set, as a shell would read them: a
    comment ended, `$PATH` expanded (the line added when the command is not on the PATH)."""
    variables = {}
    for line in lines:
        words = shlex.split(line, comments=True)
        if words[:1] == ["export"]:
            variables |= dict(os.path.expandvars(word).split("=", 1) for word in words[1:])
    return variables


@pytest.fixture(scope="module")
def playground(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Playground]:
    """The playground running, its instructions read (its own stdout is a pipe, as a test's),
    with the command on the PATH, as in an activated environment or under `make` (whether the
    suite itself was started so or not)."""
    home = tmp_path_factory.mktemp("playground-home")
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}"
    process = subprocess.Popen(
        [str(BIN / "s3-housekeeping"), "demo", "--keep"],
        env={"PATH": path, "HOME": str(home), "LANG": "C.UTF-8"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    printed: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while LAST_LINE not in printed:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            assert line is not None, "the playground ended early:\n" + "\n".join(printed)
            printed.append(line)
        yield Playground(process, lines, printed, exported_by(printed))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def commands_run(
    playground: Playground, tmp_path_factory: pytest.TempPathFactory
) -> list[TerminalRun]:
    """The three suggested commands, in order, in a terminal whose shell has the two `export`
    lines pasted (and a Prefect home of its own; no Prefect server, no AWS config files)."""
    home = tmp_path_factory.mktemp("shell-home")
    shell = shell_environment(home, playground.exported)
    runs = []
    for command in COMMANDS:
        name, *arguments = shlex.split(command)
        runs.append(run_in_terminal([str(BIN / name), *arguments], shell))
    return runs


def remaining(playground: Playground) -> set[str]:
    s3 = boto3.client(
        "s3",
        endpoint_url=playground.exported["AWS_ENDPOINT_URL"],
        region_name=playground.exported["AWS_DEFAULT_REGION"],
        aws_access_key_id=playground.exported["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=playground.exported["AWS_SECRET_ACCESS_KEY"],
    )
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return {entry["Key"] for page in pages for entry in page.get("Contents", [])}


def test_prints_two_export_lines_and_the_three_commands_when_started(
    playground: Playground,
) -> None:
    exports = [line for line in playground.printed if line.strip().startswith("export ")]

    assert len(exports) == 2
    assert set(playground.exported) == {
        "AWS_ENDPOINT_URL",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    }
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", playground.exported["AWS_ENDPOINT_URL"])
    for command in COMMANDS:
        assert any(line.strip().startswith(command + " ") for line in playground.printed)


def test_first_command_plans_the_old_objects_under_tmp_when_run(
    commands_run: list[TerminalRun],
) -> None:
    first = commands_run[0]

    assert first.code == 0, first.output
    assert first.stdout.startswith(
        f"Dry run: {OLD_UNDER_TMP} objects (11.3 KiB) under s3://{BUCKET}/tmp/ would be deleted"
    )
    assert "Nothing was deleted." in first.stdout.splitlines()[0]
    assert "note:" not in first.stdout


def test_second_command_notes_tmp_keep_and_plans_it_too_when_the_prefix_has_no_slash(
    commands_run: list[TerminalRun],
) -> None:
    second = commands_run[1]
    lines = second.stdout.splitlines()

    assert second.code == 0, second.output
    assert lines[0].startswith(
        f"Dry run: {OLD_UNDER_TMP + 1} objects (12.3 KiB) under s3://{BUCKET}/tmp would be deleted"
    )
    assert lines[1].startswith(
        "note: prefix 'tmp' has no trailing '/' and matches 2 folders or keys: tmp-keep/, tmp/"
    )
    assert "tmp-keep/precious.db" in second.stdout


def test_third_command_deletes_the_old_objects_under_tmp_and_keeps_the_rest_when_executed(
    commands_run: list[TerminalRun], playground: Playground
) -> None:
    third = commands_run[2]

    assert third.code == 0, third.output
    assert third.stdout.startswith(f"Deleted {OLD_UNDER_TMP} of {OLD_UNDER_TMP} planned objects")
    assert remaining(playground) == KEPT


def test_stops_and_exits_0_when_interrupted(playground: Playground) -> None:
    playground.process.send_signal(signal.SIGINT)
    code = playground.process.wait(timeout=30)

    assert code == 0
    assert playground.rest(timeout_s=10)[-1:] == ["Local S3 stopped."]
