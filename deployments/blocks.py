"""The AWS credentials blocks the deployments name, created or updated from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

BlockAction = Literal["created", "updated", "unchanged", "kept"]

#: AwsCredentials field -> the environment variable it comes from. A variable suffixed with the
#: environment (AWS_PROFILE_PROD) wins over the plain one for that environment's block.
FIELD_ENV_VARS: dict[str, str] = {
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "aws_session_token": "AWS_SESSION_TOKEN",
    "profile_name": "AWS_PROFILE",
    "region_name": "AWS_DEFAULT_REGION",
}
ENDPOINT_ENV_VAR = "AWS_ENDPOINT_URL"


def block_settings(environment: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The block's fields for one environment from the environment variables (blank is unset).

    With none of them set the block holds no key: the worker's default AWS chain (its instance,
    task or pod role) signs the requests, which is what production should use.
    """
    suffix = f"_{environment.upper()}"
    settings: dict[str, str] = {}
    for field, env_var in (*FIELD_ENV_VARS.items(), ("endpoint_url", ENDPOINT_ENV_VAR)):
        value = (environ.get(env_var + suffix) or environ.get(env_var) or "").strip()
        if value:
            settings[field] = value
    return settings


def build_block(settings: Mapping[str, str]) -> Any:
    """An unsaved AwsCredentials block holding these settings."""
    from prefect_aws import AwsCredentials
    from prefect_aws.client_parameters import AwsClientParameters

    fields = {name: value for name, value in settings.items() if name in FIELD_ENV_VARS}
    endpoint_url = settings.get("endpoint_url")
    return AwsCredentials(
        **fields, aws_client_parameters=AwsClientParameters(endpoint_url=endpoint_url)
    )


def fingerprint(block: Any) -> dict[str, Any]:
    """What makes two blocks equal, secrets included; compared in memory, never shown."""
    values = {name: getattr(block, name) for name in FIELD_ENV_VARS}
    secret = values.pop("aws_secret_access_key")
    values["aws_secret_access_key"] = secret.get_secret_value() if secret is not None else None
    values["endpoint_url"] = block.aws_client_parameters.endpoint_url
    return values


def apply_block(name: str, settings: Mapping[str, str], overwrite: bool = True) -> BlockAction:
    """Create the block, or bring an existing one to these settings (idempotent).

    Args:
        name: the block document's name.
        settings: from block_settings.
        overwrite: False leaves an existing block as it is (a team's server: its blocks are
            managed there), True makes it match the settings.
    """
    from prefect_aws import AwsCredentials

    wanted = build_block(settings)
    try:
        existing = AwsCredentials.load(name)
    except ValueError:  # no such block document
        wanted.save(name)
        return "created"
    if not overwrite:
        return "kept"
    if fingerprint(existing) == fingerprint(wanted):
        return "unchanged"
    wanted.save(name, overwrite=True)
    return "updated"


def describe(settings: Mapping[str, str]) -> str:
    """Which kind of credentials a block holds, for a person; never a value of a secret."""
    if "aws_access_key_id" in settings:
        kind = "access keys from the environment"
    elif "profile_name" in settings:
        kind = f"profile {settings['profile_name']}"
    else:
        kind = "the worker's default AWS chain (role)"
    endpoint = settings.get("endpoint_url")
    return kind + (f", endpoint {endpoint}" if endpoint else "")
