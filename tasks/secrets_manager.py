"""Fetch the run's JSON secret from AWS Secrets Manager without ever exposing its values."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError
from prefect import task
from pydantic import SecretStr

from tasks.aws_names import ACCOUNT_ID
from tasks.errors import ConfigError, error_code, translated_aws_errors
from tasks.retry import aws_task_options

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

logger = logging.getLogger(__name__)

#: Keys the flow itself understands; any other key is carried along for later steps.
KMS_KEY_ID = "kms_key_id"
EXPECTED_BUCKET_OWNER = "expected_bucket_owner"
_NOT_JSON = object()


@dataclass(frozen=True, repr=False)
class RunSecret:
    """A secret's values as SecretStr; its repr and str name the secret and keys only."""

    name: str
    values: Mapping[str, SecretStr]

    def __repr__(self) -> str:
        return f"RunSecret(name={self.name!r}, keys={sorted(self.values)!r})"

    __str__ = __repr__

    def get(self, key: str) -> SecretStr | None:
        """The value under `key`, still wrapped, or None."""
        return self.values.get(key)

    @property
    def kms_key_id(self) -> str | None:
        """The KMS key for the bucket's default encryption, when the secret names one."""
        value = self.values.get(KMS_KEY_ID)
        return value.get_secret_value() if value else None

    @property
    def expected_bucket_owner(self) -> str | None:
        """The account that must own the bucket, when the secret names one."""
        value = self.values.get(EXPECTED_BUCKET_OWNER)
        return value.get_secret_value() if value else None


def read_secret(
    client: SecretsManagerClient, secret_id: str, required_keys: Iterable[str] = ()
) -> RunSecret:
    """Read a JSON object secret and check it has the keys the run needs.

    Args:
        client: a Secrets Manager client from the factory in tasks/aws.py.
        secret_id: the secret's name or ARN (logged; it is not secret).
        required_keys: keys that must be present with a non-empty value.

    Raises:
        ConfigError: the secret is missing, not a JSON object, or lacks a required key;
            the message names the secret and keys, never a value.
        botocore.exceptions.ClientError, BotoCoreError: any other failure of the call (the
            task translates them).
    """
    logger.info("Reading secret %s", secret_id, extra={"secret_name": secret_id})
    try:
        response = client.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = error_code(exc)
        if code == "ResourceNotFoundException":
            raise ConfigError(f"secret '{secret_id}' was not found") from None
        if code == "InvalidRequestException":  # e.g. scheduled for deletion
            raise ConfigError(f"secret '{secret_id}' cannot be read ({code})") from None
        raise
    secret = parse_secret(secret_id, response.get("SecretString"), required_keys)
    logger.info("Read secret %s with %d keys", secret_id, len(secret.values))
    return secret


def parse_secret(secret_id: str, text: str | None, required_keys: Iterable[str] = ()) -> RunSecret:
    """Turn the SecretString into a RunSecret; every error names keys, never values."""
    if text is None:
        raise ConfigError(f"secret '{secret_id}' holds binary data, not a JSON object")
    document: object = _NOT_JSON
    # The decode error holds the whole text: raise outside the handler so it is not kept as
    # the ConfigError's context.
    with contextlib.suppress(ValueError):
        document = json.loads(text)
    if document is _NOT_JSON:
        raise ConfigError(f"secret '{secret_id}' is not valid JSON")
    if not isinstance(document, dict):
        raise ConfigError(f"secret '{secret_id}' must hold a JSON object")
    values = {
        str(key): SecretStr(value if isinstance(value, str) else json.dumps(value))
        for key, value in document.items()
    }
    problems = [
        f"key '{key}' is missing or empty" for key in required_keys if not document.get(key)
    ]
    owner = values.get(EXPECTED_BUCKET_OWNER)
    if owner is not None and not ACCOUNT_ID.fullmatch(owner.get_secret_value()):
        problems.append(f"key '{EXPECTED_BUCKET_OWNER}' must be a 12-digit AWS account ID")
    if KMS_KEY_ID in values and not values[KMS_KEY_ID].get_secret_value().strip():
        problems.append(f"key '{KMS_KEY_ID}' must not be empty")
    if problems:
        raise ConfigError(f"secret '{secret_id}' is not usable", problems)
    return RunSecret(name=secret_id, values=values)


def expected_owner(parameter: str | None, secret: RunSecret | None) -> str | None:
    """The account that must own the bucket: from the parameter or the secret, which must agree.

    Raises:
        ConfigError: the two name different accounts.
    """
    from_secret = secret.expected_bucket_owner if secret else None
    if parameter and from_secret and parameter != from_secret:
        raise ConfigError(
            "expected_bucket_owner: the parameter and the secret name different accounts"
        )
    return parameter or from_secret


@task(name="fetch-secret", persist_result=False, **aws_task_options())
def fetch_secret(
    client: SecretsManagerClient, secret_id: str, required_keys: tuple[str, ...] = ()
) -> RunSecret:
    """Read the run's JSON secret (read-only; changes nothing in AWS). Never persisted."""
    with translated_aws_errors(f"secret '{secret_id}'"):
        return read_secret(client, secret_id, required_keys)
