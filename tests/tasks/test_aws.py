"""The client factory: botocore Config, credential sources, refreshing assume-role, counting."""

from __future__ import annotations

import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.credentials import DeferredRefreshableCredentials
from botocore.utils import parse_timestamp as botocore_parse_timestamp

from deployments.local_aws import LocalAws
from tasks.aws import (
    AwsSettings,
    botocore_config,
    create_clients,
    create_session,
    parse_timestamp,
)
from tasks.errors import ConfigError
from tasks.settings import RunSettings
from tests.support.audit import audit_requests
from tests.support.fault_proxy import FaultProxy, FaultRule

ROLE_ARN = "arn:aws:iam::123456789012:role/s3-housekeeping-test"


class TestBotocoreConfig:
    def test_bounds_every_call_and_retries_when_built(self) -> None:
        config = botocore_config(
            AwsSettings(
                region="eu-west-1", max_attempts=4, retry_mode="adaptive", max_pool_connections=16
            )
        )

        assert (config.connect_timeout, config.read_timeout) == (5, 30)
        assert config.retries == {"mode": "adaptive", "total_max_attempts": 4}
        assert config.max_pool_connections == 16
        assert config.region_name == "eu-west-1"
        assert "s3-housekeeping" in (config.user_agent_extra or "")

    def test_clients_carry_the_config_when_created(self, moto: None) -> None:
        clients = create_clients(AwsSettings(region="eu-central-1"))

        assert clients.s3.meta.region_name == "eu-central-1"
        assert clients.s3.meta.config.connect_timeout == 5
        assert clients.secretsmanager.meta.config.read_timeout == 30

    def test_sends_a_request_again_when_no_answer_comes_within_the_read_timeout(
        self, moto_http: LocalAws, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        bucket = f"read-timeout-{uuid.uuid4().hex[:8]}"
        moto_http.client("s3").create_bucket(Bucket=bucket)
        settings = RunSettings(bucket=bucket, prefix="p/", aws_read_timeout_seconds=1)
        rules = [FaultRule("ListObjectsV2", "slow", nth=(1,), delay_s=2.5)]

        with FaultProxy(moto_http.endpoint_url, rules) as proxy:
            monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
            s3 = create_clients(settings.aws()).s3
            listed = s3.list_objects_v2(Bucket=bucket, Prefix="p/")
            assert proxy.wait_idle(5)

        # The first answer came after 2.5 s: given up at 1 s, the request was sent again.
        assert listed["KeyCount"] == 0
        assert [e.fault for e in proxy.of("ListObjectsV2")] == ["slow", None]
        assert s3.meta.config.read_timeout == 1


class TestCredentials:
    def test_uses_default_chain_when_no_block_is_named(self, moto: None) -> None:
        session, overrides = create_session(AwsSettings(region="us-east-1"))

        credentials = session.get_credentials()
        assert credentials is not None
        assert credentials.access_key == os.environ["AWS_ACCESS_KEY_ID"]
        assert credentials.method == "env"
        assert overrides == {}

    def test_uses_the_named_block_when_set(self, moto: None, prefect_harness: None) -> None:
        from prefect_aws import AwsCredentials
        from prefect_aws.client_parameters import AwsClientParameters

        name = f"test-block-{uuid.uuid4().hex[:8]}"
        AwsCredentials(
            aws_access_key_id="testing-block-key",
            aws_secret_access_key="testing-block-secret",
            aws_client_parameters=AwsClientParameters(endpoint_url="http://127.0.0.1:9"),
        ).save(name)

        session, overrides = create_session(AwsSettings(region="us-east-1", credentials_block=name))

        credentials = session.get_credentials()
        assert credentials is not None
        assert credentials.access_key == "testing-block-key"
        assert overrides == {"endpoint_url": "http://127.0.0.1:9"}

    def test_missing_block_is_a_config_error_when_named(self, prefect_harness: None) -> None:
        with pytest.raises(ConfigError, match="was not found"):
            create_session(AwsSettings(region="us-east-1", credentials_block="no-such-block"))


class TestAssumeRole:
    def test_credentials_refresh_when_close_to_expiry(self, moto: None) -> None:
        # 900 s is the shortest role session; inside botocore's 15-minute refresh window, every
        # read of the credentials calls AssumeRole again, as a long run would near expiry.
        settings = AwsSettings(region="us-east-1", role_arn=ROLE_ARN, role_duration_seconds=900)
        with audit_requests() as audit:
            session, _ = create_session(settings)
            credentials = session.get_credentials()
            assert isinstance(credentials, DeferredRefreshableCredentials)
            first = credentials.get_frozen_credentials()
            second = credentials.get_frozen_credentials()

        assume_calls = audit.of("AssumeRole")
        assert len(assume_calls) == 2
        assert assume_calls[0].params["RoleArn"] == ROLE_ARN
        assert assume_calls[0].params["RoleSessionName"] == "s3-housekeeping"
        assert first.access_key != second.access_key
        assert first.access_key != os.environ["AWS_ACCESS_KEY_ID"]

    def test_assumes_the_role_once_when_far_from_expiry(self, moto: None) -> None:
        settings = AwsSettings(region="us-east-1", role_arn=ROLE_ARN)
        with audit_requests() as audit:
            clients = create_clients(settings)
            clients.s3.list_buckets()
            clients.s3.list_buckets()

        assert len(audit.of("AssumeRole")) == 1


class TestLoggingAndCounting:
    def test_keeps_sdk_loggers_at_warning_when_debug_is_asked(self, moto: None) -> None:
        for name in ("botocore", "boto3", "urllib3", "s3transfer"):
            logging.getLogger(name).setLevel(logging.DEBUG)

        create_clients(AwsSettings(region="us-east-1"))

        for name in ("botocore", "boto3", "urllib3", "s3transfer"):
            assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING

    def test_counts_requests_per_operation_when_calls_are_made(self, moto: None) -> None:
        clients = create_clients(AwsSettings(region="us-east-1"))
        clients.s3.create_bucket(Bucket="counted-bucket")
        for _ in range(3):
            clients.s3.list_objects_v2(Bucket="counted-bucket")

        assert clients.requests.snapshot() == {"CreateBucket": 1, "ListObjectsV2": 3}


class TestResponseTimestamps:
    @pytest.mark.parametrize(
        "text",
        [
            "2026-11-27T10:15:30.000Z",  # S3's XML
            "2026-11-27T10:15:30Z",
            "2026-11-27T10:15:30.123456+02:00",
            "Fri, 27 Nov 2026 10:15:30 GMT",  # HTTP dates in headers
            "2026-11-27T10:15:30",  # no zone: botocore decides
            "1795774530",  # epoch seconds as text
        ],
    )
    def test_same_instant_as_botocore_when_parsed(self, text: str) -> None:
        ours, theirs = parse_timestamp(text), botocore_parse_timestamp(text)

        assert ours == theirs
        assert (ours.tzinfo is None) == (theirs.tzinfo is None)

    def test_epoch_numbers_go_to_botocore_when_not_text(self) -> None:
        # JSON protocols (Secrets Manager) carry timestamps as numbers.
        assert parse_timestamp(1795774530.5) == botocore_parse_timestamp(1795774530.5)

    def test_s3_listing_uses_the_fast_parser_when_clients_come_from_the_factory(
        self, moto: None
    ) -> None:
        plain = boto3.client("s3", region_name="us-east-1")
        plain.create_bucket(Bucket="timestamps")
        plain.put_object(Bucket="timestamps", Key="a", Body=b"x")
        ours = create_clients(AwsSettings(region="us-east-1")).s3
        role = create_clients(AwsSettings(region="us-east-1", role_arn=ROLE_ARN)).s3

        expected = plain.list_objects_v2(Bucket="timestamps")["Contents"][0]["LastModified"]
        for client in (ours, role):
            listed = client.list_objects_v2(Bucket="timestamps")["Contents"][0]["LastModified"]
            assert listed == expected
            # The standard library's UTC, not dateutil's tzutc: the fast parser made it.
            assert listed.tzinfo is UTC
            assert isinstance(listed, datetime)


class TestServiceModels:
    def test_are_read_once_for_every_session_of_the_process_when_clients_are_made(
        self, moto: None
    ) -> None:
        settings = AwsSettings(region="us-east-1")
        first, second = create_clients(settings), create_clients(settings)

        assert first.s3._loader is second.s3._loader is second.secretsmanager._loader
        assert first.s3 is not second.s3
        assert second.s3.list_buckets()["Buckets"] == []  # a client that works

    def test_follow_aws_data_path_when_it_names_other_files(
        self, moto: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        default = create_clients(AwsSettings(region="us-east-1")).s3._loader
        monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))

        other = create_clients(AwsSettings(region="us-east-1")).s3._loader

        assert other is not default
        assert str(tmp_path) in other.search_paths
