"""The S3 operation a path-style request names: what the local proxies count and fault by."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

# Bucket sub-resources, as query keys, and the operation each one names per method.
BUCKET_SUBRESOURCES = (
    "versioning",
    "location",
    "tagging",
    "encryption",
    "publicAccessBlock",
    "lifecycle",
    "policy",
    "acl",
    "uploads",
    "versions",
)


def classify(method: str, path: str, has_copy_source: bool = False) -> str:
    """The S3 operation a path-style request names, from its method, path and query keys."""
    parts = urlsplit(path)
    query = {key for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
    bucket, _, key = parts.path.lstrip("/").partition("/")
    if not bucket:
        return "ListBuckets" if method == "GET" else f"{method} /"
    if key:
        if method == "PUT":
            return "CopyObject" if has_copy_source else "PutObject"
        return {
            "GET": "GetObject",
            "HEAD": "HeadObject",
            "DELETE": "DeleteObject",
            "POST": "PostObject",
        }.get(method, f"{method} object")
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    if method == "GET" and "list-type" in query:
        return "ListObjectsV2"
    if method == "GET" and "versions" in query:
        return "ListObjectVersions"
    for name in BUCKET_SUBRESOURCES:
        if name in query:
            verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}.get(method, method)
            return f"{verb}Bucket{name[0].upper()}{name[1:]}"
    return {
        "GET": "ListObjects",
        "HEAD": "HeadBucket",
        "PUT": "CreateBucket",
        "DELETE": "DeleteBucket",
    }.get(method, f"{method} bucket")
