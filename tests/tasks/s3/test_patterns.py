"""Glob patterns on keys below the prefix: each syntax element, each refusal, and a property test
against a matcher written another way (backtracking over the pattern's tokens, no regex)."""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tasks.s3.patterns import (
    any_matching,
    compile_pattern,
    first_matching,
    matches,
    pattern_problems,
)

PREFIX = "logs/"


class TestStar:
    @pytest.mark.parametrize("key", ["a.log", ".log", "a.b.log"])
    def test_matches_any_run_in_a_segment_when_the_key_has_no_slash_there(self, key: str) -> None:
        assert matches("*.log", key)

    @pytest.mark.parametrize("key", ["a/b.log", "/.log", "a.log/"])
    def test_does_not_match_when_the_run_would_cross_a_slash(self, key: str) -> None:
        assert not matches("*.log", key)

    def test_matches_an_empty_segment_when_the_key_ends_with_a_slash(self) -> None:
        assert matches("a/*", "a/")

    def test_matches_only_the_whole_key_when_the_key_has_more_after_the_match(self) -> None:
        assert not matches("a*", "xa")
        assert not matches("*a", "ab")


class TestGlobstar:
    @pytest.mark.parametrize("key", ["x.log", "a/x.log", "a/b/x.log"])
    def test_matches_zero_or_more_segments_when_it_leads_the_pattern(self, key: str) -> None:
        assert matches("**/x.log", key)

    @pytest.mark.parametrize("key", ["a/b", "a/x/b", "a/x/y/b"])
    def test_matches_zero_or_more_segments_when_it_is_between_segments(self, key: str) -> None:
        assert matches("a/**/b", key)

    @pytest.mark.parametrize(("key", "expected"), [("a/", True), ("a/x/y", True), ("a", False)])
    def test_matches_everything_inside_when_it_ends_the_pattern(
        self, key: str, expected: bool
    ) -> None:
        assert matches("a/**", key) is expected

    @pytest.mark.parametrize("key", ["", "a", "a/b/c", "/", "a//b"])
    def test_matches_every_key_when_it_is_the_whole_pattern(self, key: str) -> None:
        assert matches("**", key)

    def test_does_not_match_a_partial_segment_when_it_is_followed_by_a_slash(self) -> None:
        assert not matches("**/x.log", "ax.log")

    def test_is_one_globstar_when_two_follow_each_other(self) -> None:
        assert compile_pattern("a/**/**/b").pattern == compile_pattern("a/**/b").pattern


class TestQuestionMark:
    def test_matches_one_character_when_it_is_not_a_slash(self) -> None:
        assert matches("a?c", "abc")
        assert not matches("a?c", "ac")
        assert not matches("a?c", "abbc")

    def test_does_not_match_when_the_character_is_a_slash(self) -> None:
        assert not matches("a?c", "a/c")


class TestClass:
    @pytest.mark.parametrize(("key", "expected"), [("a", True), ("c", True), ("d", False)])
    def test_matches_its_characters_and_ranges_when_they_hold_the_character(
        self, key: str, expected: bool
    ) -> None:
        assert matches("[ab-c]", key) is expected

    @pytest.mark.parametrize(("key", "expected"), [("a", False), ("x", True), ("/", False)])
    def test_matches_other_characters_but_a_slash_when_negated(
        self, key: str, expected: bool
    ) -> None:
        assert matches("[!a]", key) is expected

    def test_holds_a_closing_bracket_when_it_comes_first(self) -> None:
        assert matches("[]a]", "]")
        assert matches("[!]]", "x")
        assert not matches("[!]]", "]")

    @pytest.mark.parametrize(("pattern", "key"), [("[a-]", "-"), ("[-a]", "-"), ("[^]", "^")])
    def test_holds_a_character_itself_when_it_has_no_meaning_there(
        self, pattern: str, key: str
    ) -> None:
        assert matches(pattern, key)

    @pytest.mark.parametrize("pattern", ["[/a]", "[!a]", "[.-0]"])
    def test_does_not_match_a_slash_when_the_class_names_it(self, pattern: str) -> None:
        assert not matches(pattern, "/")

    @pytest.mark.parametrize(("pattern", "key"), [("[*]", "*"), ("[?]", "?"), ("[[]", "[")])
    def test_matches_a_wildcard_itself_when_it_is_in_a_class(self, pattern: str, key: str) -> None:
        assert matches(pattern, key)
        assert not matches(pattern, "a")


class TestLiterals:
    @pytest.mark.parametrize("pattern", ["a.b", "a+b", "(a)", "a|b", "a$", "^a", "a{2}", "a\\b"])
    def test_match_only_themselves_when_they_are_regex_syntax(self, pattern: str) -> None:
        assert matches(pattern, pattern)
        assert not matches(pattern, "axb")

    def test_match_across_lines_when_the_key_holds_a_newline(self) -> None:
        assert matches("**", "a\nb")
        assert matches("a*b", "a\nb")


class TestCompile:
    def test_is_cached_when_the_same_pattern_is_compiled_again(self) -> None:
        assert compile_pattern("cache-me/*") is compile_pattern("cache-me/*")

    @pytest.mark.parametrize("pattern", ["a**b", "[a", "[z-a]"])
    def test_raises_when_the_syntax_is_broken(self, pattern: str) -> None:
        with pytest.raises(ValueError, match="'"):
            compile_pattern(pattern)

    @pytest.mark.parametrize(
        "pattern",
        ["*a*a*a*a*a*a*a*a*b", "**/a/**/a/**/a/**/a/**/b", "**/*a*a*a*/**/*a*a*b"],
    )
    def test_answers_at_once_when_a_pattern_would_make_a_regex_backtrack(
        self, pattern: str
    ) -> None:
        started = time.perf_counter()
        assert not matches(pattern, "a" * 1000)
        assert not matches(pattern, "a/" * 500)
        assert time.perf_counter() - started < 0.5


class TestProblems:
    @pytest.mark.parametrize(
        ("pattern", "says"),
        [
            ("", "must not be empty"),
            ("a[b", "has an unclosed '['"),
            ("[z-a]", "reversed"),
            ("a\tb", "holds control characters"),
            ("a\u202eb", "invisible format characters"),
            ("a\udcffb", "must be UTF-8 text"),
            ("**/" * 342 + "a", "at most 1024 bytes"),
            ("a**b", "'**' that is not a whole segment"),
            ("***", "'**' that is not a whole segment"),
            ("a/**b", "'**' that is not a whole segment"),
            ("/x", "starts with '/'"),
            ("a/[/]", "can never match below the prefix"),
            ("é" * 510, "can never match below the prefix"),
        ],
    )
    def test_names_the_problem_when_the_pattern_breaks_one_rule(
        self, pattern: str, says: str
    ) -> None:
        (problem,) = pattern_problems(pattern, PREFIX)
        assert says in problem

    def test_say_every_problem_when_the_pattern_breaks_several_rules(self) -> None:
        assert len(pattern_problems("/a**b[", PREFIX)) == 3

    def test_says_what_to_write_instead_when_a_globstar_is_inside_a_segment(self) -> None:
        (problem,) = pattern_problems("a**b", PREFIX)
        assert "write '*'" in problem and "'a*/**/*b'" in problem

    @pytest.mark.parametrize("prefix", ["logs", "logs-", "logs//x"])
    def test_allows_a_leading_slash_when_the_prefix_does_not_end_with_one(
        self, prefix: str
    ) -> None:
        assert pattern_problems("/x", prefix) == []

    @pytest.mark.parametrize(
        "pattern", ["**/x", "a/**", "**", "[!/]", "[/a]", "[]]", "*" + "/**" * 300]
    )
    def test_finds_none_when_the_pattern_can_match(self, pattern: str) -> None:
        assert pattern_problems(pattern, PREFIX) == []

    def test_counts_only_what_must_be_matched_when_the_pattern_has_globstars(self) -> None:
        # The shortest keys they match: "x" (1 byte) and "xyzab/" (6 bytes).
        assert pattern_problems("**/x", "p" * 1023) == []
        assert pattern_problems("**/xyzab/**", "p" * 1018) == []
        assert pattern_problems("**/xyzab/**", "p" * 1019) != []

    def test_never_repeat_the_pattern_when_they_refuse_it(self) -> None:
        pattern = "secret-looking-name-[" + "\x01"
        assert all("secret-looking" not in problem for problem in pattern_problems(pattern, ""))


# The reference: the pattern read into tokens and matched by backtracking over them.
SEGMENT_END = "/"


def reference_tokens(pattern: str) -> list[tuple[str, Any]] | None:
    """The pattern's tokens, or None when its "**" is not a whole segment."""
    tokens: list[tuple[str, Any]] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            whole = (i == 0 or pattern[i - 1] == "/") and (
                i + 2 == len(pattern) or pattern[i + 2] == "/"
            )
            if not whole or pattern.startswith("***", i):
                return None
            at_end = i + 2 == len(pattern)
            tokens.append(("rest", None) if at_end else ("folders", None))
            i += 2 if at_end else 3
        elif pattern[i] == "*":
            tokens.append(("star", None))
            i += 1
        elif pattern[i] == "?":
            tokens.append(("one", None))
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i + 2 if pattern[i + 1] in "!]" else i + 1)
            if pattern[i + 1] == "!" and pattern[i + 2] == "]":
                end = pattern.index("]", i + 3)
            body = pattern[i + 1 : end]
            negated = body.startswith("!")
            members = body[1:] if negated else body
            allowed = set(members)
            for k in range(1, len(members) - 1):
                if members[k] == "-":
                    lo, hi = members[k - 1], members[k + 1]
                    allowed |= {chr(c) for c in range(ord(lo), ord(hi) + 1)}
            tokens.append(("class", (negated, frozenset(allowed))))
            i = end + 1
        else:
            tokens.append(("char", pattern[i]))
            i += 1
    return tokens


def reference_match(pattern: str, key: str) -> bool | None:
    """Whether the pattern matches the key, or None when the pattern is not valid."""
    tokens = reference_tokens(pattern)
    if tokens is None:
        return None

    @cache
    def match(t: int, k: int) -> bool:
        if t == len(tokens):
            return k == len(key)
        kind, value = tokens[t]
        if kind == "rest":
            return True
        if kind == "folders":
            # No segment, or any run of text that ends with a slash.
            return match(t + 1, k) or any(
                key[j - 1] == SEGMENT_END and match(t + 1, j) for j in range(k + 1, len(key) + 1)
            )
        if kind == "star":
            for j in range(k, len(key) + 1):
                if j > k and key[j - 1] == SEGMENT_END:
                    return False
                if match(t + 1, j):
                    return True
            return False
        if k == len(key):
            return False
        character = key[k]
        if kind == "char":
            return character == value and match(t + 1, k + 1)
        if character == SEGMENT_END:
            return False
        if kind == "class":
            negated, allowed = value
            if (character in allowed) == negated:
                return False
        return match(t + 1, k + 1)

    return match(0, 0)


#: Pattern fragments, each with texts that it mostly matches (a key made of them often matches).
FRAGMENTS = {
    "a": ["a", "b"],
    "b": ["b"],
    "/": ["/"],
    ".": [".", "a"],
    "*": ["", "a", "ab", "a.b", "/"],
    "?": ["a", ".", "/"],
    "**": ["", "a", "a/b", "/"],
    "**/": ["", "a/", "a/b/", "a"],
    "/**": ["/", "/a", "/a/b/"],
    "[ab]": ["a", "b", "."],
    "[!a]": ["b", "a", "/"],
    "[a-b]": ["b", "]"],
    "[]a]": ["]", "a", "b"],
}
keys = st.text(alphabet="ab/.]", max_size=10)


@st.composite
def patterns_and_keys(draw: st.DrawFn, globstars: bool = True) -> tuple[str, list[str]]:
    """A pattern and keys: random ones, and ones made fragment by fragment, which often match."""
    names = sorted(name for name in FRAGMENTS if globstars or "**" not in name)
    fragments = draw(st.lists(st.sampled_from(names), min_size=1, max_size=7))
    # A seeded generator, not a strategy a fragment: building strategies per draw is slow.
    chooser = draw(st.randoms(use_true_random=False))
    made = ["".join(chooser.choice(FRAGMENTS[f]) for f in fragments) for _ in range(4)]
    return "".join(fragments), [*draw(st.lists(keys, max_size=4)), *made]


def first_match(patterns: tuple[str, ...], key: str) -> str | None:
    """The first of the patterns that matches the key, as `first_matching` names it."""
    index = first_matching(patterns)(key) if patterns else None
    return None if index is None else patterns[index]


class TestAgainstReference:
    # 800 patterns with 4 to 8 keys each: some 5,000 comparisons, about 2 s of CPU.
    @settings(max_examples=800)
    @given(pattern_and_keys=patterns_and_keys())
    @example(pattern_and_keys=("**/a/**/b", ["a/a/b", "a/b", "b", "a/ab"]))
    @example(pattern_and_keys=("*a*b", ["aab", "ab", "a/b"]))
    @example(pattern_and_keys=("a/**", ["a/", "a"]))
    def test_agrees_with_a_backtracking_matcher_when_both_read_the_same_pattern(
        self, pattern_and_keys: tuple[str, list[str]]
    ) -> None:
        pattern, some_keys = pattern_and_keys
        if reference_tokens(pattern) is None:
            with pytest.raises(ValueError, match="whole segment"):
                compile_pattern(pattern)
            return
        for key in some_keys:
            assert matches(pattern, key) is reference_match(pattern, key), key

    @settings(max_examples=300)
    @given(drawn=st.lists(patterns_and_keys(), min_size=1, max_size=4))
    def test_names_the_first_pattern_the_reference_matches_when_several_are_joined(
        self, drawn: list[tuple[str, list[str]]]
    ) -> None:
        """Several patterns, matched as one regex: the one named is the first that matches
        on its own, and none when none does."""
        usable = tuple(pattern for pattern, _ in drawn if reference_tokens(pattern) is not None)
        for key in (key for _, some_keys in drawn for key in some_keys):
            first = next((p for p in usable if reference_match(p, key)), None)
            assert first_match(usable, key) == first, key

    # The shapes string tests answer (tasks/s3/patterns.py `_string_test`), and two near them
    # that the regex answers, mixed.
    @settings(max_examples=500)
    @given(
        patterns=st.lists(
            st.sampled_from(
                [
                    "**",
                    "**/*.*",
                    "**/*.o",
                    "**/*.",
                    "**/*.lo.o",
                    "**/a/**",
                    "**/a.l/**",
                    "a/**",
                    "a/l/**",
                    "**/*.[o]",
                    "a*/**",
                ]
            ),
            min_size=1,
            max_size=3,
            unique=True,
        ),
        some_keys=st.lists(st.text(alphabet="al./o\n", max_size=12), max_size=12),
    )
    def test_string_tests_answer_as_the_regex_when_a_pattern_has_a_common_shape(
        self, patterns: list[str], some_keys: list[str]
    ) -> None:
        for key in some_keys:
            by_regex = next(
                (n for n, p in enumerate(patterns) if compile_pattern(p).fullmatch(key)), None
            )
            assert first_matching(tuple(patterns))(key) == by_regex, key
            assert bool(any_matching(tuple(patterns))(key)) is (by_regex is not None), key

    @settings(max_examples=500)
    @given(
        pattern_and_keys=patterns_and_keys(globstars=False).filter(
            lambda drawn: "**" not in drawn[0]
        ),
    )
    def test_wildcards_never_match_a_slash_when_the_pattern_has_no_globstar(
        self, pattern_and_keys: tuple[str, list[str]]
    ) -> None:
        pattern, some_keys = pattern_and_keys
        for key in some_keys:
            if matches(pattern, key):
                assert key.count("/") == pattern.count("/"), key
