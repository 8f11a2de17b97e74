"""What a command checks before anything starts: its target, its settings and its AWS profile,
so that a usage or configuration error answers at once, before any Prefect API is found or
started."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager

from deployments.local_aws import patched_environ
from tasks.errors import profile_not_found
from tasks.s3.uris import S3Uri, is_s3_uri, parse_s3_uri
from tasks.settings import environment_variables, operator_chosen

#: The AWS CLI's options, given to the run as the AWS SDK's own environment variables.
#: --endpoint-url is the S3 service's endpoint only, as it is for `aws s3`: Secrets Manager
#: and STS keep theirs.
AWS_CLI_OPTIONS = {"endpoint_url": "AWS_ENDPOINT_URL_S3", "profile": "AWS_PROFILE"}


def s3_target(text: str) -> S3Uri:
    """argparse type of the positional target: s3://BUCKET/PREFIX."""
    if not is_s3_uri(text):
        raise argparse.ArgumentTypeError("must be an s3://BUCKET/PREFIX address")
    return parse_s3_uri(text)


def take_target(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """The positional s3://BUCKET/PREFIX as --bucket and --prefix; both ways at once is a
    usage error (which would win is not for the command to guess)."""
    target: S3Uri | None = getattr(args, "target", None)
    if target is None:
        return
    if args.bucket is not None or args.prefix is not None:
        parser.error("give the target as s3://BUCKET/PREFIX or as --bucket and --prefix, not both")
    args.bucket, args.prefix = target.bucket, target.key


@contextmanager
def given_environment(args: argparse.Namespace) -> Iterator[None]:
    """This process's environment, for the length of the command, with what the command line
    gives the run through it: the settings the operator chooses (`--dask-address`: the
    command's user is its own operator, and gives them to the run as a work pool gives a
    worker's runs theirs), and the AWS CLI's --endpoint-url and --profile."""
    given = {
        environment_variables(name)[0]: str(value)
        for name in operator_chosen()
        if (value := getattr(args, name, None)) is not None
    }
    given |= {
        variable: str(value)
        for name, variable in AWS_CLI_OPTIONS.items()
        if (value := getattr(args, name, None)) is not None
    }
    with patched_environ(given):
        yield


def profile_region(uses_a_block: bool) -> str | None:
    """Check the AWS profile the run names (--profile, or AWS_PROFILE) is in the AWS config
    files, and return its region, if it gives one. Reads those files only; no request.

    Args:
        uses_a_block: the run's credentials come from a credentials block, not the profile.

    Raises:
        CredentialsError: the profile is in no config file (exit 2).
    """
    name = os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE")
    if not name or uses_a_block:
        return None
    import botocore.session  # only when a profile is named

    session = botocore.session.Session()
    if name not in session.available_profiles:
        raise profile_not_found(name)
    region = session.get_config_variable("region")
    return str(region) if region else None
