"""Repeated lines of a plan, found in 8 bytes of memory a line (plans can hold millions)."""

from __future__ import annotations

import hashlib
import heapq
from array import array

#: Digests sorted at a time; the sort's temporary list stays a few MB whatever the plan's size.
CHUNK = 1 << 16


def _digest(key: str, version_id: str | None) -> int:
    text = f"{key}\0{version_id or ''}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


class Repeats:
    """Collects (key, version) pairs and tells whether one came twice.

    Each pair is kept as a 64-bit digest in sorted chunks, merged at the end. Two different
    pairs with one digest also count as a repeat (for a million lines, a chance of about 3 in
    100 million): at worst a plan is refused for nothing; a real repeat is never missed.
    """

    def __init__(self) -> None:
        self._sorted: list[array[int]] = []
        self._chunk = array("Q")

    def add(self, key: str, version_id: str | None) -> None:
        self._chunk.append(_digest(key, version_id))
        if len(self._chunk) == CHUNK:
            self._seal()

    def found(self) -> bool:
        """Whether any pair was added more than once."""
        self._seal()
        previous = None
        for digest in heapq.merge(*self._sorted):
            if digest == previous:
                return True
            previous = digest
        return False

    def _seal(self) -> None:
        if self._chunk:
            self._sorted.append(array("Q", sorted(self._chunk)))
            self._chunk = array("Q")
