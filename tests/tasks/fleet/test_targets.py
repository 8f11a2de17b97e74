"""Tests for tasks.fleet.targets: a fleet's targets file, read whole and refused whole, by line."""

from __future__ import annotations

import os
from pathlib import Path
from tempfile import TemporaryDirectory
from textwrap import dedent

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.errors import ConfigError
from tasks.fleet.targets import FLEET_DECIDES, Target, load_targets, read_targets
from tests.support.exceptions import exception_chain

#: The guide whose targets file example must stay valid.
FLEET_GUIDE = "docs/guides/fleets.md"

#: The fleet of the module's docstring: defaults, a named cross-account target with a group,
#: one with a credentials block.
FLEET = """\
# Shared by every target unless a target sets its own.
defaults:
  older_than_days: 30
  environment: prod
  region: eu-west-1
  max_deletions: 500000
targets:
  - bucket: build-cache-prod
    prefix: tmp/
  - name: logs-scratch            # optional; default "BUCKET/PREFIX"
    bucket: logs-archive-prod
    prefix: scratch/
    older_than_days: 7
    region: us-east-1
    role_arn: arn:aws:iam::210987654321:role/s3-housekeeping   # another account
    versions: all
    group: hourly                 # optional schedule group
  - bucket: ml-data-prod
    prefix: experiments/tmp/
    aws_credentials_block: ml-account
    require_approval: true
"""
DEFAULTS = {
    "older_than_days": 30,
    "environment": "prod",
    "region": "eu-west-1",
    "max_deletions": 500000,
}


def refusal(text: str) -> ConfigError:
    """The ConfigError that reading this targets file raises."""
    with pytest.raises(ConfigError) as caught:
        read_targets(dedent(text), "fleet.yaml")
    return caught.value


# --- a valid file ----------------------------------------------------------------------------


def test_each_target_has_defaults_merged_under_its_own_settings_when_valid() -> None:
    targets = read_targets(FLEET, "fleet.yaml")

    assert targets.source == "fleet.yaml"
    assert targets.targets == (
        Target(
            name="build-cache-prod/tmp/",
            line=8,
            group=None,
            parameters={**DEFAULTS, "bucket": "build-cache-prod", "prefix": "tmp/"},
        ),
        Target(
            name="logs-scratch",
            line=10,
            group="hourly",
            parameters={
                **DEFAULTS,
                "bucket": "logs-archive-prod",
                "prefix": "scratch/",
                "older_than_days": 7,
                "region": "us-east-1",
                "role_arn": "arn:aws:iam::210987654321:role/s3-housekeeping",
                "versions": "all",
            },
        ),
        Target(
            name="ml-data-prod/experiments/tmp/",
            line=18,
            group=None,
            parameters={
                **DEFAULTS,
                "bucket": "ml-data-prod",
                "prefix": "experiments/tmp/",
                "aws_credentials_block": "ml-account",
                "require_approval": True,
            },
        ),
    )


def test_a_target_is_named_bucket_slash_prefix_when_it_has_no_name() -> None:
    targets = read_targets(FLEET)

    assert [(t.name, t.bucket, t.prefix) for t in targets.targets] == [
        ("build-cache-prod/tmp/", "build-cache-prod", "tmp/"),
        ("logs-scratch", "logs-archive-prod", "scratch/"),
        ("ml-data-prod/experiments/tmp/", "ml-data-prod", "experiments/tmp/"),
    ]


def test_a_target_needs_no_defaults_when_it_sets_bucket_and_prefix() -> None:
    targets = read_targets("targets:\n  - {bucket: some-bucket, prefix: tmp/}\n")

    assert targets.targets == (
        Target("some-bucket/tmp/", 2, None, {"bucket": "some-bucket", "prefix": "tmp/"}),
    )


def test_a_merge_key_is_followed_when_an_entry_merges_an_anchor() -> None:
    targets = read_targets(
        dedent("""\
        targets:
          - &shared {bucket: some-bucket, prefix: a/, older_than_days: 9}
          - <<: *shared
            prefix: b/
        """)
    )

    assert targets.targets[1].parameters == {
        "bucket": "some-bucket",
        "prefix": "b/",
        "older_than_days": 9,
    }


def test_load_targets_reads_the_file_when_it_exists(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET)

    targets = load_targets(path)

    assert (targets.source, len(targets.targets)) == (str(path), 3)


# --- groups -----------------------------------------------------------------------------------

GROUPED = """\
targets:
  - {bucket: some-bucket, prefix: a/, group: hourly}
  - {bucket: some-bucket, prefix: b/}
  - {bucket: some-bucket, prefix: c/, group: nightly_2}
  - {bucket: some-bucket, prefix: d/, group: hourly}
"""


def test_in_group_gives_the_group_s_targets_in_order_when_named() -> None:
    targets = read_targets(GROUPED)

    assert [t.prefix for t in targets.in_group("hourly")] == ["a/", "d/"]
    assert [t.prefix for t in targets.in_group("nightly_2")] == ["c/"]
    assert targets.in_group("weekly") == ()


def test_in_group_gives_every_target_when_none() -> None:
    targets = read_targets(GROUPED)

    assert targets.in_group(None) == targets.targets
    assert [t.group for t in targets.targets] == ["hourly", None, "nightly_2", "hourly"]


@pytest.mark.parametrize("group", ['"a b"', '""', "5", "[hourly]", "hourly!"])
def test_a_group_is_refused_when_not_letters_digits_dash_underscore(group: str) -> None:
    error = refusal(f"targets:\n  - bucket: some-bucket\n    prefix: a/\n    group: {group}\n")

    assert error.problems == [
        "line 4: targets[1] (some-bucket/a/): group: must be letters, digits, '-' and '_' "
        "(at least one)"
    ]


# --- every problem at once, by line -----------------------------------------------------------


def test_every_problem_is_reported_once_with_its_line_when_three_entries_are_wrong() -> None:
    error = refusal("""\
        defaults:
          region: eu-west-1
        targets:
          - bucket: Build_Cache
            prefix: tmp/
          - bucket: logs-archive-prod
            prefix: scratch/
            older_than_days: 0
          - bucket: ml-data-prod
            prefix: experiments/
            olderthan_days: 7
        """)

    assert str(error).startswith("invalid targets file 'fleet.yaml'")
    assert error.problems == [
        "line 4: targets[1] (Build_Cache/tmp/): bucket: may hold only lowercase letters, "
        "digits, dots and hyphens",
        "line 8: targets[2] (logs-archive-prod/scratch/): older_than_days: Input should be "
        "greater than or equal to 1",
        "line 11: targets[3] (ml-data-prod/experiments/): olderthan_days: not a setting a "
        "target may set; did you mean older_than_days?",
    ]


def test_a_problem_names_the_defaults_line_once_when_a_default_is_wrong() -> None:
    error = refusal("""\
        defaults:
          older_than_days: 40000
        targets:
          - {bucket: some-bucket, prefix: a/}
          - {bucket: some-bucket, prefix: b/}
          - {bucket: some-bucket, prefix: c/, older_than_days: 7}
        """)

    assert error.problems == [
        "line 2: defaults, in targets[1] (some-bucket/a/), targets[2] (some-bucket/b/): "
        "older_than_days: Input should be less than or equal to 36500"
    ]


def test_a_problem_of_the_defaults_says_every_target_when_no_target_overrides_it() -> None:
    error = refusal("""\
        defaults:
          region: eu-west-1
          role_arn: arn:aws-cn:iam::123456789012:role/cleanup
        targets:
          - {bucket: some-bucket, prefix: a/}
          - {bucket: some-bucket, prefix: b/}
        """)

    assert error.problems == [
        "line 3: defaults, in every target: role_arn: its partition does not match the "
        "region's partition"
    ]


def test_a_problem_names_the_entry_s_line_when_the_setting_is_not_in_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAX_DELETIONS", "many")

    error = refusal("targets:\n  - bucket: some-bucket\n    prefix: a/\n")

    assert error.problems == [
        "line 2: targets[1] (some-bucket/a/): max_deletions (from MAX_DELETIONS): Input should "
        "be a valid integer, unable to parse string as an integer"
    ]


def test_the_syntax_error_is_one_problem_with_its_line_when_the_yaml_is_malformed() -> None:
    error = refusal("""\
        targets:
          - bucket: some-bucket
            prefix: a/
            secret_name: hunter2: x
        """)

    assert error.problems == ["line 4: not valid YAML: mapping values are not allowed here"]
    assert "hunter2" not in str(error)


def test_a_key_is_refused_when_given_twice_in_one_entry() -> None:
    error = refusal("targets:\n  - bucket: some-bucket\n    prefix: a/\n    prefix: b/\n")

    assert error.problems == [
        "line 4: targets[1] (some-bucket/a/): prefix: given twice (first on line 3)"
    ]


def test_a_tag_is_refused_without_running_it_when_it_names_python() -> None:
    error = refusal("""\
        targets:
          - bucket: some-bucket
            prefix: !!python/object/apply:os.getcwd []
        """)

    assert error.problems == [
        "line 3: targets[1]: prefix: not valid YAML: could not determine a constructor for the tag"
    ]


def test_an_unreadable_value_is_one_problem_when_it_is_a_required_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("S3_BUCKET", "environment-bucket")

    error = refusal("""\
        targets:
          - bucket: !custom some-bucket
            prefix: a/
        """)

    assert error.problems == [
        "line 2: targets[1]: bucket: not valid YAML: could not determine a constructor for the tag"
    ]


# --- the file's shape -------------------------------------------------------------------------


def test_a_top_level_key_is_refused_when_not_defaults_or_targets() -> None:
    error = refusal("""\
        defaults: {region: eu-west-1}
        target:
          - {bucket: some-bucket, prefix: a/}
        targets:
          - {bucket: some-bucket, prefix: a/}
        """)

    assert error.problems == [
        "line 2: target: not a section of a targets file (defaults, targets); did you mean targets?"
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("", "line 1: the file must be a mapping of defaults and targets", id="empty"),
        pytest.param(
            "- {bucket: b, prefix: a/}\n",
            "line 1: the file must be a mapping of defaults and targets",
            id="a-list",
        ),
        pytest.param(
            "defaults: {region: eu-west-1}\n",
            "line 1: targets: required: the list of targets",
            id="no-targets",
        ),
        pytest.param(
            "targets: []\n",
            "line 1: targets: must be a list of at least one target",
            id="targets-empty",
        ),
        pytest.param(
            "targets: {bucket: b}\n",
            "line 1: targets: must be a list of at least one target",
            id="a-mapping",
        ),
        pytest.param(
            "defaults: [region]\ntargets:\n  - {bucket: some-bucket, prefix: a/}\n",
            "line 1: defaults: must be a mapping of settings",
            id="defaults-a-list",
        ),
        pytest.param(
            "targets:\n  - some-bucket/a/\n",
            "line 2: targets[1]: must be a mapping of settings",
            id="entry-a-string",
        ),
    ],
)
def test_the_file_is_refused_when_its_shape_is_wrong(text: str, problem: str) -> None:
    assert refusal(text).problems == [problem]


@pytest.mark.parametrize("setting", FLEET_DECIDES)
def test_a_setting_the_fleet_decides_is_refused_when_the_file_sets_it(setting: str) -> None:
    error = refusal(f"""\
        defaults:
          {setting}: x
        targets:
          - bucket: some-bucket
            prefix: a/
            {setting}: x
        """)

    assert error.problems == [
        f"line 2: defaults: {setting}: decided by the fleet's run, not by the targets file",
        f"line 6: targets[1] (some-bucket/a/): {setting}: decided by the fleet's run, not by "
        "the targets file",
    ]


def test_an_operator_limit_is_refused_when_the_file_sets_it() -> None:
    error = refusal("""\
        defaults:
          max_deletions_ceiling: 10
          name: everything
        targets:
          - {bucket: some-bucket, prefix: a/}
        """)

    assert error.problems == [
        "line 2: defaults: max_deletions_ceiling: set by the worker's environment, not by the "
        "targets file",
        "line 3: defaults: name: set in each target, not in defaults",
    ]


# --- the fleet as a whole ---------------------------------------------------------------------


def test_two_targets_are_refused_when_they_share_a_name() -> None:
    error = refusal("""\
        targets:
          - {name: scratch, bucket: some-bucket, prefix: a/}
          - {name: scratch, bucket: other-bucket, prefix: a/}
        """)

    assert error.problems == [
        "line 3: targets[2] (scratch): name: the same as targets[1]'s (line 2); every target "
        "needs its own"
    ]


def test_a_target_is_refused_when_its_prefix_overlaps_another_s_on_the_same_bucket() -> None:
    error = refusal("""\
        defaults:
          bucket: some-bucket
        targets:
          - prefix: tmp/
          - prefix: logs/
          - prefix: tmp/build/
          - {prefix: tmp/, bucket: other-bucket}
        """)

    assert error.problems == [
        "line 6: targets[3] (some-bucket/tmp/build/) overlaps targets[1] (line 4): the same "
        "bucket, prefix within it; two runs would contend for one bucket lock and plan the "
        "same objects"
    ]


def test_the_same_target_twice_is_one_overlap_when_both_are_unnamed() -> None:
    error = refusal("""\
        targets:
          - {bucket: some-bucket, prefix: tmp/}
          - {bucket: some-bucket, prefix: tmp/, older_than_days: 9}
        """)

    assert error.problems == [
        "line 3: targets[2] (some-bucket/tmp/) overlaps targets[1] (line 2): the same bucket, "
        "prefix within it; two runs would contend for one bucket lock and plan the same objects"
    ]


def test_targets_are_accepted_when_on_the_same_bucket_with_disjoint_prefixes() -> None:
    targets = read_targets(
        "targets:\n  - {bucket: b-1, prefix: tmp/}\n  - {bucket: b-1, prefix: tmp2/}\n"
    )

    assert [t.name for t in targets.targets] == ["b-1/tmp/", "b-1/tmp2/"]


# --- the environment: limits yes, targets no --------------------------------------------------


def test_a_missing_bucket_is_refused_when_s3_bucket_is_set_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("S3_BUCKET", "environment-bucket")
    monkeypatch.setenv("CLEANUP_PREFIX", "tmp/")

    error = refusal("""\
        targets:
          - {bucket: some-bucket, prefix: a/}
          - prefix: b/
          - bucket: some-bucket
            prefix:
        """)

    assert error.problems == [
        "line 3: targets[2]: bucket: required in every target",
        "line 4: targets[3]: prefix: required in every target",
    ]
    assert "environment-bucket" not in str(error)


def test_a_target_outside_allowed_targets_is_refused_when_the_environment_limits_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALLOWED_TARGETS", "some-bucket/tmp/")

    error = refusal("""\
        defaults:
          bucket: some-bucket
        targets:
          - prefix: tmp/build/
          - bucket: other-bucket
            prefix: tmp/
          - prefix: logs/
        """)

    assert error.problems == [
        "line 6: targets[2] (other-bucket/tmp/): prefix: is not under a bucket and prefix this "
        "environment may clean (ALLOWED_TARGETS)",
        "line 7: targets[3] (some-bucket/logs/): prefix: is not under a bucket and prefix this "
        "environment may clean (ALLOWED_TARGETS)",
    ]


def test_a_target_naming_a_cluster_the_operator_does_not_allow_is_refused_when_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALLOWED_DASK_ADDRESSES", "tcp://fleet-dask:8786")

    error = refusal("""\
        defaults:
          bucket: some-bucket
        targets:
          - prefix: tmp/
            dask_address: tcp://fleet-dask:8786
          - prefix: logs/
            dask_address: tcp://someone-elses-dask:8786
        """)

    assert error.problems == [
        "line 7: targets[2] (some-bucket/logs/): dask_address: is not one the operator allows "
        "here: DASK_SCHEDULER_ADDRESS, or one of ALLOWED_DASK_ADDRESSES",
    ]
    assert "someone-elses-dask" not in str(error)


# --- no value in a message --------------------------------------------------------------------


def test_a_problem_shows_no_account_id_when_a_role_arn_is_malformed() -> None:
    error = refusal("""\
        targets:
          - bucket: some-bucket
            prefix: a/
            role_arn: arn:aws:iam::21098765432:role/s3-housekeeping
        """)

    assert error.problems == [
        "line 4: targets[1] (some-bucket/a/): role_arn: must be an IAM role ARN: "
        "arn:PARTITION:iam::ACCOUNT:role/NAME"
    ]
    assert not [e for e in exception_chain(error) if "21098765432" in str(e)]
    assert (error.__cause__, error.__context__) == (None, None)


def test_a_problem_shows_no_key_when_the_key_looks_like_a_pasted_value() -> None:
    error = refusal("""\
        targets:
          - bucket: some-bucket
            prefix: a/
            wJalrXUtnFEMI/K7MDENG+bPxRfiCY: x
        """)

    assert error.problems == [
        "line 4: targets[1] (some-bucket/a/): a key: not a setting a target may set"
    ]


def test_a_problem_shows_the_key_but_not_its_value_when_the_key_is_not_a_setting() -> None:
    error = refusal("""\
        targets:
          - bucket: some-bucket
            prefix: a/
            aws_secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
        """)

    assert error.problems == [
        "line 4: targets[1] (some-bucket/a/): aws_secret_access_key: not a setting a target may set"
    ]


# --- reading the file -------------------------------------------------------------------------


def test_load_targets_names_the_file_when_it_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "no-such-fleet.yaml"

    with pytest.raises(ConfigError) as caught:
        load_targets(path)

    assert str(path) in str(caught.value)
    assert caught.value.problems == [f"{path}: No such file or directory"]


def test_the_fleet_guides_example_is_a_valid_targets_file_when_read() -> None:
    guide = (Path(__file__).resolve().parents[3] / FLEET_GUIDE).read_text()
    example = guide.split("<!-- targets-example -->\n```yaml\n", 1)[1].split("```", 1)[0]

    targets = read_targets(example, FLEET_GUIDE)

    assert [t.name for t in targets.targets] == [
        "build-cache-prod/tmp/",
        "build-cache-prod/ci/artifacts/",
        "logs-scratch",
        "ml-data-prod/experiments/tmp/",
    ]
    assert [t.name for t in targets.in_group("hourly")] == ["build-cache-prod/ci/artifacts/"]


# --- files made to break the reader, and text that would not print ---------------------------


def deep_list(levels: int) -> str:
    return "targets: " + "[" * levels + "]" * levels + "\n"


def deep_map(levels: int) -> str:
    return "targets: " + "{a: " * levels + "1" + "}" * levels + "\n"


def alias_chain(links: int) -> str:
    """Lists of one alias each, every one a level deeper than the one it names."""
    anchors = "".join(f"  a{n}: &a{n} [*a{n - 1}]\n" for n in range(1, links))
    return (
        f"defaults:\n  a0: &a0 [1]\n{anchors}"
        f"targets:\n  - {{bucket: some-bucket, prefix: a/, region: *a{links - 1}}}\n"
    )


def merge_chain(links: int) -> str:
    """Mappings that each merge the one before: PyYAML follows merges by recursion."""
    merges = "".join(f"m{n}: &m{n} {{<<: *m{n - 1}}}\n" for n in range(1, links))
    return (
        f"m0: &m0 {{region: us-east-1}}\n{merges}"
        f"targets:\n  - {{<<: *m{links - 1}, bucket: some-bucket, prefix: a/}}\n"
    )


def printable_lines(error: ConfigError) -> bool:
    """Every line of the message prints: UTF-8, no control or invisible character."""
    text = str(error)
    text.encode("utf-8")
    return all(line.isprintable() for line in text.split("\n"))


class TestNesting:
    @pytest.mark.parametrize(
        ("text", "problem"),
        [
            pytest.param(
                deep_list(10_000), "line 1: nested deeper than 20 lists and mappings", id="lists"
            ),
            pytest.param(
                deep_map(10_000), "line 1: nested deeper than 20 lists and mappings", id="maps"
            ),
            pytest.param(
                alias_chain(3000),
                "line 20: nested deeper than 20 lists and mappings (by aliases)",
                id="aliases",
            ),
            pytest.param(
                merge_chain(3000),
                "line 20: nested deeper than 20 lists and mappings (by aliases)",
                id="merges",
            ),
        ],
    )
    def test_config_error_with_its_line_when_a_file_nests_thousands_of_levels(
        self, text: str, problem: str, tmp_path: Path
    ) -> None:
        path = tmp_path / "fleet.yaml"
        path.write_text(text)

        with pytest.raises(ConfigError) as caught:
            load_targets(path)

        assert caught.value.problems == [problem]

    def test_the_file_is_read_as_usual_when_nesting_stays_within_the_limit(self) -> None:
        error = refusal(alias_chain(15))

        assert not [problem for problem in error.problems if "nested deeper" in problem]
        assert error.problems[-1] == (
            "line 18: targets[1] (some-bucket/a/): region: Input should be a valid string"
        )


class TestTextShownBack:
    def test_label_and_message_show_the_prefix_escaped_when_it_holds_a_lone_surrogate(
        self,
    ) -> None:
        error = refusal("""\
            targets:
              - bucket: some-bucket
                prefix: "tmp/\\ud800"
            """)

        assert error.problems == [
            "line 3: targets[1] (some-bucket/tmp/\\ud800): prefix: must be UTF-8 text (it holds "
            "bytes that are not UTF-8)"
        ]
        assert printable_lines(error)

    @pytest.mark.parametrize(
        ("name", "shown"),
        [
            pytest.param("\\ud800x", "\\ud800x", id="lone-surrogate"),
            pytest.param("admin\\u202eexe.txt", "admin\\u202eexe.txt", id="bidi-override"),
            pytest.param("two\\nlines", "two\\u000alines", id="line-break"),
        ],
    )
    def test_a_name_is_refused_and_shown_escaped_when_it_would_not_print(
        self, name: str, shown: str
    ) -> None:
        error = refusal(f"""\
            targets:
              - name: "{name}"
                bucket: some-bucket
                prefix: a/
            """)

        assert error.problems == [
            f"line 2: targets[1] ({shown}): name: must be a non-empty line of text"
        ]
        assert printable_lines(error)

    def test_the_file_s_name_is_shown_escaped_when_it_is_not_utf8(self, tmp_path: Path) -> None:
        path = tmp_path / os.fsdecode(b"fleet-\xff.yaml")
        path.write_text("targets: []\n")

        with pytest.raises(ConfigError) as caught:
            load_targets(path)

        assert "fleet-\\udcff.yaml" in str(caught.value)
        assert printable_lines(caught.value)


#: Pieces of targets files: structure, settings, and what breaks readers and terminals.
FRAGMENTS = (
    "defaults:",
    "targets:",
    "\n",
    "\n  - ",
    "\n    ",
    "bucket: some-bucket",
    "prefix: tmp/",
    "name: ",
    "group: ",
    "region: ",
    "older_than_days: ",
    "dry_run: ",
    "<<: ",
    "&a ",
    "*a",
    "!!python/object:os.system ",
    "[",
    "]",
    "{",
    "}",
    ", ",
    ": ",
    '"',
    "'",
    "\\ud800",
    "\\udfff",
    "\\u202e",
    "\\x00",
    "\\N",
    "\t",
    "#",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "\u202e",
    "\ufeff",
    "2024-13-45",
    "1e999",
)


def yamlish() -> st.SearchStrategy[str]:
    fragment = st.one_of(
        st.sampled_from(FRAGMENTS),
        st.text(max_size=4),
        st.integers(0, 2000).map(lambda n: "[" * n),
        st.integers(0, 2000).map(lambda n: "{a: " * n),
    )
    return st.lists(fragment, max_size=30).map("".join)


class TestAnyText:
    @settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
    @given(text=yamlish())
    def test_only_a_printable_config_error_leaves_load_targets_when_given_any_text(
        self, text: str
    ) -> None:
        with TemporaryDirectory() as folder:
            path = Path(folder) / "fleet.yaml"
            path.write_text(text, encoding="utf-8")
            try:
                load_targets(path)
            except ConfigError as error:
                assert printable_lines(error)
