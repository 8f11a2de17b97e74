"""s3://bucket/key addresses: the one parser of plan and manifest locations."""

from __future__ import annotations

from dataclasses import dataclass

SCHEME = "s3://"


@dataclass(frozen=True)
class S3Uri:
    """An s3:// address: its bucket, and a key or a key prefix (possibly empty)."""

    bucket: str
    key: str

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"

    def join(self, *parts: str) -> S3Uri:
        """The address under this one's key (a prefix), e.g. s3://b/plans + run.jsonl."""
        prefix = self.key.rstrip("/")
        return S3Uri(self.bucket, "/".join(part for part in (prefix, *parts) if part))


def is_s3_uri(location: str) -> bool:
    """Whether a location is an s3:// address rather than a local path."""
    return location.startswith(SCHEME)


def parse_s3_uri(location: str) -> S3Uri:
    """s3://bucket/key/or/prefix as its parts.

    Raises:
        ValueError: the location is not an s3:// address.
    """
    if not is_s3_uri(location):
        raise ValueError("not an s3:// address")
    bucket, _, key = location.removeprefix(SCHEME).partition("/")
    return S3Uri(bucket, key)
