"""The `s3-housekeeping` command: a run's Prefect API starts before the command's modules load."""

from __future__ import annotations

import gc
import sys
from contextlib import ExitStack

from flows.prefect_environment import RUNS, configure_environment


def main() -> int:
    """Console entry point: for a run, find or start its Prefect API first (the standard
    library only, so far), then load the command (0.3 s of pydantic, boto3 and the settings)
    while a temporary API comes up."""
    arguments = sys.argv[1:]
    try:
        with ExitStack() as held:
            api = None
            if arguments[:1] and arguments[0] in RUNS and not {"-h", "--help"} & set(arguments):
                from flows.local_api import announce_local_api
                from flows.temporary_api import temporary_api

                configure_environment()
                announce_local_api()
                api = held.enter_context(temporary_api())
            from flows.cli import main as command_line

            return command_line(arguments, api)
    finally:
        # The process ends next. Its last cycle collections at interpreter exit walk every
        # object Prefect, pydantic and botocore made (0.4 s here) and free nothing the end of
        # the process does not; frozen, they are skipped. Exit handlers still run.
        gc.freeze()
