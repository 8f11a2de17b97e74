"""The benchmark's data: N objects under a prefix, half of them old, and old keys beside it."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from benchmarks.servers import REGION, tool_environment
from devtools.processes import BIN

OLDER_THAN_DAYS = 30
BODY = b"s3-housekeeping benchmark object\n" * 3
#: Objects beside the prefix ("bench-keep/" next to "bench/"): old, so a prefix bug shows.
KEEP_PREFIX = "bench-keep/"
PREFIX = "bench/"
FILL_TIMEOUT_S = 3600
#: aws s3 rm has no age filter; it is told the old keys by this pattern (even numbers).
OLD_KEY_PATTERN = "*[02468]"


@dataclass(frozen=True)
class Dataset:
    """Key layout: even numbers are old, odd numbers new, interleaved in listing order.

    With `subprefixes` > 0 the keys spread over that many "folders" under the prefix; with
    `all_old` every key under the prefix is old (a tool without an age filter deletes the same
    set).
    """

    total: int
    keep: int
    subprefixes: int = 0
    all_old: bool = False

    def key(self, number: int) -> str:
        """The key of object `number` (0 .. total-1)."""
        if self.subprefixes:
            return f"{PREFIX}d{(number // 2) % self.subprefixes:03d}/obj-{number:08d}"
        return f"{PREFIX}obj-{number:08d}"

    @cached_property
    def old_keys(self) -> list[str]:
        """Keys older than the cutoff: the ones every tool must delete."""
        return [self.key(n) for n in range(0, self.total, 1 if self.all_old else 2)]

    @cached_property
    def new_keys(self) -> list[str]:
        """Keys younger than the cutoff: they must survive."""
        return [] if self.all_old else [self.key(n) for n in range(1, self.total, 2)]

    @cached_property
    def keep_keys(self) -> list[str]:
        """Old keys beside the prefix: they must survive."""
        return [f"{KEEP_PREFIX}obj-{n:08d}" for n in range(self.keep)]


@dataclass(frozen=True)
class Cutoff:
    """The reference time of a filled bucket: as_of - 30 days separates old from new."""

    as_of: datetime
    #: True on servers that cannot backdate: as_of is then in the future (ALLOW_FUTURE_AS_OF).
    future: bool

    @property
    def moment(self) -> datetime:
        """Objects last modified strictly before this are old."""
        return self.as_of - timedelta(days=OLDER_THAN_DAYS)


def s3_client(endpoint_url: str, max_pool_connections: int = 20) -> Any:
    """A boto3 S3 client for set-up and verification (and the bench's own delete loops)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=tool_environment()["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=tool_environment()["AWS_SECRET_ACCESS_KEY"],
        config=Config(
            retries={"mode": "standard", "max_attempts": 5},
            max_pool_connections=max_pool_connections,
        ),
    )


def write_files(root: Path, keys: list[str], mtime: float | None = None) -> None:
    """One small file per key under `root` (the key is the relative path)."""
    made: set[Path] = set()
    for key in keys:
        path = root / key
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_bytes(BODY)
        if mtime is not None:
            os.utime(path, (mtime, mtime))


class SourceFiles:
    """Local copies of the objects, uploaded by s5cmd to servers that keep their own times."""

    def __init__(self, workdir: Path, dataset: Dataset) -> None:
        self.old = workdir / "source-old"
        self.new = workdir / "source-new"
        for folder, keys in (
            (self.old, dataset.old_keys + dataset.keep_keys),
            (self.new, dataset.new_keys),
        ):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            write_files(folder, keys)


def s5cmd_upload(endpoint_url: str, source: Path, bucket: str) -> None:
    """Upload every file under `source` to the bucket, keys = relative paths (s5cmd cp)."""
    command = [
        str(BIN / "s5cmd"),
        "--endpoint-url",
        endpoint_url,
        "cp",
        f"{source}/*",
        f"s3://{bucket}/",
    ]
    completed = subprocess.run(
        command,
        env=tool_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=FILL_TIMEOUT_S,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"s5cmd upload to {bucket} failed: {completed.stderr[-2000:]!r}")


def fill_seaweedfs(endpoint_url: str, bucket: str, source: SourceFiles) -> Cutoff:
    """Upload the old half (and the kept keys), wait, then the new half.

    SeaweedFS stamps LastModified itself (whole seconds), so "old" means "written before a
    moment between the halves"; the run's as_of is that moment + 30 days, in the future.
    Without a new half (`Dataset.all_old`) the moment is just after the upload.
    """
    s3_client(endpoint_url).create_bucket(Bucket=bucket)
    s5cmd_upload(endpoint_url, source.old, bucket)
    split = math.floor(time.time()) + 2
    while time.time() < split + 1.1:
        time.sleep(0.1)
    if any(source.new.iterdir()):
        s5cmd_upload(endpoint_url, source.new, bucket)
    as_of = datetime.fromtimestamp(split, UTC) + timedelta(days=OLDER_THAN_DAYS)
    return Cutoff(as_of=as_of, future=True)


def fill_directory(bucket_dir: Path, dataset: Dataset) -> Cutoff:
    """Write the objects as files (for rclone serve s3) and backdate the old ones."""
    shutil.rmtree(bucket_dir, ignore_errors=True)
    as_of = datetime.now(UTC).replace(microsecond=0)
    old = (as_of - timedelta(days=2 * OLDER_THAN_DAYS)).timestamp()
    new = (as_of - timedelta(hours=1)).timestamp()
    write_files(bucket_dir, dataset.old_keys + dataset.keep_keys, mtime=old)
    write_files(bucket_dir, dataset.new_keys, mtime=new)
    return Cutoff(as_of=as_of, future=False)


def list_keys(endpoint_url: str, bucket: str) -> Iterator[tuple[str, datetime]]:
    """Every key in the bucket with its LastModified (direct to the server, not the proxy)."""
    paginator = s3_client(endpoint_url).get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            yield entry["Key"], entry["LastModified"]


class VerificationError(AssertionError):
    """The bucket does not hold what it must: too much or too little deleted, or a bad fill."""


def check_filled(endpoint_url: str, bucket: str, dataset: Dataset, cutoff: Cutoff) -> None:
    """Every object is there, and old and new fall on the right side of the cutoff."""
    old = set(dataset.old_keys) | set(dataset.keep_keys)
    new = set(dataset.new_keys)
    seen = 0
    for key, modified in list_keys(endpoint_url, bucket):
        seen += 1
        if key in old and modified >= cutoff.moment:
            raise VerificationError(f"fill: old key {key} is not older than {cutoff.moment}")
        if key in new and modified < cutoff.moment:
            raise VerificationError(f"fill: new key {key} is older than {cutoff.moment}")
    if seen != len(old) + len(new):
        raise VerificationError(f"fill: {seen} objects listed, {len(old) + len(new)} expected")


@dataclass(frozen=True)
class Outcome:
    """What a run left: old keys deleted, and whether anything else went."""

    deleted: int
    old_left: int


def check_after(endpoint_url: str, bucket: str, dataset: Dataset, complete: bool) -> Outcome:
    """After a run: new and kept keys all remain, nothing unknown appeared, old keys are gone.

    Args:
        complete: the tool finished; every old key under the prefix must then be gone. A run
            stopped at its time limit only has to have deleted nothing it should not have.
    """
    must_stay = set(dataset.new_keys) | set(dataset.keep_keys)
    old = set(dataset.old_keys)
    remaining = set()
    unknown = []
    for key, _ in list_keys(endpoint_url, bucket):
        if key in must_stay or key in old:
            remaining.add(key)
        else:
            unknown.append(key)
    lost = must_stay - remaining
    if lost:
        example = min(lost)
        raise VerificationError(f"{len(lost)} objects that must stay were deleted, e.g. {example}")
    if unknown:
        raise VerificationError(f"{len(unknown)} unexpected keys appeared, e.g. {unknown[0]}")
    old_left = len(old & remaining)
    if complete and old_left:
        raise VerificationError(f"{old_left} old objects under {PREFIX} were not deleted")
    return Outcome(deleted=len(old) - old_left, old_left=old_left)


def drop_bucket(endpoint_url: str, bucket: str) -> None:
    """Delete the bucket with what it holds (set-up traffic, direct to the server).

    SeaweedFS deletes a non-empty bucket at once (its -s3.allowDeleteBucketNotEmpty default);
    elsewhere the objects are deleted first.
    """
    s3 = s3_client(endpoint_url)
    try:
        s3.delete_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "BucketNotEmpty":
            raise
    batch: list[dict[str, str]] = []
    for key, _ in list_keys(endpoint_url, bucket):
        batch.append({"Key": key})
        if len(batch) == 1000:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            batch = []
    if batch:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    s3.delete_bucket(Bucket=bucket)
