"""Tests for tasks.secrets_manager against in-process moto: values never leak, errors translate."""

from __future__ import annotations

import json
import logging
import socket
from typing import Any

import pytest
from botocore.stub import Stubber
from pydantic import SecretStr

from tasks.aws import AwsClients, AwsSettings, create_clients
from tasks.errors import (
    AwsApiError,
    ConfigError,
    CredentialsError,
    HousekeepingError,
    NetworkError,
    PermissionDeniedError,
)
from tasks.retry import retry_on_transient
from tasks.secrets_manager import RunSecret, fetch_secret, read_secret
from tests.support.exceptions import exception_chain

CANARY = "CANARY-SECRET-VALUE-1234"
OWNER = "123456789012"
SECRET_NAME = "s3-housekeeping/test-run"
AWS_MESSAGE = "CANARY-AWS-MESSAGE-5678"


def put_secret(aws: AwsClients, secret_string: str, name: str = SECRET_NAME) -> str:
    """Create a secret holding `secret_string` in moto and return its ARN."""
    return aws.secretsmanager.create_secret(Name=name, SecretString=secret_string)["ARN"]


def assert_no_canary(error: BaseException) -> None:
    """The canary appears nowhere in the error's text, its args, or its chain's text."""
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None
    for exc in exception_chain(error):
        for text in (str(exc), repr(exc), *map(repr, exc.args)):
            assert CANARY not in text
    assert all(CANARY not in problem for problem in getattr(error, "problems", []))


# --- reading a good secret -----------------------------------------------------------------------


def test_values_are_secret_strings_when_secret_is_a_json_object(aws: AwsClients) -> None:
    put_secret(aws, json.dumps({"api_token": CANARY, "port": 5432, "opts": {"a": [1]}}))

    secret = read_secret(aws.secretsmanager, SECRET_NAME)

    assert isinstance(secret, RunSecret)
    assert secret.name == SECRET_NAME
    assert set(secret.values) == {"api_token", "port", "opts"}
    assert all(isinstance(value, SecretStr) for value in secret.values.values())
    assert secret.values["api_token"].get_secret_value() == CANARY
    # Non-string JSON values are kept as their JSON text.
    assert secret.values["port"].get_secret_value() == "5432"
    assert json.loads(secret.values["opts"].get_secret_value()) == {"a": [1]}


def test_repr_and_str_show_only_name_and_keys_when_secret_is_read(aws: AwsClients) -> None:
    put_secret(aws, json.dumps({"db_password": CANARY, "api_token": CANARY + "-2"}))

    secret = read_secret(aws.secretsmanager, SECRET_NAME)

    expected = f"RunSecret(name='{SECRET_NAME}', keys=['api_token', 'db_password'])"
    assert repr(secret) == expected
    assert str(secret) == expected
    assert f"{secret}" == expected
    assert CANARY not in repr(secret.values)
    assert CANARY not in str(secret.get("db_password"))


def test_get_returns_wrapped_value_when_key_exists(aws: AwsClients) -> None:
    put_secret(aws, json.dumps({"api_token": CANARY}))

    secret = read_secret(aws.secretsmanager, SECRET_NAME)

    token = secret.get("api_token")
    assert isinstance(token, SecretStr)
    assert token.get_secret_value() == CANARY
    assert secret.get("absent") is None


def test_properties_return_plain_values_when_secret_names_kms_key_and_owner(
    aws: AwsClients,
) -> None:
    kms_key = "arn:aws:kms:us-east-1:123456789012:key/00000000-fake-key0-0000-000000000000"
    put_secret(aws, json.dumps({"kms_key_id": kms_key, "expected_bucket_owner": OWNER}))

    secret = read_secret(aws.secretsmanager, SECRET_NAME)

    assert secret.kms_key_id == kms_key
    assert secret.expected_bucket_owner == OWNER


def test_properties_are_none_when_secret_lacks_those_keys(aws: AwsClients) -> None:
    put_secret(aws, json.dumps({"api_token": CANARY}))

    secret = read_secret(aws.secretsmanager, SECRET_NAME)

    assert secret.kms_key_id is None
    assert secret.expected_bucket_owner is None


def test_secret_is_read_when_addressed_by_arn(aws: AwsClients) -> None:
    arn = put_secret(aws, json.dumps({"api_token": CANARY}))

    secret = read_secret(aws.secretsmanager, arn, required_keys=("api_token",))

    assert secret.name == arn
    assert list(secret.values) == ["api_token"]


def test_required_keys_pass_when_all_present(aws: AwsClients) -> None:
    put_secret(aws, json.dumps({"api_token": CANARY, "db_password": CANARY}))

    secret = read_secret(aws.secretsmanager, SECRET_NAME, ("api_token", "db_password"))

    assert sorted(secret.values) == ["api_token", "db_password"]


def test_logs_name_the_secret_but_not_its_values_when_run_logs_at_debug(
    moto: None, caplog: pytest.LogCaptureFixture
) -> None:
    # The run's log level is set before its clients are built, as in a real run.
    caplog.set_level(logging.DEBUG)
    aws = create_clients(AwsSettings(region="us-east-1"))
    put_secret(aws, json.dumps({"api_token": CANARY}))

    read_secret(aws.secretsmanager, SECRET_NAME)

    assert SECRET_NAME in caplog.text
    assert CANARY not in caplog.text


# --- unusable secrets ----------------------------------------------------------------------------


def test_config_error_names_secret_when_secret_does_not_exist(aws: AwsClients) -> None:
    with pytest.raises(ConfigError) as caught:
        read_secret(aws.secretsmanager, "s3-housekeeping/absent")

    assert "'s3-housekeeping/absent'" in str(caught.value)
    assert "not found" in str(caught.value)
    assert caught.value.exit_code == 1
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True


def test_config_error_names_secret_when_secret_is_scheduled_for_deletion(
    aws: AwsClients,
) -> None:
    put_secret(aws, json.dumps({"api_token": CANARY}))
    aws.secretsmanager.delete_secret(SecretId=SECRET_NAME)

    with pytest.raises(ConfigError) as caught:
        read_secret(aws.secretsmanager, SECRET_NAME)

    assert f"'{SECRET_NAME}'" in str(caught.value)
    assert_no_canary(caught.value)


@pytest.mark.parametrize(
    ("secret_string", "fragment"),
    [
        pytest.param(f"{CANARY} is not json", "not valid JSON", id="not-json"),
        pytest.param(f'{{"api_token": "{CANARY}"', "not valid JSON", id="truncated-json"),
        pytest.param(json.dumps([CANARY, "x"]), "JSON object", id="json-array"),
        pytest.param(json.dumps(CANARY), "JSON object", id="json-string"),
        pytest.param("null", "JSON object", id="json-null"),
    ],
)
def test_config_error_hides_values_when_secret_is_not_a_json_object(
    aws: AwsClients, secret_string: str, fragment: str
) -> None:
    put_secret(aws, secret_string)

    with pytest.raises(ConfigError) as caught:
        read_secret(aws.secretsmanager, SECRET_NAME)

    assert fragment in str(caught.value)
    assert f"'{SECRET_NAME}'" in str(caught.value)
    assert_no_canary(caught.value)


def test_config_error_hides_values_when_secret_is_binary(aws: AwsClients) -> None:
    aws.secretsmanager.create_secret(Name=SECRET_NAME, SecretBinary=CANARY.encode())

    with pytest.raises(ConfigError) as caught:
        read_secret(aws.secretsmanager, SECRET_NAME)

    assert "binary" in str(caught.value)
    assert f"'{SECRET_NAME}'" in str(caught.value)
    assert_no_canary(caught.value)


@pytest.mark.parametrize(
    ("document", "required", "missing"),
    [
        pytest.param({"api_token": CANARY}, ("db_password",), ["db_password"], id="one-absent"),
        pytest.param({"api_token": CANARY, "db_password": ""}, ("db_password",), ["db_password"]),
        pytest.param(
            {"other": CANARY}, ("api_token", "db_password"), ["api_token", "db_password"], id="two"
        ),
    ],
)
def test_config_error_names_keys_when_required_key_is_missing_or_empty(
    aws: AwsClients, document: dict[str, Any], required: tuple[str, ...], missing: list[str]
) -> None:
    put_secret(aws, json.dumps(document))

    with pytest.raises(ConfigError) as caught:
        read_secret(aws.secretsmanager, SECRET_NAME, required)

    assert caught.value.problems == [f"key '{key}' is missing or empty" for key in missing]
    assert f"'{SECRET_NAME}'" in str(caught.value)
    assert_no_canary(caught.value)


@pytest.mark.parametrize(
    "owner",
    [
        pytest.param(CANARY, id="words"),
        pytest.param("CANARY-SECRET-VALUE-1234-12345678901", id="digits-inside"),
        pytest.param("12345678901", id="11-digits"),
    ],
)
def test_config_error_names_key_when_expected_bucket_owner_is_malformed(
    aws: AwsClients, owner: str
) -> None:
    put_secret(aws, json.dumps({"expected_bucket_owner": owner, "api_token": CANARY}))

    with pytest.raises(ConfigError) as caught:
        read_secret(aws.secretsmanager, SECRET_NAME)

    assert caught.value.problems == [
        "key 'expected_bucket_owner' must be a 12-digit AWS account ID"
    ]
    assert owner not in str(caught.value)
    assert_no_canary(caught.value)


def test_config_error_names_key_when_kms_key_id_is_blank(aws: AwsClients) -> None:
    put_secret(aws, json.dumps({"kms_key_id": "  ", "api_token": CANARY}))

    with pytest.raises(ConfigError) as caught:
        read_secret(aws.secretsmanager, SECRET_NAME)

    assert caught.value.problems == ["key 'kms_key_id' must not be empty"]
    assert_no_canary(caught.value)


def test_config_error_lists_every_problem_when_secret_has_several(aws: AwsClients) -> None:
    document = {"expected_bucket_owner": CANARY, "kms_key_id": "", "api_token": CANARY}
    put_secret(aws, json.dumps(document))

    with pytest.raises(ConfigError) as caught:
        read_secret(aws.secretsmanager, SECRET_NAME, ("db_password",))

    assert len(caught.value.problems) == 3
    assert_no_canary(caught.value)


# --- AWS errors, translated at the task boundary (a Stubber on a real client) --------------------


@pytest.mark.parametrize(
    ("code", "status", "expected_type", "exit_code"),
    [
        pytest.param("AccessDeniedException", 400, PermissionDeniedError, 4, id="access-denied"),
        pytest.param("UnrecognizedClientException", 400, CredentialsError, 2, id="bad-key"),
        pytest.param("ExpiredTokenException", 400, CredentialsError, 2, id="expired-token"),
        pytest.param("ThrottlingException", 400, AwsApiError, 5, id="throttled"),
        pytest.param("InternalServiceError", 500, AwsApiError, 5, id="internal-error"),
    ],
)
def test_aws_error_is_translated_when_get_secret_value_fails(
    code: str, status: int, expected_type: type[HousekeepingError], exit_code: int
) -> None:
    client = create_clients(AwsSettings(region="us-east-1")).secretsmanager
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "get_secret_value",
            service_error_code=code,
            service_message=AWS_MESSAGE,
            http_status_code=status,
            expected_params={"SecretId": SECRET_NAME},
        )

        with pytest.raises(HousekeepingError) as caught:
            fetch_secret.fn(client, SECRET_NAME)

        stubber.assert_no_pending_responses()
    assert type(caught.value) is expected_type
    assert caught.value.exit_code == exit_code
    assert f"'{SECRET_NAME}'" in str(caught.value)
    assert code in str(caught.value)
    # AWS's message (which can quote ARNs and policies) stays in the suppressed ClientError.
    assert AWS_MESSAGE not in str(caught.value)
    assert AWS_MESSAGE not in repr(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True


def test_permission_error_is_raised_when_access_is_denied() -> None:
    client = create_clients(AwsSettings(region="us-east-1")).secretsmanager
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "get_secret_value", service_error_code="AccessDeniedException", http_status_code=400
        )

        with pytest.raises(PermissionDeniedError) as caught:
            fetch_secret.fn(client, SECRET_NAME)

    assert caught.value.exit_code == 4
    assert str(caught.value) == (
        f"GetSecretValue on secret '{SECRET_NAME}': permission denied (AccessDeniedException)"
    )


def test_throttling_is_transient_when_translated() -> None:
    client = create_clients(AwsSettings(region="us-east-1")).secretsmanager
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "get_secret_value", service_error_code="ThrottlingException", http_status_code=400
        )

        with pytest.raises(AwsApiError) as caught:
            fetch_secret.fn(client, SECRET_NAME)

    assert caught.value.code == "ThrottlingException"
    assert caught.value.transient is True


def test_network_error_is_raised_when_endpoint_is_unreachable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A port that was just free: nothing listens there, so the connection is refused at once.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    client = create_clients(AwsSettings(region="us-east-1", max_attempts=1)).secretsmanager

    with pytest.raises(NetworkError) as caught:
        fetch_secret.fn(client, SECRET_NAME)

    assert caught.value.exit_code == 3
    assert caught.value.transient is True
    assert f"'{SECRET_NAME}'" in str(caught.value)
    assert caught.value.__cause__ is None


# --- the Prefect task ----------------------------------------------------------------------------


def test_fetch_secret_is_never_persisted_or_cached_when_declared() -> None:
    from prefect.cache_policies import NO_CACHE

    assert fetch_secret.name == "fetch-secret"
    assert fetch_secret.persist_result is False
    assert fetch_secret.cache_policy is NO_CACHE


def test_fetch_secret_retries_only_transient_errors_when_declared() -> None:
    # How many times is the run's TASK_RETRIES (tests/flows/test_s3_housekeeping.py).
    assert fetch_secret.retry_condition_fn is retry_on_transient
    assert fetch_secret.retry_delay_seconds[:3] == [2, 4, 8]


def test_fetch_secret_fn_returns_run_secret_when_called_directly(aws: AwsClients) -> None:
    put_secret(aws, json.dumps({"api_token": CANARY, "expected_bucket_owner": OWNER}))

    secret = fetch_secret.fn(aws.secretsmanager, SECRET_NAME, ("api_token",))

    assert isinstance(secret, RunSecret)
    assert secret.expected_bucket_owner == OWNER
    assert CANARY not in repr(secret)


def test_fetch_secret_fn_raises_config_error_when_required_key_is_missing(
    aws: AwsClients,
) -> None:
    put_secret(aws, json.dumps({"api_token": CANARY}))

    with pytest.raises(ConfigError, match="key 'db_password' is missing or empty"):
        fetch_secret.fn(aws.secretsmanager, SECRET_NAME, ("db_password",))
