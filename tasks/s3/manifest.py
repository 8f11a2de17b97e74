"""The plan manifest and the plan types: JSON Lines (gzip when the name ends in .gz), written while
listing, read back to apply."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, cast

from tasks.errors import ConfigError, SafetyRefusal
from tasks.s3.private_files import private_folder

#: A JSON string as `json.dumps(..., ensure_ascii=False)` writes it (the C encoder's).
_json_string = json.encoder.encode_basestring

FORMAT = "s3-housekeeping/plan-v1"
#: The last line of a complete plan holds its totals; a plan without it was cut short.
END = "end"
#: How many planned objects a plan summary keeps, for the artifacts, the report and approval.
FIRST_ROWS = 20


@dataclass(frozen=True)
class PlanTarget:
    """What a plan was made for; an apply must match it exactly."""

    bucket: str
    region: str
    prefix: str
    cutoff: str
    created_at: str
    owner: str | None = None
    #: Which versions the plan selects: current, noncurrent or all (see the flow's docs).
    versions: str = "current"
    #: Where the owner came from: "parameter", or "secret" (then the plan file does not hold
    #: it: it records only that the secret named one).
    owner_from: str | None = None
    #: A plan made from an S3 Inventory: its manifest's address, and when AWS made it (objects
    #: changed since are skipped by their ETag; objects written since are not in it).
    inventory: str | None = None
    inventory_created: str | None = None
    #: The retention rules the plan was made under (tasks/s3/rules.py, `Rules.as_header`): an
    #: apply under other rules is refused.
    rules: dict[str, Any] = field(default_factory=dict)

    def as_header(self) -> dict[str, Any]:
        """The target as a plan file states it: an owner read from the secret stays out."""
        header = asdict(self)
        if self.owner_from == "secret":
            header["owner"] = None
        if not self.rules:  # a plan made under no rule reads as plans always have
            del header["rules"]
        return header


@dataclass(frozen=True)
class PlannedObject:
    """One object the plan may delete, with the ETag it had when listed."""

    key: str
    etag: str
    size: int
    last_modified: str
    storage_class: str
    #: Set for a specific version (versions "noncurrent" or "all"): deleted by id, for good.
    version_id: str | None = None
    is_delete_marker: bool = False
    #: Under retention rules, the rule that selected it: "age", "time_from_key" (its age by
    #: the time in its key) or "include:<pattern>" (the include pattern that let it through).
    rule: str | None = None


def create_private_text(path: Path, what: str) -> IO[str]:
    """A new text file (gzip when its name ends in .gz) readable by its owner only, in a
    folder it creates 0700.

    Raises:
        ConfigError: it cannot be written there (`what` names it).
    """
    try:
        private_folder(path.parent)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        return open_text(path, "w")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot write {what} in '{path.parent}' ({reason})") from None


def open_text(path: Path, mode: str) -> IO[str]:
    """A plan's (or a file beside it) text, gzip when its name ends in .gz."""
    if path.suffix == ".gz":
        return cast(IO[str], gzip.open(path, mode + "t", encoding="utf-8"))
    return path.open(mode, encoding="utf-8")


@dataclass(frozen=True)
class PlanTotals:
    """The trailer of a complete plan."""

    scanned: int
    matched: int
    matched_bytes: int
    #: Versions plans: the keys left with no version holding data once it is applied.
    unrecoverable_keys: int = 0
    #: The objects old enough that the retention rules kept, by reason (as the planner said).
    kept: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedSoFar:
    """What a plan cut short had read and held (the report's counts of a failed run)."""

    scanned: int = 0
    matched: int = 0
    matched_bytes: int = 0
    #: Where the lines it held are on disk, if they are.
    manifest: str | None = None


@dataclass(frozen=True)
class PlanSummary:
    """A finished plan: its totals, where its manifest is kept, and its first rows."""

    #: Where the plan is kept: a local path, or an s3:// address.
    manifest: str
    target: PlanTarget
    scanned: int
    matched: int
    matched_bytes: int
    first_rows: list[PlannedObject] = field(default_factory=list)
    #: The run's private copy of the plan, in its scratch directory: the file it reads.
    copy: Path | None = None
    #: Versions plans: the keys left with no version holding data once it is applied.
    unrecoverable_keys: int = 0
    #: The SHA-256 of the manifest file: what was checked, approved and applied is this file.
    sha256: str = ""
    #: A saved plan, read back from a file: not this run's own listing.
    saved: bool = False
    #: The objects old enough that the retention rules kept, by reason.
    kept: dict[str, int] = field(default_factory=dict)
    #: Where the kept list is (list_kept), if one was written.
    kept_list: str | None = None

    @property
    def from_a_listing(self) -> bool:
        """Whether the plan is this run's own listing (not a file, not an inventory): only
        such a plan is applied without asking the server again what each object is now."""
        return not self.saved and self.target.inventory is None

    @property
    def path(self) -> Path:
        """The file to read the plan's objects from."""
        return self.copy or Path(self.manifest)

    def rows(self) -> list[dict[str, Any]]:
        """The first rows as plain dicts (for artifacts and reports)."""
        return [asdict(row) for row in self.first_rows]


@dataclass
class PlanTally:
    """A plan's running totals as its lines go by: the count, the bytes, and the first rows
    kept for the artifacts, the report and the approval."""

    matched: int = 0
    matched_bytes: int = 0
    first_rows: list[PlannedObject] = field(default_factory=list)

    def add(self, entry: PlannedObject) -> None:
        self.matched += 1
        self.matched_bytes += entry.size
        if len(self.first_rows) < FIRST_ROWS:
            self.first_rows.append(entry)

    def summary(
        self,
        manifest: str,
        target: PlanTarget,
        scanned: int,
        unrecoverable_keys: int = 0,
        kept: dict[str, int] | None = None,
    ) -> PlanSummary:
        """The finished plan these totals are of."""
        return PlanSummary(
            manifest,
            target,
            scanned,
            self.matched,
            self.matched_bytes,
            self.first_rows,
            unrecoverable_keys=unrecoverable_keys,
            kept=dict(kept or {}),
        )


class ManifestWriter:
    """Streams a plan to disk: the header, one line per matched object, then the totals. The
    file is readable by its owner only (0600, in a folder it creates 0700): a plan lists keys.

    Raises:
        ConfigError: the plan cannot be written there.
    """

    def __init__(self, path: Path, target: PlanTarget) -> None:
        self.path = path
        self._file = create_private_text(path, "the plan")
        self._rule_fields: dict[str, str] = {}
        self._write({"format": FORMAT, **target.as_header()})

    def add(self, entry: PlannedObject) -> None:
        """Append one planned object (fields left at their defaults are not written)."""
        # The line json.dumps would write for the record, built by hand: it costs a third of
        # json.dumps, which builds an encoder for every call (see tests: equal, byte for byte).
        line = (
            f'{{"key":{_json_string(entry.key)},"etag":{_json_string(entry.etag)},'
            f'"size":{int(entry.size)},"last_modified":{_json_string(entry.last_modified)},'
            f'"storage_class":{_json_string(entry.storage_class)}'
        )
        if entry.version_id is not None:
            line += f',"version_id":{_json_string(entry.version_id)}'
        if entry.is_delete_marker:
            line += ',"is_delete_marker":true'
        if entry.rule is not None:
            line += self._rule_fields.get(entry.rule) or self._rule_field(entry.rule)
        self._file.write(line + "}\n")

    def _rule_field(self, rule: str) -> str:
        # A plan names a few rules, on every line: each is made JSON once.
        field = self._rule_fields[rule] = f',"rule":{_json_string(rule)}'
        return field

    def finish(self, totals: PlanTotals) -> None:
        """Write the totals: the plan is complete."""
        self._write({END: True, **totals_record(totals)})

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n")

    def flush(self) -> None:
        """Push the lines written so far to the operating system (a gzip sync point: they
        can be read back even if the process dies before the plan is complete)."""
        self._file.flush()

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


def _lines(path: Path) -> Iterator[str]:
    """The manifest's lines, read as they come.

    Raises:
        SafetyRefusal: the file ends before its gzip stream does: the plan was cut short.
        ConfigError: the file is not gzip or not UTF-8 text.
    """
    try:
        with open_text(path, "r") as lines:
            yield from lines
    except EOFError:
        raise SafetyRefusal(
            "plan_complete",
            0,
            0,
            reason=f"the plan '{path.name}' is cut short (its file ends early)",
        ) from None
    except (gzip.BadGzipFile, zlib.error, UnicodeDecodeError):
        raise ConfigError(f"manifest '{path}' is not a readable plan") from None


def read_target(path: Path) -> PlanTarget:
    """The header of a manifest."""
    header = _parse(next(_lines(path), ""), path, 1)
    if header.pop("format", None) != FORMAT:
        raise ConfigError(f"manifest '{path}' is not an s3-housekeeping plan")
    try:
        return PlanTarget(**header)
    except TypeError:
        raise ConfigError(f"manifest '{path}' has a malformed header") from None


def read_objects(path: Path) -> Iterator[PlannedObject]:
    """The planned objects of a manifest, one at a time (header and totals are skipped)."""
    lines = _lines(path)
    next(lines, None)
    for number, line in enumerate(lines, start=2):
        record = _parse(line, path, number)
        if record.get(END):
            if next(lines, None) is not None:
                raise ConfigError(f"manifest '{path}' has lines after its totals")
            return
        entry = _typed(record, PLANNED_FIELDS)
        if entry is None:
            raise ConfigError(f"manifest '{path}' line {number} is malformed")
        yield PlannedObject(**entry)


def read_totals(path: Path) -> PlanTotals | None:
    """The totals of a complete plan, or None when the plan was cut short."""
    last, number = "", 0
    for number, line in enumerate(_lines(path), start=1):  # noqa: B007 - the last one counts
        last = line
    record = _parse(last, path, number) if last.strip() else {}
    if not record.get(END):
        return None
    totals = _typed({"unrecoverable_keys": 0, "kept": {}, **record}, TOTALS_FIELDS, extra=(END,))
    if totals is None or not counts_by_reason(totals["kept"]):
        raise ConfigError(f"manifest '{path}' has malformed totals")
    return PlanTotals(**totals)


def totals_record(totals: PlanTotals) -> dict[str, Any]:
    """Totals as a plan file holds them: `kept` only when a rule kept something."""
    record = asdict(totals)
    if not totals.kept:
        del record["kept"]
    return record


def counts_by_reason(kept: dict[str, Any]) -> bool:
    """Whether a plan's `kept` is counts (whole, not negative) by name."""
    return all(
        isinstance(name, str) and isinstance(n, int) and not isinstance(n, bool) and n >= 0
        for name, n in kept.items()
    )


#: What each field of a plan line, and of its totals, must be: a file is read field by field,
#: so that an edited value of another type is refused as malformed, never compared as is.
PLANNED_FIELDS: dict[str, tuple[type, ...]] = {
    "key": (str,),
    "etag": (str,),
    "size": (int,),
    "last_modified": (str,),
    "storage_class": (str,),
    "version_id": (str, type(None)),
    "is_delete_marker": (bool,),
    "rule": (str, type(None)),
}
TOTALS_FIELDS: dict[str, tuple[type, ...]] = {
    "scanned": (int,),
    "matched": (int,),
    "matched_bytes": (int,),
    "unrecoverable_keys": (int,),
    "kept": (dict,),
}
_OPTIONAL = {"version_id": None, "is_delete_marker": False, "rule": None}


def _typed(
    record: dict[str, Any], kinds: dict[str, tuple[type, ...]], extra: tuple[str, ...] = ()
) -> dict[str, Any] | None:
    """The record's fields when each has its kind (a count never negative, never a bool), and
    it has no field but those; None otherwise."""
    values = {**{k: v for k, v in _OPTIONAL.items() if k in kinds}, **record}
    for name in extra:
        values.pop(name, None)
    if set(values) != set(kinds):
        return None
    for name, value in values.items():
        allowed = kinds[name]
        if not isinstance(value, allowed) or (bool not in allowed and isinstance(value, bool)):
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            return None
    return values


def _parse(line: str, path: Path, number: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError:
        raise ConfigError(f"manifest '{path}' line {number} is not JSON") from None
    if not isinstance(record, dict):
        raise ConfigError(f"manifest '{path}' line {number} is not a JSON object")
    return record


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, in hex."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def isoformat(moment: datetime) -> str:
    """An aware datetime as ISO 8601 in UTC with a Z, the one time format of plans and reports."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
