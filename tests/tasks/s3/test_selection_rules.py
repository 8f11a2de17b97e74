"""The retention rules in a plan: they only ever keep, and every object they keep is counted
by its reason (checked against a plain reference on random listings and rules)."""

from __future__ import annotations

import fnmatch
from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.s3.listing import ListedObject
from tasks.s3.manifest import PlanTarget
from tasks.s3.rules import Rules
from tasks.s3.selection import Selection

CUTOFF = datetime(2026, 1, 1, tzinfo=UTC)
PREFIX = "logs/"
#: Keys in and beside the prefix, in folders, of a few kinds.
KEYS = [
    f"{top}{folder}{name}"
    for top in ("logs/", "logs-keep/", "other/")
    for folder in ("", "app/", "app/2024/", "db/")
    for name in ("a.log", "b.txt", "c.gz")
]
#: Patterns that each mean something a reader can check: fnmatch on whole segments.
PATTERNS = {
    "*.log": lambda below: "/" not in below and below.endswith(".log"),
    "**/*.log": lambda below: below.endswith(".log"),
    "app/**": lambda below: below.startswith("app/"),
    "db/*": lambda below: below.startswith("db/") and below.count("/") == 1,
    "*/?.txt": lambda below: below.count("/") == 1 and fnmatch.fnmatchcase(below, "*/?.txt"),
}
CLASSES = ["STANDARD", "STANDARD_IA", "GLACIER"]

listings = st.lists(
    st.builds(
        ListedObject,
        key=st.sampled_from(KEYS),
        etag=st.just('"e"'),
        size=st.integers(min_value=0, max_value=50),
        last_modified=st.sampled_from([CUTOFF - timedelta(days=9), CUTOFF + timedelta(days=1)]),
        storage_class=st.sampled_from(CLASSES),
    ),
    max_size=40,
)
rule_sets = st.builds(
    Rules,
    include=st.lists(st.sampled_from(sorted(PATTERNS)), max_size=2).map(tuple),
    exclude=st.lists(st.sampled_from(sorted(PATTERNS)), max_size=2).map(tuple),
    min_size=st.none() | st.integers(min_value=0, max_value=50),
    max_size=st.none() | st.integers(min_value=0, max_value=50),
    storage_classes=st.lists(st.sampled_from(CLASSES), max_size=2).map(tuple),
)


def reference(objects: list[ListedObject], rules: Rules) -> tuple[list[str], Counter[str]]:
    """What a plan must hold, and what the rules keep, said the plainest way."""
    planned, kept = [], Counter[str]()
    for listed in objects:
        if not listed.key.startswith(PREFIX) or listed.last_modified >= CUTOFF:
            continue  # not a candidate: no rule is asked
        below = listed.key[len(PREFIX) :]
        if any(PATTERNS[p](below) for p in rules.exclude):
            kept["exclude"] += 1
        elif rules.include and not any(PATTERNS[p](below) for p in rules.include):
            kept["include"] += 1
        elif (rules.min_size is not None and listed.size < rules.min_size) or (
            rules.max_size is not None and listed.size > rules.max_size
        ):
            kept["size"] += 1
        elif rules.storage_classes and listed.storage_class not in rules.storage_classes:
            kept["storage_class"] += 1
        else:
            planned.append(listed.key)
    return planned, kept


@settings(max_examples=300, deadline=None)
@given(objects=listings, rules=rule_sets)
def test_plans_what_the_reference_plans_and_counts_what_each_rule_keeps(
    objects: list[ListedObject], rules: Rules
) -> None:
    target = PlanTarget(
        "rules-bucket",
        "us-east-1",
        PREFIX,
        CUTOFF.isoformat(),
        CUTOFF.isoformat(),
        rules=rules.as_header(),
    )
    selection = Selection(objects, target, CUTOFF)

    planned = [entry.key for entry in selection]

    expected, kept = reference(objects, rules)
    assert planned == expected
    assert selection.kept == kept
    # Rules only keep more: nothing planned that age and prefix alone would not plan, and
    # every candidate is either planned or kept for a reason.
    candidates = [o.key for o in objects if o.key.startswith(PREFIX) and o.last_modified < CUTOFF]
    assert set(planned) <= set(candidates)
    assert len(planned) + sum(selection.kept.values()) == len(candidates)
