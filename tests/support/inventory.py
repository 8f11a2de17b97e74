"""Hand-made S3 Inventory reports put in a bucket as AWS lays them out: manifest and data files."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: The schema of an inventory of current versions with the fields a plan needs.
CURRENT_FIELDS = ("Bucket", "Key", "Size", "LastModifiedDate", "ETag", "StorageClass")
#: The schema of an inventory of all versions, in the order AWS writes it.
VERSIONS_FIELDS = (
    "Bucket",
    "Key",
    "VersionId",
    "IsLatest",
    "IsDeleteMarker",
    "Size",
    "LastModifiedDate",
    "ETag",
    "StorageClass",
)
CREATED = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
LAST_MODIFIED = "2025-06-01T12:00:00.000Z"
#: An obviously fake ETag (the MD5 of an empty object), as the CSV holds it: without quotes.
FAKE_ETAG = "d41d8cd98f00b204e9800998ecf8427e"

#: A row: field values by CSV field name (defaults filled in), or raw values written as they are.
Row = Mapping[str, str] | Sequence[str]


@dataclass(frozen=True)
class WrittenInventory:
    """Where a hand-made inventory went: its manifest's address, its content, its data keys."""

    manifest_uri: str
    manifest_key: str
    manifest: dict[str, Any]
    data_keys: list[str]


def row(key: str, **fields: str) -> dict[str, str]:
    """A row for `key`; the other fields default to an old, current, 1-byte STANDARD object."""
    return {"Key": key, **fields}


def put_inventory(
    s3: S3Client,
    destination_bucket: str,
    source_bucket: str,
    files: Sequence[Sequence[Row]],
    *,
    fields: Sequence[str] = CURRENT_FIELDS,
    file_format: str = "CSV",
    destination_prefix: str = "inventories",
    config_id: str = "daily-all",
    created: datetime = CREATED,
    manifest: Mapping[str, Any] | None = None,
) -> WrittenInventory:
    """Write one data file per entry of `files` and a manifest listing them, under
    destination-prefix/source-bucket/config-id/YYYY-MM-DDTHH-MMZ/manifest.json and
    destination-prefix/source-bucket/config-id/data/<uuid>.csv.gz (or .parquet).

    CSV keys are URL-encoded as AWS writes them (a space is "+"); `manifest` replaces or adds
    manifest fields (a field set to None is left out).
    """
    base = f"{destination_prefix}/{source_bucket}/{config_id}"
    data_keys: list[str] = []
    entries: list[dict[str, Any]] = []
    for number, rows in enumerate(files, start=1):
        filled = [filled_row(entry, source_bucket) for entry in rows]
        if file_format == "Parquet":
            key, body = f"{base}/data/{uuid.UUID(int=number)}.parquet", parquet_body(filled)
        else:
            key, body = f"{base}/data/{uuid.UUID(int=number)}.csv.gz", csv_body(filled, fields)
        s3.put_object(Bucket=destination_bucket, Key=key, Body=body)
        data_keys.append(key)
        entries.append({"key": key, "size": len(body), "MD5checksum": md5_hex(body)})
    content: dict[str, Any] = {
        "sourceBucket": source_bucket,
        "destinationBucket": f"arn:aws:s3:::{destination_bucket}",
        "version": "2016-11-30",
        "creationTimestamp": str(int(created.timestamp() * 1000)),
        "fileFormat": file_format,
        "fileSchema": ", ".join(fields) if file_format == "CSV" else parquet_schema(fields),
        "files": entries,
    }
    for name, value in (manifest or {}).items():
        if value is None:
            content.pop(name, None)
        else:
            content[name] = value
    folder = f"{base}/{created:%Y-%m-%dT%H-%MZ}"
    manifest_key = f"{folder}/manifest.json"
    body = json.dumps(content).encode()
    s3.put_object(Bucket=destination_bucket, Key=manifest_key, Body=body)
    s3.put_object(Bucket=destination_bucket, Key=f"{folder}/manifest.checksum", Body=md5_hex(body))
    return WrittenInventory(
        manifest_uri=f"s3://{destination_bucket}/{manifest_key}",
        manifest_key=manifest_key,
        manifest=content,
        data_keys=data_keys,
    )


def filled_row(entry: Row, source_bucket: str) -> Row:
    """A row with its defaults filled in (a sequence is raw values, left as it is)."""
    if not isinstance(entry, Mapping):
        return entry
    marker = entry.get("IsDeleteMarker") == "true"
    defaults = {
        "Bucket": source_bucket,
        "VersionId": "",
        "IsLatest": "true",
        "IsDeleteMarker": "false",
        "Size": "" if marker else "1",
        "LastModifiedDate": LAST_MODIFIED,
        "ETag": "" if marker else FAKE_ETAG,
        "StorageClass": "" if marker else "STANDARD",
    }
    return {**defaults, **entry}


def csv_body(rows: Sequence[Row], fields: Sequence[str]) -> bytes:
    """Rows as a gzip-compressed CSV data file: no header, fields in schema order, every value
    quoted, keys URL-encoded."""
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for entry in rows:
        if isinstance(entry, Mapping):
            writer.writerow(
                quote_plus(entry[name], safe="/") if name == "Key" else entry[name]
                for name in fields
            )
        else:
            writer.writerow(entry)
    return gzip.compress(text.getvalue().encode())


def md5_hex(body: bytes) -> str:
    """The MD5 a manifest states for a data file."""
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


# Parquet columns as AWS names and types them; Parquet keys are not URL-encoded.
_PARQUET_COLUMNS = {
    "Bucket": ("bucket", "required binary bucket (STRING)"),
    "Key": ("key", "required binary key (STRING)"),
    "VersionId": ("version_id", "optional binary version_id (STRING)"),
    "IsLatest": ("is_latest", "optional boolean is_latest"),
    "IsDeleteMarker": ("is_delete_marker", "optional boolean is_delete_marker"),
    "Size": ("size", "optional int64 size"),
    "LastModifiedDate": (
        "last_modified_date",
        "optional int64 last_modified_date (TIMESTAMP(MILLIS,true))",
    ),
    "ETag": ("e_tag", "optional binary e_tag (STRING)"),
    "StorageClass": ("storage_class", "optional binary storage_class (STRING)"),
}


def parquet_schema(fields: Sequence[str]) -> str:
    """The fileSchema of a Parquet inventory: a schema message."""
    columns = "; ".join(_PARQUET_COLUMNS[name][1] for name in fields)
    return f"message s3.inventory {{ {columns}; }}"


def parquet_body(rows: Sequence[Row]) -> bytes:
    """Rows (mappings, every field of VERSIONS_FIELDS present) as a Parquet data file."""
    # Imported here, not at the top: only the Parquet tests pay for loading pyarrow (the
    # `parquet` extra, which `make install` installs).
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {
        "Bucket": pa.string(),
        "Key": pa.string(),
        "VersionId": pa.string(),
        "IsLatest": pa.bool_(),
        "IsDeleteMarker": pa.bool_(),
        "Size": pa.int64(),
        "LastModifiedDate": pa.timestamp("ms", tz="UTC"),
        "ETag": pa.string(),
        "StorageClass": pa.string(),
    }
    mappings = [entry for entry in rows if isinstance(entry, Mapping)]

    def typed(name: str, value: str) -> Any:
        if value == "":
            return None
        if name in ("IsLatest", "IsDeleteMarker"):
            return value == "true"
        if name == "Size":
            return int(value)
        if name == "LastModifiedDate":
            return datetime.fromisoformat(value)
        return value

    table = pa.table(
        {
            _PARQUET_COLUMNS[name][0]: pa.array(
                [typed(name, entry[name]) for entry in mappings], type=kind
            )
            for name, kind in types.items()
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()
