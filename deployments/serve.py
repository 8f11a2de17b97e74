"""`make serve`: a local Prefect server with this project's deployments, workers and blocks.

Everything runs on 127.0.0.1 until Ctrl-C: the server (SQLite under .prefect-local/), one process
work pool and worker per pool prefect.yaml names (each environment's, the fleet's children's and
the fleet runs'), the prefect-aws block types, the credentials blocks the deployments name (a
fleet's, in its targets file) and the deployments of prefect.yaml. With LOCAL_AWS=1 this process
also runs the embedded local AWS (moto) with demo objects in each deployment's bucket, and the
blocks point at it.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from deployments.bootstrap import ROOT, bootstrap, client_env, deployment_specs, work_pool_names
from devtools.prefect_server import PrefectServer, workers

# The local API's password and, while it runs, its address, in the server's home: a local
# command finds them there and uses this server instead of starting a temporary one.
from flows.local_api import API_AUTH_FILE, API_URL_FILE, LOCAL_HOME

DEFAULT_HOME = ROOT / LOCAL_HOME
DEFAULT_PORT = 4200
#: The environment variables of AWS access keys (plain, or suffixed with an environment).
KEY_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def say(text: str = "") -> None:
    print(text, flush=True)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def deployment_buckets() -> list[str]:
    """The buckets prefect.yaml's deployments clean, once each."""
    buckets = (spec.get("parameters", {}).get("bucket") for spec in deployment_specs())
    return list(dict.fromkeys(bucket for bucket in buckets if bucket))


def stop_on_signals() -> None:
    """Ctrl-C or SIGTERM stops everything, once: a second signal (the terminal and `uv run` both
    pass Ctrl-C on) must not interrupt the shutdown half way."""
    stopping = False

    def interrupt(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def private_home(home: Path) -> None:
    """The server's home holds its database and the API's password: its owner's only."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    home.chmod(0o700)


def api_auth_string(home: Path) -> str:
    """The local API's password (USER:PASSWORD), made once and kept in HOME/api-auth (0600)."""
    path = home / API_AUTH_FILE
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(f"admin:{secrets.token_urlsafe(24)}\n")
    return path.read_text().strip()


def without_keys(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment without AWS access keys: blocks made from it hold none, and the workers'
    default AWS chain signs (a local server's database is no place for real keys)."""
    return {name: value for name, value in environ.items() if not name.startswith(KEY_VARIABLES)}


def serve(port: int, home: Path, with_local_aws: bool, keys_in_blocks: bool = False) -> int:
    """Start everything, print where it is, and wait for Ctrl-C; then stop it all."""
    if not port_is_free(port):
        say(f"serve: port {port} on 127.0.0.1 is in use; set PORT=... (make serve PORT=4300)")
        return 1
    api_url = f"http://127.0.0.1:{port}/api"
    private_home(home)
    auth = api_auth_string(home)
    # This process talks to the same server (pools, blocks) through Prefect's settings, read
    # when prefect is first imported: set them before that.
    env = {**client_env(api_url, home), "PREFECT_API_AUTH_STRING": auth}
    os.environ.update(
        {name: env[name] for name in ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_API_AUTH_STRING")}
    )
    block_environ: Mapping[str, str] = os.environ if keys_in_blocks else without_keys(os.environ)
    server_env = {
        # Every API request needs the password, and only the UI's own page may call it from a
        # browser: no other web page can drive this server.
        "PREFECT_SERVER_API_AUTH_STRING": auth,
        "PREFECT_SERVER_API_CORS_ALLOWED_ORIGINS": f"http://127.0.0.1:{port}",
    }
    with ExitStack() as stack:
        say(f"Starting the Prefect server on 127.0.0.1:{port} (home {home}) ...")
        stack.enter_context(PrefectServer(home, port, extra_env=server_env))
        if with_local_aws:
            from deployments.local_aws import local_aws, seed_objects

            # moto's HTTP server logs every request it serves.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)

            aws = stack.enter_context(local_aws())
            as_of = datetime.now(UTC)
            buckets = deployment_buckets()
            for bucket in buckets:
                seed_objects(aws, bucket, as_of, create_bucket=True)
            say(f"Local AWS (moto) on {aws.endpoint_url}, demo objects in: {', '.join(buckets)}")
            block_environ = aws.environment()
        say("Creating work pools, registering block types, applying blocks and prefect.yaml ...")
        done = bootstrap(env, block_environ, overwrite_blocks=True)
        for pool, action in done.pools.items():
            say(f"  work pool {pool}: {action}")
        for name, action in done.blocks.items():
            say(f"  credentials block {name}: {action} ({done.block_descriptions[name]})")
        pools = work_pool_names(deployment_specs())
        stack.enter_context(workers(pools, env, home / "logs", cwd=ROOT))
        say(f"  workers polling: {', '.join(pools)} (logs in {home / 'logs'})")
        say("")
        say(f"Prefect UI:  http://127.0.0.1:{port}   (its password: the file {API_AUTH_FILE})")
        say(f"API:         {api_url}   (to use the CLI: export PREFECT_API_URL={api_url}")
        say(f'             PREFECT_API_AUTH_STRING="$(cat {home / API_AUTH_FILE})")')
        say("Deployments: s3-housekeeping/* ; start one from the UI with 'Run > Custom run'.")
        say("Local commands (s3-housekeeping run ...) use this server while it runs.")
        say("Press Ctrl-C to stop everything.")
        address = home / API_URL_FILE
        # Private like the password: a command trusts the address only if nobody else could
        # have written it (flows/local_api.py), whatever this process's umask.
        address.unlink(missing_ok=True)  # one a killed serve left keeps its old mode
        descriptor = os.open(address, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(api_url + "\n")
        stack.callback(address.unlink, missing_ok=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            say("\nStopping the workers, the server" + (" and local AWS" if with_local_aws else ""))
    say("Stopped.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.serve", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or DEFAULT_PORT))
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="the server's PREFECT_HOME")
    parser.add_argument(
        "--local-aws",
        action="store_true",
        default=os.environ.get("LOCAL_AWS", "").strip().lower() in {"1", "true", "yes"},
        help="run the embedded local AWS with demo data (LOCAL_AWS=1)",
    )
    parser.add_argument(
        "--keys-in-blocks",
        action="store_true",
        default=os.environ.get("SERVE_KEYS_IN_BLOCKS", "").strip().lower() in {"1", "true", "yes"},
        help="copy AWS access keys from the environment into the credentials blocks "
        "(SERVE_KEYS_IN_BLOCKS=1); without it the blocks hold none",
    )
    args = parser.parse_args(argv)
    stop_on_signals()
    try:
        return serve(args.port, args.home.resolve(), args.local_aws, args.keys_in_blocks)
    except KeyboardInterrupt:
        say("\nStopped.")
        return 130


if __name__ == "__main__":
    sys.exit(main())
