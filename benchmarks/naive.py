"""The naive reference: list the prefix, then one DeleteObject per old key (the cron script)."""

from __future__ import annotations

import argparse
from datetime import datetime

import boto3


def main() -> None:
    """Delete the objects under --prefix last modified before --cutoff, one request each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--cutoff", required=True, type=datetime.fromisoformat)
    args = parser.parse_args()
    s3 = boto3.client("s3", endpoint_url=args.endpoint_url)
    deleted = 0
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=args.bucket, Prefix=args.prefix
    ):
        for entry in page.get("Contents", []):
            if entry["LastModified"] < args.cutoff:
                s3.delete_object(Bucket=args.bucket, Key=entry["Key"])
                deleted += 1
    print(f"deleted {deleted}")


if __name__ == "__main__":
    main()
