"""The plan manifest: JSON Lines (gzip when the name ends in .gz), written while listing."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, cast

from tasks.errors import ConfigError

FORMAT = "s3-housekeeping/plan-v1"


@dataclass(frozen=True)
class PlanTarget:
    """What a plan was made for; an apply must match it exactly."""

    bucket: str
    region: str
    prefix: str
    cutoff: str
    created_at: str
    owner: str | None = None


@dataclass(frozen=True)
class PlannedObject:
    """One object the plan may delete, with the ETag it had when listed."""

    key: str
    etag: str
    size: int
    last_modified: str
    storage_class: str


def _open(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        return cast(IO[str], gzip.open(path, mode + "t", encoding="utf-8"))
    return path.open(mode, encoding="utf-8")


class ManifestWriter:
    """Streams a plan to disk: the header first, then one line per matched object."""

    def __init__(self, path: Path, target: PlanTarget) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = _open(path, "w")
        self._write({"format": FORMAT, **asdict(target)})

    def add(self, entry: PlannedObject) -> None:
        """Append one planned object."""
        self._write(asdict(entry))

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n")

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def read_target(path: Path) -> PlanTarget:
    """The header of a manifest."""
    with _open(path, "r") as lines:
        header = _parse(lines.readline(), path, 1)
    if header.pop("format", None) != FORMAT:
        raise ConfigError(f"manifest '{path}' is not an s3-housekeeping plan")
    try:
        return PlanTarget(**header)
    except TypeError:
        raise ConfigError(f"manifest '{path}' has a malformed header") from None


def read_objects(path: Path) -> Iterator[PlannedObject]:
    """The planned objects of a manifest, one at a time (the header is skipped)."""
    with _open(path, "r") as lines:
        next(lines, None)
        for number, line in enumerate(lines, start=2):
            try:
                yield PlannedObject(**_parse(line, path, number))
            except TypeError:
                raise ConfigError(f"manifest '{path}' line {number} is malformed") from None


def _parse(line: str, path: Path, number: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError:
        raise ConfigError(f"manifest '{path}' line {number} is not JSON") from None
    if not isinstance(record, dict):
        raise ConfigError(f"manifest '{path}' line {number} is not a JSON object")
    return record


def isoformat(moment: datetime) -> str:
    """An aware datetime as ISO 8601 in UTC with a Z, the one time format of plans and reports."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
