"""Where plans live: a local directory or an s3:// prefix, for writing and for reading back."""

from __future__ import annotations

import logging
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from tasks.errors import ConfigError, error_code, translate_aws_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

S3_SCHEME = "s3://"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """("bucket", "key/or/prefix") of an s3:// address."""
    bucket, _, key = uri.removeprefix(S3_SCHEME).partition("/")
    return bucket, key


def is_s3_uri(location: str) -> bool:
    return location.startswith(S3_SCHEME)


def staging_path(location: str, bucket: str, name: str) -> tuple[Path, str | None]:
    """Where to write a plan named `name`: the local file, and the s3:// address to upload it
    to afterwards when `location` is an s3:// prefix (then the local file is a temporary one)."""
    if not is_s3_uri(location):
        return Path(location) / bucket / name, None
    staging = Path(tempfile.mkdtemp(prefix="s3-housekeeping-plan-")) / name
    prefix = location.rstrip("/") + "/"
    return staging, f"{prefix}{bucket}/{name}"


def publish(s3: S3Client, local: Path, uri: str | None) -> str:
    """Upload a finished plan when its home is S3; returns where the plan now is."""
    if uri is None:
        return str(local)
    bucket, key = split_s3_uri(uri)
    try:
        s3.upload_file(str(local), bucket, key)
    except (ClientError, BotoCoreError) as exc:
        raise translate_aws_error(exc, f"uploading the plan to {uri}") from None
    local.unlink()
    local.parent.rmdir()
    logger.info("Plan uploaded to %s", uri, extra={"manifest": uri})
    return uri


def fetch(s3: S3Client, plan: str, scratch: ExitStack) -> Path:
    """A local copy of a saved plan: the path itself, or a download of an s3:// plan into a
    temporary directory that `scratch` removes when it closes."""
    if not is_s3_uri(plan):
        path = Path(plan)
        if not path.is_file():
            raise ConfigError(f"plan '{plan}' was not found")
        return path
    bucket, key = split_s3_uri(plan)
    folder = Path(tempfile.mkdtemp(prefix="s3-housekeeping-plan-"))
    scratch.callback(shutil.rmtree, folder, ignore_errors=True)
    local = folder / Path(key).name
    try:
        s3.download_file(bucket, key, str(local))
    except ClientError as exc:
        if error_code(exc) in {"404", "NoSuchKey", "NoSuchBucket"}:
            raise ConfigError(f"plan '{plan}' was not found") from None
        raise translate_aws_error(exc, f"downloading the plan {plan}") from None
    except BotoCoreError as exc:
        raise translate_aws_error(exc, f"downloading the plan {plan}") from None
    return local
