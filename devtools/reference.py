"""`make reference`: rewrite the settings reference page's tables from the settings model."""

from __future__ import annotations

import sys
from pathlib import Path

from flows.cli import reference_tables

SETTINGS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "settings.md"
START = "<!-- settings: made by `make reference` from tasks/settings.py; do not edit by hand -->\n"
END = "<!-- settings: end -->\n"


def with_tables(text: str, tables: str) -> str:
    """The page's text with the block between the markers replaced by `tables`."""
    before, start, rest = text.partition(START)
    _, end, after = rest.partition(END)
    if not (start and end):
        raise ValueError("the settings page has no settings markers")
    return f"{before}{START}\n{tables}\n{END}{after}"


def main() -> int:
    text = SETTINGS_PAGE.read_text()
    updated = with_tables(text, reference_tables())
    if updated != text:
        SETTINGS_PAGE.write_text(updated)
        print(f"{SETTINGS_PAGE.relative_to(SETTINGS_PAGE.parents[2])}: settings tables rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
