"""rclone serve s3 for the benchmarks, and the environment every tool runs in (SeaweedFS and the
Prefect server are in devtools)."""

from __future__ import annotations

import os
from pathlib import Path

from devtools.processes import BIN, ServerProcess, free_port, http_answers

ACCESS_KEY = "bench-access-key"
SECRET_KEY = "bench-secret-key"  # noqa: S105 - a fake credential for local servers only
REGION = "us-east-1"


class RcloneServeS3(ServerProcess):
    """`rclone serve s3` over a directory: buckets are folders, objects are files (mtime)."""

    name = "rclone-serve-s3"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir / f"{self.name}.log")
        self.workdir = workdir
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
