"""Object sizes as people write them ("10MiB", "1.5 GiB", "10 KB") and as messages show them."""

from __future__ import annotations

import re
from decimal import Decimal

#: Bytes a unit stands for, by its lowercase name: binary units are powers of 1024, decimal
#: ones of 1000 (units are read case-insensitively, so "mb" is a megabyte, never a millibit).
UNITS = {
    "": 1,
    "b": 1,
    **{f"{p}ib": 1024 ** (n + 1) for n, p in enumerate("kmgtp")},
    **{f"{p}b": 1000 ** (n + 1) for n, p in enumerate("kmgtp")},
}
#: The largest size a setting may hold: 5 PiB, a thousand times S3's long-standing 5 TiB limit
#: on one object (and still a hundred times the 50 TB newer AWS pages give). A threshold above
#: every object says nothing; one this far above is a slip of the unit, and is refused.
MAX_SIZE = 5 * 1024**5
#: Digits only (no exponent, sign, underscore or other script's digits), an optional unit.
SIZE_TEXT = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)", re.ASCII)
SHOWN_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
EXAMPLES = "e.g. 512, 10MiB, 1.5 GiB or 10 KB"


def parse_size(text: str | int) -> int:
    """A size in bytes from a whole number of bytes, or a number and a unit.

    Args:
        text: bytes as a whole number, or text: a number (decimals allowed) and an optional
            unit, B, KiB, MiB, GiB, TiB, PiB (powers of 1024) or kB, MB, GB, TB, PB (of 1000),
            in any case.

    Raises:
        ValueError: the size is empty, negative, not a number, in an unknown unit, not a whole
            number of bytes, or above MAX_SIZE; the message never repeats the text.
    """
    if isinstance(text, bool) or not isinstance(text, int | str):
        # A JSON true would otherwise be read as 1 byte, a float as a size nobody wrote.
        raise ValueError(f"must be a whole number of bytes or a text with a unit, {EXAMPLES}")
    if isinstance(text, int):
        return _bounded(text)
    written = text.strip()
    if not written:
        raise ValueError(f"must not be empty: a size, {EXAMPLES}")
    if written.startswith("-"):
        raise ValueError("must not be negative")
    found = SIZE_TEXT.fullmatch(written)
    if found is None:
        raise ValueError(f"must be a number of bytes, with or without a unit, {EXAMPLES}")
    number, unit = found.groups()
    if unit.lower() not in UNITS:
        raise ValueError(
            "has an unknown unit: use B, KiB, MiB, GiB, TiB, PiB (powers of 1024) or "
            "kB, MB, GB, TB, PB (powers of 1000)"
        )
    size = Decimal(number) * UNITS[unit.lower()]
    if size != size.to_integral_value():
        raise ValueError("must be a whole number of bytes")
    return _bounded(int(size))


def _bounded(size: int) -> int:
    if size < 0:
        raise ValueError("must not be negative")
    if size > MAX_SIZE:
        raise ValueError(f"must be at most {size_text(MAX_SIZE)}")
    return size


def size_text(size: int) -> str:
    """A size for a message, in the largest binary unit it reaches: "512 B", "1.5 GiB". Exact
    with at most two decimals, else rounded to two and said to be: "about 1.23 GiB"."""
    unit = 0
    while unit < len(SHOWN_UNITS) - 1 and abs(size) >= 1024 ** (unit + 1):
        unit += 1
    scaled = Decimal(size) / 1024**unit
    shown = scaled.quantize(Decimal("0.01"))
    text = f"{shown.normalize():f} {SHOWN_UNITS[unit]}"
    return text if shown == scaled else f"about {text}"
