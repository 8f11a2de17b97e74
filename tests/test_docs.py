"""The documentation agrees with the code: the README's and the reference's exit codes are the
ones tasks/errors.py carries, and the README's links lead to files that exist. (`make docs`
checks the links inside the site.)"""

from __future__ import annotations

import re
from pathlib import Path

from tasks import errors

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXIT_CODES_PAGE = ROOT / "docs" / "reference" / "exit-codes.md"
#: A markdown link's target, without its anchor.
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)\s]*)?\)")


def table_after(text: str, heading: str) -> list[list[str]]:
    """The rows of the first table after the line `heading`, without its header, cells stripped."""
    rows: list[list[str]] = []
    for line in f"\n{text}".split(f"\n{heading}\n", 1)[1].splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows[2:]


def codes_carried() -> dict[str, int]:
    """Each exception class of tasks/errors.py that carries an exit code of its own (not its
    parent's: MissingBucket is a ConfigError)."""
    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.HousekeepingError)
    ]
    return {
        cls.__name__: cls.exit_code
        for cls in classes
        if cls.exit_code != 99 and cls.__base__ is errors.HousekeepingError
    }


class TestExitCodes:
    def test_readme_and_reference_give_the_same_codes_and_meanings_when_compared(self) -> None:
        in_readme = table_after(README.read_text(), "## Exit codes")
        in_reference = table_after(EXIT_CODES_PAGE.read_text(), "# Exit codes")

        assert [row[:2] for row in in_reference] == in_readme

    def test_each_code_is_the_one_its_exception_carries_when_compared(self) -> None:
        rows = table_after(EXIT_CODES_PAGE.read_text(), "# Exit codes")
        raised_as = {row[2].strip("`"): int(row[0]) for row in rows if row[2].startswith("`")}

        assert raised_as == codes_carried()
        assert [int(row[0]) for row in rows] == [0, *sorted(raised_as.values()), 99]


class TestReadmeLinks:
    def test_each_relative_link_leads_to_a_file_when_followed(self) -> None:
        targets = [
            target
            for target in LINK.findall(README.read_text())
            if not target.startswith(("http://", "https://"))
        ]

        assert targets, "the README links into the documentation"
        assert [target for target in targets if not (ROOT / target).is_file()] == []
