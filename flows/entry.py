"""The `s3-housekeeping` command: its command line and settings are checked first, then a run's
Prefect API starts before the flow's modules load."""

from __future__ import annotations

import gc
import sys
from contextlib import ExitStack, nullcontext


def main() -> int:
    """Console entry point: read and check the command line and the settings (0.4 s of
    argparse, pydantic and boto3's names: a usage or configuration error answers here, before
    any Prefect API is found or started), then, for a run, find or start its Prefect API, and
    load the flow (Prefect, 2 s) while a temporary API comes up."""
    from flows.cli import checked, command, logs_of, parse, runs_a_flow
    from flows.prefect_environment import configure_environment

    try:
        args = parse(sys.argv[1:])
        problem = checked(args)
        if problem is not None:
            return problem
        with ExitStack() as held:
            run_api = None
            if runs_a_flow(args):
                from flows.temporary_api import api_for_a_run

                configure_environment(logs=logs_of(args))
                run_api = nullcontext(held.enter_context(api_for_a_run()))
            return command(args, run_api)
    finally:
        # The process ends next. Its last cycle collections at interpreter exit walk every
        # object Prefect, pydantic and botocore made (0.4 s here) and free nothing the end of
        # the process does not; frozen, they are skipped. Exit handlers still run.
        gc.freeze()
