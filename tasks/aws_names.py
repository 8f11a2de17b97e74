"""What AWS accepts as a name: buckets, key prefixes, regions, account IDs, and role, secret and
topic ARNs. Each check returns its problems (empty when valid) and never repeats the value."""

from __future__ import annotations

import json
import re
import unicodedata
from functools import cache
from pathlib import Path

import botocore

BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
BUCKET_CHARACTERS = re.compile(r"[a-z0-9.-]+")
PREFIX_MAX_BYTES = 1024
ACCOUNT_ID = re.compile(r"[0-9]{12}")
BLOCK_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
SECRET_ARN = re.compile(
    r"arn:[a-z-]+:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}"
)
IAM_NAME = r"[A-Za-z0-9_+=,.@-]"
#: The shape of an SNS topic ARN, for the UI's form (sns_topic_problems checks the rest).
SNS_TOPIC_ARN_PATTERN = r"^arn:[a-z-]+:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$"
# Control characters (C0, DEL, C1) cannot all travel in DeleteObjects' XML body, in a key
# or an SNS subject, and never belong in a prefix.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Anything shaped like an IPv4 address, leading zeros and out-of-range numbers included.
IPV4_SHAPED = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
REGION_CHARACTERS = re.compile(r"[a-z0-9-]+")


@cache
def aws_partitions() -> dict[str, re.Pattern[str]]:
    """Partition name -> region pattern, from the endpoint data botocore ships."""
    data_file = Path(botocore.__file__).parent / "data" / "partitions.json"
    partitions = json.loads(data_file.read_text())["partitions"]
    # ASCII: botocore's patterns use \w, which Python would otherwise read as any letter.
    return {p["id"]: re.compile(p["regionRegex"], re.ASCII) for p in partitions}


def partition_of_region(region: str) -> str | None:
    """The AWS partition whose region pattern matches, or None."""
    if not REGION_CHARACTERS.fullmatch(region):
        return None
    for partition, pattern in aws_partitions().items():
        if pattern.fullmatch(region):
            return partition
    return None


def bucket_name_problems(name: str) -> list[str]:
    """Every S3 general-purpose bucket naming rule the name breaks."""
    problems = []
    if not 3 <= len(name) <= 63:
        problems.append("must be 3 to 63 characters long")
    if not BUCKET_CHARACTERS.fullmatch(name):
        problems.append("may hold only lowercase letters, digits, dots and hyphens")
    if name and not (name[0].isalnum() and name[-1].isalnum()):
        problems.append("must start and end with a letter or digit")
    if ".." in name:
        problems.append("must not contain two adjacent dots")
    if ".-" in name or "-." in name:
        # Each dot-separated label is a DNS label, which starts and ends with a letter or digit.
        problems.append("must not have a dot next to a hyphen")
    if IPV4_SHAPED.fullmatch(name):
        problems.append("must not be formatted as an IP address")
    problems += [
        f"must not start with '{p}'" for p in BUCKET_RESERVED_PREFIXES if name.startswith(p)
    ]
    problems += [f"must not end with '{s}'" for s in BUCKET_RESERVED_SUFFIXES if name.endswith(s)]
    return problems


def prefix_problems(prefix: str) -> list[str]:
    """Every rule a cleanup prefix breaks."""
    problems = []
    if not prefix:
        problems.append("must not be empty (an empty prefix is the whole bucket)")
    if any(unicodedata.category(character) == "Cs" for character in prefix):
        # A command line's bytes that are not UTF-8 arrive as lone surrogates (surrogateescape);
        # no S3 key can hold them.
        problems.append("must be UTF-8 text (it holds bytes that are not UTF-8)")
    if len(prefix.encode("utf-8", "surrogatepass")) > PREFIX_MAX_BYTES:
        problems.append(f"must be at most {PREFIX_MAX_BYTES} bytes in UTF-8")
    if prefix.startswith("/"):
        problems.append("must not start with '/' (S3 keys have no leading slash)")
    if ".." in prefix.split("/"):
        problems.append("must not contain a '..' segment")
    if CONTROL_CHARACTERS.search(prefix):
        problems.append("must not contain control characters")
    if any(unicodedata.category(character) == "Cf" for character in prefix):
        # Bidirectional controls and other invisible characters make a prefix read as another.
        problems.append("must not contain invisible format characters (e.g. bidi controls)")
    return problems


def region_problems(region: str) -> list[str]:
    if partition_of_region(region) is None:
        return ["is not a region name of any AWS partition (e.g. us-east-1)"]
    return []


def role_arn_problems(arn: str, region: str | None = None) -> list[str]:
    """An IAM role ARN: arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME, in the region's partition
    when the region is known."""
    partitions = "|".join(re.escape(p) for p in aws_partitions())
    role = rf"arn:({partitions}):iam::[0-9]{{12}}:role/(?:{IAM_NAME}+/)*{IAM_NAME}{{1,64}}"
    if not re.fullmatch(role, arn):
        return ["must be an IAM role ARN: arn:PARTITION:iam::ACCOUNT:role/NAME"]
    region_partition = partition_of_region(region) if region else None
    if region_partition is not None and arn.split(":")[1] != region_partition:
        return ["its partition does not match the region's partition"]
    return []


def secret_name_problems(name: str) -> list[str]:
    if SECRET_NAME.fullmatch(name) or SECRET_ARN.fullmatch(name):
        return []
    return ["must be a secret name (1-512 of letters, digits and /_+=.@-) or a secret ARN"]


def sns_topic_problems(arn: str) -> list[str]:
    """Why this is not an SNS topic ARN: arn:PARTITION:sns:REGION:ACCOUNT:NAME, the region in the
    ARN's partition, a name of 1-256 letters, digits, - and _ (a FIFO topic's ending in .fifo)."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sns":
        return ["must be an SNS topic ARN: arn:PARTITION:sns:REGION:ACCOUNT:TOPIC"]
    _, partition, _, region, account, name = parts
    problems = []
    if partition not in aws_partitions() or partition_of_region(region) != partition:
        problems.append("names a region that is not in the ARN's AWS partition")
    if not ACCOUNT_ID.fullmatch(account):
        problems.append("must hold a 12-digit account ID")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}(\.fifo)?", name) or len(name) > 256:
        problems.append("must end with a topic name of 1-256 letters, digits, '-' and '_'")
    return problems
