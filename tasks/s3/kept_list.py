"""The kept list (`list_kept`): every object old enough that a rule kept, with the rule, beside
the plan (borg's `--list-kept`).

A gzip JSON Lines file readable by its owner only, as a plan is: a header naming the plan's
target, then one line an object (`key`, `version_id` for a version, `size`, `last_modified`,
`reason`, and `detail` where S3 said more: "legal hold", "retained until ..."). It is a report:
nothing reads it back to decide anything.
"""

from __future__ import annotations

import json
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

from tasks.s3 import plan_store
from tasks.s3.manifest import PlanTarget, create_private_text, open_text
from tasks.s3.plan_store import PlanFile

FORMAT = "s3-housekeeping/kept-v1"
SUFFIX = ".kept.jsonl.gz"


def kept_list_name(plan_name: str) -> str:
    """The kept list's file name beside a plan's: PLAN.kept.jsonl.gz."""
    return plan_name.removesuffix(".jsonl.gz") + SUFFIX


class KeptList:
    """Writes the kept list, a line at a time (`add`), as the plan is made; `close` it.

    Raises:
        ConfigError: the file cannot be written there.
    """

    def __init__(self, path: Path, target: PlanTarget) -> None:
        self.path = path
        self.count = 0
        self._file = create_private_text(path, "the kept list")
        header = {"format": FORMAT, **target.as_header()}
        self._file.write(json.dumps(header, ensure_ascii=False) + "\n")

    def add(
        self,
        key: str,
        version_id: str | None,
        size: int,
        last_modified: str,
        reason: str,
        detail: str | None = None,
    ) -> None:
        line: dict[str, Any] = {"key": key}
        if version_id is not None:
            line["version_id"] = version_id
        line |= {"size": size, "last_modified": last_modified, "reason": reason}
        if detail:
            line["detail"] = detail
        self._file.write(json.dumps(line, ensure_ascii=False) + "\n")
        self.count += 1

    def add_lines_of(self, path: Path) -> None:
        """Every object line of another kept list (a cluster part's), as it is."""
        with open_text(path, "r") as lines:
            next(lines, None)  # its header: this list has its own
            for line in lines:
                self._file.write(line)
                self.count += 1

    def close(self) -> None:
        self._file.close()


def opened_kept_list(
    stack: ExitStack, location: str, target: PlanTarget, name: str, scratch: Path
) -> tuple[PlanFile, KeptList]:
    """A new kept list named `name` where the plans go (`plan_store.new_plan_file`), closed
    when `stack` closes: keep the file (`plan_store.keep`) after that."""
    kept_file = plan_store.new_plan_file(location, target.bucket, name, scratch)
    return kept_file, stack.enter_context(closing(KeptList(kept_file.path, target)))


def read_kept_list(path: Path) -> list[dict[str, Any]]:
    """A kept list's object lines (the header skipped): for tests and tools."""
    with open_text(path, "r") as lines:
        return [json.loads(line) for line in list(lines)[1:]]
