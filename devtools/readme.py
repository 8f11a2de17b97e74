"""`make readme`: rewrite the README's tables of settings from the settings model."""

from __future__ import annotations

import sys
from pathlib import Path

from flows.cli import reference_tables

README = Path(__file__).resolve().parents[1] / "README.md"
START = "<!-- settings: made by `make readme` from tasks/settings.py; do not edit by hand -->\n"
END = "<!-- settings: end -->\n"


def with_tables(text: str, tables: str) -> str:
    """The README's text with the block between the markers replaced by `tables`."""
    before, start, rest = text.partition(START)
    _, end, after = rest.partition(END)
    if not (start and end):
        raise ValueError("the README has no settings markers")
    return f"{before}{START}\n{tables}\n{END}{after}"


def main() -> int:
    text = README.read_text()
    updated = with_tables(text, reference_tables())
    if updated != text:
        README.write_text(updated)
        print("README.md: settings tables rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
