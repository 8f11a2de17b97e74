"""Key ranges: a split covers its range exactly, and split points land where the keys are."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tasks.s3.key_ranges import DELIMITER, KeyRange, split_points

# Keys as users write them, and the corners of the key space: shared starts, the folder
# separator, letters beyond the Basic Multilingual Plane and the largest code point.
LETTERS = st.sampled_from(
    ["0", "1", "9", "a", "z", "-", "/", "é", "中", "\U0001f600", "\U0010ffff"]
)
KEYS = st.lists(st.text(LETTERS, min_size=0, max_size=6).map("p/".__add__), max_size=40)
POINTS = st.lists(st.text(LETTERS, max_size=5).map("p/".__add__), max_size=6)


def owners(key: str, ranges: list[KeyRange]) -> list[KeyRange]:
    return [key_range for key_range in ranges if key_range.holds(key)]


class TestSplitCoversTheRangeExactly:
    @given(keys=KEYS, points=POINTS)
    def test_every_key_falls_in_exactly_one_piece_when_split_anywhere(
        self, keys: list[str], points: list[str]
    ) -> None:
        pieces = KeyRange().split_at(sorted(set(points)))

        for key in keys:
            assert len(owners(key, pieces)) == 1

    @given(keys=KEYS, points=POINTS, bounds=st.lists(st.text(LETTERS, max_size=4), min_size=2))
    def test_a_bounded_range_splits_into_its_own_keys_only_when_points_are_inside(
        self, keys: list[str], points: list[str], bounds: list[str]
    ) -> None:
        low, high = sorted(f"p/{bound}" for bound in bounds[:2])
        whole = KeyRange(low, high)
        inside = sorted({point for point in points if whole.holds(point) and point != high})

        pieces = whole.split_at(inside)

        for key in keys:
            assert len(owners(key, pieces)) == (1 if whole.holds(key) else 0)

    def test_a_split_point_that_is_a_key_belongs_to_the_piece_before_it(self) -> None:
        first, second = KeyRange().split_at(["p/m"])

        assert first.holds("p/m") and not second.holds("p/m")
        assert second.holds("p/m0") and not first.holds("p/m0")


class TestSplitPoints:
    def test_cuts_a_counter_into_slots_of_about_the_shard_size_when_keys_are_numbered(
        self,
    ) -> None:
        page = [f"log/{n:08d}" for n in range(1000)]

        points = split_points(page, KeyRange(page[-1]), "log/", shard_size=20_000, count=3)

        # 1000 keys span 10 digits at their first varying place: 100 a slot there, 10,000 two
        # places up, 100,000 three places up; the deepest slot of 20,000 or more is chosen.
        assert points == ["log/001", "log/002", "log/003"]

    def test_cuts_a_hash_space_at_its_first_letter_when_keys_are_hex(self) -> None:
        hexdigits = "0123456789abcdef"
        # The first page of a few hundred thousand hashes: all start with 0, then 0 or 1.
        page = sorted(f"cache/0{a}{b}{c}" for a in "01" for b in hexdigits for c in hexdigits)

        points = split_points(page, KeyRange(page[-1]), "cache/", shard_size=20_000, count=20)

        assert points == [f"cache/{letter}" for letter in hexdigits[1:]]

    def test_stays_inside_the_range_when_it_has_an_end(self) -> None:
        page = [f"log/{n:08d}" for n in range(1000)]
        remaining = KeyRange(page[-1], "log/0000250")

        points = split_points(page, remaining, "log/", shard_size=100, count=99)

        assert points and all(remaining.holds(point) for point in points)
        assert points[-1] < "log/0000250"

    def test_proposes_nothing_when_the_page_is_too_small_to_tell(self) -> None:
        assert split_points(["log/1"], KeyRange("log/1"), "log/", 10, 5) == []
        assert split_points(["log/1", "log/1"], KeyRange("log/1"), "log/", 10, 5) == []

    def test_proposes_nothing_when_what_is_left_looks_smaller_than_a_shard(self) -> None:
        page = [f"flat/x-{n:03d}" for n in range(1000)]

        assert split_points(page, KeyRange(page[-1]), "flat/", 20_000, 8) == []

    def test_never_cuts_a_folder_when_the_listing_is_delimited(self) -> None:
        page = sorted(
            [f"tree/d{n:03d}/" for n in range(500)] + [f"tree/f{n:03d}" for n in range(500)]
        )

        points = split_points(page, KeyRange(page[-1]), "tree/", 10, 50, delimited=True)

        assert all(DELIMITER not in point[len("tree/") :] for point in points)

    @given(
        page=st.lists(st.text(LETTERS, min_size=1, max_size=6).map("p/".__add__), min_size=2),
        shard_size=st.integers(1, 50_000),
        count=st.integers(1, 40),
        delimited=st.booleans(),
    )
    def test_points_are_sorted_inside_the_remaining_range_under_the_prefix_for_any_page(
        self, page: list[str], shard_size: int, count: int, delimited: bool
    ) -> None:
        page = sorted(page)
        remaining = KeyRange(page[-1])

        points = split_points(page, remaining, "p/", shard_size, count, delimited)

        assert points == sorted(set(points)) and len(points) <= count
        assert all(point.startswith("p/") and remaining.holds(point) for point in points)
        if delimited:
            assert all(DELIMITER not in point[2:] for point in points)
