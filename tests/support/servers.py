"""Real servers for end-to-end tests: a moto server process, and SeaweedFS answering S3."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.processes import free_port, http_ok, stop, wait_until
from devtools.seaweedfs import SeaweedFS


@contextmanager
def moto_server_process(extra_env: Mapping[str, str] | None = None) -> Iterator[str]:
    """moto's server in its own process (for settings that must not touch in-process moto)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, **(extra_env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(f"{url}/moto-api/"), 60, "the moto server")
        yield url
    finally:
        stop(process)


@dataclass(frozen=True)
class S3Server:
    """A running S3-compatible server and the environment that points boto3 at it."""

    endpoint_url: str
    workdir: Path

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing-seaweed-key",
            "AWS_SECRET_ACCESS_KEY": "testing-seaweed-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self) -> Any:
        import boto3

        env = self.environment()
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )


@contextmanager
def seaweedfs(workdir: Path, volume_max: int = 50) -> Iterator[S3Server]:
    """A real S3 server (SeaweedFS `weed server -s3`), every port free and on 127.0.0.1. It
    enforces the 1000-key DeleteObjects limit and honours per-object ETag conditions."""
    with SeaweedFS(workdir, volume_max=volume_max) as process:
        server = S3Server(endpoint_url=process.url, workdir=workdir)
        # Its S3 port answers before its filer is ready; wait for a real S3 answer.
        wait_until(lambda: _s3_answers(server), 90, "SeaweedFS")
        yield server


def _s3_answers(server: S3Server) -> bool:
    try:
        server.client().list_buckets()
    except Exception:  # not up yet: connection refused, or its filer still starting
        return False
    return True
