"""AWS errors as botocore raises them, transient and not: the vectors of the retry tests."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from tasks.errors import (
    AwsApiError,
    ConfigError,
    CredentialsError,
    NetworkError,
    PermissionDeniedError,
)

ENDPOINT = "https://example.invalid"


def client_error(code: str, status: int | None = 400) -> ClientError:
    """A ClientError as botocore raises it; status None leaves out the response metadata."""
    response: Any = {"Error": {"Code": code, "Message": "fake"}}
    if status is not None:
        response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, "DeleteObjects")


TRANSIENT = [
    pytest.param(client_error("Throttling"), id="throttling"),
    pytest.param(client_error("ThrottlingException"), id="throttling-exception"),
    pytest.param(client_error("SlowDown", 503), id="s3-slow-down"),
    pytest.param(client_error("RequestLimitExceeded"), id="request-limit-exceeded"),
    pytest.param(client_error("TooManyRequestsException", 429), id="too-many-requests"),
    pytest.param(client_error("RequestThrottledException"), id="request-throttled"),
    pytest.param(client_error("ProvisionedThroughputExceededException"), id="throughput"),
    pytest.param(client_error("RequestTimeout"), id="s3-request-timeout"),
    pytest.param(client_error("InternalError", 500), id="internal-error"),
    pytest.param(client_error("ServiceUnavailable", 503), id="service-unavailable"),
    pytest.param(client_error("SlowDown", None), id="code-without-status"),
    pytest.param(client_error("SomethingNew", 500), id="unknown-code-500"),
    pytest.param(client_error("SomethingNew", 502), id="unknown-code-502"),
    pytest.param(client_error("SomethingNew", 503), id="unknown-code-503"),
    pytest.param(client_error("SomethingNew", 504), id="unknown-code-504"),
    pytest.param(EndpointConnectionError(endpoint_url=ENDPOINT), id="endpoint-connection"),
    pytest.param(ReadTimeoutError(endpoint_url=ENDPOINT), id="read-timeout"),
    pytest.param(ConnectTimeoutError(endpoint_url=ENDPOINT), id="connect-timeout"),
    pytest.param(ConnectionClosedError(endpoint_url=ENDPOINT), id="connection-closed"),
    pytest.param(NetworkError("unreachable"), id="network-error"),
    pytest.param(AwsApiError("slow", code="SlowDown", transient=True), id="transient-api-error"),
]

PERMANENT = [
    pytest.param(client_error("AccessDenied", 403), id="access-denied"),
    pytest.param(client_error("NoSuchBucket", 404), id="no-such-bucket"),
    pytest.param(client_error("ValidationError", 400), id="validation-error"),
    pytest.param(client_error("ResourceNotFoundException", 400), id="resource-not-found"),
    pytest.param(client_error("PreconditionFailed", 412), id="precondition-failed"),
    pytest.param(client_error("SomethingNew", None), id="unknown-code-without-status"),
    pytest.param(NoCredentialsError(), id="no-credentials"),
    pytest.param(ConfigError("bad configuration"), id="config-error"),
    pytest.param(CredentialsError("expired"), id="credentials-error"),
    pytest.param(PermissionDeniedError("denied"), id="permission-error"),
    pytest.param(AwsApiError("gone", code="NoSuchBucket"), id="permanent-api-error"),
    pytest.param(ValueError("not an AWS error"), id="value-error"),
]
