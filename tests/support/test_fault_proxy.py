"""The fault proxy does what each fault says, against a moto server over HTTP."""

from __future__ import annotations

import contextlib
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from botocore.httpchecksum import Crc32Checksum

from deployments.local_aws import LOCAL_ACCOUNT_ID, LOCAL_CREDENTIALS, LocalAws
from tests.support.fault_proxy import (
    FaultProxy,
    FaultRule,
    delete_keys,
    rewritten_headers,
    without_keys,
)

KEYS = [f"tmp/k-{n:02d}" for n in range(10)]


@pytest.fixture
def bucket(moto_http: LocalAws) -> str:
    name = f"proxy-{uuid.uuid4().hex[:10]}"
    s3 = moto_http.client("s3")
    s3.create_bucket(Bucket=name)
    for key in KEYS:
        s3.put_object(Bucket=name, Key=key, Body=key.encode())
    return name


def client(url: str, read_timeout: float = 5) -> Any:
    """One attempt per call, so each fault reaches the test as the client saw it."""
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(
            retries={"mode": "standard", "total_max_attempts": 1},
            connect_timeout=2,
            read_timeout=read_timeout,
        ),
    )


def remaining(moto_http: LocalAws, bucket: str) -> set[str]:
    listed = moto_http.client("s3").list_objects_v2(Bucket=bucket)
    return {entry["Key"] for entry in listed.get("Contents", [])}


def delete(s3: Any, bucket: str, keys: list[str], **extra: Any) -> Any:
    objects = [{"Key": key} for key in keys]
    return s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True}, **extra)


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ("slowdown", 503, "SlowDown"),
        ("internal_error", 500, "InternalError"),
        ("deny", 403, "AccessDenied"),
        ("malformed", 400, "MalformedXML"),
    ],
)
def test_error_fault_answers_without_forwarding_when_the_request_is_chosen(
    moto_http: LocalAws, bucket: str, fault: Any, status: int, code: str
) -> None:
    rules = [FaultRule("DeleteObjects", fault, nth=(1,))]
    with FaultProxy(moto_http.endpoint_url, rules) as proxy:
        s3 = client(proxy.url)
        with pytest.raises(ClientError) as refused:
            delete(s3, bucket, KEYS[:3])
        delete(s3, bucket, KEYS[3:5])

    assert refused.value.response["Error"]["Code"] == code
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    first, second = proxy.of("DeleteObjects")
    assert (first.fault, first.forwarded, first.status, first.keys) == (
        fault,
        False,
        status,
        tuple(KEYS[:3]),
    )
    assert first.answers() == dict.fromkeys(KEYS[:3], code)
    assert (second.fault, second.forwarded, second.status) == (None, True, 200)
    assert remaining(moto_http, bucket) == set(KEYS) - set(KEYS[3:5])


def test_reset_closes_the_connection_before_forwarding_when_chosen(
    moto_http: LocalAws, bucket: str
) -> None:
    rules = [FaultRule("DeleteObjects", "reset")]
    with (
        FaultProxy(moto_http.endpoint_url, rules) as proxy,
        pytest.raises(ConnectionClosedError),
    ):
        delete(client(proxy.url), bucket, KEYS[:2])

    (exchange,) = proxy.of("DeleteObjects")
    assert (exchange.fault, exchange.forwarded, exchange.status) == ("reset", False, None)
    assert remaining(moto_http, bucket) == set(KEYS)


def test_lost_answer_forwards_then_closes_without_an_answer_when_chosen(
    moto_http: LocalAws, bucket: str
) -> None:
    rules = [FaultRule("DeleteObjects", "lost_answer")]
    with (
        FaultProxy(moto_http.endpoint_url, rules) as proxy,
        pytest.raises(ConnectionClosedError),
    ):
        delete(client(proxy.url), bucket, KEYS[:2])

    (exchange,) = proxy.of("DeleteObjects")
    assert (exchange.forwarded, exchange.upstream_status, exchange.status) == (True, 200, None)
    assert exchange.answers() == {}
    assert remaining(moto_http, bucket) == set(KEYS[2:])  # the server acted


def test_read_timeout_holds_the_answer_until_the_client_gives_up_when_chosen(
    moto_http: LocalAws, bucket: str
) -> None:
    rules = [FaultRule("DeleteObjects", "read_timeout")]
    with FaultProxy(moto_http.endpoint_url, rules, hold_s=30) as proxy:
        started = time.monotonic()
        with pytest.raises(ReadTimeoutError):
            delete(client(proxy.url, read_timeout=1), bucket, KEYS[:2])
        # The proxy lets go as soon as the client closes, not at the end of the hold.
        deadline = time.monotonic() + 5
        while not proxy.of("DeleteObjects") and time.monotonic() < deadline:
            time.sleep(0.05)
        waited = time.monotonic() - started

    assert waited < 5
    (exchange,) = proxy.of("DeleteObjects")
    assert (exchange.fault, exchange.forwarded, exchange.status) == ("read_timeout", True, None)
    assert remaining(moto_http, bucket) == set(KEYS[2:])


def test_per_key_errors_come_back_in_a_200_and_those_keys_stay_when_chosen(
    moto_http: LocalAws, bucket: str
) -> None:
    rules = [
        FaultRule("DeleteObjects", "per_key", keys=frozenset({KEYS[1]}), code="SlowDown"),
        FaultRule("DeleteObjects", "per_key", keys=frozenset({KEYS[2]}), code="AccessDenied"),
    ]
    with FaultProxy(moto_http.endpoint_url, rules) as proxy:
        answer = delete(client(proxy.url), bucket, KEYS[:4])

    errors = {error["Key"]: error["Code"] for error in answer.get("Errors", [])}
    assert errors == {KEYS[1]: "SlowDown", KEYS[2]: "AccessDenied"}
    assert remaining(moto_http, bucket) == set(KEYS) - {KEYS[0], KEYS[3]}
    (exchange,) = proxy.of("DeleteObjects")
    assert exchange.answers() == {
        KEYS[0]: None,
        KEYS[1]: "SlowDown",
        KEYS[2]: "AccessDenied",
        KEYS[3]: None,
    }


def test_per_key_answers_alone_when_every_key_of_the_request_fails(
    moto_http: LocalAws, bucket: str
) -> None:
    rules = [FaultRule("DeleteObjects", "per_key", keys=frozenset(KEYS[:2]), code="SlowDown")]
    with FaultProxy(moto_http.endpoint_url, rules) as proxy:
        answer = delete(client(proxy.url), bucket, KEYS[:2])

    assert {error["Key"] for error in answer["Errors"]} == set(KEYS[:2])
    assert not proxy.of("DeleteObjects")[0].forwarded
    assert remaining(moto_http, bucket) == set(KEYS)


def test_per_key_fails_a_key_only_on_its_first_attempts_when_key_attempts_is_set(
    moto_http: LocalAws, bucket: str
) -> None:
    rules = [
        FaultRule(
            "DeleteObjects", "per_key", keys=frozenset({KEYS[0]}), key_attempts=1, code="SlowDown"
        )
    ]
    with FaultProxy(moto_http.endpoint_url, rules) as proxy:
        s3 = client(proxy.url)
        first = delete(s3, bucket, KEYS[:1])
        second = delete(s3, bucket, KEYS[:1])

    assert [e["Code"] for e in first["Errors"]] == ["SlowDown"]
    assert "Errors" not in second
    assert KEYS[0] not in remaining(moto_http, bucket)


def test_rewritten_body_carries_recomputed_digests_when_keys_are_taken_out() -> None:
    body = (
        b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Object><Key>a&amp;b</Key><ETag>&quot;1&quot;</ETag></Object>"
        b"<Object><Key>c</Key></Object><Quiet>true</Quiet></Delete>"
    )
    headers = {"x-amz-checksum-crc32": "old", "X-Amz-Content-SHA256": "0" * 64, "Host": "h"}

    rewritten = without_keys(body, {"a&b"})
    digests = rewritten_headers(headers, rewritten)

    assert delete_keys(body) == ["a&b", "c"]
    assert delete_keys(rewritten) == ["c"]
    crc = Crc32Checksum()
    crc.update(rewritten)
    assert digests["x-amz-checksum-crc32"] == crc.b64digest()
    assert digests["X-Amz-Content-SHA256"] != "0" * 64
    assert digests["Host"] == "h"


def test_owner_rule_denies_only_requests_naming_another_owner_when_set(
    moto_http: LocalAws, bucket: str
) -> None:
    rules = [FaultRule("*", "deny", bucket_owner=LOCAL_ACCOUNT_ID)]
    with FaultProxy(moto_http.endpoint_url, rules) as proxy:
        s3 = client(proxy.url)
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=LOCAL_ACCOUNT_ID)
        s3.head_bucket(Bucket=bucket)
        with pytest.raises(ClientError) as refused:
            s3.head_bucket(Bucket=bucket, ExpectedBucketOwner="111122223333")

    assert refused.value.response["Error"]["Code"] == "403"
    assert [exchange.fault for exchange in proxy.of("HeadBucket")] == [None, None, "deny"]


def test_malformed_refuses_only_batches_holding_the_poison_key_when_keys_are_set(
    moto_http: LocalAws, bucket: str
) -> None:
    rules = [FaultRule("DeleteObjects", "malformed", keys=frozenset({KEYS[5]}))]
    with FaultProxy(moto_http.endpoint_url, rules) as proxy:
        s3 = client(proxy.url)
        with pytest.raises(ClientError):
            delete(s3, bucket, KEYS[4:6])
        delete(s3, bucket, KEYS[4:5])

    assert [exchange.fault for exchange in proxy.of("DeleteObjects")] == ["malformed", None]
    assert remaining(moto_http, bucket) == set(KEYS) - {KEYS[4]}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_seeded_choices_repeat_when_the_seed_is_the_same(
    moto_http: LocalAws, bucket: str, seed: int
) -> None:
    rules = [
        FaultRule("ListObjectsV2", "slowdown", probability=0.5),
        FaultRule("HeadBucket", "internal_error", burst=(1, 2), jitter=3),
    ]

    def faults() -> list[str | None]:
        with FaultProxy(moto_http.endpoint_url, rules, seed=seed) as proxy:
            s3 = client(proxy.url)
            for _ in range(8):
                for call in (s3.list_objects_v2, s3.head_bucket):
                    with contextlib.suppress(ClientError):
                        call(Bucket=bucket)
        return [exchange.fault for exchange in proxy.exchanges]

    first = faults()

    assert faults() == first
    assert first.count("internal_error") == 2
    assert 0 < first.count("slowdown") < 8


def test_slow_forwards_after_the_delay_and_the_server_acts_when_the_client_is_gone(
    moto_http: LocalAws, bucket: str
) -> None:
    rules = [FaultRule("DeleteObjects", "slow", delay_s=1.0)]
    with FaultProxy(moto_http.endpoint_url, rules) as proxy:
        started = time.monotonic()
        with pytest.raises(ReadTimeoutError):  # the client gives up before the delay is over
            delete(client(proxy.url, read_timeout=0.3), bucket, KEYS[:2])
        assert proxy.wait_idle(5)
        waited = time.monotonic() - started

    assert waited >= 1.0
    (exchange,) = proxy.of("DeleteObjects")
    assert (exchange.fault, exchange.forwarded, exchange.upstream_status) == ("slow", True, 200)
    assert remaining(moto_http, bucket) == set(KEYS[2:])


def test_wait_for_returns_when_the_nth_request_arrives_before_it_is_answered(
    moto_http: LocalAws, bucket: str
) -> None:
    rules = [FaultRule("DeleteObjects", "slow", nth=(2,), delay_s=2.0)]
    with FaultProxy(moto_http.endpoint_url, rules) as proxy, ThreadPoolExecutor(1) as pool:
        s3 = client(proxy.url)
        assert not proxy.wait_for("DeleteObjects", 1, 0.2)
        delete(s3, bucket, KEYS[:1])
        sent = pool.submit(delete, s3, bucket, KEYS[1:2])

        assert proxy.wait_for("DeleteObjects", 2, 5)
        assert not sent.done()  # still held by the slow rule
        assert not proxy.wait_idle(0.2)
        sent.result(10)
        assert proxy.wait_idle(5)

    assert [exchange.fault for exchange in proxy.of("DeleteObjects")] == [None, "slow"]


def test_object_requests_record_their_key_when_they_name_one(
    moto_http: LocalAws, bucket: str
) -> None:
    with FaultProxy(moto_http.endpoint_url) as proxy:
        s3 = client(proxy.url)
        s3.put_object(Bucket=bucket, Key=".s3-housekeeping/lock file.json", Body=b"{}")
        s3.head_bucket(Bucket=bucket)

    put, head = proxy.exchanges
    assert (put.operation, put.object_key) == ("PutObject", ".s3-housekeeping/lock file.json")
    assert (head.operation, head.object_key) == ("HeadBucket", None)


def test_error_in_200_answers_an_s3_error_with_a_200_without_forwarding_when_chosen(
    moto_http: LocalAws, bucket: str
) -> None:
    rules = [FaultRule("DeleteObjects", "error_in_200", nth=(1,))]
    with (
        FaultProxy(moto_http.endpoint_url, rules) as proxy,
        pytest.raises(ClientError) as refused,
    ):
        delete(client(proxy.url), bucket, KEYS[:3])

    # botocore reads an <Error> in a 200 as a 500 of that code.
    assert refused.value.response["Error"]["Code"] == "InternalError"
    (exchange,) = proxy.of("DeleteObjects")
    assert (exchange.fault, exchange.forwarded, exchange.status) == ("error_in_200", False, 200)
    assert remaining(moto_http, bucket) == set(KEYS)


def test_cut_body_forwards_then_sends_half_the_answer_when_chosen(
    moto_http: LocalAws, bucket: str
) -> None:
    rules = [FaultRule("ListObjectsV2", "cut_body", nth=(1,))]
    with FaultProxy(moto_http.endpoint_url, rules) as proxy:
        s3 = client(proxy.url)
        with pytest.raises(ClientError) as refused:
            s3.list_objects_v2(Bucket=bucket)
        listed = s3.list_objects_v2(Bucket=bucket)

    # XML cut short: botocore answers it as a 500 without a code of its own.
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert len(listed["Contents"]) == len(KEYS)
    first, second = proxy.of("ListObjectsV2")
    assert (first.fault, first.forwarded, first.status) == ("cut_body", True, 200)
    assert (second.fault, second.status) == (None, 200)
