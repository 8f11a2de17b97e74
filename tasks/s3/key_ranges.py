"""Key ranges of a flat prefix, and where to split one that proves large.

S3 lists a flat prefix one page of 1000 keys after another: a hundred million keys are a
hundred thousand round trips in a row. Ranges of the key space, listed with `StartAfter`, can
be listed at once. The split points are guesses made from the keys a page has shown; they
decide how evenly the work spreads, never which keys are listed: the ranges of a split always
cover exactly the key space of the range they came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

#: The separator of "folders"; a delimited listing must never cut one in two.
DELIMITER = "/"


@dataclass(frozen=True)
class KeyRange:
    """The keys k with start_after < k <= up_to; None is no bound on that side.

    The lower bound is exclusive because S3's `StartAfter` is; the upper one inclusive so that
    a split point belongs to exactly one of the two ranges it separates, whether or not it is
    a key.
    """

    start_after: str | None = None
    up_to: str | None = None

    def holds(self, key: str) -> bool:
        after = self.start_after is None or key > self.start_after
        return after and (self.up_to is None or key <= self.up_to)

    def beyond(self, key: str) -> bool:
        """Whether the key is past the range's end (a listing of the range can stop)."""
        return self.up_to is not None and key > self.up_to

    def split_at(self, points: Sequence[str]) -> list[KeyRange]:
        """The consecutive ranges the points cut this one into (points sorted, inside it)."""
        bounds = [self.start_after, *points, self.up_to]
        return [KeyRange(low, high) for low, high in pairwise(bounds)]


def alphabet(keys: Sequence[str], start: int) -> str:
    """The characters the keys use from position `start` on, in order: the digits of a
    counter, the letters of a hash, the words of a name."""
    return "".join(sorted({char for key in keys for char in key[start:]}))


def split_points(
    page: Sequence[str],
    remaining: KeyRange,
    prefix: str,
    shard_size: int,
    count: int,
    delimited: bool = False,
) -> list[str]:
    """Up to `count` points that cut the remaining range into pieces of about `shard_size`
    keys, guessed from a page of the range's keys.

    A page of sorted keys agrees up to some position and varies after it; the characters it
    uses there are taken as the key space's alphabet. If the page spans `s` of its alphabet's
    `a` characters at its first varying position, one character there holds about `len(page)
    / s` keys, and one character a position earlier `a` times as many. The points are the
    keys' common start cut at the position whose slots hold about `shard_size` keys, followed
    by each next character of the alphabet: for keys `log/00000000` to `log/00000999` and
    20,000 keys a shard, `log/001`, `log/002`, and so on. No point is proposed when what is
    left at that position looks smaller than a shard. A guess that is wrong costs a request or
    two (a range with no key in it), not a key.

    Args:
        page: the keys (or common prefixes) of the page last listed, sorted.
        remaining: the range still to list, starting after the page's last key.
        prefix: the listing's prefix; every point starts with it.
        shard_size: about how many keys a piece should hold.
        count: the most points to return.
        delimited: the listing rolls "folders" up: no point may cut one.
    """
    if count < 1 or len(page) < 2 or page[0] == page[-1]:
        return []
    first, last = page[0], page[-1]
    varying = _common_length(first, last)
    letters = alphabet(page, varying)
    if varying < len(prefix) or varying >= len(last) or not letters:
        return []
    # A first key that ends there (a start of the last one) comes before every letter.
    low = first[varying] if varying < len(first) else ""
    spanned = sum(low <= letter <= last[varying] for letter in letters) or 1
    per_slot = len(page) / spanned
    position = varying
    # Up to the shard's size, over characters that look like they vary (a fixed separator
    # or word, like the "-" of "obj-0001", is where a counter or hash starts).
    while position > len(prefix) and per_slot < shard_size and last[position - 1] in letters:
        position -= 1
        per_slot *= len(letters)
    ahead = sum(letter > last[position] for letter in letters)
    if per_slot * max(ahead, 1) < shard_size:
        return []  # what is left looks like one shard's worth: not worth a request to probe
    # One place finer when the range ends before the next slot (a piece already cut), then
    # coarser when this slot's characters are used up.
    finer = [position + 1] if position < varying else []
    for at in [position, *finer, *range(position - 1, len(prefix) - 1, -1)]:
        points = _points_at(last, at, letters, remaining, prefix, delimited, count)
        if points:
            return points
    return []


def _points_at(
    last: str,
    position: int,
    letters: str,
    remaining: KeyRange,
    prefix: str,
    delimited: bool,
    count: int,
) -> list[str]:
    stem = last[:position]
    if delimited and DELIMITER in stem[len(prefix) :]:
        return []  # inside a folder that the listing rolls up whole
    current = last[position] if position < len(last) else ""
    points: list[str] = []
    for letter in letters:
        if letter <= current or (delimited and letter == DELIMITER):
            continue
        point = stem + letter
        if not remaining.holds(point) or point == remaining.up_to:
            break  # past the range's end: later letters are too
        points.append(point)
        if len(points) == count:
            break
    return points


def _common_length(first: str, second: str) -> int:
    length = 0
    for a, b in zip(first, second, strict=False):
        if a != b:
            break
        length += 1
    return length
