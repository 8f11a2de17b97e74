"""The Prefect server of `make serve`, found without configuration for a local command's run, and
used only when nobody but this user could have left or taken what points at it."""

from __future__ import annotations

import base64
import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, MutableMapping
from pathlib import Path

from flows.prefect_config import configured_api
from tasks.s3.private_files import why_not_private

#: Where `make serve` keeps its server's address and password while it runs.
LOCAL_HOME = ".prefect-local"
API_URL_FILE = "api-url"
API_AUTH_FILE = "api-auth"
#: A server that does not answer its health check this fast is not used (its run would be slow).
HEALTH_TIMEOUT_S = 1.0
#: The only address `make serve` writes: its API on this machine's loopback.
API_URL = re.compile(r"http://127\.0\.0\.1:([0-9]{1,5})/api")
#: Linux's tables of TCP sockets, with the user each belongs to (field 7); state 0A: listening.
SOCKET_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
LISTENING = "0A"

Warn = Callable[[str], None]


def checkout_root() -> Path:
    """The project's checkout, where `make serve` runs (this file is flows/local_api.py in it)."""
    return Path(__file__).resolve().parents[1]


def say(text: str) -> None:
    print(f"s3-housekeeping: {text}", file=sys.stderr)


def running_local_api(folders: list[Path], warn: Warn = say) -> tuple[str, str] | None:
    """The address and password of the first of `folders` whose `make serve` server can be
    trusted (`left_by_make_serve`, `listening_for_this_user`) and answers."""
    for folder in dict.fromkeys(folder.resolve() for folder in folders):
        found = left_by_make_serve(folder / LOCAL_HOME, warn)
        if found is None:
            continue
        api_url, auth = found
        if listening_for_this_user(api_url, warn) and healthy(api_url, auth):
            return api_url, auth
    return None


def left_by_make_serve(home: Path, warn: Warn = say) -> tuple[str, str] | None:
    """The address and password in `home` (FOLDER/.prefect-local) while make serve runs; None
    when it does not run there, or (said through `warn`, never with the password or what the
    files hold) when another user could have written them or they are not what make serve
    writes. Trusted: the folder and its files belong to this user, and neither they nor a
    folder above them is writable by anyone else (tasks/s3/private_files.py)."""
    url_file, auth_file = home / API_URL_FILE, home / API_AUTH_FILE
    if not os.path.lexists(url_file):
        return None  # no server runs there (make serve removes the address when it stops)
    for path in (home, url_file, auth_file):
        if reason := why_not_private(path, only_mine=True):
            warn(f"ignoring make serve's {path}: {reason}")
            return None
    try:
        api_url = url_file.read_bytes().decode("utf-8").strip()
        auth = auth_file.read_bytes().decode("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        problem = "is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror
        warn(f"ignoring make serve's {home}: a file there {problem}")
        return None
    address = API_URL.fullmatch(api_url)
    if address is None or not 0 < int(address.group(1)) < 2**16:
        warn(f"ignoring make serve's {url_file}: not an address http://127.0.0.1:PORT/api")
        return None
    if not auth or not auth.isprintable():
        warn(f"ignoring make serve's {auth_file}: not a password make serve writes")
        return None
    return api_url, auth


def listening_for_this_user(api_url: str, warn: Warn = say) -> bool:
    """Whether what listens on the address's port is this user's: a server left behind may
    have stopped, and another user's taken its port. Where the system does not say who owns
    a socket (not Linux), the files' owner is all there is to go by."""
    port = int(api_url.split(":")[2].split("/")[0])
    owners = socket_owners(port)
    if owners is None:
        return True
    if owners - {os.getuid()}:
        warn(f"ignoring make serve's address {api_url}: another user listens on its port")
        return False
    return bool(owners)  # nobody listens: make serve was stopped without removing it


def socket_owners(port: int) -> set[int] | None:
    """The users whose TCP sockets listen on `port` (at any address), or None where the system
    has no such table."""
    owners: set[int] = set()
    tables = 0
    for table in SOCKET_TABLES:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        tables += 1
        for line in lines:
            fields = line.split()
            local = fields[1].rsplit(":", 1)[-1] if len(fields) > 7 else ""
            if fields[3:4] == [LISTENING] and local and int(local, 16) == port:
                owners.add(int(fields[7]))
    return owners if tables else None


def healthy(api_url: str, auth: str) -> bool:
    """Whether the server answers, with this password, in time (its version: the health
    check itself asks for no password)."""
    # Only an http://127.0.0.1 address gets here (left_by_make_serve).
    request = urllib.request.Request(f"{api_url}/admin/version")  # noqa: S310
    request.add_header("Authorization", "Basic " + _basic(auth))
    try:
        with urllib.request.urlopen(request, timeout=HEALTH_TIMEOUT_S) as answer:  # noqa: S310
            return bool(answer.status == 200)
    except (OSError, urllib.error.URLError, ValueError, http.client.HTTPException):
        return False


def _basic(auth: str) -> str:
    return base64.b64encode(auth.encode()).decode()


def use_local_api(
    environ: MutableMapping[str, str] = os.environ,
    folders: list[Path] | None = None,
    warn: Warn = say,
) -> str | None:
    """Point this process at `make serve`'s server when nothing else is configured: no
    PREFECT_API_URL, no Prefect profile or settings file naming an API (flows/prefect_config.py),
    and S3_HOUSEKEEPING_LOCAL_API not "off". It looks in `folders` (the current directory, then
    this checkout) and returns the address used, if any. The server gets the password of its
    own file: one exported in PREFECT_API_AUTH_STRING, meant for some other server, is never
    sent to it.

    Without it, a local run starts a temporary Prefect API of its own, which takes several
    seconds; with it, the run starts in about as long as with PREFECT_API_URL, and its logs,
    artifacts and events are in the UI of `make serve`.
    """
    if environ.get("PREFECT_API_URL") or environ.get("S3_HOUSEKEEPING_LOCAL_API") == "off":
        return None
    if configured_api(environ):
        return None  # Prefect uses that one; the environment must not override it
    found = running_local_api(folders or [Path.cwd(), checkout_root()], warn)
    if found is None:
        return None
    api_url, auth = found
    environ["PREFECT_API_URL"] = api_url
    environ["PREFECT_API_AUTH_STRING"] = auth
    return api_url


def announce_local_api() -> None:
    """Use `make serve`'s server when one runs (`use_local_api`), and say so on stderr."""
    if api_url := use_local_api():
        say(f"using make serve's Prefect server, {api_url}")
