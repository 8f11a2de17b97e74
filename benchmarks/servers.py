"""Local servers for the benchmarks (and SeaweedFS for the tests), on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from deployments.bootstrap import stop, wait_until
from deployments.local_aws import free_port

BIN = Path(sys.executable).parent
ACCESS_KEY = "bench-access-key"
SECRET_KEY = "bench-secret-key"  # noqa: S105 - a fake credential for local servers only
REGION = "us-east-1"
STOP_GRACE_S = 5.0


def http_answers(url: str, ok_only: bool = False) -> bool:
    """True when `url` answers HTTP at all (or with 200 when `ok_only`)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
            return bool(response.status == 200) or not ok_only
    except urllib.error.HTTPError:
        return not ok_only
    except OSError:
        return False


class ServerProcess:
    """A background server in its own process group, logging to a file; stopped on exit."""

    name = "server"
    ready_timeout_s = 60.0

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.log = workdir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        """Start the server and wait until it answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command(),
                env=self.environment(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            wait_until(self._ready_or_dead, self.ready_timeout_s, self.name)
        except BaseException:
            self.stop()
            raise

    def _ready_or_dead(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited early; see {self.log}")
        return self.ready()

    def stop(self) -> None:
        """Stop it: SIGTERM, then SIGKILL after 5 s."""
        if self.process is not None:
            stop(self.process, STOP_GRACE_S)
            self.process = None

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class SeaweedFS(ServerProcess):
    """`weed server` with its S3 gateway; every port chosen free and bound to 127.0.0.1."""

    name = "seaweedfs"
    ready_timeout_s = 90.0

    def __init__(self, workdir: Path, volume_max: int = 200) -> None:
        super().__init__(workdir)
        #: Each bucket is a collection with volumes of its own; bench runs use a fresh bucket
        #: each, so the bench needs many.
        self.volume_max = volume_max
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        ports = {
            "master.port": free_port(),
            "master.port.grpc": free_port(),
            "volume.port": free_port(),
            "volume.port.grpc": free_port(),
            "filer.port": free_port(),
            "filer.port.grpc": free_port(),
            "s3.port": self.port,
            "s3.port.grpc": free_port(),
        }
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        return [
            str(BIN / "weed"),
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={data}",
            "-s3",
            *(f"-{flag}={port}" for flag, port in ports.items()),
            # No extra listeners, and no anonymous statistics sent anywhere.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            f"-volume.max={self.volume_max}",
        ]

    def ready(self) -> bool:
        return http_answers(self.url + "/")


class RcloneServeS3(ServerProcess):
    """`rclone serve s3` over a directory: buckets are folders, objects are files (mtime)."""

    name = "rclone-serve-s3"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = workdir / "root"

    def command(self) -> list[str]:
        self.root.mkdir(parents=True, exist_ok=True)
        return [
            str(BIN / "rclone"),
            "serve",
            "s3",
            "--addr",
            f"127.0.0.1:{self.port}",
            "--auth-key",
            f"{ACCESS_KEY},{SECRET_KEY}",
            str(self.root),
        ]

    def environment(self) -> dict[str, str]:
        empty_config = self.workdir / "rclone.conf"
        empty_config.touch()
        return {**os.environ, "RCLONE_CONFIG": str(empty_config)}

    def ready(self) -> bool:
        return http_answers(self.url + "/")


class PrefectServer(ServerProcess):
    """`prefect server start` with its own PREFECT_HOME, healthy at /api/health."""

    name = "prefect-server"
    ready_timeout_s = 120.0

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.home = workdir / "prefect-home"

    def command(self) -> list[str]:
        return [
            str(BIN / "prefect"),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]

    def environment(self) -> dict[str, str]:
        self.home.mkdir(parents=True, exist_ok=True)
        return {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": "",
            "PREFECT_UI_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }

    def ready(self) -> bool:
        return http_answers(self.api_url + "/health", ok_only=True)


def tool_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every tool run: fake keys, no AWS config files, no metadata service."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "RCLONE_", "S3_", "PREFECT_API"))
    }
    environment.update(
        {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )
    environment.update(extra or {})
    return environment
