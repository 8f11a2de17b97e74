"""S3 Inventory reports: the manifest checked, data files streamed as a listing, damage refused."""

from __future__ import annotations

import gzip
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from tasks.aws import AwsClients, AwsSettings, create_clients
from tasks.errors import ConfigError
from tasks.s3.inventory import (
    Inventory,
    InventoryFile,
    check_versions_mode,
    inventory_objects,
    read_inventory,
)
from tasks.s3.listing import ListedObject
from tests.support.audit import audit_requests
from tests.support.inventory import (
    CREATED,
    CURRENT_FIELDS,
    FAKE_ETAG,
    VERSIONS_FIELDS,
    WrittenInventory,
    csv_body,
    filled_row,
    md5_hex,
    put_inventory,
    row,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SOURCE = "inventoried-bucket"
DESTINATION = "inventory-reports"


@pytest.fixture
def s3(aws: AwsClients) -> S3Client:
    """moto with the inventoried bucket and the bucket its reports are published to."""
    aws.s3.create_bucket(Bucket=SOURCE)
    aws.s3.create_bucket(Bucket=DESTINATION)
    return aws.s3


def written(s3: S3Client, *files: list[Any], **options: Any) -> WrittenInventory:
    return put_inventory(s3, DESTINATION, SOURCE, files, **options)


def objects(
    s3: S3Client, inventory: Inventory, prefix: str = "", versions: str = "current"
) -> list[ListedObject]:
    return [
        listed
        for data_file in inventory.files
        for listed in inventory_objects(s3, inventory, data_file, prefix, versions)
    ]


def keys(s3: S3Client, location: str, prefix: str = "", versions: str = "current") -> list[str]:
    inventory = read_inventory(s3, location, SOURCE)
    return [listed.key for listed in objects(s3, inventory, prefix, versions)]


def put_manifest(s3: S3Client, body: bytes) -> str:
    s3.put_object(Bucket=DESTINATION, Key="hand/manifest.json", Body=body)
    return f"s3://{DESTINATION}/hand/manifest.json"


class TestReadManifest:
    def test_reads_buckets_time_format_fields_and_files_when_manifest_is_documented(
        self, s3: S3Client
    ) -> None:
        report = written(s3, [row("a")], [row("b"), row("c")])

        inventory = read_inventory(s3, report.manifest_uri, SOURCE)

        assert inventory.source_bucket == SOURCE
        assert inventory.destination_bucket == DESTINATION
        assert inventory.created == CREATED
        assert inventory.created.tzinfo is not None
        assert inventory.file_format == "CSV"
        assert inventory.fields == CURRENT_FIELDS
        assert [entry.key for entry in inventory.files] == report.data_keys
        assert inventory.files[0] == InventoryFile(
            key=report.data_keys[0],
            size=report.manifest["files"][0]["size"],
            md5=report.manifest["files"][0]["MD5checksum"],
        )
        assert not inventory.has_versions

    def test_lays_files_out_as_aws_when_the_helper_writes_them(self, s3: S3Client) -> None:
        report = written(s3, [row("a")])

        assert (
            report.manifest_key == f"inventories/{SOURCE}/daily-all/2026-01-02T03-04Z/manifest.json"
        )
        assert report.data_keys[0].startswith(f"inventories/{SOURCE}/daily-all/data/")
        assert report.data_keys[0].endswith(".csv.gz")

    def test_has_versions_when_schema_has_the_version_fields(self, s3: S3Client) -> None:
        report = written(s3, [row("a")], fields=VERSIONS_FIELDS)

        assert read_inventory(s3, report.manifest_uri, SOURCE).has_versions

    def test_refuses_when_manifest_is_not_json(self, s3: S3Client) -> None:
        location = put_manifest(s3, b"{not json")

        with pytest.raises(ConfigError, match="is not JSON"):
            read_inventory(s3, location, SOURCE)

    def test_refuses_when_manifest_is_json_but_not_an_object(self, s3: S3Client) -> None:
        location = put_manifest(s3, b"[]")

        with pytest.raises(ConfigError, match="not a JSON object"):
            read_inventory(s3, location, SOURCE)

    def test_refuses_naming_every_missing_field_when_manifest_misses_fields(
        self, s3: S3Client
    ) -> None:
        report = written(s3, [row("a")], manifest={"fileSchema": None, "files": None})

        with pytest.raises(ConfigError, match="misses fields") as refused:
            read_inventory(s3, report.manifest_uri, SOURCE)

        assert refused.value.problems == ["no 'fileSchema'", "no 'files'"]

    def test_refuses_when_manifest_is_not_found(self, s3: S3Client) -> None:
        with pytest.raises(ConfigError, match="was not found"):
            read_inventory(s3, f"s3://{DESTINATION}/nothing/manifest.json", SOURCE)

    @pytest.mark.parametrize(
        "location", ["inventories/manifest.json", "s3://", f"s3://{DESTINATION}/"]
    )
    def test_refuses_when_address_is_not_an_s3_object(self, s3: S3Client, location: str) -> None:
        with pytest.raises(ConfigError, match=r"s3://|no bucket or no key"):
            read_inventory(s3, location, SOURCE)

    def test_refuses_when_source_bucket_is_not_the_runs_bucket(self, s3: S3Client) -> None:
        report = written(s3, [row("a")])

        with pytest.raises(ConfigError, match="lists bucket 'inventoried-bucket', not the run's"):
            read_inventory(s3, report.manifest_uri, "another-bucket")

    def test_refuses_when_data_files_are_in_another_bucket_than_the_manifest(
        self, s3: S3Client
    ) -> None:
        report = written(s3, [row("a")], manifest={"destinationBucket": "arn:aws:s3:::elsewhere"})

        with pytest.raises(ConfigError, match="in bucket 'elsewhere', not in"):
            read_inventory(s3, report.manifest_uri, SOURCE)

    @pytest.mark.parametrize(
        ("overrides", "problem"),
        [
            ({"destinationBucket": DESTINATION}, "'destinationBucket' is not an S3 bucket ARN"),
            ({"creationTimestamp": "2026-01-02"}, "'creationTimestamp' is not milliseconds"),
            ({"creationTimestamp": "9" * 30}, "'creationTimestamp' is not milliseconds"),
            # Past Python's limit for int() of a string (4300 digits): ValueError, not 99.
            ({"creationTimestamp": "9" * 5000}, "'creationTimestamp' is not milliseconds"),
            ({"creationTimestamp": int("9" * 4000)}, "'creationTimestamp' is not milliseconds"),
            ({"sourceBucket": ""}, "'sourceBucket' is not a bucket name"),
            ({"files": {"key": "x"}}, "'files' is not a list"),
            ({"files": [{"key": "x", "size": 1}]}, "files entry 1 needs"),
            ({"files": [{"key": "x", "size": -1, "MD5checksum": "0" * 32}]}, "files entry 1"),
            ({"files": [{"key": "x", "size": 1, "MD5checksum": "fake"}]}, "files entry 1"),
            ({"fileSchema": ["Key"]}, "'fileSchema' is not a string"),
        ],
    )
    def test_refuses_naming_the_field_when_a_field_is_malformed(
        self, s3: S3Client, overrides: dict[str, Any], problem: str
    ) -> None:
        report = written(s3, [row("a")], manifest=overrides)

        with pytest.raises(ConfigError, match="is malformed") as refused:
            read_inventory(s3, report.manifest_uri, SOURCE)

        assert any(line.startswith(problem) for line in refused.value.problems)

    def test_reads_the_creation_time_to_the_millisecond_when_it_is_a_string(
        self, s3: S3Client
    ) -> None:
        report = written(s3, [row("a")], manifest={"creationTimestamp": "1767323040123"})

        created = read_inventory(s3, report.manifest_uri, SOURCE).created

        assert created == datetime(2026, 1, 2, 3, 4, 0, 123000, tzinfo=UTC)

    def test_refuses_when_file_format_is_orc(self, s3: S3Client) -> None:
        report = written(s3, [row("a")], manifest={"fileFormat": "ORC"})

        with pytest.raises(ConfigError, match="ORC files, which are not supported"):
            read_inventory(s3, report.manifest_uri, SOURCE)

    def test_refuses_when_file_format_is_unknown(self, s3: S3Client) -> None:
        report = written(s3, [row("a")], manifest={"fileFormat": "JSON"})

        with pytest.raises(ConfigError, match="unknown fileFormat"):
            read_inventory(s3, report.manifest_uri, SOURCE)

    def test_refuses_parquet_when_pyarrow_cannot_be_imported(
        self, s3: S3Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        report = written(s3, [row("a")], manifest={"fileFormat": "Parquet"})
        # A None entry makes the import fail, as on a machine without pyarrow.
        monkeypatch.setitem(sys.modules, "pyarrow", None)
        monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)

        with pytest.raises(ConfigError, match="need the pyarrow package"):
            read_inventory(s3, report.manifest_uri, SOURCE)

    @pytest.mark.parametrize("missing", ["Key", "Size", "LastModifiedDate", "ETag"])
    def test_refuses_naming_the_field_when_schema_lacks_a_needed_field(
        self, s3: S3Client, missing: str
    ) -> None:
        fields = tuple(name for name in CURRENT_FIELDS if name != missing)
        report = written(s3, [], fields=fields)

        with pytest.raises(ConfigError, match=f"lacks fields a plan needs: include {missing} in"):
            read_inventory(s3, report.manifest_uri, SOURCE)

    @pytest.mark.parametrize("schema", ["Key, Key, Size, LastModifiedDate, ETag", "Key,,Size"])
    def test_refuses_when_schema_repeats_or_leaves_out_a_name(
        self, s3: S3Client, schema: str
    ) -> None:
        report = written(s3, [], manifest={"fileSchema": schema})

        with pytest.raises(ConfigError, match="malformed fileSchema"):
            read_inventory(s3, report.manifest_uri, SOURCE)


class TestRows:
    def test_yields_the_rows_of_each_data_file_when_inventory_has_two_files(
        self, s3: S3Client
    ) -> None:
        report = written(s3, [row("logs/a"), row("logs/b")], [row("logs/c")])
        inventory = read_inventory(s3, report.manifest_uri, SOURCE)

        first, second = (
            [entry.key for entry in inventory_objects(s3, inventory, data_file, "", "current")]
            for data_file in inventory.files
        )

        assert (first, second) == (["logs/a", "logs/b"], ["logs/c"])

    def test_maps_fields_as_a_listing_does_when_a_row_is_read(self, s3: S3Client) -> None:
        report = written(
            s3,
            [
                row(
                    "logs/a.gz",
                    Size="1234",
                    LastModifiedDate="2024-01-02T03:04:05.000Z",
                    ETag="0123456789abcdef0123456789abcdef-2",
                    StorageClass="GLACIER_IR",
                )
            ],
        )

        (listed,) = objects(s3, read_inventory(s3, report.manifest_uri, SOURCE))

        assert listed == ListedObject(
            key="logs/a.gz",
            etag='"0123456789abcdef0123456789abcdef-2"',  # quoted, as ListObjectsV2 returns it
            size=1234,
            last_modified=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
            storage_class="GLACIER_IR",
        )

    def test_defaults_the_storage_class_when_schema_has_none(self, s3: S3Client) -> None:
        fields = ("Bucket", "Key", "Size", "LastModifiedDate", "ETag")
        report = written(s3, [row("a")], fields=fields)

        (listed,) = objects(s3, read_inventory(s3, report.manifest_uri, SOURCE))

        assert listed.storage_class == "STANDARD"
        assert listed.etag == f'"{FAKE_ETAG}"'

    @pytest.mark.parametrize(
        "key",
        [
            "logs/with space.txt",
            "logs/plus+sign.txt",
            "logs/both + and space",
            "logs/ünïcödé/日本語.txt",
            "logs/percent%20literal & ampersand=?#.txt",
            "logs/emoji-🙂",
        ],
    )
    def test_decodes_the_key_when_it_was_url_encoded(self, s3: S3Client, key: str) -> None:
        report = written(s3, [row(key)])

        assert keys(s3, report.manifest_uri) == [key]

    def test_reads_a_space_as_plus_in_the_file_when_aws_encodes_it(self, s3: S3Client) -> None:
        body = gzip.decompress(csv_body([row("a b+c", Bucket=SOURCE)], ["Bucket", "Key"]))

        assert body == b'"inventoried-bucket","a+b%2Bc"\n'

    def test_yields_only_keys_under_the_prefix_when_a_sibling_shares_its_start(
        self, s3: S3Client
    ) -> None:
        report = written(
            s3,
            [row("logs"), row("logs/a"), row("logs-keep/b"), row("logs/sub/c"), row("other/d")],
            [row("logsx"), row("logs/e")],
        )

        assert keys(s3, report.manifest_uri, prefix="logs/") == ["logs/a", "logs/sub/c", "logs/e"]

    def test_yields_every_row_when_prefix_is_empty(self, s3: S3Client) -> None:
        report = written(s3, [row("a"), row("b/c")])

        assert keys(s3, report.manifest_uri, prefix="") == ["a", "b/c"]

    def test_streams_every_row_once_with_one_download_when_the_file_is_large(
        self, s3: S3Client
    ) -> None:
        # Random-looking keys keep the compressed file over several read chunks (1 MiB).
        rows = [row(f"big/{n:06d}-{md5_hex(str(n).encode())}") for n in range(100_000)]
        report = written(s3, rows, [row("big/last")])
        assert report.manifest["files"][0]["size"] > 2 * (1 << 20)

        with audit_requests() as audit:
            client = create_clients(AwsSettings(region="us-east-1")).s3
            found = keys(client, report.manifest_uri, prefix="big/")

        assert found == [entry["Key"] for entry in rows] + ["big/last"]
        downloads = [call.params["Key"] for call in audit.of("GetObject")]
        assert downloads == [report.manifest_key, *report.data_keys]

    def test_refuses_when_a_data_file_is_missing(self, s3: S3Client) -> None:
        report = written(s3, [row("a")])
        inventory = read_inventory(s3, report.manifest_uri, SOURCE)
        s3.delete_object(Bucket=DESTINATION, Key=report.data_keys[0])

        with pytest.raises(ConfigError, match=r"data file .* was not found"):
            objects(s3, inventory)


class TestVersionsModes:
    HISTORY = (
        row("v/a", VersionId="a3", IsLatest="true", Size="3"),
        row("v/a", VersionId="a2", IsLatest="false", Size="2"),
        row("v/b", VersionId="b2", IsLatest="true", IsDeleteMarker="true"),
        row("v/b", VersionId="b1", IsLatest="false", Size="1"),
        row("v/c", VersionId="", IsLatest="true", Size="5"),
    )

    def test_current_yields_latest_versions_only_when_inventory_has_versions(
        self, s3: S3Client
    ) -> None:
        report = written(s3, list(self.HISTORY), fields=VERSIONS_FIELDS)

        listed = objects(s3, read_inventory(s3, report.manifest_uri, SOURCE), versions="current")

        # v/b's latest is a delete marker: it has no current object.
        assert [(entry.key, entry.size, entry.version_id) for entry in listed] == [
            ("v/a", 3, None),
            ("v/c", 5, None),
        ]

    def test_current_yields_every_row_when_inventory_has_current_versions_only(
        self, s3: S3Client
    ) -> None:
        report = written(s3, [row("v/a"), row("v/b")])

        assert keys(s3, report.manifest_uri, versions="current") == ["v/a", "v/b"]

    def test_all_yields_versions_and_delete_markers_by_id_when_inventory_has_versions(
        self, s3: S3Client
    ) -> None:
        report = written(s3, list(self.HISTORY), fields=VERSIONS_FIELDS)

        listed = objects(s3, read_inventory(s3, report.manifest_uri, SOURCE), versions="all")

        assert [
            (entry.key, entry.version_id, entry.is_delete_marker, entry.size, entry.etag)
            for entry in listed
        ] == [
            ("v/a", "a3", False, 3, f'"{FAKE_ETAG}"'),
            ("v/a", "a2", False, 2, f'"{FAKE_ETAG}"'),
            ("v/b", "b2", True, 0, ""),
            ("v/b", "b1", False, 1, f'"{FAKE_ETAG}"'),
            # written before versioning was enabled: S3 calls that version "null"
            ("v/c", "null", False, 5, f'"{FAKE_ETAG}"'),
        ]
        marker = listed[2]
        assert marker.storage_class == ""
        assert marker.noncurrent_since is None

    def test_all_is_refused_when_inventory_has_current_versions_only(self, s3: S3Client) -> None:
        report = written(s3, [row("a")])
        inventory = read_inventory(s3, report.manifest_uri, SOURCE)

        with audit_requests() as audit:
            client = create_clients(AwsSettings(region="us-east-1")).s3
            with pytest.raises(ConfigError, match="needs an inventory of all object versions"):
                inventory_objects(client, inventory, inventory.files[0], "", "all")

        assert audit.calls == []  # refused by the call itself, before any download

    def test_noncurrent_is_refused_when_reading_any_inventory(self, s3: S3Client) -> None:
        report = written(s3, list(self.HISTORY), fields=VERSIONS_FIELDS)
        inventory = read_inventory(s3, report.manifest_uri, SOURCE)

        with pytest.raises(ConfigError, match="does not say when a version stopped being current"):
            inventory_objects(s3, inventory, inventory.files[0], "", "noncurrent")

    def test_unknown_mode_is_refused_when_checked(self, s3: S3Client) -> None:
        report = written(s3, [row("a")])

        with pytest.raises(ConfigError, match="unknown versions mode"):
            check_versions_mode(read_inventory(s3, report.manifest_uri, SOURCE), "latest")


class TestIntegrity:
    def test_refuses_once_read_when_the_data_file_does_not_match_its_md5(
        self, s3: S3Client
    ) -> None:
        report = written(s3, [row("a"), row("b")])
        inventory = read_inventory(s3, report.manifest_uri, SOURCE)
        # Same size, other content: only the MD5 can tell.
        tampered = csv_body([filled_row(row(key), SOURCE) for key in ("a", "c")], CURRENT_FIELDS)
        s3.put_object(Bucket=DESTINATION, Key=report.data_keys[0], Body=tampered)
        assert len(tampered) == inventory.files[0].size

        listing = inventory_objects(s3, inventory, inventory.files[0], "", "current")
        with pytest.raises(ConfigError, match="changed or damaged \\(its MD5 is not"):
            list(listing)

    def test_refuses_when_the_data_file_is_not_the_size_the_manifest_states(
        self, s3: S3Client
    ) -> None:
        report = written(s3, [row("a")])
        inventory = read_inventory(s3, report.manifest_uri, SOURCE)
        s3.put_object(
            Bucket=DESTINATION,
            Key=report.data_keys[0],
            Body=csv_body([filled_row(row(key), SOURCE) for key in ("a", "b")], CURRENT_FIELDS),
        )

        with pytest.raises(ConfigError, match="its size is not the manifest's"):
            objects(s3, inventory)

    def test_refuses_when_the_data_file_is_not_gzip(self, s3: S3Client) -> None:
        body = b'"inventoried-bucket","a","1","2025-06-01T12:00:00.000Z","x","STANDARD"\n'
        s3.put_object(Bucket=DESTINATION, Key="hand/data.csv.gz", Body=body)
        files = [{"key": "hand/data.csv.gz", "size": len(body), "MD5checksum": md5_hex(body)}]
        report = written(s3, [], manifest={"files": files})

        with pytest.raises(ConfigError, match="not readable as gzip-compressed UTF-8 CSV"):
            objects(s3, read_inventory(s3, report.manifest_uri, SOURCE))

    def test_refuses_when_the_gzip_stream_is_cut_short(self, s3: S3Client) -> None:
        rows = [filled_row(row(f"k{n}"), SOURCE) for n in range(100)]
        body = csv_body(rows, CURRENT_FIELDS)[:-20]
        s3.put_object(Bucket=DESTINATION, Key="hand/cut.csv.gz", Body=body)
        files = [{"key": "hand/cut.csv.gz", "size": len(body), "MD5checksum": md5_hex(body)}]
        report = written(s3, [], manifest={"files": files})

        with pytest.raises(ConfigError, match="not readable as gzip-compressed"):
            objects(s3, read_inventory(s3, report.manifest_uri, SOURCE))


class TestMalformedRows:
    def test_refuses_naming_the_file_and_row_when_a_row_is_of_another_bucket(
        self, s3: S3Client
    ) -> None:
        report = written(s3, [row("a"), row("b", Bucket="someone-elses-bucket")])

        with pytest.raises(ConfigError) as refused:
            objects(s3, read_inventory(s3, report.manifest_uri, SOURCE))

        message = str(refused.value)
        assert f"'s3://{DESTINATION}/{report.data_keys[0]}' row 2 is of another bucket" in message

    @pytest.mark.parametrize(
        ("fields", "reason"),
        [
            ({"LastModifiedDate": "yesterday-ish"}, "LastModifiedDate is not an ISO 8601 time"),
            ({"LastModifiedDate": "2024-01-02T03:04:05"}, "LastModifiedDate has no time zone"),
            ({"Size": "12kB"}, "Size is not a whole number of bytes"),
            ({"Size": "-1"}, "Size is not a whole number"),
            ({"Size": ""}, "Size is empty"),
            ({"ETag": ""}, "ETag is empty"),
            ({"Key": ""}, "Key is empty"),
            ({"Key": "%FF%FE"}, "Key is not URL-encoded UTF-8"),
        ],
    )
    def test_refuses_naming_the_file_row_and_field_when_a_value_is_malformed(
        self, s3: S3Client, fields: dict[str, str], reason: str
    ) -> None:
        # written raw, so that a Key is not encoded again
        values = {**row("a"), "Bucket": SOURCE, "Size": "1", "ETag": FAKE_ETAG}
        values |= {"LastModifiedDate": "2025-06-01T12:00:00.000Z", "StorageClass": "STANDARD"}
        bad = [{**values, **fields}[name] for name in CURRENT_FIELDS]
        good = [values[name] for name in CURRENT_FIELDS]
        report = written(s3, [good, bad])

        with pytest.raises(ConfigError) as refused:
            objects(s3, read_inventory(s3, report.manifest_uri, SOURCE))

        message = str(refused.value)
        assert f"'s3://{DESTINATION}/{report.data_keys[0]}' row 2 is malformed ({reason}" in message
        for value in fields.values():
            if value:
                assert value not in message  # a field's value could be anything: never shown

    def test_refuses_when_a_flag_is_not_true_or_false(self, s3: S3Client) -> None:
        report = written(s3, [row("a", IsLatest="yes")], fields=VERSIONS_FIELDS)

        with pytest.raises(
            ConfigError, match="row 1 is malformed \\(IsLatest is not true or false"
        ):
            objects(s3, read_inventory(s3, report.manifest_uri, SOURCE))

    @pytest.mark.parametrize("count", [5, 7])
    def test_refuses_when_a_row_has_the_wrong_number_of_fields(
        self, s3: S3Client, count: int
    ) -> None:
        report = written(s3, [["x"] * count])

        with pytest.raises(ConfigError, match=f"row 1 is malformed \\({count} fields where the"):
            objects(s3, read_inventory(s3, report.manifest_uri, SOURCE))


class TestParquet:
    ROWS = (
        row("p/with space+plus", VersionId="v2", Size="7", ETag="abc"),
        row("p/old", VersionId="v1", IsLatest="false", Size="3"),
        row("p/gone", VersionId="m1", IsDeleteMarker="true"),
        row("q/other", VersionId="o1"),
    )

    def test_reads_rows_like_csv_when_inventory_is_parquet(self, s3: S3Client) -> None:
        report = written(s3, list(self.ROWS), fields=VERSIONS_FIELDS, file_format="Parquet")
        inventory = read_inventory(s3, report.manifest_uri, SOURCE)

        listed = objects(s3, inventory, prefix="p/", versions="all")

        assert inventory.fields == VERSIONS_FIELDS
        assert [
            (entry.key, entry.version_id, entry.is_delete_marker, entry.size, entry.etag)
            for entry in listed
        ] == [
            ("p/with space+plus", "v2", False, 7, '"abc"'),  # Parquet keys are not encoded
            ("p/old", "v1", False, 3, f'"{FAKE_ETAG}"'),
            ("p/gone", "m1", True, 0, ""),
        ]
        assert listed[0].last_modified == datetime(2025, 6, 1, 12, tzinfo=UTC)

    def test_refuses_before_any_row_when_a_parquet_file_does_not_match_its_md5(
        self, s3: S3Client
    ) -> None:
        report = written(s3, list(self.ROWS), fields=VERSIONS_FIELDS, file_format="Parquet")
        inventory = read_inventory(s3, report.manifest_uri, SOURCE)
        body = s3.get_object(Bucket=DESTINATION, Key=report.data_keys[0])["Body"].read()
        s3.put_object(Bucket=DESTINATION, Key=report.data_keys[0], Body=body[:-1] + b"X")

        listing = inventory_objects(s3, inventory, inventory.files[0], "", "all")
        with pytest.raises(ConfigError, match="its MD5 is not"):
            next(listing)
