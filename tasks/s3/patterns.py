"""Glob patterns on the part of a key below the cleaned prefix: their syntax, checks and matching.

A pattern matches the whole key below the prefix (the key with the prefix removed). `*` is any
run of characters inside one segment (never "/"); `?` is one character other than "/"; `[...]`
is one character of a class (`[!...]` negates it, a `]` first in it is itself, `a-z` is a range)
and never matches "/"; `**` as a whole segment is any run of characters, "/" included, and
`**/` also matches no segment at all (`**/x.log` matches `x.log` and `a/b/x.log`; `a/**`
matches everything inside `a/`). Every other character is itself: there is no escape
character, a literal `*`, `?` or `[` is written `[*]`, `[?]`, `[[]`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from tasks.aws_names import CONTROL_CHARACTERS

#: S3's limit on a whole key; a pattern longer than that is a mistake, whatever it matches.
PATTERN_MAX_BYTES = 1024
KEY_MAX_BYTES = 1024


@dataclass(frozen=True)
class _Char:
    """A token that matches exactly one character: `regex` says which."""

    regex: str
    #: Fewest UTF-8 bytes of a character it matches (None: it matches none at all).
    min_bytes: int | None


@dataclass(frozen=True)
class _Stars:
    """A run of `*`: one is a star, two forming a whole segment a globstar; any other is refused."""

    count: int


_Token = _Char | _Stars
_SLASH = _Char(re.escape("/"), 1)


@dataclass(frozen=True)
class _Parsed:
    """A pattern split into segments (at each "/" outside a class), with its syntax problems."""

    segments: list[list[_Token]]
    problems: list[str]


def _tokens(pattern: str, problems: list[str]) -> Iterator[_Token]:
    i = 0
    while i < len(pattern):
        character = pattern[i]
        if character == "*":
            end = i
            while end < len(pattern) and pattern[end] == "*":
                end += 1
            yield _Stars(end - i)
            i = end
        elif character == "?":
            yield _Char("[^/]", 1)
            i += 1
        elif character == "[":
            token, i = _class(pattern, i, problems)
            yield token
        else:
            yield _Char(re.escape(character), len(character.encode("utf-8", "surrogatepass")))
            i += 1


def _class(pattern: str, start: int, problems: list[str]) -> tuple[_Token, int]:
    """The class opening at `start`, and where the pattern goes on after it."""
    i = start + 1
    negated = pattern.startswith("!", i)
    i += negated
    # fnmatch's rule: a "]" first in the class is one of its characters, not its end.
    close = pattern.find("]", i + 1 if pattern.startswith("]", i) else i)
    if close < 0:
        problems.append("has an unclosed '[' (write '[[]' for a literal '[')")
        # Read as a literal "[" so the rest still gets checked.
        return _Char(re.escape("["), 1), start + 1
    parts, ranges = [], []
    members = pattern[i:close]
    j = 0
    while j < len(members):
        # fnmatch's rule: a "-" first or last is itself, elsewhere it makes a range.
        if j + 2 < len(members) and members[j + 1] == "-":
            low, high, j = members[j], members[j + 2], j + 3
        else:
            low = high = members[j]
            j += 1
        if low > high:
            problems.append("has a range whose ends are reversed in a '[...]' class")
            continue
        parts.append(re.escape(low) if low == high else f"{re.escape(low)}-{re.escape(high)}")
        ranges.append((low, high))
    body = "".join(parts)
    if negated:
        return _Char(f"[^/{body}]", 1), close + 1
    # A class never matches "/": the slash ends a segment, whatever the class says.
    usable = [low for low, high in ranges if (low, high) != ("/", "/")]
    if not usable:
        return _Char("(?!)", None), close + 1
    # UTF-8 grows with the code point: a range's first character is its shortest.
    fewest = min(len(low.encode("utf-8", "surrogatepass")) for low in usable)
    return _Char(f"(?!/)[{body}]", fewest), close + 1


def _parse(pattern: str) -> _Parsed:
    problems: list[str] = []
    segments: list[list[_Token]] = [[]]
    for token in _tokens(pattern, problems):
        if token == _SLASH:
            segments.append([])
        else:
            segments[-1].append(token)
    for segment in segments:
        if any(isinstance(t, _Stars) and t.count > 1 for t in segment) and segment != [_Stars(2)]:
            problems.append(
                "has a '**' that is not a whole segment: write '*' to match within a segment, "
                "or put '**' between slashes ('a*/**/*b') to match across segments"
            )
            break
    return _Parsed(segments, problems)


def _segment_regex(segment: list[_Token]) -> str:
    """A segment's regex. Between two stars the earliest match is taken and kept (an atomic
    group): a later one could only leave less for the stars that follow, which can take any
    character but "/", like those before. This is fnmatch's way of keeping a pattern with many
    stars from backtracking for ever; a segment ends at the next "/", which no token crosses."""
    pieces: list[str] = [""]
    for token in segment:
        if isinstance(token, _Stars):
            pieces.append("")
        else:
            pieces[-1] += token.regex
    if len(pieces) == 1:
        return pieces[0]
    middle = "".join(f"(?>[^/]*?{piece})" for piece in pieces[1:-1])
    return f"{pieces[0]}{middle}[^/]*{pieces[-1]}"


def _is_globstar(segment: list[_Token]) -> bool:
    return segment == [_Stars(2)]


def _regex(segments: list[list[_Token]]) -> str:
    # "**/**" is "**": merged, so that no two globstars search the same slashes.
    merged: list[list[_Token]] = []
    for segment in segments:
        if not (merged and _is_globstar(segment) and _is_globstar(merged[-1])):
            merged.append(segment)
    # Blocks of plain segments, between globstars: A/**/B/**/C.
    blocks: list[list[list[_Token]]] = [[]]
    for segment in merged:
        if _is_globstar(segment):
            blocks.append([])
        else:
            blocks[-1].append(segment)
    texts = ["/".join(_segment_regex(s) for s in block) for block in blocks]
    if len(blocks) == 1:
        return texts[0]
    regex = f"{texts[0]}/" if blocks[0] else ""
    for index, text in enumerate(texts[1:], start=1):
        if not blocks[index]:
            regex += ".*"  # the pattern ends with "**"
        elif index < len(blocks) - 1:
            # A block between two globstars: its earliest place is kept, as a later one could
            # only leave less for the next globstar, which takes anything ending with "/".
            regex += f"(?>(?:.*?/)??{text}/)"
        else:
            regex += f"(?:.*/)?{text}"
    return regex


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The pattern as a regular expression, to `fullmatch` against a key below the prefix.

    Raises:
        ValueError: the pattern's syntax is broken (an unclosed "[", a "**" inside a segment,
            a reversed range); `pattern_problems` says every problem, prefix included.
    """
    parsed = _parse(pattern)
    if parsed.problems:
        raise ValueError("; ".join(parsed.problems))
    return re.compile(_regex(parsed.segments), re.DOTALL)


def matches(pattern: str, key_below_prefix: str) -> bool:
    """Whether the pattern matches the whole of a key below the prefix."""
    return compile_pattern(pattern).fullmatch(key_below_prefix) is not None


@lru_cache(maxsize=256)
def compile_patterns(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """Any of the patterns, as one regular expression to `fullmatch`: one match per key
    whatever their number. Each is a capturing group of its own (a pattern's regex captures
    nothing), so the match's `lastindex` is the first pattern that matched, counted from 1.

    Raises:
        ValueError: a pattern's syntax is broken (as `compile_pattern`).
    """
    return re.compile("|".join(f"({compile_pattern(p).pattern})" for p in patterns), re.DOTALL)


@lru_cache(maxsize=256)
def first_matching(patterns: tuple[str, ...]) -> Callable[[str], int | None]:
    """A function of a key below the prefix: the index of the first of the patterns that
    matches it, or None. Asked of every listed key: when every pattern has one of the shapes
    rules are mostly written in (`_string_test`), string tests answer, at a tenth of a regex
    match's cost; otherwise one regex match (`compile_patterns`).

    Raises:
        ValueError: a pattern's syntax is broken (as `compile_pattern`).
    """
    tests = [_string_test(pattern) for pattern in patterns]
    regex = compile_patterns(patterns)  # compiled all the same: it checks the syntax
    if all(test is not None for test in tests):
        simple = [test for test in tests if test is not None]

        def by_strings(key: str) -> int | None:
            for index, test in enumerate(simple):
                if test(key):
                    return index
            return None

        return by_strings

    def by_regex(key: str) -> int | None:
        found = regex.fullmatch(key)
        # Each pattern is a group of its own: a match always says which.
        return None if found is None or found.lastindex is None else found.lastindex - 1

    return by_regex


def any_matching(patterns: tuple[str, ...]) -> Callable[[str], object]:
    """A function of a key below the prefix, true when any of the patterns matches it
    (`first_matching` when which one does not matter): one pattern of a shape string tests
    answer is that test itself, with no call around it.

    Raises:
        ValueError: a pattern's syntax is broken (as `compile_pattern`).
    """
    regex = compile_patterns(patterns)  # compiled all the same: it checks the syntax
    if len(patterns) == 1 and (test := _string_test(patterns[0])) is not None:
        return test
    if all(_string_test(pattern) is not None for pattern in patterns):
        first = first_matching(patterns)
        return lambda key: first(key) is not None
    return regex.fullmatch  # a match, or None


#: What a literal part of a shape may not hold: a wildcard, a class, a slash.
_NOT_LITERAL = re.compile(r"[*?\[/]")


def _string_test(pattern: str) -> Callable[[str], bool] | None:
    """The pattern as a string test that answers as its regex does, for these shapes (NAME
    and EXT literal, without a slash): `**`; `**/*.EXT` (the key ends with ".EXT": its last
    segment does, `*` being any run inside it, empty included); `**/*.*` (a "." in the last
    segment); `**/NAME/**` (a segment NAME, at the start or after a "/", then a "/");
    `NAME/**` (the key starts with "NAME/"). None for any other pattern."""
    if pattern == "**":
        return lambda key: True
    if pattern == "**/*.*":
        return lambda key: key.rfind(".") > key.rfind("/")
    if pattern.startswith("**/*.") and not _NOT_LITERAL.search(pattern[5:]):
        suffix = pattern[4:]
        return lambda key: key.endswith(suffix)
    middle = pattern[3:-3]
    if pattern.startswith("**/") and pattern.endswith("/**") and middle:
        if _NOT_LITERAL.search(middle):
            return None
        first, inside = f"{middle}/", f"/{middle}/"
        return lambda key: key.startswith(first) or inside in key
    name = pattern[:-3]
    if pattern.endswith("/**") and name and not _NOT_LITERAL.search(name):
        start = f"{name}/"
        return lambda key: key.startswith(start)
    return None


def _fewest_bytes(segments: list[list[_Token]]) -> int | None:
    """The length in UTF-8 of the shortest text the pattern matches (None: it matches none)."""
    total = len(segments) - 1  # the slashes
    for token in (t for segment in segments for t in segment):
        if isinstance(token, _Char):
            if token.min_bytes is None:
                return None
            total += token.min_bytes
    # "**/" matches nothing at all, its slash included.
    return total - sum(1 for s in segments[:-1] if _is_globstar(s))


def pattern_problems(pattern: str, prefix: str) -> list[str]:
    """Every reason a pattern is not usable below this prefix (empty when it is).

    Besides its syntax, a pattern is refused when it can never match a key below the prefix:
    a class with no character but "/"; a pattern whose shortest match, after the prefix, is
    longer than S3's 1024-byte key limit; and a leading "/" after a prefix that ends with "/",
    which would ask for keys with "//" there (those are reached with a prefix ending in "//",
    so no selection is lost). Messages never repeat the pattern.
    """
    if not pattern:
        return ["must not be empty (leave the rule out to match every key)"]
    problems = []
    if any(unicodedata.category(character) == "Cs" for character in pattern):
        problems.append("must be UTF-8 text (it holds bytes that are not UTF-8)")
    if len(pattern.encode("utf-8", "surrogatepass")) > PATTERN_MAX_BYTES:
        problems.append(f"must be at most {PATTERN_MAX_BYTES} bytes in UTF-8")
    if CONTROL_CHARACTERS.search(pattern):
        problems.append("holds control characters")
    if any(unicodedata.category(character) == "Cf" for character in pattern):
        # As in a prefix: bidirectional controls make a pattern read as another in a report.
        problems.append("holds invisible format characters (e.g. bidi controls)")
    parsed = _parse(pattern)
    problems += parsed.problems
    if pattern.startswith("/") and prefix.endswith("/"):
        problems.append(
            "starts with '/': keys below the prefix start after its final '/', so it can never "
            "match (drop the leading '/'; for keys with '//' there, end the prefix with '//')"
        )
    # What a broken pattern matches is not known: it is not weighed until it is mended.
    fewest = None if parsed.problems else _fewest_bytes(parsed.segments)
    if fewest is None and not parsed.problems:
        problems.append(
            "can never match below the prefix: it has a class that holds only '/', and a "
            "class never matches '/'"
        )
    elif (
        fewest is not None and len(prefix.encode("utf-8", "surrogatepass")) + fewest > KEY_MAX_BYTES
    ):
        problems.append(
            f"can never match below the prefix: the keys it matches are longer than S3's "
            f"{KEY_MAX_BYTES}-byte limit"
        )
    return problems
