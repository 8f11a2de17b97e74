"""The `s3-housekeeping` command: a run's Prefect API starts before the command's modules load."""

from __future__ import annotations

import gc
import sys
from contextlib import ExitStack, nullcontext

from flows.prefect_environment import RUNS, configure_environment


def main() -> int:
    """Console entry point: for a run, find or start its Prefect API first (the standard
    library only, so far), then load the command (0.3 s of pydantic, boto3 and the settings)
    while a temporary API comes up."""
    arguments = sys.argv[1:]
    try:
        with ExitStack() as held:
            run_api = None
            if arguments[:1] and arguments[0] in RUNS and not asks_for_help(arguments):
                from flows.temporary_api import api_for_a_run

                configure_environment()
                run_api = nullcontext(held.enter_context(api_for_a_run()))
            from flows.cli import main as command_line

            return command_line(arguments, run_api)
    finally:
        # The process ends next. Its last cycle collections at interpreter exit walk every
        # object Prefect, pydantic and botocore made (0.4 s here) and free nothing the end of
        # the process does not; frozen, they are skipped. Exit handlers still run.
        gc.freeze()


def asks_for_help(arguments: list[str]) -> bool:
    """Whether the command line holds -h, --help or a piece of it (--h, --hel): the command
    then prints its help or refuses the piece (it reads whole option names only), and runs
    nothing that needs an API."""
    return any(word == "-h" or (len(word) > 2 and "--help".startswith(word)) for word in arguments)
