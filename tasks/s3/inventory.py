"""S3 Inventory reports instead of a listing: the manifest checked, data files streamed as rows."""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib
import io
import json
import re
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from tasks.errors import NOT_FOUND_ERROR_CODES, ConfigError, error_code
from tasks.s3.listing import ListedObject
from tasks.s3.uris import S3Uri, parse_s3_uri

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: The manifest.json fields a run relies on (AWS also writes `version`, which changes nothing).
MANIFEST_FIELDS = (
    "sourceBucket",
    "destinationBucket",
    "creationTimestamp",
    "fileFormat",
    "fileSchema",
    "files",
)
#: Without these a row cannot become a plan line: the ETag conditions the delete.
REQUIRED_FIELDS = ("Key", "Size", "LastModifiedDate", "ETag")
#: What an inventory of all versions adds to the schema.
VERSION_FIELDS = ("VersionId", "IsLatest", "IsDeleteMarker")
#: An inventory's Object Lock fields: with them, what holds an object is read from its row,
#: not asked of S3 object by object (tasks/s3/vetting.py).
LOCK_FIELDS = ("ObjectLockRetainUntilDate", "ObjectLockMode", "ObjectLockLegalHoldStatus")
VERSIONS_MODES = ("current", "noncurrent", "all")
#: Bytes asked of S3 per read: data files are streamed, never held whole in memory.
CHUNK_BYTES = 1 << 20
#: Rows decoded at a time from a Parquet file.
PARQUET_BATCH_ROWS = 10_000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The most digits (and bits) a creationTimestamp before the year 10000 has, with room.
MILLISECONDS_DIGITS = 20
MILLISECONDS_BITS = 64
# Partitions differ (aws, aws-cn, aws-us-gov); the rest of an S3 bucket ARN is fixed.
_BUCKET_ARN = re.compile(r"arn:aws[a-z-]*:s3:::([^/:]+)")
_MD5_HEX = re.compile(r"[0-9a-fA-F]{32}")
# A Parquet fileSchema is a schema message: "message s3.inventory { required binary key (STRING);
# optional int64 size; ... }"; the third word of each field is its column name.
_PARQUET_COLUMN = re.compile(r"\b(?:required|optional|repeated)\s+\w+\s+(\w+)")


@dataclass(frozen=True)
class InventoryFile:
    """One data file of an inventory, as its manifest lists it (size and MD5 of the compressed
    file, in the destination bucket)."""

    key: str
    size: int
    md5: str


@dataclass(frozen=True)
class Inventory:
    """A checked S3 Inventory manifest: which bucket it lists, when, and where its rows are.

    `fields` are the schema's field names in file order, in the CSV spelling (`Key`, `ETag`)
    whatever the file format.
    """

    source_bucket: str
    destination_bucket: str
    created: datetime
    file_format: str
    fields: tuple[str, ...]
    files: tuple[InventoryFile, ...]

    @property
    def has_versions(self) -> bool:
        """Whether the inventory lists every version and delete marker, not current objects only."""
        return all(name in self.fields for name in VERSION_FIELDS)

    @property
    def has_locks(self) -> bool:
        """Whether its rows say what Object Lock holds each object."""
        return all(name in self.fields for name in LOCK_FIELDS)


@dataclass(frozen=True)
class _Row:
    """A decoded row, before the versions mode and the prefix decide whether it is yielded."""

    bucket: str | None
    key: str
    version_id: str | None
    is_latest: bool | None
    is_delete_marker: bool
    size: int
    last_modified: datetime
    etag: str
    storage_class: str
    #: Object Lock, when the inventory has its fields: a legal hold, a retention's mode and end.
    legal_hold: bool = False
    lock_mode: str = ""
    retain_until: datetime | None = None

    def lock(self, now: datetime) -> str:
        """What holds the object now, as a kept list says it; "" for nothing."""
        if self.legal_hold:
            return "legal hold"
        if self.lock_mode and self.retain_until is not None and self.retain_until > now:
            return f"retained until {self.retain_until.astimezone(UTC).isoformat()}"
        return ""


class _MalformedRow(ValueError):
    """A row that does not fit the schema; its text says which field, never its value."""


def read_inventory(s3: S3Client, manifest_uri: str, bucket: str) -> Inventory:
    """Fetch an S3 Inventory manifest.json and check that a run on `bucket` can use it.

    Args:
        s3: the client that reads the manifest (it needs s3:GetObject on the destination bucket).
        manifest_uri: the manifest's s3:// address, e.g.
            s3://inventories/prefix/source-bucket/config-id/2026-01-02T00-00Z/manifest.json.
        bucket: the run's bucket; the inventory must list that bucket.

    Raises:
        ConfigError: the address or the manifest is unusable: not found, not JSON, a field
            missing or malformed, another source bucket, data files in another bucket than the
            manifest's, ORC, Parquet without pyarrow, or a schema without Key, Size,
            LastModifiedDate and ETag.
    """
    try:
        uri = parse_s3_uri(manifest_uri)
    except ValueError:
        raise ConfigError("an inventory manifest must be an s3:// address") from None
    if not uri.bucket or not uri.key:
        raise ConfigError(f"inventory manifest '{manifest_uri}' names no bucket or no key")
    try:
        body = s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read()
    except ClientError as exc:
        if error_code(exc) in NOT_FOUND_ERROR_CODES:
            raise ConfigError(f"inventory manifest '{manifest_uri}' was not found") from None
        raise
    try:
        manifest = json.loads(body)
    except ValueError:
        raise ConfigError(f"inventory manifest '{manifest_uri}' is not JSON") from None
    if not isinstance(manifest, dict):
        raise ConfigError(f"inventory manifest '{manifest_uri}' is not a JSON object")
    return _checked(manifest, manifest_uri, uri, bucket)


def _checked(manifest: dict[str, Any], where: str, uri: S3Uri, bucket: str) -> Inventory:
    missing = [name for name in MANIFEST_FIELDS if name not in manifest]
    if missing:
        raise ConfigError(
            f"inventory manifest '{where}' misses fields", [f"no '{name}'" for name in missing]
        )
    problems: list[str] = []
    source = manifest["sourceBucket"]
    if not isinstance(source, str) or not source:
        problems.append("'sourceBucket' is not a bucket name")
    arn = manifest["destinationBucket"]
    destination = _BUCKET_ARN.fullmatch(arn) if isinstance(arn, str) else None
    if destination is None:
        problems.append("'destinationBucket' is not an S3 bucket ARN (arn:aws:s3:::name)")
    created = _created(manifest["creationTimestamp"])
    if created is None:
        problems.append("'creationTimestamp' is not milliseconds since the epoch")
    file_format = manifest["fileFormat"]
    if not isinstance(file_format, str):
        problems.append("'fileFormat' is not a string")
    if not isinstance(manifest["fileSchema"], str):
        problems.append("'fileSchema' is not a string")
    files = _files(manifest["files"], problems)
    if problems or destination is None or created is None:
        raise ConfigError(f"inventory manifest '{where}' is malformed", problems)
    if source != bucket:
        raise ConfigError(
            f"inventory manifest '{where}' lists bucket '{source}', not the run's bucket '{bucket}'"
        )
    if destination[1] != uri.bucket:
        # The data files' keys are in the destination bucket; a manifest read from elsewhere (a
        # copy) would send the run to files it was not pointed at.
        raise ConfigError(
            f"inventory manifest '{where}' says its data files are in bucket "
            f"'{destination[1]}', not in '{uri.bucket}' where it was read"
        )
    file_format = _format(file_format, where)
    fields = _fields(manifest["fileSchema"], file_format, where)
    return Inventory(
        source_bucket=source,
        destination_bucket=destination[1],
        created=created,
        file_format=file_format,
        fields=fields,
        files=files,
    )


def _created(value: Any) -> datetime | None:
    # AWS writes the milliseconds as a JSON string; a number is accepted as well.
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    if isinstance(value, int) and value.bit_length() > MILLISECONDS_BITS:
        return None  # str() of a huge number raises past 4300 digits
    text = str(value)
    # Up to the year 9999 is 14 digits; int() of a string past 4300 digits raises ValueError.
    if not text.isascii() or not text.isdigit() or len(text) > MILLISECONDS_DIGITS:
        return None
    try:
        return _EPOCH + timedelta(milliseconds=int(text))
    except OverflowError:  # past the year 9999
        return None


def _files(value: Any, problems: list[str]) -> tuple[InventoryFile, ...]:
    if not isinstance(value, list):
        problems.append("'files' is not a list")
        return ()
    files: list[InventoryFile] = []
    for number, entry in enumerate(value, start=1):
        key = entry.get("key") if isinstance(entry, dict) else None
        size = entry.get("size") if isinstance(entry, dict) else None
        md5 = entry.get("MD5checksum") if isinstance(entry, dict) else None
        if (
            not isinstance(key, str)
            or not key
            or isinstance(size, bool)
            or not isinstance(size, int)
            or size < 0
            or not isinstance(md5, str)
            or not _MD5_HEX.fullmatch(md5)
        ):
            problems.append(f"files entry {number} needs a key, a size and an MD5checksum")
            continue
        files.append(InventoryFile(key=key, size=size, md5=md5.lower()))
    return tuple(files)


def _format(file_format: str, where: str) -> str:
    if file_format == "CSV":
        return file_format
    if file_format == "ORC":
        raise ConfigError(
            f"inventory manifest '{where}' is for ORC files, which are not supported: "
            "configure the inventory as CSV (or Parquet)"
        )
    if file_format == "Parquet":
        if _parquet() is None:
            raise ConfigError(
                f"inventory manifest '{where}' is for Parquet files, which need the pyarrow "
                "package and it is not installed: install pyarrow or configure the inventory as CSV"
            )
        return file_format
    raise ConfigError(
        f"inventory manifest '{where}' has an unknown fileFormat (CSV, ORC or Parquet)"
    )


def _parquet() -> Any | None:
    """pyarrow.parquet when pyarrow is installed (it is an optional extra), else None."""
    try:
        return importlib.import_module("pyarrow.parquet")
    except ImportError:
        return None


def _fields(schema: str, file_format: str, where: str) -> tuple[str, ...]:
    if file_format == "CSV":
        fields = tuple(name.strip() for name in schema.split(","))
    else:
        fields = tuple(_csv_spelling(name) for name in _PARQUET_COLUMN.findall(schema))
    if not fields or "" in fields or len(set(fields)) != len(fields):
        raise ConfigError(f"inventory manifest '{where}' has a malformed fileSchema")
    missing = [name for name in REQUIRED_FIELDS if name not in fields]
    if missing:
        raise ConfigError(
            f"inventory manifest '{where}' lacks fields a plan needs: include "
            f"{', '.join(missing)} in the inventory's optional fields"
        )
    return fields


def _csv_spelling(column: str) -> str:
    """A Parquet column name as the CSV schema spells the same field: last_modified_date is
    LastModifiedDate, e_tag is ETag."""
    if column == "e_tag":
        return "ETag"
    return "".join(part.capitalize() for part in column.split("_"))


def check_versions_mode(inventory: Inventory, versions: str) -> None:
    """Refuse a versions mode the inventory cannot serve, before any data file is read.

    Args:
        inventory: the checked manifest.
        versions: the run's versions mode: current, noncurrent or all.

    Raises:
        ConfigError: noncurrent (an inventory cannot tell when a version stopped being current),
            all on an inventory of current versions only, or an unknown mode.
    """
    if versions not in VERSIONS_MODES:
        raise ConfigError(f"unknown versions mode '{versions}' (current, noncurrent or all)")
    if versions == "noncurrent":
        # The rule is "noncurrent for N days": the time a version was superseded is the
        # LastModified of the next newer version of its key, which an inventory does not put
        # next to it (no order is promised, within a file or across files), and a day-old
        # snapshot misses the versions superseded since. Listing gives both.
        raise ConfigError(
            "an S3 Inventory cannot plan noncurrent versions: it does not say when a version "
            "stopped being current; plan noncurrent versions by listing instead"
        )
    if versions == "all" and not inventory.has_versions:
        raise ConfigError(
            "versions 'all' needs an inventory of all object versions (fields "
            f"{', '.join(VERSION_FIELDS)}); this one lists current versions only"
        )


def inventory_objects(
    s3: S3Client, inventory: Inventory, data_file: InventoryFile, prefix: str, versions: str
) -> Iterator[ListedObject]:
    """The objects (or versions) of one data file under `prefix`, as a listing yields them.

    A CSV file is streamed from S3 through gzip, a chunk at a time; its MD5 is computed on the
    way and compared with the manifest's once the file is read, so rows are yielded before the
    file is known to be intact: act on none of them until the iterator is exhausted (a plan
    is only complete then). A Parquet file is spooled to a temporary file (its index is at
    its end), checked, then read.

    Args:
        s3: the client that reads the destination bucket.
        inventory: the checked manifest (read_inventory).
        data_file: one of `inventory.files`.
        prefix: the run's prefix; other rows are skipped (the prefix is a plain string start:
            "logs/" does not match "logs-keep/").
        versions: current (current objects, without version ids), or all (every version and
            delete marker, by id). noncurrent is refused.

    Raises:
        ConfigError: the versions mode is refused (raised by this call, before any download);
            later, while iterating: the data file is missing, not readable, has a malformed row
            or a row of another bucket, or does not match its manifest's size and MD5.
    """
    check_versions_mode(inventory, versions)
    location = str(S3Uri(inventory.destination_bucket, data_file.key))
    rows = (
        _csv_rows(s3, inventory, data_file, location)
        if inventory.file_format == "CSV"
        else _parquet_rows(s3, inventory, data_file, location)
    )
    return _selected(rows, inventory, prefix, versions, location)


def _selected(
    rows: Iterator[tuple[int, _Row]], inventory: Inventory, prefix: str, versions: str, where: str
) -> Iterator[ListedObject]:
    now = datetime.now(UTC)
    # Every row was decoded, under the prefix or not: a malformed one anywhere refuses the file.
    for number, row in rows:
        if row.bucket is not None and row.bucket != inventory.source_bucket:
            raise ConfigError(
                f"inventory data file '{where}' row {number} is of another bucket than "
                f"'{inventory.source_bucket}'"
            )
        if not row.key.startswith(prefix):
            continue
        if versions == "current":
            # A versioned inventory also lists older versions and delete markers; the current
            # object of a key is its latest version, unless that is a delete marker.
            if row.is_delete_marker or row.is_latest is False:
                continue
            yield ListedObject(
                key=row.key,
                etag=row.etag,
                size=row.size,
                last_modified=row.last_modified,
                storage_class=row.storage_class,
                lock=row.lock(now),
            )
        else:
            yield ListedObject(
                key=row.key,
                etag="" if row.is_delete_marker else row.etag,
                size=0 if row.is_delete_marker else row.size,
                last_modified=row.last_modified,
                storage_class="" if row.is_delete_marker else row.storage_class,
                version_id=row.version_id,
                is_delete_marker=row.is_delete_marker,
                lock="" if row.is_delete_marker else row.lock(now),
            )


class _Md5Reader(io.RawIOBase):
    """An S3 body as a raw stream that keeps the MD5 and the size of what went through it."""

    def __init__(self, body: Any) -> None:
        self._body = body
        # MD5 because the manifest states MD5; it detects damage, it does not authenticate.
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data: bytes = self._body.read(len(buffer))
        buffer[: len(data)] = data
        self.md5.update(data)
        self.size += len(data)
        return len(data)

    def drain(self) -> None:
        """Read what the consumer left (gzip stops at its last member), so all is counted."""
        while self.read(CHUNK_BYTES):
            pass


def _open(s3: S3Client, inventory: Inventory, data_file: InventoryFile, where: str) -> Any:
    try:
        return s3.get_object(Bucket=inventory.destination_bucket, Key=data_file.key)["Body"]
    except ClientError as exc:
        if error_code(exc) in NOT_FOUND_ERROR_CODES:
            raise ConfigError(f"inventory data file '{where}' was not found") from None
        raise


def _check_intact(reader: _Md5Reader, data_file: InventoryFile, where: str) -> None:
    if reader.size != data_file.size:
        problem = "its size is not the manifest's"
    elif reader.md5.hexdigest() != data_file.md5:
        problem = "its MD5 is not the manifest's MD5checksum"
    else:
        return
    raise ConfigError(
        f"inventory data file '{where}' was changed or damaged ({problem}): "
        "none of its rows can be trusted"
    )


def _csv_rows(
    s3: S3Client, inventory: Inventory, data_file: InventoryFile, where: str
) -> Iterator[tuple[int, _Row]]:
    body = _open(s3, inventory, data_file, where)
    reader = _Md5Reader(body)
    number = 0
    try:
        with (
            gzip.GzipFile(fileobj=io.BufferedReader(reader, CHUNK_BYTES), mode="rb") as raw,
            io.TextIOWrapper(raw, encoding="utf-8", newline="") as text,
        ):
            for number, values in enumerate(csv.reader(text), start=1):
                try:
                    yield number, _csv_row(values, inventory.fields)
                except _MalformedRow as exc:
                    raise ConfigError(
                        f"inventory data file '{where}' row {number} is malformed ({exc})"
                    ) from None
            reader.drain()
    except (gzip.BadGzipFile, EOFError, zlib.error, UnicodeDecodeError, csv.Error):
        # Damage usually shows here first (gzip's own CRC), before the MD5 can be compared.
        raise ConfigError(
            f"inventory data file '{where}' is not readable as gzip-compressed UTF-8 CSV "
            f"(at row {number + 1}): none of its rows can be trusted"
        ) from None
    finally:
        body.close()
    _check_intact(reader, data_file, where)


def _csv_row(values: list[str], fields: tuple[str, ...]) -> _Row:
    if len(values) != len(fields):
        raise _MalformedRow(f"{len(values)} fields where the schema has {len(fields)}")
    raw = dict(zip(fields, values, strict=True))
    try:
        # CSV inventories URL-encode keys the way HTML forms do: a space is "+", and a "+" of
        # the key is "%2B" (Cloud Custodian's inventory reader met this: c7n#1997), so "+" must
        # be read back as a space: unquote would leave it a "+" and name another object.
        # Decoding is strict: a bad escape must not turn into a replacement character.
        key = unquote_plus(raw["Key"], errors="strict")
    except UnicodeDecodeError:
        raise _MalformedRow("Key is not URL-encoded UTF-8") from None
    return _row({**raw, "Key": key})


def _row(raw: Mapping[str, Any]) -> _Row:
    """A row from its fields by CSV name: strings from a CSV file, typed values from Parquet."""
    key = raw["Key"]
    if not isinstance(key, str) or not key:
        raise _MalformedRow("Key is empty")
    is_delete_marker = _flag(raw.get("IsDeleteMarker"), "IsDeleteMarker") or False
    size = _size(raw["Size"])
    if size is None and not is_delete_marker:
        raise _MalformedRow("Size is empty")  # only a delete marker has no size
    version_id = _text(raw.get("VersionId"))
    if "VersionId" in raw and not version_id:
        # The version written before versioning was enabled has no id in an inventory;
        # ListObjectVersions, and a delete by id, call it "null".
        version_id = "null"
    etag = _text(raw["ETag"])
    if not etag and not is_delete_marker:
        # Without it the delete could not be conditioned on the object being the one planned.
        raise _MalformedRow("ETag is empty")
    return _Row(
        bucket=_text(raw.get("Bucket")) if "Bucket" in raw else None,
        key=key,
        version_id=version_id,
        is_latest=_flag(raw.get("IsLatest"), "IsLatest"),
        is_delete_marker=is_delete_marker,
        size=size or 0,
        last_modified=_moment(raw["LastModifiedDate"]),
        # The plan's ETag conditions compare with what ListObjectsV2 returns: quoted.
        etag=etag if not etag or etag.startswith('"') else f'"{etag}"',
        storage_class=_text(raw.get("StorageClass")) or "STANDARD",
        legal_hold=_text(raw.get("ObjectLockLegalHoldStatus")) == "ON",
        lock_mode=_text(raw.get("ObjectLockMode")),
        retain_until=(
            _moment(raw["ObjectLockRetainUntilDate"], "ObjectLockRetainUntilDate")
            if raw.get("ObjectLockRetainUntilDate")
            else None
        ),
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _flag(value: Any, name: str) -> bool | None:
    if isinstance(value, bool):
        return value
    if value is None or value == "":
        return None
    if value in ("true", "false"):
        return bool(value == "true")
    raise _MalformedRow(f"{name} is not true or false")


def _size(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        size = int(value)
    else:
        raise _MalformedRow("Size is not a whole number of bytes")
    if size < 0:
        raise _MalformedRow("Size is negative")
    return size


def _moment(value: Any, name: str = "LastModifiedDate") -> datetime:
    if isinstance(value, datetime):
        # Parquet timestamps are UTC by the format's definition, whether marked or not.
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise _MalformedRow(f"{name} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        # Comparing it with the aware cutoff would raise later, far from the row.
        raise _MalformedRow(f"{name} has no time zone")
    return moment


def _parquet_rows(
    s3: S3Client, inventory: Inventory, data_file: InventoryFile, where: str
) -> Iterator[tuple[int, _Row]]:
    parquet = _parquet()
    if parquet is None:  # read_inventory refused it; pyarrow went away since
        raise ConfigError(f"inventory data file '{where}' is Parquet, which needs pyarrow")
    body = _open(s3, inventory, data_file, where)
    reader = _Md5Reader(body)
    with tempfile.TemporaryFile() as spool:
        try:
            while chunk := reader.read(CHUNK_BYTES):
                spool.write(chunk)
        finally:
            body.close()
        # The whole file is here before any row is read, so its rows are checked first.
        _check_intact(reader, data_file, where)
        spool.seek(0)
        try:
            table = parquet.ParquetFile(spool)
            columns = {_csv_spelling(name): name for name in table.schema_arrow.names}
            batches = table.iter_batches(batch_size=PARQUET_BATCH_ROWS)
        except Exception:  # pyarrow's errors have no common base that is not Exception
            raise ConfigError(f"inventory data file '{where}' is not readable as Parquet") from None
        missing = [name for name in REQUIRED_FIELDS if name not in columns]
        if missing:
            raise ConfigError(
                f"inventory data file '{where}' has no column for {', '.join(missing)}"
            )
        number = 0
        for batch in batches:
            for values in batch.to_pylist():
                number += 1
                # Parquet keeps keys as they are: only CSV inventories URL-encode them.
                raw = {field: values[column] for field, column in columns.items()}
                try:
                    yield number, _row(raw)
                except _MalformedRow as exc:
                    raise ConfigError(
                        f"inventory data file '{where}' row {number} is malformed ({exc})"
                    ) from None
