"""Where plans are kept, a local directory or an s3:// prefix: a new plan's file, a saved one's."""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from tasks.errors import NOT_FOUND_ERROR_CODES, ConfigError, error_code
from tasks.s3.private_files import check_plan_file
from tasks.s3.uris import is_s3_uri, parse_s3_uri

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

#: How often a growing record (the journal) kept in S3 is uploaded again while it changes.
UPLOAD_EVERY_S = 30.0


@dataclass(frozen=True)
class PlanFile:
    """A new plan: the local file it is written to, and where it is kept once complete (the
    same path, or an s3:// address it is uploaded to)."""

    path: Path
    location: str

    @property
    def kept_in_s3(self) -> bool:
        return is_s3_uri(self.location)


def new_plan_file(location: str, bucket: str, name: str, scratch: Path) -> PlanFile:
    """Where a plan named `name` for `bucket` goes: LOCATION/BUCKET/NAME for a directory; for an
    s3:// prefix, a file in the run's `scratch` directory, uploaded to PREFIX/BUCKET/NAME."""
    if not is_s3_uri(location):
        path = Path(location) / bucket / name
        return PlanFile(path=path, location=str(path))
    return PlanFile(path=scratch / name, location=str(parse_s3_uri(location).join(bucket, name)))


def kept_at(location: str, scratch: Path) -> PlanFile:
    """A file to write that is kept at `location`: that path, or a file in `scratch` uploaded
    to that s3:// address."""
    if not is_s3_uri(location):
        return PlanFile(path=Path(location), location=location)
    return PlanFile(path=scratch / location.rsplit("/", 1)[-1], location=location)


def keep(s3: S3Client, plan: PlanFile) -> None:
    """Upload a plan (or its journal) when it is kept in S3 (the local copy stays for this run)."""
    if not plan.kept_in_s3:
        return
    uri = parse_s3_uri(plan.location)
    s3.upload_file(str(plan.path), uri.bucket, uri.key)
    logger.info("Uploaded %s", plan.location, extra={"manifest": plan.location})


def private_copy(plan: PlanFile, scratch: Path) -> Path:
    """The run's own copy of a new plan, in its `scratch` directory (an S3 plan was written
    there), which nobody else can change between the checks, the approval and the deletes."""
    if plan.kept_in_s3:
        return plan.path
    copy = scratch / plan.path.name
    shutil.copyfile(plan.path, copy)
    return copy


def fetch(s3: S3Client, location: str, scratch: Path) -> Path:
    """A saved plan copied into the run's `scratch` directory, from a local path or an s3://
    address: the run checks and applies that copy, which nobody else can change.

    Raises:
        ConfigError: there is no such plan.
    """
    if not is_s3_uri(location):
        path = Path(location)
        if not path.is_file():
            raise ConfigError(f"plan '{location}' was not found")
        check_plan_file(path)
        copy = scratch / (path.name or "plan")
        shutil.copyfile(path, copy)
        return copy
    uri = parse_s3_uri(location)
    local = scratch / (Path(uri.key).name or "plan")
    try:
        s3.download_file(uri.bucket, uri.key, str(local))
    except ClientError as exc:
        if error_code(exc) in NOT_FOUND_ERROR_CODES:
            raise ConfigError(f"plan '{location}' was not found") from None
        raise
    return local


@contextmanager
def kept_as_it_goes(
    s3: S3Client, kept: PlanFile, changed: threading.Event, every_s: float = UPLOAD_EVERY_S
) -> Iterator[None]:
    """While the block runs, upload a growing local file (the journal) to its s3:// location
    at most every `every_s` seconds when it has changed, and once more at the end: a run that
    dies leaves its record in S3 up to its last upload. A failed upload is logged; the run goes
    on. Nothing to do for a local location."""
    if not kept.kept_in_s3:
        yield
        return
    stop = threading.Event()

    def upload() -> None:
        changed.clear()
        try:
            keep(s3, kept)
        except Exception as exc:  # a record we keep trying to write; never the run's outcome
            logger.warning("Could not upload %s: %s", kept.location, type(exc).__name__)

    def upload_while_running() -> None:
        while not stop.wait(every_s):
            if changed.is_set():
                upload()

    uploader = threading.Thread(target=upload_while_running, name="journal", daemon=True)
    uploader.start()
    try:
        yield
    finally:
        stop.set()
        uploader.join()
        upload()
