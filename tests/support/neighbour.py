"""Another local user, as tests play one: files given to `nobody`, folders anyone may write, and
an HTTP server such a user could run on loopback that records what it is sent."""

from __future__ import annotations

import base64
import os
import pwd
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import pytest

#: Tests give files to another user with os.chown, which only root may do (as in the
#: project's containers); elsewhere they are skipped.
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")


def nobody() -> tuple[int, int]:
    """The uid and gid of `nobody`, the other user."""
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def give_to_nobody(*paths: Path) -> None:
    """Make `paths` another user's, as if that user had written them."""
    uid, gid = nobody()
    for path in paths:
        os.chown(path, uid, gid, follow_symlinks=False)


def shared_folder(path: Path) -> Path:
    """A folder like /tmp: anyone may add names (1777), nobody may replace another's."""
    path.mkdir()
    path.chmod(0o1777)
    return path


@dataclass(frozen=True)
class Received:
    """One request the neighbour's server got, with the password it carried, if any."""

    method: str
    path: str
    password: str | None


class _Recorder(BaseHTTPRequestHandler):
    server: _RecordingHttpServer

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test reads `received`

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        password = _password(self.headers.get("Authorization"))
        self.server.received.append(Received(self.command, self.path, password))
        body = b"{}"
        # Whatever it is asked, yes: as a server that wants to be used would answer.
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer


def _password(authorization: str | None) -> str | None:
    """The USER:PASSWORD of a Basic Authorization header (another header as it came)."""
    if not authorization or not authorization.startswith("Basic "):
        return authorization
    return base64.b64decode(authorization.removeprefix("Basic ")).decode(errors="replace")


class _RecordingHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.received: list[Received] = []


class NeighboursServer:
    """An HTTP server another user runs on loopback: it answers 200 to everything, as if it
    were a Prefect API, and keeps every request and the password it came with."""

    def __init__(self) -> None:
        self._server = _RecordingHttpServer()
        self.api_url = f"http://127.0.0.1:{self._server.server_address[1]}/api"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def received(self) -> list[Received]:
        return list(self._server.received)

    def passwords(self) -> set[str | None]:
        return {request.password for request in self.received}

    def __enter__(self) -> NeighboursServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
