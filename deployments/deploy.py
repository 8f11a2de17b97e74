"""`make deploy`: apply prefect.yaml to the Prefect server PREFECT_API_URL names (or Prefect Cloud).

Creates the work pools and credentials blocks that are missing (an existing pool or block is left
as the team set it up), registers the prefect-aws block types, then runs
`prefect --no-prompt deploy --all`, which creates or updates every deployment in place.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from deployments.bootstrap import bootstrap

#: The pool of the fleet's children: several workers share its runs, one at a time each.
FLEET_CHILDREN_POOL = "s3-housekeeping-fleet"


def main(argv: Sequence[str] | None = None) -> int:
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    from prefect.settings import get_current_settings

    # From the environment or the active Prefect profile (`prefect cloud login` writes one).
    api_url = get_current_settings().api.url
    if not api_url:
        print(
            "deploy: set PREFECT_API_URL to the server's API (and PREFECT_API_KEY for Prefect "
            "Cloud), or log in with `prefect cloud login`; `make serve` deploys to a local one",
            file=sys.stderr,
        )
        return 1
    print(f"Deploying prefect.yaml to {api_url} ...", flush=True)
    done = bootstrap(dict(os.environ), os.environ, overwrite_blocks=False)
    for pool, action in done.pools.items():
        print(f"  work pool {pool}: {action}")
    for name, action in done.blocks.items():
        detail = f" ({done.block_descriptions[name]})" if action == "created" else ""
        print(f"  credentials block {name}: {action}{detail}")
    print("Done: start a worker per pool where the flows should run, e.g.")
    print(f"  prefect worker start --pool {next(iter(done.pools), 's3-housekeeping-dev')}")
    if FLEET_CHILDREN_POOL in done.pools:
        print(f"  and on {FLEET_CHILDREN_POOL} as many as you like, each with --limit 1:")
        print(f"  prefect worker start --pool {FLEET_CHILDREN_POOL} --limit 1")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
