"""The Prefect server of `make serve`, found without configuration for a local command's run."""

from __future__ import annotations

import base64
import os
import sys
import urllib.error
import urllib.request
from collections.abc import MutableMapping
from pathlib import Path

#: Where `make serve` keeps its server's address and password while it runs.
LOCAL_HOME = ".prefect-local"
API_URL_FILE = "api-url"
API_AUTH_FILE = "api-auth"
#: A server that does not answer its health check this fast is not used (its run would be slow).
HEALTH_TIMEOUT_S = 1.0


def checkout_root() -> Path:
    """The project's checkout, where `make serve` runs (this file is flows/local_api.py in it)."""
    return Path(__file__).resolve().parents[1]


def running_local_api(folders: list[Path]) -> tuple[str, str] | None:
    """The address and password of the first of `folders` whose `make serve` server answers."""
    for folder in folders:
        home = folder / LOCAL_HOME
        try:
            api_url = (home / API_URL_FILE).read_text().strip()
            auth = (home / API_AUTH_FILE).read_text().strip()
        except OSError:
            continue
        if api_url.startswith("http://127.0.0.1:") and healthy(api_url, auth):
            return api_url, auth
    return None


def healthy(api_url: str, auth: str) -> bool:
    """Whether the server answers, with this password, in time (its version: the health
    check itself asks for no password)."""
    # Only an http://127.0.0.1 address gets here (running_local_api).
    request = urllib.request.Request(f"{api_url}/admin/version")  # noqa: S310
    request.add_header("Authorization", "Basic " + _basic(auth))
    try:
        with urllib.request.urlopen(request, timeout=HEALTH_TIMEOUT_S) as answer:  # noqa: S310
            return bool(answer.status == 200)
    except (OSError, urllib.error.URLError, ValueError):
        return False


def _basic(auth: str) -> str:
    return base64.b64encode(auth.encode()).decode()


def use_local_api(
    environ: MutableMapping[str, str] = os.environ, folders: list[Path] | None = None
) -> str | None:
    """Point this process at `make serve`'s server when nothing else is configured: no
    PREFECT_API_URL, and S3_HOUSEKEEPING_LOCAL_API not "off". It looks in `folders` (the
    current directory, then this checkout) and returns the address used, if any.

    Without it, a local run starts a temporary Prefect API of its own, which takes several
    seconds; with it, the run starts in about as long as with PREFECT_API_URL, and its logs,
    artifacts and events are in the UI of `make serve`.
    """
    if environ.get("PREFECT_API_URL") or environ.get("S3_HOUSEKEEPING_LOCAL_API") == "off":
        return None
    found = running_local_api(folders or [Path.cwd(), checkout_root()])
    if found is None:
        return None
    api_url, auth = found
    environ["PREFECT_API_URL"] = api_url
    environ.setdefault("PREFECT_API_AUTH_STRING", auth)
    return api_url


def announce_local_api() -> None:
    """Use `make serve`'s server when one runs (`use_local_api`), and say so on stderr."""
    if api_url := use_local_api():
        print(f"s3-housekeeping: using make serve's Prefect server, {api_url}", file=sys.stderr)
