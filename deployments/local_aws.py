"""An embedded local AWS for demos and tests: moto in server mode on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

#: moto's default account: buckets created through the local endpoint belong to it.
LOCAL_ACCOUNT_ID = "123456789012"
# moto accepts any key pair; these placeholders only make botocore sign its requests.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local-aws-placeholder",
    "AWS_SECRET_ACCESS_KEY": "local-aws-placeholder",
}
#: The demo's objects, key -> age in days: under a `tmp/` prefix and 30 days, the keys outside
#: tmp/ and the young ones must survive.
DEMO_OBJECTS = {
    "tmp/build-0001.tar.gz": 400,
    "tmp/build-0002.tar.gz": 90,
    "tmp/cache/layer-a.bin": 45,
    "tmp/cache/layer-b.bin": 31,
    "tmp/cache/layer-c.bin": 29,
    "tmp/today.log": 0,
    "tmp-keep/precious.db": 400,
    "logs/2024/app.log": 400,
}


@dataclass(frozen=True)
class LocalAws:
    """A running local AWS endpoint and the environment that points boto3 at it."""

    endpoint_url: str
    region: str

    def environment(self) -> dict[str, str]:
        """Variables that make boto3 (and so s3-housekeeping) use this endpoint."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            **LOCAL_CREDENTIALS,
        }

    def client(self, service: str) -> Any:
        """A plain boto3 client for seeding and inspecting the local endpoint."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )


@contextmanager
def local_aws(region: str = "us-east-1") -> Iterator[LocalAws]:
    """Run moto's server in this process (S3, Secrets Manager, STS) until the block ends."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:  # pragma: no cover - depends on the install
        raise SystemExit(
            "the local AWS needs moto: install s3-housekeeping[local-aws] (make demo does)"
        ) from None
    # Port 0: the system picks a free port, which the running server then reports.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield LocalAws(endpoint_url=f"http://{host}:{port}", region=region)
    finally:
        server.stop()


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block, restoring the previous values after."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def backdate(bucket: str, key: str, last_modified: datetime) -> None:
    """Set an object's LastModified in the in-process moto backend (S3 cannot do it)."""
    from moto.s3.models import s3_backends

    stored = s3_backends[LOCAL_ACCOUNT_ID]["aws"].buckets[bucket].keys[key]
    stored.last_modified = last_modified.astimezone(UTC).replace(tzinfo=None)


def seed_objects(
    aws: LocalAws,
    bucket: str,
    as_of: datetime,
    objects: Mapping[str, int] = DEMO_OBJECTS,
    create_bucket: bool = False,
) -> None:
    """Put each object (key -> age in days before `as_of`) into the bucket, backdated.

    Args:
        aws: the running local AWS (in this process: backdating reaches into moto's backend).
        bucket: where to put them.
        as_of: the reference time the ages count back from.
        objects: key -> age in days.
        create_bucket: create the bucket first when it does not exist yet.
    """
    s3 = aws.client("s3")
    if create_bucket and bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=bucket)
    for key, age_days in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=b"x" * (1024 + len(key)))
        backdate(bucket, key, as_of - timedelta(days=age_days))
