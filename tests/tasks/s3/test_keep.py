"""The keep rules in a plan, against a plain reference on random listings: restic's meaning,
their union, every kept candidate counted by its reason, the same plan in any listing order and
in shards settled together, and never a young object deleted."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.errors import ConfigError
from tasks.s3.keep import KEEP_RULES, settle
from tasks.s3.kept_list import KeptList, read_kept_list
from tasks.s3.listing import ListedObject
from tasks.s3.manifest import PlanTarget, isoformat
from tasks.s3.patterns import matches
from tasks.s3.rules import Rules
from tasks.s3.selection import Selection, planned

CUTOFF = datetime(2026, 3, 1, tzinfo=UTC)
PREFIX = "backups/"
DATED = r"(?P<year>\d{4})-(?P<month>\d\d)-(?P<day>\d\d)"
#: Keys in a few folders and one beside the prefix; most name a date, some name none.
KEYS = [
    f"{top}{folder}{name}"
    for top in ("backups/", "other/")
    for folder in ("", "db1/", "db2/", "db2/old/")
    for name in (
        *(f"{day:%Y-%m-%d}.sql" for day in (CUTOFF - timedelta(days=n * 9) for n in range(-3, 12))),
        "notes.txt",
    )
]

listings = st.lists(
    st.builds(
        ListedObject,
        key=st.sampled_from(KEYS),
        etag=st.just('"e"'),
        size=st.integers(min_value=0, max_value=9),
        # Whole hours over four months: ties within a day, days within a week, a few months.
        last_modified=st.integers(min_value=-24 * 100, max_value=24 * 20).map(
            lambda hours: CUTOFF + timedelta(hours=hours)
        ),
    ),
    max_size=40,
    unique_by=lambda listed: listed.key,
)
counts = st.integers(min_value=0, max_value=4)
rule_sets = st.builds(
    Rules,
    include=st.sampled_from([(), ("db2/**", "**/*.sql"), ("**/*.sql", "**")]),
    exclude=st.sampled_from([(), ("**/*.txt",)]),
    min_size=st.sampled_from([None, 3]),
    keep_newest=counts,
    keep_daily=counts,
    keep_weekly=counts,
    keep_monthly=counts,
    keep_yearly=st.integers(min_value=0, max_value=1),
    group_by=st.sampled_from(["", "depth:1", "depth:2", r"^(?P<group>db\d)/"]),
    time_from_key=st.sampled_from(["", DATED]),
)

PERIOD = {
    "keep_daily": lambda when: when.date(),
    "keep_weekly": lambda when: when.isocalendar()[:2],
    "keep_monthly": lambda when: (when.year, when.month),
    "keep_yearly": lambda when: when.year,
}


def reference(objects: list[ListedObject], rules: Rules) -> tuple[set[str], Counter[str]]:
    """The keys a plan must hold, and the candidates kept by reason, the plainest way: each
    group sorted newest first, restic's loop per rule."""
    groups: dict[str, list[tuple[datetime, str]]] = {}
    candidates: dict[str, str | None] = {}  # key: why it is kept, if it is
    for listed in objects:
        if not listed.key.startswith(PREFIX):
            continue
        below = listed.key.removeprefix(PREFIX)
        old = listed.last_modified < CUTOFF
        reason = rules.kept_by(below, listed.size, listed.storage_class)
        when = listed.last_modified
        young_by_key = False  # a key time after the cutoff: not a candidate, yet it ranks
        if reason is None and rules.time_from_key:
            found = re.search(rules.time_from_key, below)
            if found is None:
                reason = "time_from_key"
            else:
                when = datetime(*map(int, found.groups()), tzinfo=UTC)
                young_by_key = when >= CUTOFF
        group: str | None = None
        if rules.keep_counts:
            if not rules.group_by:
                group = ""
            elif rules.group_by.startswith("depth:"):
                group = "/".join(below.split("/")[:-1][: int(rules.group_by[6:])])
            else:
                found = re.search(rules.group_by, below)
                group = found.group("group") if found else None
        if old:
            candidates[listed.key] = (
                reason
                or ("time_from_key" if young_by_key else None)
                or ("group_by" if rules.keep_counts and group is None else None)
            )
        if reason is None and group is not None:
            groups.setdefault(group, []).append((when, listed.key))
    kept_by_rule: dict[str, str] = {}
    for members in groups.values():
        newest_first = sorted(members, reverse=True)
        for rule in KEEP_RULES:
            count = getattr(rules, rule)
            if rule == "keep_newest":
                kept = [key for _, key in newest_first[:count]]
            else:
                kept, last = [], None
                for when, key in newest_first:
                    if len(kept) == count:
                        break
                    if PERIOD[rule](when) != last:
                        kept.append(key)
                        last = PERIOD[rule](when)
            for key in kept:
                kept_by_rule.setdefault(key, rule)
    planned, reasons = set(), Counter[str]()
    for key, reason in candidates.items():
        reason = reason or kept_by_rule.get(key)
        if reason is None:
            planned.add(key)
        else:
            reasons[reason] += 1
    return planned, reasons


def selecting_rule(rules: Rules, key: str) -> str | None:
    """The rule a planned key's line names: the first include pattern it matches, else the
    key's time, else its age; none at all without rules."""
    if not rules.any:
        return None
    below = key.removeprefix(PREFIX)
    included = [pattern for pattern in rules.include if matches(pattern, below)]
    if included:
        return f"include:{included[0]}"
    return "time_from_key" if rules.time_from_key else "age"


def target(rules: Rules) -> PlanTarget:
    moment = CUTOFF.isoformat()
    return PlanTarget("b", "us-east-1", PREFIX, moment, moment, rules=rules.as_header())


@settings(max_examples=400, deadline=None)
@given(objects=listings, rules=rule_sets, order=st.randoms(use_true_random=False))
def test_a_plan_is_the_references_in_any_listing_order(objects, rules, order) -> None:
    """The plan and the kept counts equal the reference's, whatever order the listing gives
    (a parallel listing's is any), and no object younger than the cutoff is planned."""
    order.shuffle(objects)
    selection = Selection(objects, target(rules), CUTOFF)
    entries = list(selection)
    planned = [entry.key for entry in entries]
    expected, reasons = reference(objects, rules)
    assert sorted(planned) == sorted(expected)
    assert [entry.rule for entry in entries] == [selecting_rule(rules, key) for key in planned]
    assert len(planned) == len(set(planned))
    assert selection.kept == reasons
    by_key = {listed.key: listed for listed in objects}
    assert all(by_key[key].last_modified < CUTOFF for key in planned)
    assert selection.scanned == len(objects)


@settings(max_examples=300, deadline=None)
@given(objects=listings, rules=rule_sets, cuts=st.lists(st.integers(0, 40), max_size=4))
def test_shards_settled_together_plan_what_one_listing_plans(objects, rules, cuts) -> None:
    """Shards cut anywhere (a group straddling them): what each releases, and what `settle`
    releases of what they still hold, is the one listing's plan; the kept counts add up."""
    bounds = sorted({0, len(objects), *(min(cut, len(objects)) for cut in cuts)})
    planned: list[str] = []
    held = []
    kept = Counter[str]()
    for start, end in itertools.pairwise(bounds):
        shard = Selection(objects[start:end], target(rules), CUTOFF, settled=False)
        planned += [entry.key for entry in shard]
        held += shard.held
        kept += shard.kept
    released, kept_at_the_end = settle(rules.keep_counts, 1000, held)
    planned += [item.key for item in released]
    assert [item.rule for item in released] == [selecting_rule(rules, i.key) for i in released]
    expected, reasons = reference(objects, rules)
    assert sorted(planned) == sorted(expected)
    assert kept + Counter(rule for _, rule in kept_at_the_end) == reasons


def at(days: float) -> datetime:
    return CUTOFF - timedelta(days=days)


def listed(key: str, when: datetime) -> ListedObject:
    return ListedObject(PREFIX + key, '"e"', 1, when)


class TestWorkedExamples:
    def test_keep_newest_keeps_old_objects_when_nothing_newer_exists(self) -> None:
        """A database whose backups stopped: its 2 newest stay though older than the cutoff."""
        objects = [listed(f"db1/{n}.sql", at(40 + n)) for n in range(5)]
        selection = Selection(objects, target(Rules(keep_newest=2, group_by="depth:1")), CUTOFF)
        assert sorted(entry.key for entry in selection) == [
            f"{PREFIX}db1/{n}.sql" for n in (2, 3, 4)
        ]
        assert selection.kept == {"keep_newest": 2}

    def test_young_objects_count_among_the_newest(self) -> None:
        """Two young backups fill keep_newest 2: every old one goes."""
        objects = [listed("db1/new1", at(-1)), listed("db1/new2", at(-2))]
        objects += [listed(f"db1/old{n}", at(50 + n)) for n in range(3)]
        selection = Selection(objects, target(Rules(keep_newest=2)), CUTOFF)
        assert len(list(selection)) == 3
        assert selection.kept == {}

    def test_keep_daily_keeps_the_newest_of_each_day(self) -> None:
        objects = [
            listed("a", at(40) + timedelta(hours=1)),
            listed("b", at(40) + timedelta(hours=5)),  # the newest of its day
            listed("c", at(41)),
            listed("d", at(45)),  # a fourth day: past keep_daily 2's days
        ]
        selection = Selection(objects, target(Rules(keep_daily=2)), CUTOFF)
        assert sorted(entry.key.removeprefix(PREFIX) for entry in selection) == ["a", "d"]
        assert selection.kept == {"keep_daily": 2}

    def test_a_key_time_after_the_cutoff_keeps_an_object_copied_long_ago(self) -> None:
        """A backup named for yesterday, whose copy is older than the cutoff, stays."""
        tomorrow = (CUTOFF + timedelta(days=1)).strftime("%Y-%m-%d")
        objects = [listed(f"{tomorrow}.sql", at(90)), listed("2020-01-01.sql", at(90))]
        selection = Selection(objects, target(Rules(time_from_key=DATED)), CUTOFF)
        assert [entry.key for entry in selection] == [f"{PREFIX}2020-01-01.sql"]
        assert selection.kept == {"time_from_key": 1}

    def test_a_key_with_no_time_or_no_group_is_kept_and_counted(self) -> None:
        objects = [listed("x/notes.txt", at(90)), listed("db1/2020-02-30.sql", at(90))]
        rules = Rules(keep_newest=1, group_by=r"^(?P<group>db\d)/", time_from_key=DATED)
        selection = Selection(objects, target(rules), CUTOFF)
        assert list(selection) == []
        assert selection.kept == {"time_from_key": 2}  # no date; a 30 February is no date
        rules = Rules(keep_newest=1, group_by=r"^(?P<group>db\d)/")
        selection = Selection(objects, target(rules), CUTOFF)
        assert [entry.key for entry in selection] == []
        assert selection.kept == {"group_by": 1, "keep_newest": 1}

    def test_more_groups_than_allowed_are_refused(self) -> None:
        objects = [listed(f"db{n}/x", at(40)) for n in range(4)]
        rules = Rules(keep_newest=1, group_by="depth:1")
        with pytest.raises(ConfigError, match=r"max_groups \(3\)"):
            list(Selection(objects, target(rules), CUTOFF, max_groups=3))
        assert len(list(Selection(objects, target(rules), CUTOFF, max_groups=4))) == 0


@st.composite
def histories(draw: st.DrawFn) -> list[ListedObject]:
    """Versions of a few keys as a listing of versions gives them: key by key, newest first,
    each noncurrent one superseded when the next newer was written; markers among them."""
    listed: list[ListedObject] = []
    for key in draw(st.lists(st.sampled_from(KEYS[:12]), unique=True, max_size=4)):
        hours = sorted(
            draw(st.lists(st.integers(-24 * 100, 24 * 20), min_size=1, max_size=6, unique=True)),
            reverse=True,
        )
        newer: datetime | None = None
        for n, hour in enumerate(hours):
            when = CUTOFF + timedelta(hours=hour)
            marker = draw(st.booleans()) if n < len(hours) - 1 else False
            listed.append(
                ListedObject(
                    key,
                    "" if marker else '"e"',
                    0 if marker else 5,
                    when,
                    "" if marker else "STANDARD",
                    f"v{n}",
                    marker,
                    newer,
                )
            )
            newer = when
    return listed


@settings(max_examples=300, deadline=None)
@given(
    objects=histories(),
    versions=st.sampled_from(["noncurrent", "all"]),
    keep_newest=counts,
    keep_daily=counts,
)
def test_in_a_versions_mode_keep_rules_count_each_keys_versions(
    objects: list[ListedObject], versions: str, keep_newest: int, keep_daily: int
) -> None:
    """As lifecycle's NewerNoncurrentVersions: per key, the newest versions holding data that
    the mode considers are kept; markers are never counted, and deleted by age."""
    rules = Rules(keep_newest=keep_newest, keep_daily=keep_daily)
    moment = CUTOFF.isoformat()
    header = PlanTarget(
        "b", "us-east-1", PREFIX, moment, moment, versions=versions, rules=rules.as_header()
    )

    planned = {(entry.key, entry.version_id) for entry in Selection(objects, header, CUTOFF)}

    expected: set[tuple[str, str | None]] = set()
    for key in {listed.key for listed in objects}:
        history = [listed for listed in objects if listed.key == key]
        ranked = sorted(
            (
                (listed.last_modified, listed.version_id)
                for listed in history
                if not listed.is_delete_marker
                and (versions == "all" or listed.noncurrent_since is not None)
            ),
            reverse=True,
        )
        kept = {version for _, version in ranked[:keep_newest]}
        days: list[object] = []
        for when, version in ranked:
            if len(days) < keep_daily and when.date() not in days:
                days.append(when.date())
                kept.add(version)
        for listed in history:
            since = listed.noncurrent_since if versions == "noncurrent" else listed.last_modified
            old = since is not None and since < CUTOFF and key.startswith(PREFIX)
            if old and listed.version_id not in kept:
                expected.add((key, listed.version_id))
    assert planned == expected


@settings(max_examples=200, deadline=None)
@given(
    etags=st.lists(
        st.one_of(
            st.binary(min_size=16, max_size=16).map(lambda b: f'"{b.hex()}"'),
            st.binary(min_size=16, max_size=16).map(lambda b: f'"{b.hex().upper()}"'),
            st.integers(1, 99).map(lambda parts: f'"{"ab" * 16}-{parts}"'),
            st.text(max_size=40),
        ),
        min_size=3,
        max_size=3,
    ),
    microseconds=st.lists(st.integers(0, 999_999), min_size=3, max_size=3),
)
def test_a_released_or_kept_object_keeps_its_etag_and_time_exactly(
    tmp_path_factory: pytest.TempPathFactory, etags: list[str], microseconds: list[int]
) -> None:
    """The keep rules hold a compact record of each object: what comes back out of it, in
    the plan's line or the kept list's, is what the listing said, to the byte."""
    objects = [
        ListedObject(f"{PREFIX}db1/{n}.sql", etag, n, at(40 + n).replace(microsecond=micro))
        for n, (etag, micro) in enumerate(zip(etags, microseconds, strict=True))
    ]
    path = tmp_path_factory.mktemp("kept") / "plan.kept.jsonl.gz"
    ruled = target(Rules(keep_newest=1))
    kept_list = KeptList(path, ruled)
    selection = Selection(objects, ruled, CUTOFF, kept_list=kept_list)
    entries = list(selection)
    kept_list.close()

    assert entries == [planned(listed, "current", "age") for listed in objects[1:]]
    (kept,) = read_kept_list(path)
    assert kept == {
        "key": objects[0].key,
        "size": 0,
        "last_modified": isoformat(objects[0].last_modified),
        "reason": "keep_newest",
    }
