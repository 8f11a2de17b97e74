"""Hypothesis strategies for run settings: values the rules accept, and values that break exactly
one rule each. The rules are written here from AWS's documentation (and the bounds from the
settings page, docs/reference/settings.md), not read from tasks/aws_names.py, so a property test
compares two independent accounts.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import botocore.loaders
from hypothesis import assume
from hypothesis import strategies as st

ACCOUNT = "123456789012"
#: The settings every generated configuration starts from (valid, and unrelated to the value).
BASE = {"bucket": "example-bucket", "prefix": "logs/"}

LOWER_ALNUM = string.ascii_lowercase + string.digits
#: AWS's reserved bucket-name prefixes and suffixes (S3 user guide, "Bucket naming rules").
RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


@dataclass(frozen=True)
class Broken:
    """A configuration whose `setting` breaks one rule; `says` is a fragment of that rule's
    message ("" when only the field must be named). `given` holds every setting passed, the
    broken one and any it is judged with (bucket and prefix for a manifest location)."""

    setting: str
    given: dict[str, Any]
    says: str = ""

    @property
    def value(self) -> Any:
        return self.given[self.setting]


def broken(setting: str, says: str = "") -> Callable[[Any], Broken]:
    """A function from an invalid value of `setting` to its Broken configuration."""
    return lambda value: Broken(setting, {**BASE, setting: value}, says)


# --- buckets -------------------------------------------------------------------------------------

#: What a bucket name must not be, by a fragment of the message that says so.
BUCKET_RULES: dict[str, Callable[[str], bool]] = {
    "3 to 63 characters": lambda name: not 3 <= len(name) <= 63,
    "only lowercase letters, digits, dots and hyphens": lambda name: (
        not name or any(c not in LOWER_ALNUM + ".-" for c in name)
    ),
    "start and end with a letter or digit": lambda name: (
        bool(name) and (name[0] in ".-" or name[-1] in ".-")
    ),
    "two adjacent dots": lambda name: ".." in name,
    # Each dot-separated label is a DNS label: it starts and ends with a letter or digit.
    "dot next to a hyphen": lambda name: ".-" in name or "-." in name,
    "IP address": lambda name: bool(re.fullmatch(r"[0-9]+(\.[0-9]+){3}", name)),
    **{f"start with '{p}'": (lambda name, p=p: name.startswith(p)) for p in RESERVED_PREFIXES},
    **{f"end with '{s}'": (lambda name, s=s: name.endswith(s)) for s in RESERVED_SUFFIXES},
}


def bucket_rules_broken(name: str) -> list[str]:
    return [rule for rule, breaks in BUCKET_RULES.items() if breaks(name)]


def _bucket_label() -> st.SearchStrategy[str]:
    """A DNS label: letters and digits, with hyphens inside only."""
    end = st.sampled_from(LOWER_ALNUM)
    inside = st.text(alphabet=LOWER_ALNUM + "-", max_size=18)
    return end | st.tuples(end, inside, end).map("".join)


def valid_buckets(max_size: int = 63) -> st.SearchStrategy[str]:
    names = st.lists(_bucket_label(), min_size=1, max_size=4).map(".".join)
    return names.filter(lambda name: len(name) <= max_size and not bucket_rules_broken(name))


def _insert(text: str, position: int, inserted: str) -> str:
    return text[:position] + inserted + text[position:]


@st.composite
def _inside(draw: st.DrawFn, name: str, inserted: st.SearchStrategy[str]) -> str:
    """`name` with something inserted strictly inside it (its ends stay as they are)."""
    return _insert(name, draw(st.integers(1, len(name) - 1)), draw(inserted))


@st.composite
def _uppercased(draw: st.DrawFn, name: str) -> str:
    letters = [i for i, c in enumerate(name) if c.isalpha()]
    if not letters:
        return name.upper() + "A"  # no letter to raise: add one (still one broken rule)
    i = draw(st.sampled_from(letters))
    return name[:i] + name[i].upper() + name[i + 1 :]


def _bucket_candidates() -> dict[str, st.SearchStrategy[str]]:
    """For each rule, names made to break it (filtered below to those breaking only it)."""
    base = valid_buckets(max_size=50)
    not_a_bucket_character = st.characters(
        exclude_characters=LOWER_ALNUM + ".-", exclude_categories=("Cs",)
    )
    pairs = st.tuples(base, base)
    return {
        "3 to 63 characters": st.text(LOWER_ALNUM, min_size=1, max_size=2)
        | st.tuples(base, st.integers(64, 100)).map(lambda b: b[0] + "a" * (b[1] - len(b[0]))),
        "only lowercase letters, digits, dots and hyphens": base.flatmap(
            lambda name: _inside(name, not_a_bucket_character) | _uppercased(name)
        ),
        "start and end with a letter or digit": st.tuples(
            base, st.sampled_from(["-", "."]), st.booleans()
        ).map(lambda b: b[1] + b[0] if b[2] else b[0] + b[1]),
        "two adjacent dots": pairs.map("..".join),
        "dot next to a hyphen": st.tuples(base, st.sampled_from([".-", "-."]), base).map(
            lambda b: b[0] + b[1] + b[2]
        ),
        "IP address": st.lists(
            st.from_regex(r"[0-9]{1,4}", fullmatch=True), min_size=4, max_size=4
        ).map(".".join),
        **{f"start with '{p}'": base.map(lambda name, p=p: p + name) for p in RESERVED_PREFIXES},
        **{f"end with '{s}'": base.map(lambda name, s=s: name + s) for s in RESERVED_SUFFIXES},
    }


def invalid_buckets() -> dict[str, st.SearchStrategy[str]]:
    """By rule, names that break exactly that one rule."""
    return {
        rule: candidates.filter(lambda name, rule=rule: bucket_rules_broken(name) == [rule])
        for rule, candidates in _bucket_candidates().items()
    }


# --- prefixes ------------------------------------------------------------------------------------

PREFIX_MAX_BYTES = 1024


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _category(character: str) -> str:
    return unicodedata.category(character)


#: What a cleanup prefix must not be, by a fragment of the message that says so.
PREFIX_RULES: dict[str, Callable[[str], bool]] = {
    "must not be empty": lambda prefix: not prefix,
    f"at most {PREFIX_MAX_BYTES} bytes": lambda prefix: _utf8_size(prefix) > PREFIX_MAX_BYTES,
    "must not start with '/'": lambda prefix: prefix.startswith("/"),
    "'..' segment": lambda prefix: ".." in prefix.split("/"),
    "control characters": lambda prefix: any(_category(c) == "Cc" for c in prefix),
    "format characters": lambda prefix: any(_category(c) == "Cf" for c in prefix),
    # A command line's bytes that are not UTF-8 arrive as lone surrogates (surrogateescape).
    "bytes that are not UTF-8": lambda prefix: any(_category(c) == "Cs" for c in prefix),
}


def prefix_rules_broken(prefix: str) -> list[str]:
    return [rule for rule, breaks in PREFIX_RULES.items() if breaks(prefix)]


#: Any character a key may hold: no control, format or surrogate characters, and not "/".
KEY_CHARACTER = st.characters(exclude_categories=("Cc", "Cf", "Cs"), exclude_characters="/")


def valid_prefixes(max_size: int = 8) -> st.SearchStrategy[str]:
    """Key prefixes such as "logs/", "tmp" or "a/b/c.d/"."""
    segment = st.text(KEY_CHARACTER, min_size=1, max_size=12).filter(lambda s: s != "..")
    return st.tuples(st.lists(segment, min_size=1, max_size=max_size), st.booleans()).map(
        lambda p: "/".join(p[0]) + ("/" if p[1] else "")
    )


def _prefix_candidates() -> dict[str, st.SearchStrategy[str]]:
    base = valid_prefixes()
    filler = st.characters(exclude_categories=("Cc", "Cf", "Cs"), exclude_characters="/.")
    return {
        "must not be empty": st.just(""),
        # From exactly 1025 bytes up, in one- to four-byte characters.
        f"at most {PREFIX_MAX_BYTES} bytes": st.tuples(base, filler, st.integers(0, 64)).map(
            lambda p: p[0] + p[1] * ((PREFIX_MAX_BYTES + 1 + p[2]) // _utf8_size(p[1]) + 1)
        ),
        "must not start with '/'": base.map(lambda prefix: "/" + prefix),
        "'..' segment": st.tuples(base, st.sampled_from(["..", "../", "/..", "/../"])).map(
            lambda p: (
                ("" if p[1].startswith("..") else p[0])
                + p[1]
                + ("" if p[1].endswith("..") else p[0])
            )
        ),
        "control characters": base.flatmap(
            lambda prefix: _anywhere(prefix, st.characters(categories=("Cc",)))
        ),
        "format characters": base.flatmap(
            lambda prefix: _anywhere(prefix, st.characters(categories=("Cf",)))
        ),
        "bytes that are not UTF-8": base.flatmap(
            lambda prefix: _anywhere(
                prefix, st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF)
            )
        ),
    }


@st.composite
def _anywhere(draw: st.DrawFn, text: str, inserted: st.SearchStrategy[str]) -> str:
    return _insert(text, draw(st.integers(0, len(text))), draw(inserted))


def invalid_prefixes() -> dict[str, st.SearchStrategy[str]]:
    """By rule, prefixes that break exactly that one rule."""
    return {
        rule: candidates.filter(lambda prefix, rule=rule: prefix_rules_broken(prefix) == [rule])
        for rule, candidates in _prefix_candidates().items()
    }


# --- regions, account IDs and ARNs ---------------------------------------------------------------


def _regions_by_partition() -> dict[str, list[str]]:
    """The regions botocore's endpoint data names, by partition (not the partition-wide
    pseudo-regions such as aws-global)."""
    data = botocore.loaders.create_loader().load_data("partitions")
    return {
        p["id"]: sorted(r for r in p["regions"] if re.fullmatch(r"[a-z]+(-[a-z]+)+-[0-9]+", r))
        for p in data["partitions"]
    }


REGIONS = _regions_by_partition()
PARTITIONS = sorted(p for p, regions in REGIONS.items() if regions)
NOT_PARTITIONS = ("", "AWS", "aws-mars", "amazon", "aws cn", "aws-")


def regions(partition: str | None = None) -> st.SearchStrategy[str]:
    if partition is not None:
        return st.sampled_from(REGIONS[partition])
    return st.sampled_from(PARTITIONS).flatmap(regions)


def partition_of(region: str) -> str:
    return next(p for p, names in REGIONS.items() if region in names)


@st.composite
def invalid_regions(draw: st.DrawFn) -> str:
    """Not a region name: misspelt in case or characters, cut short, padded, or with a first
    word that names no area (AWS's are letters only)."""
    region = draw(regions())
    first, rest = region.split("-", 1)
    return draw(
        st.sampled_from(
            [
                region.upper(),
                region.replace("-", "_", 1),
                region.rstrip(string.digits),
                f" {region}",
                f"{region}\n",
                "",
            ]
        )
        | st.from_regex(r"[a-z]{1,3}[0-9][a-z0-9]{0,3}", fullmatch=True).map(
            lambda word: f"{word}-{rest}"
        )
        | st.characters(min_codepoint=0x80, categories=("Ll",)).map(
            lambda letter: f"{first}-{letter}{rest}"
        )
    )


def valid_accounts() -> st.SearchStrategy[str]:
    return st.text(string.digits, min_size=12, max_size=12)


def invalid_accounts() -> st.SearchStrategy[str]:
    """Not twelve ASCII digits: too few or too many, a letter, a space or another script's
    digit among them, or padded."""
    # Not ":" either, which would cut an ARN into other parts.
    other_character = st.characters(
        exclude_characters=string.digits + ":", exclude_categories=("Cs",)
    )
    return st.one_of(
        st.text(string.digits, max_size=24).filter(lambda digits: len(digits) != 12),
        st.tuples(valid_accounts(), st.integers(0, 11), other_character).map(
            lambda a: a[0][: a[1]] + a[2] + a[0][a[1] + 1 :]
        ),
        valid_accounts().map(lambda digits: f" {digits}"),
    )


IAM_NAME_CHARACTERS = string.ascii_letters + string.digits + "_+=,.@-"


def role_names(min_size: int = 1, max_size: int = 64) -> st.SearchStrategy[str]:
    return st.text(IAM_NAME_CHARACTERS, min_size=min_size, max_size=max_size)


def role_arn(partition: str, account: str, name: str, path: str = "") -> str:
    return f"arn:{partition}:iam::{account}:role/{path}{name}"


def valid_role_arns(partition: str) -> st.SearchStrategy[str]:
    paths = st.lists(role_names(max_size=12), max_size=2).map(
        lambda parts: "".join(f"{part}/" for part in parts)
    )
    return st.builds(role_arn, st.just(partition), valid_accounts(), role_names(), paths)


def invalid_role_arns() -> dict[str, st.SearchStrategy[Broken]]:
    """A role ARN in the default region's partition (aws) with one part wrong, or a valid role
    of another partition than its region's."""
    shape = broken("role_arn", "IAM role ARN")
    bad_character = st.characters(
        exclude_characters=IAM_NAME_CHARACTERS + "/", exclude_categories=("Cs",)
    )
    bad_names = (
        st.just("")
        | role_names(65, 100)
        | role_names().flatmap(lambda name: _anywhere(name, bad_character))
    )
    misshapen = st.sampled_from(
        [
            f"arn:aws:iam::{ACCOUNT}:user/someone",
            f"arn:aws:sts::{ACCOUNT}:role/someone",
            f"arn:aws:iam:us-east-1:{ACCOUNT}:role/someone",
        ]
    )
    other_partition = st.sampled_from([p for p in PARTITIONS if p != "aws"])
    return {
        "role_arn partition": st.builds(
            role_arn, st.sampled_from(NOT_PARTITIONS), st.just(ACCOUNT), role_names()
        ).map(shape),
        "role_arn account": st.builds(
            role_arn, st.just("aws"), invalid_accounts(), role_names()
        ).map(shape),
        "role_arn name": st.builds(role_arn, st.just("aws"), st.just(ACCOUNT), bad_names).map(shape)
        | misshapen.map(shape),
        "role_arn partition of the region": st.tuples(
            regions("aws"), other_partition.flatmap(valid_role_arns)
        ).map(
            lambda pair: Broken(
                "role_arn", {**BASE, "region": pair[0], "role_arn": pair[1]}, "partition"
            )
        ),
    }


TOPIC_NAME_CHARACTERS = string.ascii_letters + string.digits + "_-"


def topic_arn(partition: str, region: str, account: str, name: str) -> str:
    return f"arn:{partition}:sns:{region}:{account}:{name}"


def topic_names() -> st.SearchStrategy[str]:
    """1-256 characters, a FIFO topic's ".fifo" included."""
    return st.text(TOPIC_NAME_CHARACTERS, min_size=1, max_size=256) | st.text(
        TOPIC_NAME_CHARACTERS, min_size=1, max_size=251
    ).map(lambda name: f"{name}.fifo")


@st.composite
def valid_topic_arns(draw: st.DrawFn) -> str:
    region = draw(regions())
    return topic_arn(partition_of(region), region, draw(valid_accounts()), draw(topic_names()))


def invalid_topic_arns() -> dict[str, st.SearchStrategy[Broken]]:
    """A topic ARN with one part wrong: partition (or a region outside it), account, name or
    shape."""
    bad_character = st.characters(
        exclude_characters=TOPIC_NAME_CHARACTERS + ":", exclude_categories=("Cs",)
    )
    bad_names = st.one_of(
        st.sampled_from(["", ".fifo", "a.FIFO", "a.fifo.fifo"]),
        st.text(TOPIC_NAME_CHARACTERS, min_size=257, max_size=300),
        st.text(TOPIC_NAME_CHARACTERS, min_size=252, max_size=260).map(lambda n: f"{n}.fifo"),
        topic_names().flatmap(lambda name: _anywhere(name, bad_character)),
    )
    aws_region = regions("aws")
    outside_aws = st.sampled_from([p for p in PARTITIONS if p != "aws"]).flatmap(regions)
    return {
        "notify_topic_arn partition": st.builds(
            topic_arn, st.sampled_from(NOT_PARTITIONS), aws_region, valid_accounts(), topic_names()
        ).map(broken("notify_topic_arn", "partition")),
        "notify_topic_arn region": st.builds(
            topic_arn,
            st.just("aws"),
            outside_aws | invalid_regions(),
            valid_accounts(),
            topic_names(),
        ).map(broken("notify_topic_arn", "partition")),
        "notify_topic_arn account": st.builds(
            topic_arn, st.just("aws"), aws_region, invalid_accounts(), topic_names()
        ).map(broken("notify_topic_arn", "12-digit account ID")),
        "notify_topic_arn name": st.builds(
            topic_arn, st.just("aws"), aws_region, valid_accounts(), bad_names
        ).map(broken("notify_topic_arn", "topic name")),
        "notify_topic_arn shape": st.sampled_from(
            [
                f"arn:aws:sqs:us-east-1:{ACCOUNT}:queue",
                f"arn:aws:sns:us-east-1:{ACCOUNT}",
                f"arn:aws:sns:us-east-1:{ACCOUNT}:topic:subscription",
                f"sns:us-east-1:{ACCOUNT}:topic",
            ]
        ).map(broken("notify_topic_arn", "SNS topic ARN")),
    }


# --- plan and manifest locations -----------------------------------------------------------------

#: A key under a location: any key characters, in segments.
location_keys = valid_prefixes(max_size=4)
local_paths = st.from_regex(r"[A-Za-z0-9_.-]{1,12}(/[A-Za-z0-9_.-]{1,12}){0,3}/?", fullmatch=True)


def plans_folder(location: str, bucket: str) -> str:
    """The key prefix under which a run of `bucket` keeps its plans at an s3:// location:
    LOCATION/BUCKET/ (tasks/s3/plan_store.py)."""
    key = location.removeprefix("s3://").partition("/")[2].rstrip("/")
    return "/".join(part for part in (key, bucket) if part) + "/"


def valid_manifest_locations() -> st.SearchStrategy[dict[str, Any]]:
    """A local directory, an s3:// location in another bucket, or in the cleaned bucket where
    the plans' folder and the cleaned prefix do not overlap."""

    def apart(given: dict[str, Any]) -> bool:
        folder = plans_folder(given["manifest_location"], given["bucket"])
        return not (folder.startswith(given["prefix"]) or given["prefix"].startswith(folder))

    same_bucket = st.builds(
        lambda bucket, prefix, key: {
            "bucket": bucket,
            "prefix": prefix,
            "manifest_location": f"s3://{bucket}/{key}",
        },
        valid_buckets(),
        valid_prefixes(),
        st.just("") | location_keys,
    ).filter(apart)
    elsewhere = st.builds(
        lambda location: {**BASE, "manifest_location": location},
        local_paths | st.builds("s3://{}/{}".format, valid_buckets(), st.just("") | location_keys),
    ).filter(lambda given: not given["manifest_location"].startswith("s3://example-bucket/"))
    return same_bucket | elsewhere


@st.composite
def manifests_under_the_prefix(draw: st.DrawFn) -> Broken:
    """A location in the cleaned bucket whose plans' folder the cleaned prefix covers in part:
    the prefix is a beginning of some plan's key there."""
    bucket = draw(valid_buckets())
    location = f"s3://{bucket}" + draw(st.sampled_from(["", "/"]) | location_keys.map("/{}".format))
    plan_key = plans_folder(location, bucket) + draw(st.text(KEY_CHARACTER, min_size=1))
    prefix = plan_key[: draw(st.integers(1, len(plan_key)))]
    assume(not prefix_rules_broken(prefix))  # a cut may end in "..": then the prefix is wrong
    given = {"bucket": bucket, "prefix": prefix, "manifest_location": location}
    return Broken("manifest_location", given, "under the prefix this run cleans")


def invalid_locations() -> dict[str, st.SearchStrategy[Broken]]:
    """A plan or manifest location with one thing wrong: a scheme other than a lowercase
    s3://, an invalid bucket, no key for a plan, blank, or plans under the cleaned prefix."""
    setting = st.sampled_from(["plan", "manifest_location"])
    other_scheme = st.from_regex(r"[A-Za-z][A-Za-z0-9+.-]{0,6}", fullmatch=True).filter(
        lambda s: s != "s3"
    ) | st.just("S3")
    bad_bucket = st.one_of(list(invalid_buckets().values())).filter(lambda name: "/" not in name)
    return {
        "location scheme": st.tuples(
            setting, other_scheme, st.sampled_from([":/", "://"]), valid_buckets()
        ).map(lambda t: broken(t[0], "lowercase")(f"{t[1]}{t[2]}{t[3]}/plans/p.jsonl.gz")),
        "location bucket": st.tuples(setting, bad_bucket).map(
            lambda t: broken(t[0], "invalid bucket")(f"s3://{t[1]}/plans/p.jsonl.gz")
        ),
        "plan without a key": st.tuples(valid_buckets(), st.sampled_from(["", "/", "//"])).map(
            lambda t: broken("plan", "plan's key")(f"s3://{t[0]}{t[1]}")
        ),
        "location blank": st.tuples(setting, st.sampled_from(["", " ", "\t", " \n "])).map(
            lambda t: broken(t[0], "local path")(t[1])
        ),
        "manifest_location under the prefix": manifests_under_the_prefix(),
    }


# --- numbers and as_of ---------------------------------------------------------------------------

#: Numeric settings: (values outside their bounds, values inside), as the settings page states them.
NUMBERS: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "older_than_days": (
        st.integers(max_value=0) | st.integers(min_value=36501),
        st.integers(1, 36500),
    ),
    "max_deletions": (st.integers(max_value=-1), st.integers(min_value=0)),
    "max_delete_bytes": (st.integers(max_value=-1), st.integers(min_value=0)),
    "max_delete_percent": (
        st.floats(max_value=0, exclude_max=True) | st.floats(min_value=100, exclude_min=True),
        st.floats(0, 100),
    ),
    "max_plan_age_hours": (
        st.floats(max_value=0) | st.floats(min_value=24 * 365, exclude_min=True),
        st.floats(0, 24 * 365, exclude_min=True),
    ),
    "approval_timeout_minutes": (
        st.integers(max_value=0) | st.integers(min_value=7 * 24 * 60 + 1),
        st.integers(1, 7 * 24 * 60),
    ),
}


def invalid_numbers() -> dict[str, st.SearchStrategy[Broken]]:
    """By setting: a number outside its bounds, NaN where fractions are allowed, or a boolean
    (which Python would otherwise read as 0 or 1)."""
    fractions = {"max_delete_percent", "max_plan_age_hours"}
    return {
        name: (outside | (st.just(float("nan")) if name in fractions else st.nothing())).map(
            broken(name)
        )
        | st.booleans().map(broken(name, "true/false"))
        for name, (outside, _) in NUMBERS.items()
    }


def valid_numbers() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={n: inside for n, (_, inside) in NUMBERS.items()})


#: The clock skew `as_of` may have (tasks/settings.py); a future one is drawn a minute beyond,
#: so that the time a test takes never brings it back within.
SKEW = timedelta(minutes=5)
#: No zone (read as UTC) or any whole-minute offset.
zones = st.none() | st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@st.composite
def future_as_of(draw: st.DrawFn) -> datetime:
    """A reference time more than the tolerated skew ahead of now, naive (read as UTC) or in
    any zone."""
    ahead = draw(
        st.timedeltas(min_value=SKEW + timedelta(minutes=1), max_value=timedelta(days=3650))
    )
    instant = datetime.now(UTC) + ahead
    zone = draw(zones)
    return instant.replace(tzinfo=None) if zone is None else instant.astimezone(zone)


@st.composite
def past_as_of(draw: st.DrawFn) -> datetime:
    """A reference time between 1900 and a minute ago, naive (read as UTC) or in any zone."""
    back = draw(
        st.timedeltas(
            min_value=timedelta(minutes=1),
            max_value=datetime.now(UTC) - datetime(1900, 1, 1, tzinfo=UTC),
        )
    )
    instant = datetime.now(UTC) - back
    zone = draw(zones)
    return instant.replace(tzinfo=None) if zone is None else instant.astimezone(zone)


# --- every setting -------------------------------------------------------------------------------


def invalid_settings() -> dict[str, st.SearchStrategy[Broken]]:
    """By setting and rule, configurations with exactly one invalid setting that breaks it."""
    return {
        **{
            f"bucket {rule}": names.map(broken("bucket", rule))
            for rule, names in invalid_buckets().items()
        },
        **{
            f"prefix {rule}": prefixes.map(broken("prefix", rule))
            for rule, prefixes in invalid_prefixes().items()
        },
        "region": invalid_regions().map(broken("region", "region name")),
        "expected_bucket_owner": invalid_accounts().map(
            broken("expected_bucket_owner", "12-digit")
        ),
        **invalid_role_arns(),
        **invalid_topic_arns(),
        **invalid_locations(),
        **invalid_numbers(),
        "as_of": future_as_of().map(broken("as_of", "future")),
    }


def invalid_configurations() -> st.SearchStrategy[Broken]:
    """A configuration with exactly one invalid setting, of any kind."""
    return st.one_of(list(invalid_settings().values()))
