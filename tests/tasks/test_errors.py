"""Tests for tasks.errors: the exit code of every class and the AWS error translation."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProxyConnectionError,
    ReadTimeoutError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)

from tasks.errors import (
    TRANSIENT_ERROR_CODES,
    AwsApiError,
    ConfigError,
    CredentialsError,
    HousekeepingError,
    NetworkError,
    PartialFailure,
    PermissionDeniedError,
    SafetyRefusal,
    error_code,
    is_transient,
    shown_text,
    translate_aws_error,
    translated_aws_errors,
)
from tasks.s3.bucket_lock import BucketLocked, Lease, LockLost
from tests.support import aws_errors

ACTION = "HeadBucket on bucket 'example-bucket'"
ENDPOINT = "https://endpoint-canary.example.invalid"
AWS_MESSAGE = "CANARY-AWS-MESSAGE-5678"


def client_error(code: str, status: int = 400, operation: str = "HeadBucket") -> ClientError:
    """A ClientError as botocore raises it for an error response."""
    response: Any = {
        "Error": {"Code": code, "Message": AWS_MESSAGE},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


# --- exit codes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_class", "exit_code"),
    [
        pytest.param(ConfigError, 1, id="config"),
        pytest.param(CredentialsError, 2, id="credentials"),
        pytest.param(NetworkError, 3, id="network"),
        pytest.param(PermissionDeniedError, 4, id="permission"),
        pytest.param(AwsApiError, 5, id="aws-api"),
        pytest.param(SafetyRefusal, 6, id="safety-refusal"),
        pytest.param(PartialFailure, 7, id="partial-failure"),
        pytest.param(HousekeepingError, 99, id="unexpected"),
    ],
)
def test_exit_code_matches_design_table_when_class_is_raised(
    error_class: type[HousekeepingError], exit_code: int
) -> None:
    assert issubclass(error_class, HousekeepingError)
    assert error_class.exit_code == exit_code


def test_every_exit_code_is_distinct_when_classes_are_compared() -> None:
    classes = [
        ConfigError,
        CredentialsError,
        NetworkError,
        PermissionDeniedError,
        AwsApiError,
        SafetyRefusal,
        PartialFailure,
        HousekeepingError,
    ]

    assert len({error_class.exit_code for error_class in classes}) == len(classes)


def test_instances_carry_exit_code_when_constructed() -> None:
    errors: list[HousekeepingError] = [
        ConfigError("bad"),
        CredentialsError("expired"),
        NetworkError("unreachable"),
        PermissionDeniedError("denied"),
        AwsApiError("boom", code="NoSuchBucket"),
        SafetyRefusal("max_deletions", planned=2, limit=1),
        PartialFailure(failed=1, planned=2),
    ]

    assert [error.exit_code for error in errors] == [1, 2, 3, 4, 5, 6, 7]


# --- the errors that carry data ------------------------------------------------------------------


def test_safety_refusal_carries_its_numbers_when_a_guard_refuses() -> None:
    report = object()

    refusal = SafetyRefusal("max_deletions", planned=1500, limit=1000, report=report)

    assert (refusal.guard, refusal.planned, refusal.limit) == ("max_deletions", 1500, 1000)
    assert refusal.report is report
    assert str(refusal) == (
        "refused by max_deletions: the plan holds 1500 and the limit is 1000; nothing was deleted"
    )
    assert refusal.transient is False


def test_partial_failure_carries_its_numbers_when_some_deletions_fail() -> None:
    report = object()

    failure = PartialFailure(failed=3, planned=10, report=report)

    assert (failure.failed, failure.planned) == (3, 10)
    assert failure.report is report
    assert str(failure) == "3 of 10 planned deletions failed"
    assert failure.transient is False


def test_config_error_lists_each_problem_on_its_own_line_when_given_several() -> None:
    error = ConfigError("invalid configuration", ["bucket: too short", "prefix: empty"])

    assert error.problems == ["bucket: too short", "prefix: empty"]
    assert str(error) == "invalid configuration\n  - bucket: too short\n  - prefix: empty"


def test_config_error_is_just_its_message_when_no_problems_are_given() -> None:
    error = ConfigError("secret 'run/x' was not found")

    assert error.problems == []
    assert str(error) == "secret 'run/x' was not found"


def test_aws_api_error_keeps_code_and_transience_when_constructed() -> None:
    error = AwsApiError("boom", code="SlowDown", transient=True)

    assert (error.code, error.transient, str(error)) == ("SlowDown", True, "boom")


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        pytest.param(NetworkError("x"), True, id="network"),
        pytest.param(ConfigError("x"), False, id="config"),
        pytest.param(CredentialsError("x"), False, id="credentials"),
        pytest.param(PermissionDeniedError("x"), False, id="permission"),
        pytest.param(AwsApiError("x"), False, id="aws-api-default"),
    ],
)
def test_transient_flag_is_set_only_for_network_when_class_default_applies(
    error: HousekeepingError, transient: bool
) -> None:
    assert error.transient is transient


# --- error_code ----------------------------------------------------------------------------------


def test_error_code_is_aws_code_when_exception_is_client_error() -> None:
    assert error_code(client_error("NoSuchBucket", 404)) == "NoSuchBucket"


def test_error_code_is_empty_when_exception_is_not_a_client_error() -> None:
    assert error_code(EndpointConnectionError(endpoint_url=ENDPOINT)) == ""
    assert error_code(ValueError("x")) == ""


def test_error_code_is_empty_when_response_has_no_error() -> None:
    assert error_code(ClientError({}, "HeadBucket")) == ""


# --- translate_aws_error -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(NoCredentialsError(), id="no-credentials"),
        pytest.param(
            PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"), id="partial"
        ),
        pytest.param(CredentialRetrievalError(provider="sso", error_msg="x"), id="retrieval"),
        pytest.param(TokenRetrievalError(provider="sso", error_msg="x"), id="token-retrieval"),
        pytest.param(UnauthorizedSSOTokenError(), id="sso-expired"),
    ],
)
def test_credentials_error_when_botocore_cannot_find_or_refresh_credentials(
    exc: Exception,
) -> None:
    translated = translate_aws_error(exc, ACTION)

    assert type(translated) is CredentialsError
    assert translated.exit_code == 2
    assert str(translated) == f"{ACTION}: AWS credentials not usable ({type(exc).__name__})"


@pytest.mark.parametrize(
    "code",
    [
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "InvalidToken",
        "RequestExpired",
        "SignatureDoesNotMatch",
        "TokenRefreshRequired",
        "UnrecognizedClientException",
    ],
)
def test_credentials_error_when_aws_rejects_the_credentials(code: str) -> None:
    translated = translate_aws_error(client_error(code, 403), ACTION)

    assert type(translated) is CredentialsError
    assert translated.exit_code == 2
    assert str(translated) == f"{ACTION}: AWS credentials rejected ({code})"


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(EndpointConnectionError(endpoint_url=ENDPOINT), id="endpoint-connection"),
        pytest.param(ConnectTimeoutError(endpoint_url=ENDPOINT), id="connect-timeout"),
        pytest.param(ReadTimeoutError(endpoint_url=ENDPOINT), id="read-timeout"),
        pytest.param(ConnectionClosedError(endpoint_url=ENDPOINT), id="connection-closed"),
        pytest.param(ProxyConnectionError(proxy_url=ENDPOINT), id="proxy"),
    ],
)
def test_network_error_when_endpoint_is_unreachable_or_slow(exc: Exception) -> None:
    translated = translate_aws_error(exc, ACTION)

    assert type(translated) is NetworkError
    assert translated.exit_code == 3
    assert translated.transient is True
    # The endpoint a person must check is named; a proxy's address is not an endpoint.
    named = "" if isinstance(exc, ProxyConnectionError) else f"{ENDPOINT} "
    assert str(translated).startswith(f"{ACTION}: endpoint {named}unreachable or timed out")
    assert type(exc).__name__ in str(translated)


@pytest.mark.parametrize(
    ("address", "named"),
    [
        (
            "https://user:canary-password@s3.example.invalid:9000/x?token=canary",
            "https://s3.example.invalid:9000",
        ),
        ("http://[::1]:8333", "http://[::1]:8333"),
        ("not a url", ""),
        ("http://:99999", ""),
    ],
)
def test_names_only_the_scheme_host_and_port_of_an_unreachable_endpoint_when_translated(
    address: str, named: str
) -> None:
    translated = str(translate_aws_error(EndpointConnectionError(endpoint_url=address), ACTION))

    assert translated.startswith(f"{ACTION}: endpoint {named + ' ' if named else ''}unreachable")
    assert "canary" not in translated


@pytest.mark.parametrize(
    ("code", "status"),
    [
        pytest.param("AccessDenied", 403, id="s3-access-denied"),
        pytest.param("AccessDeniedException", 400, id="json-access-denied"),
        pytest.param("AllAccessDisabled", 403, id="all-access-disabled"),
        pytest.param("Forbidden", 403, id="forbidden"),
        pytest.param("403", 403, id="head-bucket-403"),
    ],
)
def test_permission_denied_when_aws_refuses_the_call(code: str, status: int) -> None:
    translated = translate_aws_error(client_error(code, status), ACTION)

    assert type(translated) is PermissionDeniedError
    assert translated.exit_code == 4
    assert str(translated) == f"{ACTION}: permission denied ({code})"
    assert AWS_MESSAGE not in str(translated)


@pytest.mark.parametrize(
    ("code", "status", "transient"),
    [
        pytest.param("ValidationError", 400, False, id="validation"),
        pytest.param("BucketAlreadyExists", 409, False, id="bucket-already-exists"),
        pytest.param("SlowDown", 503, True, id="slow-down"),
        pytest.param("ThrottlingException", 400, True, id="throttling"),
        pytest.param("InternalError", 500, True, id="internal-error"),
        pytest.param("SomethingNew", 502, True, id="unknown-code-5xx"),
    ],
)
def test_aws_api_error_keeps_code_when_error_is_anything_else(
    code: str, status: int, transient: bool
) -> None:
    translated = translate_aws_error(client_error(code, status), ACTION)

    assert type(translated) is AwsApiError
    assert translated.exit_code == 5
    assert translated.code == code
    assert translated.transient is transient
    assert str(translated) == f"{ACTION}: AWS error {code}"
    assert AWS_MESSAGE not in str(translated)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        pytest.param("NoSuchBucket", 404, id="no-such-bucket"),
        pytest.param("404", 404, id="head-bucket-404"),
        pytest.param("NoSuchKey", 404, id="no-such-key"),
        pytest.param("ResourceNotFoundException", 400, id="secret-not-found"),
    ],
)
def test_config_error_when_a_named_resource_does_not_exist(code: str, status: int) -> None:
    translated = translate_aws_error(client_error(code, status), ACTION)

    assert type(translated) is ConfigError
    assert translated.exit_code == 1
    assert str(translated) == f"{ACTION}: not found ({code})"
    assert AWS_MESSAGE not in str(translated)


def test_aws_api_error_is_named_by_type_when_exception_has_no_code() -> None:
    translated = translate_aws_error(RuntimeError("boom"), ACTION)

    assert type(translated) is AwsApiError
    assert translated.code == ""
    assert translated.transient is False
    assert str(translated) == f"{ACTION}: AWS error RuntimeError"


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(ConfigError("bad"), id="config"),
        pytest.param(PermissionDeniedError("not yours"), id="permission"),
        pytest.param(SafetyRefusal("max_deletions", 2, 1), id="safety"),
    ],
)
def test_project_error_passes_through_unchanged_when_already_translated(
    error: HousekeepingError,
) -> None:
    assert translate_aws_error(error, ACTION) is error


# --- is_transient ---------------------------------------------------------------------------------


@pytest.mark.parametrize("exc", aws_errors.TRANSIENT)
def test_is_transient_is_true_when_error_is_throttling_5xx_or_network(exc: BaseException) -> None:
    assert is_transient(exc) is True


@pytest.mark.parametrize("exc", aws_errors.PERMANENT)
def test_is_transient_is_false_when_error_will_not_clear_by_itself(exc: BaseException) -> None:
    assert is_transient(exc) is False


@pytest.mark.parametrize("code", sorted(TRANSIENT_ERROR_CODES))
def test_is_transient_is_true_when_code_is_listed_even_with_a_4xx_status(code: str) -> None:
    assert is_transient(aws_errors.client_error(code, 400)) is True


# --- the task boundary ---------------------------------------------------------------------------


def test_boundary_names_operation_and_resource_when_a_client_error_leaves_it() -> None:
    with pytest.raises(PermissionDeniedError) as caught, translated_aws_errors("bucket 'b'"):
        raise client_error("AccessDenied", 403, operation="ListObjectsV2")

    assert str(caught.value) == "ListObjectsV2 on bucket 'b': permission denied (AccessDenied)"
    # The ClientError (its message can quote ARNs and policies) is neither cause nor context.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True


def test_boundary_names_the_resource_when_the_endpoint_is_unreachable() -> None:
    with pytest.raises(NetworkError) as caught, translated_aws_errors("secret 's'"):
        raise EndpointConnectionError(endpoint_url=ENDPOINT)

    assert str(caught.value).startswith(f"secret 's': endpoint {ENDPOINT} unreachable")


def test_boundary_lets_project_and_other_errors_through_when_raised_inside() -> None:
    refusal = SafetyRefusal("max_deletions", 2, 1)
    with pytest.raises(SafetyRefusal) as caught, translated_aws_errors("bucket 'b'"):
        raise refusal
    assert caught.value is refusal
    with pytest.raises(KeyError), translated_aws_errors("bucket 'b'"):
        raise KeyError("not an AWS error")


def test_boundary_translates_the_error_inside_a_failed_upload_when_boto3_wraps_it() -> None:
    from boto3.exceptions import S3UploadFailedError

    with pytest.raises(PermissionDeniedError) as caught, translated_aws_errors("plan 's3://p/k'"):
        try:
            raise client_error("AccessDenied", 403, operation="PutObject")
        except ClientError:
            # boto3's upload_file raises this, naming the local file, from the ClientError.
            raise S3UploadFailedError("Failed to upload /a/local/path to p/k: ...") from None

    assert str(caught.value) == "PutObject on plan 's3://p/k': permission denied (AccessDenied)"
    assert "/a/local/path" not in str(caught.value)


@pytest.mark.parametrize(
    "error",
    [
        ConfigError("bad input", ["first problem", "second problem"]),
        SafetyRefusal("plan_digest", 0, 0, reason="the plan changed"),
        PartialFailure(3, 10),
        AwsApiError("boom", code="InternalError", transient=True),
        BucketLocked("a-bucket", Lease("run-1", "tmp/", "2026-01-01T00:00:00Z", 600), 5),
        LockLost("a-bucket", "another run took it over"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_comes_back_whole_when_pickled_as_a_dask_worker_sends_it(
    error: HousekeepingError,
) -> None:
    again = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes

    assert type(again) is type(error)
    assert str(again) == str(error)
    assert again.exit_code == error.exit_code
    assert again.__dict__ == error.__dict__


class TestShownText:
    @pytest.mark.parametrize(
        ("text", "shown"),
        [
            pytest.param("tmp/\ud800", "tmp/\\ud800", id="lone-surrogate"),
            pytest.param("a\nb\x00", "a\\u000ab\\u0000", id="controls"),
            pytest.param("admin\u202egpj.exe", "admin\\u202egpj.exe", id="bidi-override"),
            pytest.param("tag\U000e0041", "tag\\U000e0041", id="invisible-above-ffff"),
        ],
    )
    def test_escapes_what_would_not_print_when_shown(self, text: str, shown: str) -> None:
        assert shown_text(text) == shown
        shown_text(text).encode("utf-8")

    def test_keeps_printable_text_as_written_when_shown(self) -> None:
        assert (
            shown_text("Données/日本/émoji 🧹 and a space") == "Données/日本/émoji 🧹 and a space"
        )
