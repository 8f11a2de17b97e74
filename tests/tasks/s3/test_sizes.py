"""Sizes as written in settings: each unit, each refusal, and the text messages show read back."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.s3.sizes import MAX_SIZE, UNITS, parse_size, size_text


class TestParseSize:
    @pytest.mark.parametrize(
        ("text", "size"),
        [
            ("512", 512),
            (512, 512),
            ("0", 0),
            (0, 0),
            ("10MiB", 10 * 1024**2),
            ("1.5 GiB", 3 * 1024**3 // 2),
            ("1GB", 10**9),
            ("10 KB", 10_000),
            ("10 kB", 10_000),
            ("2 kib", 2048),
            ("3 TIB", 3 * 1024**4),
            ("1 pb", 10**15),
            ("7B", 7),
            (" 8 b ", 8),
            (".5KiB", 512),
            ("5 PiB", MAX_SIZE),
        ],
    )
    def test_reads_the_bytes_when_the_size_is_written_in_a_known_way(
        self, text: str | int, size: int
    ) -> None:
        assert parse_size(text) == size

    @pytest.mark.parametrize(
        ("text", "says"),
        [
            ("", "must not be empty"),
            ("   ", "must not be empty"),
            ("-1", "must not be negative"),
            (-1, "must not be negative"),
            ("-1 KiB", "must not be negative"),
            ("nan", "must be a number of bytes"),
            ("inf", "must be a number of bytes"),
            ("1e3", "must be a number of bytes"),
            ("1_000", "must be a number of bytes"),
            ("+1", "must be a number of bytes"),
            ("\u0661", "must be a number of bytes"),
            ("10 XB", "unknown unit"),
            ("10 Kibibytes", "unknown unit"),
            ("1.5B", "whole number of bytes"),
            ("1.0001 KiB", "whole number of bytes"),
            ("6 PiB", "at most 5 PiB"),
            (MAX_SIZE + 1, "at most 5 PiB"),
        ],
    )
    def test_refuses_with_the_reason_when_the_size_is_not_usable(
        self, text: str | int, says: str
    ) -> None:
        with pytest.raises(ValueError, match=says):
            parse_size(text)

    @pytest.mark.parametrize("value", [True, False, 1.0, None])
    def test_refuses_when_the_value_is_neither_a_whole_number_nor_a_text(
        self, value: object
    ) -> None:
        with pytest.raises(ValueError, match="whole number of bytes or a text"):
            parse_size(value)  # type: ignore[arg-type]

    def test_never_repeats_the_text_when_it_refuses_it(self) -> None:
        with pytest.raises(ValueError) as caught:
            parse_size("12 Zettabytes")
        assert "Zettabytes" not in str(caught.value)

    @settings(max_examples=300)
    @given(
        number=st.decimals(min_value=0, max_value=10**6, places=3),
        unit=st.sampled_from(sorted(UNITS)),
        spaces=st.sampled_from(["", " ", "  "]),
        upper=st.booleans(),
    )
    def test_is_the_number_times_the_unit_when_that_is_a_whole_number_of_bytes(
        self, number: Decimal, unit: str, spaces: str, upper: bool
    ) -> None:
        text = f"{number}{spaces}{unit.upper() if upper else unit}"
        exact = number * UNITS[unit]
        if exact != int(exact) or exact > MAX_SIZE:
            with pytest.raises(ValueError):
                parse_size(text)
        else:
            assert parse_size(text) == exact


class TestSizeText:
    @pytest.mark.parametrize(
        ("size", "text"),
        [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1 KiB"),
            (1536, "1.5 KiB"),
            (10 * 1024**2, "10 MiB"),
            (MAX_SIZE, "5 PiB"),
            (1024**3 + 1, "about 1 GiB"),
            (1_320_702_444, "about 1.23 GiB"),
        ],
    )
    def test_shows_the_largest_unit_reached_when_given_a_size(self, size: int, text: str) -> None:
        assert size_text(size) == text

    @settings(max_examples=500)
    @given(
        size=st.integers(min_value=0, max_value=MAX_SIZE)
        # Quarters of a unit, which the text shows exactly.
        | st.builds(
            lambda quarters, unit: min(quarters * 1024**unit // 4, MAX_SIZE),
            st.integers(min_value=0, max_value=4096),
            st.integers(min_value=1, max_value=5),
        )
    )
    def test_reads_back_as_the_size_when_it_is_exact(self, size: int) -> None:
        text = size_text(size)
        if text.startswith("about "):
            number, unit = text.removeprefix("about ").split(" ")
            approximate = Decimal(number) * UNITS[unit.lower()]
            assert abs(approximate - size) <= Decimal("0.005") * UNITS[unit.lower()]
        else:
            assert parse_size(text) == size
