"""The folders below a prefix: those a plan's keys fall in, and those a prefix matches."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: How many folders a note or a refusal names.
PLACES_SHOWN = 10


def folder_of(key: str, prefix: str) -> str:
    """The folder of `key` one level below `prefix`, ending in "/"; the prefix itself for a
    key with no "/" after it. Below "tmp/": "tmp/a/x" is in "tmp/a/". Below "tmp", a prefix
    that is not a folder: "tmp/x" is in "tmp/", "tmp-keep/x" in "tmp-keep/"."""
    head, slash, _ = key[len(prefix) :].partition("/")
    return f"{prefix}{head}/" if slash else prefix


def places_matched(
    s3: S3Client, bucket: str, prefix: str, owner: str | None
) -> tuple[list[str], bool]:
    """The first folders and keys outside a folder that `prefix` matches, from one listing
    with Delimiter "/", and whether there are more."""
    arguments: dict[str, Any] = {
        "Bucket": bucket,
        "Prefix": prefix,
        "Delimiter": "/",
        "MaxKeys": PLACES_SHOWN + 1,
    }
    if owner:
        arguments["ExpectedBucketOwner"] = owner
    page = s3.list_objects_v2(**arguments)
    places = [common["Prefix"] for common in page.get("CommonPrefixes", [])]
    places += [entry["Key"] for entry in page.get("Contents", [])]
    return sorted(places), bool(page.get("IsTruncated"))
