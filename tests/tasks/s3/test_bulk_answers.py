"""Bulk answers: read exactly as botocore reads them, parsed once, retried as botocore retries."""

from __future__ import annotations

import gc
import uuid
from typing import Any
from xml.sax.saxutils import escape

import boto3
import pytest
from botocore.parsers import ResponseParserFactory
from hypothesis import given, settings
from hypothesis import strategies as st

from deployments.local_aws import LOCAL_CREDENTIALS, LocalAws
from tasks.aws import AwsSettings, create_clients, parse_timestamp
from tasks.s3.bulk_answers import (
    BULK_OUTPUTS,
    BulkAnswerParser,
    BulkAnswerParserFactory,
    handle_200_error,
    handle_200_error_unless_bulk,
)
from tests.support.fault_proxy import FaultProxy, FaultRule

S3 = boto3.client("s3", region_name="us-east-1").meta.service_model
NAMESPACE = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
HEADERS = {"x-amz-request-id": "r-1", "x-amz-request-charged": "requester"}


def botocore_reads(body: bytes, operation: str, status: int = 200) -> Any:
    """What botocore's own parser makes of an answer (with the project's timestamps)."""
    factory = ResponseParserFactory()
    factory.set_parser_defaults(timestamp_parser=parse_timestamp)
    return _parse(factory, body, operation, status)


def bulk_reads(body: bytes, operation: str, status: int = 200) -> Any:
    factory = BulkAnswerParserFactory()
    factory.set_parser_defaults(timestamp_parser=parse_timestamp)
    return _parse(factory, body, operation, status)


def _parse(factory: Any, body: bytes, operation: str, status: int) -> Any:
    response = {"body": body, "headers": dict(HEADERS), "status_code": status, "context": {}}
    output = S3.operation_model(operation).output_shape
    try:
        return factory.create_parser("rest-xml").parse(response, output)
    except Exception as exc:
        return ("raised", type(exc).__name__, str(exc))


# -- generated answers ---------------------------------------------------------------------

# Text XML 1.0 can carry, entities and all (escape() writes &amp; &lt; &gt;; quotes stay raw).
TEXT = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\r\ufffe\uffff").filter(
        lambda c: c in "\t\n" or ord(c) >= 0x20
    ),
    max_size=12,
)
NUMBER = st.one_of(st.integers(0, 10**13).map(str), st.sampled_from(["0", "007"]))
STAMP = st.sampled_from(
    ["2026-11-30T00:14:17Z", "2026-11-30T00:14:17.123Z", "2025-01-01T00:00:00.000Z"]
)
BOOLEAN = st.sampled_from(["true", "false", "TRUE", ""])


@st.composite
def element(draw: st.DrawFn, tag: str, text: st.SearchStrategy[str]) -> str:
    value = draw(text)
    if value == "" and draw(st.booleans()):
        return f"<{tag}/>"
    return f"<{tag}>{escape(value)}</{tag}>"


@st.composite
def members(draw: st.DrawFn, fields: dict[str, st.SearchStrategy[str]]) -> str:
    """Some of the fields, each at most once, in any order, with whitespace or unknown tags
    between them now and then."""
    chosen = draw(st.lists(st.sampled_from(sorted(fields)), unique=True))
    parts = [draw(fields[name]) for name in chosen]
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), draw(element("Unmodelled", TEXT)))
    gap = draw(st.sampled_from(["", "\n", "\n  "]))
    return gap.join(parts)


OWNER = members({"DisplayName": element("DisplayName", TEXT), "ID": element("ID", TEXT)})
RESTORE = members(
    {
        "IsRestoreInProgress": element("IsRestoreInProgress", BOOLEAN),
        "RestoreExpiryDate": element("RestoreExpiryDate", STAMP),
    }
)
OBJECT_FIELDS = {
    "Key": element("Key", TEXT),
    "LastModified": element("LastModified", STAMP),
    "ETag": element("ETag", TEXT),
    "Size": element("Size", NUMBER),
    "StorageClass": element("StorageClass", st.sampled_from(["STANDARD", "GLACIER"])),
    "ChecksumAlgorithm": st.lists(
        element("ChecksumAlgorithm", st.sampled_from(["CRC32", "SHA256"])), max_size=2
    ).map("".join),
    "ChecksumType": element("ChecksumType", st.sampled_from(["FULL_OBJECT", "COMPOSITE"])),
    "Owner": OWNER.map(lambda inner: f"<Owner>{inner}</Owner>"),
    "RestoreStatus": RESTORE.map(lambda inner: f"<RestoreStatus>{inner}</RestoreStatus>"),
}
PAGE_FIELDS = {
    "Name": element("Name", TEXT),
    "Prefix": element("Prefix", TEXT),
    "Delimiter": element("Delimiter", st.sampled_from(["/", ""])),
    "MaxKeys": element("MaxKeys", NUMBER),
    "EncodingType": element("EncodingType", st.sampled_from(["url"])),
    "KeyCount": element("KeyCount", NUMBER),
    "IsTruncated": element("IsTruncated", BOOLEAN),
    "ContinuationToken": element("ContinuationToken", TEXT),
    "NextContinuationToken": element("NextContinuationToken", TEXT),
    "StartAfter": element("StartAfter", TEXT),
}


def repeated(tag: str, inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(inner.map(lambda body: f"<{tag}>{body}</{tag}>"), max_size=4).map("".join)


COMMON_PREFIXES = repeated("CommonPrefixes", element("Prefix", TEXT))


@st.composite
def document(draw: st.DrawFn, root: str, entries: str) -> bytes:
    head = draw(members(PAGE_FIELDS))
    namespace = draw(st.sampled_from([NAMESPACE, ""]))
    declaration = draw(st.sampled_from(['<?xml version="1.0" encoding="UTF-8"?>\n', ""]))
    return f"{declaration}<{root}{namespace}>{head}{entries}</{root}>".encode()


@st.composite
def list_objects_v2(draw: st.DrawFn) -> bytes:
    entries = draw(repeated("Contents", members(OBJECT_FIELDS))) + draw(COMMON_PREFIXES)
    return draw(document("ListBucketResult", entries))


@st.composite
def list_object_versions(draw: st.DrawFn) -> bytes:
    version = {
        **OBJECT_FIELDS,
        "VersionId": element("VersionId", TEXT),
        "IsLatest": element("IsLatest", BOOLEAN),
    }
    marker = {name: version[name] for name in ("Key", "VersionId", "IsLatest", "LastModified")}
    kinds = st.one_of(
        repeated("Version", members(version)), repeated("DeleteMarker", members(marker))
    )
    entries = "".join(draw(st.lists(kinds, max_size=3))) + draw(COMMON_PREFIXES)
    return draw(document("ListVersionsResult", entries))


@st.composite
def delete_objects(draw: st.DrawFn) -> bytes:
    deleted = {
        "Key": element("Key", TEXT),
        "VersionId": element("VersionId", TEXT),
        "DeleteMarker": element("DeleteMarker", BOOLEAN),
        "DeleteMarkerVersionId": element("DeleteMarkerVersionId", TEXT),
    }
    error = {name: element(name, TEXT) for name in ("Key", "VersionId", "Code", "Message")}
    kinds = st.one_of(repeated("Deleted", members(deleted)), repeated("Error", members(error)))
    entries = "".join(draw(st.lists(kinds, max_size=3)))
    namespace = draw(st.sampled_from([NAMESPACE, ""]))
    return f"<DeleteResult{namespace}>{entries}</DeleteResult>".encode()


class TestSameAsBotocore:
    @settings(max_examples=300, deadline=None)
    @given(body=list_objects_v2())
    def test_list_objects_v2_when_generated(self, body: bytes) -> None:
        assert bulk_reads(body, "ListObjectsV2") == botocore_reads(body, "ListObjectsV2")

    @settings(max_examples=200, deadline=None)
    @given(body=list_object_versions())
    def test_list_object_versions_when_generated(self, body: bytes) -> None:
        ours = bulk_reads(body, "ListObjectVersions")
        assert ours == botocore_reads(body, "ListObjectVersions")

    @settings(max_examples=200, deadline=None)
    @given(body=delete_objects())
    def test_delete_objects_when_generated(self, body: bytes) -> None:
        assert bulk_reads(body, "DeleteObjects") == botocore_reads(body, "DeleteObjects")

    def test_reads_with_the_fast_path_when_the_answer_is_a_bulk_one(self) -> None:
        body = (
            f"<ListBucketResult{NAMESPACE}><IsTruncated>false</IsTruncated>"
            "<Contents><Key>a&amp;b</Key><Size>3</Size></Contents></ListBucketResult>"
        ).encode()
        factory = BulkAnswerParserFactory()

        parsed = _parse(factory, body, "ListObjectsV2", 200)

        assert parsed["Contents"] == [{"Key": "a&b", "Size": 3}]
        assert parsed["IsTruncated"] is False
        assert parsed["RequestCharged"] == "requester"  # a header member, read by botocore
        # One reader compiled for the shape, and kept for the next answers.
        assert factory._readers["ListObjectsV2Output"] is not None

    def test_botocore_reads_the_rest_when_a_structure_is_repeated(self) -> None:
        # botocore keeps the first of two <Owner>: an answer the readers do not expect.
        body = (
            b"<ListBucketResult><Contents><Key>k</Key><Owner><ID>first</ID></Owner>"
            b"<Owner><ID>second</ID></Owner></Contents></ListBucketResult>"
        )

        parsed = bulk_reads(body, "ListObjectsV2")

        assert parsed == botocore_reads(body, "ListObjectsV2")
        assert parsed["Contents"] == [{"Key": "k", "Owner": {"ID": "first"}}]

    @pytest.mark.parametrize(
        "body",
        [
            b"<Error><Code>InternalError</Code><Message>later</Message></Error>",
            b"<ListBucketResult><Contents><Key>cut",
        ],
        ids=["error-in-200", "cut-short"],
    )
    def test_an_error_or_a_cut_body_in_a_200_is_a_500_as_botocore_makes_it(
        self, body: bytes
    ) -> None:
        for operation in ("ListObjectsV2", "DeleteObjects"):
            stock = {"status_code": 200, "body": body}
            handle_200_error(S3.operation_model(operation), stock)
            assert stock["status_code"] == 500

            parsed = bulk_reads(body, operation)

            assert parsed == botocore_reads(body, operation, status=500)
            assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 500

    def test_other_answers_keep_botocores_parse_when_not_bulk(self) -> None:
        body = f"<VersioningConfiguration{NAMESPACE}><Status>Enabled</Status>"
        body += "</VersioningConfiguration>"

        parsed = bulk_reads(body.encode(), "GetBucketVersioning")

        assert parsed == botocore_reads(body.encode(), "GetBucketVersioning")
        assert parsed["Status"] == "Enabled"
        assert "GetBucketVersioningOutput" not in BULK_OUTPUTS


def test_frees_the_tree_when_parsed() -> None:
    """botocore's parsers sit in a reference cycle: a tree kept on one is freed only by the
    cycle collector, which made every listing page cost a collection."""
    body = (
        "<ListBucketResult>"
        + "".join(f"<Contents><Key>k{n}</Key></Contents>" for n in range(200))
        + "</ListBucketResult>"
    ).encode()
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        assert bulk_reads(body, "ListObjectsV2")["Contents"][199] == {"Key": "k199"}
        gc.collect()
        kept = [type(found).__name__ for found in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()

    assert "Element" not in kept
    assert "BulkAnswerParser" in kept  # botocore's own cycle, still there: the test can fail


# -- over HTTP: the check of a 200 still makes a retry ---------------------------------------


@pytest.fixture
def bucket(moto_http: LocalAws) -> str:
    name = f"bulk-{uuid.uuid4().hex[:10]}"
    s3 = moto_http.client("s3")
    s3.create_bucket(Bucket=name)
    for n in range(5):
        s3.put_object(Bucket=name, Key=f"tmp/k{n}", Body=b"x")
    return name


def our_client(url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in LOCAL_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    return create_clients(AwsSettings(region="us-east-1", max_attempts=3)).s3


@pytest.mark.parametrize("fault", ["error_in_200", "cut_body"])
def test_a_listing_page_is_retried_when_its_200_is_an_error_or_cut(
    moto_http: LocalAws, bucket: str, fault: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FaultProxy(moto_http.endpoint_url, [FaultRule("ListObjectsV2", fault, nth=(1,))]) as p:
        listed = our_client(p.url, monkeypatch).list_objects_v2(Bucket=bucket, Prefix="tmp/")

    assert [entry["Key"] for entry in listed["Contents"]] == [f"tmp/k{n}" for n in range(5)]
    first, second = p.of("ListObjectsV2")
    assert (first.fault, first.status, second.fault, second.status) == (fault, 200, None, 200)


@pytest.mark.parametrize("fault", ["error_in_200", "cut_body"])
def test_a_bulk_delete_is_retried_when_its_200_is_an_error_or_cut(
    moto_http: LocalAws, bucket: str, fault: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [{"Key": f"tmp/k{n}"} for n in range(3)]
    with FaultProxy(moto_http.endpoint_url, [FaultRule("DeleteObjects", fault, nth=(1,))]) as p:
        answer = our_client(p.url, monkeypatch).delete_objects(
            Bucket=bucket, Delete={"Objects": keys}
        )

    assert sorted(entry["Key"] for entry in answer["Deleted"]) == ["tmp/k0", "tmp/k1", "tmp/k2"]
    assert [exchange.fault for exchange in p.of("DeleteObjects")] == [fault, None]
    left = moto_http.client("s3").list_objects_v2(Bucket=bucket)["Contents"]
    assert [entry["Key"] for entry in left] == ["tmp/k3", "tmp/k4"]


def test_other_answers_keep_botocores_check_when_their_200_is_an_error(
    moto_http: LocalAws, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = [FaultRule("GetBucketVersioning", "error_in_200", nth=(1,))]
    with FaultProxy(moto_http.endpoint_url, rules) as proxy:
        s3 = our_client(proxy.url, monkeypatch)
        s3.get_bucket_versioning(Bucket=bucket)

    assert [exchange.fault for exchange in proxy.of("GetBucketVersioning")] == [
        "error_in_200",
        None,
    ]


def test_clients_of_the_factory_parse_bulk_answers_this_way_when_created(moto: None) -> None:
    s3 = create_clients(AwsSettings(region="us-east-1")).s3
    factory = s3._endpoint._response_parser_factory
    handlers = s3.meta.events._emitter._handlers

    assert isinstance(factory.create_parser("rest-xml"), BulkAnswerParser)
    for operation in ("ListObjectsV2", "DeleteObjects", "GetBucketVersioning"):
        chain = list(handlers.prefix_search(f"before-parse.s3.{operation}"))
        assert handle_200_error_unless_bulk in chain
        assert handle_200_error not in chain
