"""What a run did, as a person at a terminal reads it; and every planned key, for a pipe."""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from tasks.errors import HousekeepingError, shown_text
from tasks.guards.approval import human_bytes
from tasks.s3.folders import folder_of
from tasks.s3.manifest import PlannedObject, read_objects
from tasks.s3.rules import kept_text
from tasks.s3.uris import is_s3_uri

#: How many planned objects and folders the summary shows (--list prints every object).
FIRST_OBJECTS = 20
FIRST_FOLDERS = 10


def run_summary(report: dict[str, Any], now: datetime | None = None) -> str:
    """The run in a few lines: what it planned or deleted, by folder, and its first objects."""
    now = now or datetime.now(UTC)
    lines = [headline(report)]
    if report.get("kept"):
        lines.append(f"Old enough but kept by the rules: {kept_text(report['kept'])}.")
    if report.get("kept_list") and report.get("kept"):
        lines.append(f"Each of them, with its rule: {report['kept_list']}")
    elif report.get("kept_list"):
        lines.append(f"No rule kept an old object (an empty kept list: {report['kept_list']}).")
    lines += [f"note: {note}" for note in report.get("notes", [])]
    if report.get("bucket_action") == "would_create":
        lines.append(
            f"note: bucket {report['bucket']} does not exist: an executing run with "
            "--create-bucket creates it"
        )
    rows = plan_rows(report)
    if rows is not None and report.get("matched"):
        lines += ["", *plan_table(rows, report, now)]
    elif report.get("manifest"):
        lines.append(f"The plan is at {report['manifest']}.")
    if report["status"] == "dry_run" and report.get("matched") and report.get("manifest"):
        lines += [
            "",
            "To delete them: run again with --execute (it lists again), or delete exactly this "
            f"plan: --plan {report['manifest']} --plan-sha256 {report['manifest_sha256']} "
            "--execute",
        ]
    return "\n".join(lines)


def headline(report: dict[str, Any]) -> str:
    """One sentence: what happened under which prefix, and to how much."""
    where = f"s3://{report['bucket']}/{report['prefix']}"
    size = human_bytes(report.get("matched_bytes", 0))
    before = f"last modified before {moment(report['cutoff'])}"
    matched, status = report.get("matched", 0), report["status"]
    if status == "dry_run":
        return (
            f"Dry run: {matched:,} objects ({size}) under {where} would be deleted, {before}; "
            f"{report.get('scanned', 0):,} listed. Nothing was deleted."
        )
    if status == "refused":
        message = report.get("message", "")
        return f"{message[:1].upper()}{message[1:]}."
    outcome = (
        f"deleted {report.get('deleted', 0):,} of {matched:,} planned objects ({size}) under "
        f"{where}, {before}"
    )
    gone = report.get("already_gone", 0)
    outcome += f" ({gone:,} already gone)" if gone else ""
    outcome += f"; {report.get('skipped_changed', 0):,} skipped (changed since listed)"
    outcome += f", {report.get('failed', 0):,} failed, in {report.get('duration_s', 0):.1f} s."
    if status == "completed":
        return outcome[0].upper() + outcome[1:]
    return f"{status.replace('_', ' ').capitalize()}: {outcome} {report.get('message', '')}"


def plan_table(rows: Iterator[PlannedObject], report: dict[str, Any], now: datetime) -> list[str]:
    """The plan's folders with their counts and sizes, then its first objects."""
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    first: list[PlannedObject] = []
    for row in rows:
        folder = folder_of(row.key, report["prefix"])
        counts[folder] += 1
        sizes[folder] += row.size
        if len(first) < FIRST_OBJECTS:
            first.append(row)
    width = max(len(shown_text(folder)) for folder in counts)
    lines = [f"  {'folder':<{width}}  {'objects':>9}  {'size':>10}"]
    for folder, count in counts.most_common(FIRST_FOLDERS):
        lines.append(
            f"  {shown_text(folder):<{width}}  {count:>9,}  {human_bytes(sizes[folder]):>10}"
        )
    if len(counts) > FIRST_FOLDERS:
        lines.append(f"  ... and {len(counts) - FIRST_FOLDERS:,} more folders")
    width = max(len("planned object"), *(len(shown_text(row.key)) for row in first))
    # Under retention rules each line names the rule that selected it: shown beside it.
    ruled = any(row.rule for row in first)
    lines += ["", f"  {'planned object':<{width}}  {'age':>9}  {'size':>10}" + ruled * "  rule"]
    lines += [
        f"  {shown_text(row.key):<{width}}  {age(row.last_modified, now):>9}  "
        f"{human_bytes(row.size):>10}" + (f"  {shown_text(row.rule or '')}" if ruled else "")
        for row in first
    ]
    more = report["matched"] - len(first)
    if more > 0:
        lines.append(f"  ... and {more:,} more: the plan is at {report['manifest']} (--list)")
    return lines


def moment(text: str) -> str:
    """An ISO 8601 instant as a person reads it: '2026-11-07 14:22 UTC'."""
    try:
        return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return text


def age(last_modified: str, now: datetime) -> str:
    """How long ago, in the largest whole unit: '45 days', '3 hours', '12 min'."""
    seconds = (now - datetime.fromisoformat(last_modified)).total_seconds()
    for unit, length in (("days", 86400), ("hours", 3600), ("min", 60)):
        if seconds >= length:
            return f"{int(seconds // length)} {unit}"
    return f"{max(int(seconds), 0)} s"


def plan_rows(report: dict[str, Any]) -> Iterator[PlannedObject] | None:
    """The objects of the run's plan, read from its file where this machine has it; None for
    a plan kept in S3, or a cluster's index of parts."""
    manifest = report.get("manifest")
    if not manifest or is_s3_uri(manifest) or not Path(manifest).is_file():
        return None
    rows = read_objects(Path(manifest))
    try:
        first = next(rows, None)
    except (HousekeepingError, OSError, ValueError):
        return None
    return iter(()) if first is None else itertools.chain([first], rows)


def list_plan(report: dict[str, Any], json_lines: bool, out: TextIO) -> None:
    """Every planned object on `out`: its key, a terminal's unprintable characters escaped,
    one per line; or with `json_lines` the plan's own line for it, exact. A plan kept where
    this machine cannot read it is said on stderr."""
    rows = plan_rows(report)
    if rows is None:
        if report.get("manifest"):
            print(
                f"s3-housekeeping: --list reads a plan kept on this machine; this run's is at "
                f"{report['manifest']} (a local --manifest-location keeps it here)",
                file=sys.stderr,
            )
        return
    try:
        for row in rows:
            if json_lines:
                fields = {k: v for k, v in asdict(row).items() if v not in (None, False)}
                out.write(json.dumps(fields, ensure_ascii=False) + "\n")
            else:
                out.write(shown_text(row.key) + "\n")
        out.flush()
    except BrokenPipeError:
        # The reader stopped (`| head`): what it did not read is not wanted. Python would
        # report the pipe again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
