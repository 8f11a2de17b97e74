"""A Prefect API of the command's own for one local run, started beside the client's imports."""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, MutableMapping
from contextlib import ExitStack, contextmanager
from typing import Any

from flows.local_api import announce_local_api

logger = logging.getLogger(__name__)

#: Prefect's own default, when PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS is not set.
DEFAULT_STARTUP_TIMEOUT_S = 20.0
#: How long a stopped API may take to finish its shutdown before it is killed (Prefect's own).
STOP_GRACE_S = 5.0
#: Prefect's logs and events of the run are sent before the API stops; no longer than this.
DRAIN_TIMEOUT_S = 5.0
#: "off": leave the temporary API to Prefect (its own, which starts slower), e.g. to compare.
SWITCH = "S3_HOUSEKEEPING_TEMPORARY_API"

#: What Prefect's own temporary API runs with (SubprocessASGIServer): no UI, ephemeral services.
SERVER_ENVIRONMENT = {
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
}
#: Defaults that trim its start without changing what the run records. Registering block types
#: first imports every installed Prefect collection (prefect-aws, prefect-dask) to hash them, 1.3
#: s here at each start; the run reads no block it did not find saved already.
TRIMMED_START = {
    "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
    "PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false",
    # Its telemetry service would write into the shared database and call out to the internet.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


class TemporaryApi:
    """Prefect's API app (uvicorn, `prefect.server.api.server:create_app`) in a child process
    on a socket this process bound, so no other process can take its port in between.

    It serves the caller's PREFECT_HOME database (saved blocks, paused runs) on loopback,
    where any local user could call it: it wants a password made for this run alone, which
    only the child (PREFECT_SERVER_API_AUTH_STRING) and this process's Prefect client
    (PREFECT_API_AUTH_STRING) are given, in their environments. It is never logged. Prefect
    asks none for its health check (GET /health), which `wait_ready` polls.
    """

    def __init__(
        self, process: subprocess.Popen[bytes], port: int, started: float, auth: str
    ) -> None:
        self.process = process
        self.api_url = f"http://127.0.0.1:{port}/api"
        self.started = started
        self.auth = auth
        self.attached = False
        #: What pointing Prefect at it changed, undone when the run ends.
        self.settings = ExitStack()
        #: The client's PREFECT_API_AUTH_STRING before this API's replaced it.
        self.replaced_auth: str | None = None

    @classmethod
    def start(cls, environ: MutableMapping[str, str]) -> TemporaryApi:
        """Start the child at once; it answers a few seconds later (see `wait_ready`)."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind(("127.0.0.1", 0))
            listener.listen(128)
            port = int(listener.getsockname()[1])
            auth = f"run:{secrets.token_urlsafe(32)}"
            environment = {
                **TRIMMED_START,
                **environ,
                **SERVER_ENVIRONMENT,
                "PREFECT_SERVER_API_AUTH_STRING": auth,
            }
            # A client's settings are no business of the server (a password among them).
            environment.pop("PREFECT_API_URL", None)
            environment.pop("PREFECT_API_AUTH_STRING", None)
            process = subprocess.Popen(  # noqa: S603 - this interpreter, our own module
                [sys.executable, "-m", __name__, str(listener.fileno())],
                env=environment,
                # Its end of this pipe closes when this process ends, however it ends.
                stdin=subprocess.PIPE,
                pass_fds=(listener.fileno(),),
                # Out of the terminal's process group: Ctrl-C stops the run, which then stops
                # the API after sending the run's last logs and events to it.
                start_new_session=True,
            )
        finally:
            listener.close()
        api = cls(process, port, time.monotonic(), auth)
        # Covers what a `finally` cannot: an exit from deep inside (SystemExit in a thread's
        # callback, an interpreter shutting down). Prefect sends its logs and events before
        # atexit handlers run (threading's own exit hooks come first).
        atexit.register(api.stop)
        return api

    def wait_ready(self, timeout_s: float) -> str | None:
        """None once its health check answers; else why not (the child stopped, or time ran
        out)."""
        deadline = self.started + timeout_s
        health = f"{self.api_url}/health"
        while True:
            code = self.process.poll()
            if code is not None:
                return f"it exited with code {code}"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return f"no answer within {timeout_s:.0f} s"
            # The socket listens from the start: a request waits in its backlog until the app
            # is up, so this returns as soon as it is.
            try:
                with urllib.request.urlopen(health, timeout=min(remaining, 1.0)) as answer:  # noqa: S310 - loopback
                    if answer.status == 200:
                        return None
            except (OSError, urllib.error.URLError):
                time.sleep(0.05)

    def stop(self) -> None:
        """End the child: SIGTERM (uvicorn stops Prefect's services cleanly), then SIGKILL."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()
        atexit.unregister(self.stop)


def wanted(environ: MutableMapping[str, str]) -> bool:
    """Whether a run of this process would make Prefect start a temporary API: no
    PREFECT_API_URL in the environment, and Prefect not imported yet (once it is, its settings
    are fixed and may name an API; a test harness, for one). A Prefect profile or prefect.toml
    that names an API is found later, in `use_temporary_api`, which then stops ours."""
    return (
        not environ.get("PREFECT_API_URL")
        and environ.get(SWITCH) != "off"
        and os.name == "posix"  # a listening socket handed to a child: POSIX only
        and "prefect" not in sys.modules
    )


def start(environ: MutableMapping[str, str] = os.environ) -> TemporaryApi | None:
    """Start a temporary API when a run would need one (`wanted`); None otherwise, or when it
    cannot even be started (Prefect then starts its own, as it would have)."""
    if not wanted(environ):
        return None
    try:
        return TemporaryApi.start(environ)
    except OSError as error:
        logger.warning(
            "Could not start a temporary Prefect API (%s); Prefect starts its own", error
        )
        return None


def use_temporary_api(api: TemporaryApi, environ: MutableMapping[str, str] = os.environ) -> bool:
    """Point Prefect at `api` once it answers, and say so; True when it does. Called after the
    flow's imports, which ran while the API started. When Prefect's settings name an API (a
    profile), or forbid a temporary one, or the API did not come up, it is stopped and Prefect
    does what it would have done without it (for the last: start its own, said in the log)."""
    from prefect.context import refresh_global_settings_context
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        get_current_settings,
        temporary_settings,
    )

    settings = get_current_settings()
    if settings.api.url or not settings.server.ephemeral.enabled:
        api.stop()
        return False
    timeout_s = float(
        settings.server.ephemeral.startup_timeout_seconds or DEFAULT_STARTUP_TIMEOUT_S
    )
    problem = api.wait_ready(timeout_s)
    if problem is not None:
        api.stop()
        logger.warning(
            "The temporary Prefect API at %s did not start (%s); Prefect starts its own",
            api.api_url,
            problem,
        )
        return False
    from tasks.record.outcome import SHORT_LIVED_API

    environ["PREFECT_API_URL"] = api.api_url
    api.replaced_auth = environ.get("PREFECT_API_AUTH_STRING")
    environ["PREFECT_API_AUTH_STRING"] = api.auth
    # No bucket's concurrency slot through it: it dies with the run, and a killed run's slot
    # would stay taken in the database the next runs share (tasks/guards/locking.py).
    environ[SHORT_LIVED_API] = api.api_url
    # Prefect read its settings when imported; its threads (logs, events) read them from here.
    refresh_global_settings_context()
    # Heartbeats let a server notice a run whose process died; this API dies with the process.
    # Off, the run also ends without waiting up to a second for the heartbeat thread.
    api.settings.enter_context(temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}))
    api.attached = True
    logger.info(
        "Temporary Prefect API ready at %s (process %d), %.1f s after it was started; it "
        "stops when the run ends",
        api.api_url,
        api.process.pid,
        time.monotonic() - api.started,
    )
    return True


def finish(api: TemporaryApi, environ: MutableMapping[str, str] = os.environ) -> None:
    """Send the run's last logs and events to the API, then stop it and forget its address."""
    if api.attached:
        _drain_prefect_workers()
        api.settings.close()
        if environ.get("PREFECT_API_URL") == api.api_url:
            from tasks.record.outcome import SHORT_LIVED_API

            del environ["PREFECT_API_URL"]
            environ.pop(SHORT_LIVED_API, None)
            if api.replaced_auth is None:
                environ.pop("PREFECT_API_AUTH_STRING", None)
            else:
                environ["PREFECT_API_AUTH_STRING"] = api.replaced_auth
            from prefect.context import refresh_global_settings_context

            refresh_global_settings_context()
    api.stop()


def _drain_prefect_workers() -> None:
    """Prefect sends logs and events from background threads; they would otherwise be sent at
    interpreter exit, after the API is gone."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=DRAIN_TIMEOUT_S)
    EventsWorker.drain_all(timeout=DRAIN_TIMEOUT_S)


@contextmanager
def temporary_api(environ: MutableMapping[str, str] = os.environ) -> Iterator[TemporaryApi | None]:
    """A temporary API for the block's run (`start`), always stopped when the block ends."""
    api = start(environ)
    try:
        yield api
    finally:
        if api is not None:
            finish(api, environ)


@contextmanager
def api_for_a_run() -> Iterator[TemporaryApi | None]:
    """What a local run's Prefect API is: `make serve`'s server when one answers (said on
    stderr), else, with no PREFECT_API_URL, a temporary API of the command's own for the
    block (None when the run uses a configured server, or Prefect decides)."""
    announce_local_api()
    with temporary_api() as api:
        yield api


# The child process.


def serve(fd: int) -> None:
    """Serve Prefect's API on the listening socket `fd` until stopped or this process's
    parent ends (stdin closes)."""
    import uvicorn

    config = uvicorn.Config(
        "prefect.server.api.server:create_app",
        factory=True,
        log_level="error",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    threading.Thread(target=_stop_when_orphaned, args=(server,), daemon=True).start()
    server.run(sockets=[socket.socket(fileno=fd)])


def _stop_when_orphaned(server: Any) -> None:
    """A parent killed outright runs no cleanup: its end of stdin closing is the sign."""
    sys.stdin.buffer.read()
    server.should_exit = True


if __name__ == "__main__":
    serve(int(sys.argv[1]))
