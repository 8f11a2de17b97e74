"""A saved plan read back: refused unless it is for this target, fresh, complete and in bounds."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tasks.errors import ConfigError, SafetyRefusal
from tasks.s3.manifest import FIRST_ROWS, ManifestWriter, PlannedObject, PlanTarget, PlanTotals
from tasks.s3.saved_plan import load_plan

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CREATED = NOW - timedelta(hours=1)
CUTOFF = NOW - timedelta(days=30)
MAX_AGE = timedelta(hours=24)
TARGET = PlanTarget(
    bucket="saved-plan-bucket",
    region="eu-west-1",
    prefix="temp/",
    cutoff=CUTOFF.isoformat().replace("+00:00", "Z"),
    created_at=CREATED.isoformat().replace("+00:00", "Z"),
    owner="123456789012",
    versions="current",
)


def entry(
    key: str, last_modified: datetime = CUTOFF - timedelta(days=1), size: int = 10
) -> PlannedObject:
    return PlannedObject(key, f'"etag-{key}"', size, last_modified.isoformat(), "STANDARD")


def write_plan(
    path: Path,
    entries: Sequence[PlannedObject],
    header: PlanTarget = TARGET,
    totals: PlanTotals | None = None,
    complete: bool = True,
) -> Path:
    """A manifest as the planner writes it; `totals` defaults to the entries' own."""
    with ManifestWriter(path, header) as manifest:
        for planned in entries:
            manifest.add(planned)
        if complete:
            scanned = len(entries) + 3
            matched_bytes = sum(planned.size for planned in entries)
            manifest.finish(totals or PlanTotals(scanned, len(entries), matched_bytes))
    return path


def refusal(path: Path, expected: PlanTarget = TARGET, now: datetime = NOW) -> SafetyRefusal:
    with pytest.raises(SafetyRefusal) as refused:
        load_plan(path, expected, MAX_AGE, now=now)
    return refused.value


class TestAccepted:
    @pytest.mark.parametrize("name", ["plan.jsonl", "plan.jsonl.gz"])
    def test_returns_the_totals_and_first_rows_when_the_plan_checks_out(
        self, tmp_path: Path, name: str
    ) -> None:
        entries = [entry(f"temp/k{n:03d}", size=n) for n in range(FIRST_ROWS + 5)]
        path = write_plan(tmp_path / name, entries)

        plan = load_plan(path, TARGET, MAX_AGE, now=NOW)

        assert (plan.scanned, plan.matched) == (len(entries) + 3, len(entries))
        assert plan.matched_bytes == sum(range(FIRST_ROWS + 5))
        assert plan.first_rows == entries[:FIRST_ROWS]
        assert (plan.manifest, plan.target) == (str(path), TARGET)

    def test_accepts_an_empty_plan_when_it_is_complete(self, tmp_path: Path) -> None:
        plan = load_plan(write_plan(tmp_path / "plan.jsonl", []), TARGET, MAX_AGE, now=NOW)

        assert (plan.matched, plan.matched_bytes, plan.first_rows) == (0, 0, [])

    def test_keeps_the_plans_own_cutoff_when_this_run_would_compute_another(
        self, tmp_path: Path
    ) -> None:
        path = write_plan(tmp_path / "plan.jsonl", [entry("temp/a")])
        this_run = replace(TARGET, cutoff=NOW.isoformat(), created_at=NOW.isoformat())

        plan = load_plan(path, this_run, MAX_AGE, now=NOW)

        assert plan.target.cutoff == TARGET.cutoff

    def test_accepts_a_plan_exactly_as_old_as_the_limit_when_checked(self, tmp_path: Path) -> None:
        path = write_plan(tmp_path / "plan.jsonl", [entry("temp/a")])

        plan = load_plan(path, TARGET, MAX_AGE, now=CREATED + MAX_AGE)

        assert plan.matched == 1


class TestRefused:
    @pytest.mark.parametrize(
        ("field", "other"),
        [
            ("bucket", "another-bucket"),
            ("region", "us-east-1"),
            ("owner", "210987654321"),
            ("prefix", "temp/sub/"),
            ("versions", "all"),
            ("inventory", "s3://inventories/other/manifest.json"),
        ],
    )
    def test_names_the_field_when_the_plan_was_made_for_another_target(
        self, tmp_path: Path, field: str, other: str
    ) -> None:
        path = write_plan(tmp_path / "plan.jsonl", [entry("temp/a")])

        refused = refusal(path, replace(TARGET, **{field: other}))

        assert refused.guard == "plan_target"
        assert f"another {field}" in str(refused)
        assert "nothing was deleted" in str(refused)

    def test_names_every_mismatched_field_when_several_differ(self, tmp_path: Path) -> None:
        path = write_plan(tmp_path / "plan.jsonl", [entry("temp/a")])

        refused = refusal(path, replace(TARGET, bucket="another-bucket", owner=None))

        assert "another bucket, owner" in str(refused)

    def test_refuses_when_the_plan_is_older_than_the_limit(self, tmp_path: Path) -> None:
        path = write_plan(tmp_path / "plan.jsonl", [entry("temp/a")])

        refused = refusal(path, now=CREATED + timedelta(hours=25))

        assert refused.guard == "max_plan_age_hours"
        assert (refused.planned, refused.limit) == (25.0, 24.0)
        assert "25.0 hours old and the limit is 24 hours" in str(refused)

    def test_refuses_when_the_plan_has_no_totals(self, tmp_path: Path) -> None:
        path = write_plan(tmp_path / "plan.jsonl", [entry("temp/a")], complete=False)

        refused = refusal(path)

        assert refused.guard == "plan_complete"
        assert "incomplete" in str(refused)

    @pytest.mark.parametrize("claimed", [1, 3])
    def test_refuses_when_the_totals_count_differs_from_the_entries(
        self, tmp_path: Path, claimed: int
    ) -> None:
        entries = [entry("temp/a"), entry("temp/b")]
        path = write_plan(tmp_path / "plan.jsonl", entries, totals=PlanTotals(5, claimed, 20))

        refused = refusal(path)

        assert refused.guard == "plan_complete"
        assert (refused.planned, refused.limit) == (2, claimed)
        assert "totals do not match" in str(refused)

    def test_refuses_when_the_totals_bytes_differ_from_the_entries(self, tmp_path: Path) -> None:
        entries = [entry("temp/a", size=600), entry("temp/b", size=600)]
        path = write_plan(tmp_path / "plan.jsonl", entries, totals=PlanTotals(5, 2, 1))

        refused = refusal(path)

        assert refused.guard == "plan_complete"

    def test_refuses_with_its_line_number_when_an_entry_is_outside_the_prefix(
        self, tmp_path: Path
    ) -> None:
        entries = [entry("temp/a"), entry("temp-keep/precious.db"), entry("temp/b")]
        path = write_plan(tmp_path / "plan.jsonl", entries)

        refused = refusal(path)

        assert refused.guard == "plan_entries"
        # Line 1 is the header: the second entry is line 3.
        assert "line 3 of the plan is outside its prefix or its cutoff" in str(refused)
        assert "precious" not in str(refused)

    @pytest.mark.parametrize(
        "last_modified", [CUTOFF, CUTOFF + timedelta(days=1)], ids=["at-cutoff", "after"]
    )
    def test_refuses_when_an_entry_is_not_older_than_the_cutoff(
        self, tmp_path: Path, last_modified: datetime
    ) -> None:
        entries = [entry("temp/a"), entry("temp/new", last_modified=last_modified)]
        path = write_plan(tmp_path / "plan.jsonl", entries)

        refused = refusal(path)

        assert refused.guard == "plan_entries"
        assert "line 3" in str(refused)


class TestTrustedOnlyForWhatCanBeChecked:
    def test_refuses_a_plan_whose_cutoff_is_later_than_this_runs(self, tmp_path: Path) -> None:
        path = write_plan(tmp_path / "plan.jsonl", [entry("temp/a")])
        this_run = replace(TARGET, cutoff=(CUTOFF - timedelta(days=1)).isoformat())

        refused = refusal(path, this_run)

        assert refused.guard == "plan_cutoff"
        assert refused.exit_code == 6

    def test_refuses_a_version_line_in_a_plan_of_current_objects(self, tmp_path: Path) -> None:
        # An unconditional, permanent delete smuggled into a plan of ETag-conditional ones.
        smuggled = replace(entry("temp/b"), version_id="3sL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY")
        path = write_plan(tmp_path / "plan.jsonl", [entry("temp/a"), smuggled])

        refused = refusal(path)

        assert refused.guard == "plan_entries"
        assert "line 3 of the plan is not a current-versions entry" in str(refused)

    def test_refuses_a_line_without_a_version_in_a_plan_of_versions(self, tmp_path: Path) -> None:
        header = replace(TARGET, versions="noncurrent")
        path = write_plan(tmp_path / "plan.jsonl", [entry("temp/a")], header=header)

        assert "not a noncurrent-versions entry" in str(refusal(path, header))

    @pytest.mark.parametrize(
        "created_at",
        [NOW + timedelta(hours=1), CUTOFF - timedelta(days=1)],
        ids=["in-the-future", "before-its-cutoff"],
    )
    def test_refuses_a_created_at_the_plan_cannot_have_been_made_at(
        self, tmp_path: Path, created_at: datetime
    ) -> None:
        header = replace(TARGET, created_at=created_at.isoformat())
        path = write_plan(tmp_path / "plan.jsonl", [entry("temp/a")], header=header)

        assert refusal(path, header).guard == "plan_created_at"

    @pytest.mark.parametrize(
        ("field", "text"),
        [
            pytest.param("last_modified", "yesterday", id="last-modified-words"),
            pytest.param("last_modified", "2026-01-01T00:00:00", id="last-modified-no-zone"),
            pytest.param("cutoff", "soon", id="cutoff-words"),
            pytest.param("created_at", "2026-13-45T00:00:00Z", id="created-at-impossible"),
        ],
    )
    def test_refuses_a_malformed_time_instead_of_crashing(
        self, tmp_path: Path, field: str, text: str
    ) -> None:
        header, entries = TARGET, [entry("temp/a")]
        if field == "last_modified":
            entries = [replace(entry("temp/a"), last_modified=text)]
        else:
            header = replace(TARGET, **{field: text})
        path = write_plan(tmp_path / "plan.jsonl", entries, header=header)

        refused = refusal(path, replace(header, cutoff=TARGET.cutoff))

        assert "is not an ISO 8601 time with a zone" in str(refused)

    def test_refuses_totals_that_list_fewer_objects_than_the_plan_holds(
        self, tmp_path: Path
    ) -> None:
        entries = [entry("temp/a"), entry("temp/b")]
        path = write_plan(tmp_path / "plan.jsonl", entries, totals=PlanTotals(1, 2, 20))

        assert "more objects than it says were listed" in str(refusal(path))

    def test_refuses_a_gzip_plan_cut_short_when_its_file_ends_early(self, tmp_path: Path) -> None:
        path = write_plan(tmp_path / "plan.jsonl.gz", [entry(f"temp/k{n}") for n in range(50)])
        path.write_bytes(path.read_bytes()[:-30])

        refused = refusal(path)

        assert (refused.guard, refused.exit_code) == ("plan_complete", 6)
        assert "cut short" in str(refused)

    @pytest.mark.parametrize(
        ("raw", "error"),
        [
            pytest.param('"9999…"', SafetyRefusal, id="digits-as-text"),
            pytest.param("9999…", ConfigError, id="digits-as-a-number"),
        ],
    )
    def test_refuses_a_created_at_of_5000_digits_instead_of_crashing(
        self, tmp_path: Path, raw: str, error: type[Exception]
    ) -> None:
        # Past Python's 4300-digit limit, int() and json's number parser raise ValueError.
        path = write_plan(tmp_path / "plan.jsonl", [entry("temp/a")])
        lines = path.read_text().splitlines()
        header = json.loads(lines[0])
        header["created_at"] = "CREATED"
        lines[0] = json.dumps(header).replace('"CREATED"', raw.replace("9999…", "9" * 5000))
        path.write_text("\n".join(lines) + "\n")

        with pytest.raises(error):
            load_plan(path, TARGET, MAX_AGE, now=NOW)

    @pytest.mark.parametrize(
        ("line", "field", "value"),
        [
            pytest.param(1, "size", "10", id="size-text"),
            pytest.param(1, "size", True, id="size-bool"),
            pytest.param(1, "size", -10, id="size-negative"),
            pytest.param(1, "key", ["temp/a"], id="key-list"),
            pytest.param(1, "etag", None, id="etag-null"),
            pytest.param(1, "version_id", 7, id="version-number"),
            pytest.param(1, "surprise", "x", id="unknown-field"),
            pytest.param(-1, "scanned", "4", id="totals-scanned-text"),
            pytest.param(-1, "matched", 1.0, id="totals-matched-float"),
            pytest.param(-1, "matched_bytes", None, id="totals-bytes-null"),
        ],
    )
    def test_refuses_a_field_of_another_kind_instead_of_crashing(
        self, tmp_path: Path, line: int, field: str, value: object
    ) -> None:
        # Compared as they are, such values raised TypeError (an unexpected error, exit 99).
        path = write_plan(tmp_path / "plan.jsonl", [entry("temp/a")])
        records = [json.loads(text) for text in path.read_text().splitlines()]
        records[line][field] = value
        path.write_text("".join(json.dumps(record) + "\n" for record in records))

        with pytest.raises(ConfigError, match=r"is malformed|malformed totals"):
            load_plan(path, TARGET, MAX_AGE, now=NOW)

    @pytest.mark.parametrize(
        "versions", ["current", "noncurrent"], ids=["same-key", "same-key-and-version"]
    )
    def test_refuses_a_plan_that_names_an_object_twice(self, tmp_path: Path, versions: str) -> None:
        header = replace(TARGET, versions=versions)
        version = None if versions == "current" else "v1"
        lines = [replace(entry(f"temp/k{n:04d}"), version_id=version) for n in range(3000)]
        if versions == "current":
            lines.insert(2500, lines[7])  # far apart, as a plan of current objects allows
        else:
            lines.insert(8, lines[7])  # a versions plan is in key order: next to each other
        path = write_plan(tmp_path / "plan.jsonl", lines, header=header)

        refused = refusal(path, header)

        assert refused.guard == "plan_entries"
        assert "more than once" in str(refused)

    def test_accepts_two_versions_of_one_key(self, tmp_path: Path) -> None:
        header = replace(TARGET, versions="all")
        lines = [replace(entry("temp/a"), version_id=v) for v in ("v2", "v1")]

        plan = load_plan(write_plan(tmp_path / "p.jsonl", lines, header), header, MAX_AGE, now=NOW)

        assert plan.matched == 2

    def test_refuses_a_versions_plan_out_of_listing_order(self, tmp_path: Path) -> None:
        header = replace(TARGET, versions="noncurrent")
        lines = [replace(entry(key), version_id="v1") for key in ("temp/b", "temp/a")]
        path = write_plan(tmp_path / "plan.jsonl", lines, header=header)

        refused = refusal(path, header)

        assert "line 3 of the plan is out of listing order" in str(refused)

    def test_states_the_sha256_of_the_file_it_checked(self, tmp_path: Path) -> None:
        path = write_plan(tmp_path / "plan.jsonl", [entry("temp/a")])

        plan = load_plan(path, TARGET, MAX_AGE, now=NOW)

        assert plan.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


class TestOwnerFromTheSecret:
    SECRET_OWNED = replace(TARGET, owner_from="secret")

    def test_the_file_says_only_that_the_secret_named_an_owner(self, tmp_path: Path) -> None:
        path = write_plan(tmp_path / "plan.jsonl", [entry("temp/a")], header=self.SECRET_OWNED)

        header = json.loads(path.read_text().splitlines()[0])

        assert (header["owner"], header["owner_from"]) == (None, "secret")
        assert TARGET.owner not in path.read_text()

    def test_applies_to_a_run_whose_owner_also_comes_from_its_secret(self, tmp_path: Path) -> None:
        path = write_plan(tmp_path / "plan.jsonl", [entry("temp/a")], header=self.SECRET_OWNED)

        plan = load_plan(path, self.SECRET_OWNED, MAX_AGE, now=NOW)

        assert plan.matched == 1

    def test_refuses_a_run_whose_owner_is_a_parameter(self, tmp_path: Path) -> None:
        path = write_plan(tmp_path / "plan.jsonl", [entry("temp/a")], header=self.SECRET_OWNED)

        refused = refusal(path, replace(TARGET, owner_from="parameter"))

        assert "made for another owner_from" in str(refused)


#: A plan's retention rules, as its header holds them.
RULES: dict[str, object] = {"exclude": ["**/*.keep"], "min_size": 5}


class TestRetentionRules:
    """A plan carries the rules it was made under: applied under others, or holding a line
    its rules keep, it is refused."""

    def test_accepts_a_plan_under_the_rules_it_was_made_with_and_keeps_its_counts(
        self, tmp_path: Path
    ) -> None:
        ruled = replace(TARGET, rules=RULES)
        totals = PlanTotals(9, 1, 10, kept={"exclude": 2, "size": 1})
        path = write_plan(tmp_path / "plan.jsonl", [entry("temp/a")], ruled, totals)

        plan = load_plan(path, ruled, MAX_AGE, now=NOW)

        assert plan.kept == {"exclude": 2, "size": 1}

    @pytest.mark.parametrize(
        ("made", "applied"),
        [({}, RULES), (RULES, {}), (RULES, {**RULES, "min_size": 6})],
        ids=["made-without", "applied-without", "other-size"],
    )
    def test_refuses_a_plan_made_under_other_rules_naming_both(
        self, tmp_path: Path, made: dict[str, object], applied: dict[str, object]
    ) -> None:
        path = write_plan(tmp_path / "plan.jsonl", [entry("temp/a")], replace(TARGET, rules=made))

        refused = refusal(path, replace(TARGET, rules=applied))

        assert refused.guard == "plan_rules"
        assert "other retention rules" in str(refused)
        assert json.dumps(made) in str(refused).replace("\\'", "'")

    @pytest.mark.parametrize(
        "kept", [entry("temp/a.keep"), entry("temp/b", size=4)], ids=["excluded", "too-small"]
    )
    def test_refuses_a_line_its_own_rules_keep(self, tmp_path: Path, kept: PlannedObject) -> None:
        ruled = replace(TARGET, rules=RULES)
        path = write_plan(tmp_path / "plan.jsonl", [entry("temp/c"), kept], ruled)

        refused = refusal(path, ruled)

        assert refused.guard == "plan_entries"
        assert "line 3 of the plan is an object its retention rules keep" in str(refused)

    @pytest.mark.parametrize(
        ("rules", "named"),
        [
            (RULES, "include:*"),
            ({"include": ["a*", "c*"]}, "include:a*"),
            ({"keep_newest": 1}, "include:c*"),
            ({}, "age"),
        ],
        ids=["another-rule", "another-pattern", "a-pattern-not-set", "without-rules"],
    )
    def test_refuses_a_line_naming_a_rule_its_rules_do_not_give(
        self, tmp_path: Path, rules: dict[str, object], named: str
    ) -> None:
        """A line names the rule that selected it; an edited name is refused even where the
        digest was not asked for."""
        ruled = replace(TARGET, rules=rules)
        lines = [entry("temp/c"), replace(entry("temp/c2"), rule=named)]
        path = write_plan(tmp_path / "plan.jsonl", lines, ruled)

        refused = refusal(path, ruled)

        assert refused.guard == "plan_entries"
        assert "line 3 of the plan names a rule its plan's rules do not give" in str(refused)

    def test_accepts_lines_naming_the_rule_their_rules_give(self, tmp_path: Path) -> None:
        ruled = replace(TARGET, rules={"include": ["a*", "c*"]})
        lines = [replace(entry("temp/c"), rule="include:c*"), entry("temp/a")]
        path = write_plan(tmp_path / "plan.jsonl", lines, ruled)

        assert load_plan(path, ruled, MAX_AGE, now=NOW).matched == 2

    @pytest.mark.parametrize("key", ["temp/2026-05-10.sql", "temp/latest.sql"])
    def test_refuses_a_line_whose_key_time_is_not_before_the_cutoff(
        self, tmp_path: Path, key: str
    ) -> None:
        """A key named for after the cutoff (2026-05-02), or for no time: its rules keep it."""
        named = r"(?P<year>\d{4})-(?P<month>\d\d)-(?P<day>\d\d)"
        dated = replace(TARGET, rules={"time_from_key": named})
        lines = [entry("temp/2026-04-01.sql"), entry(key)]
        path = write_plan(tmp_path / "plan.jsonl", lines, dated)

        refused = refusal(path, dated)

        assert refused.guard == "plan_entries"
        assert "line 3 of the plan is an object its retention rules keep" in str(refused)

    def test_refuses_rules_it_cannot_read(self, tmp_path: Path) -> None:
        broken = replace(TARGET, rules={"exclude": "not-a-list"})
        path = write_plan(tmp_path / "plan.jsonl", [entry("temp/a")], broken)

        refused = refusal(path, broken)

        assert refused.guard == "plan_rules"
