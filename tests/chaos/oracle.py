"""The oracle of a chaos run: the bucket, object by object, against a snapshot taken before, the
plan the run wrote, its report, its exit code and what the fault proxy told it.

It reads the plan manifest itself (gzip JSON Lines: a header, one line per planned object, a
totals line) rather than through the code under test.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tasks.s3.deletion import ALREADY_GONE
from tests.chaos.scenarios import Expect
from tests.chaos.targets import ObjectState
from tests.support.fault_proxy import Exchange

#: The exit codes each report status allows (README, "Exit codes").
EXIT_CODES_BY_STATUS: dict[str, frozenset[int]] = {
    "completed": frozenset({0}),
    "partial_failure": frozenset({7}),
    "refused": frozenset({6}),
    "failed": frozenset({1, 2, 3, 4, 5, 99}),
}
#: failed_by_code entries for planned objects whose request got no answer the run could read:
#: the server may have deleted them.
UNCONFIRMED_CODES = frozenset({"Unconfirmed"})
PRECONDITION_FAILED = "PreconditionFailed"
#: The tool's own folder in the bucket (an executing run's lease): the run may write there.
TOOL_FOLDER = ".s3-housekeeping/"


Snapshot = Mapping[str, ObjectState]


@dataclass(frozen=True)
class Plan:
    """A plan manifest as written: its header, planned keys with their ETags, and whether it
    ends with its totals line."""

    header: dict[str, Any]
    etags: dict[str, str]
    complete: bool


def read_plan(path: Path) -> Plan:
    """The plan as far as it was written (a run killed mid-plan leaves a gzip stream cut short,
    maybe mid-line)."""
    records = []
    try:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for line in lines:
                records.append(json.loads(line))
    except (EOFError, ValueError):
        pass  # cut short: what came before is the plan so far
    if not records:
        return Plan({}, {}, complete=False)
    header, rest = records[0], records[1:]
    complete = bool(rest) and bool(rest[-1].get("end"))
    objects = rest[:-1] if complete else rest
    return Plan(header, {entry["key"]: entry["etag"] for entry in objects}, complete)


def client_outcomes(exchanges: Sequence[Exchange]) -> dict[str, str | None]:
    """Each key's last outcome the client read in a DeleteObjects answer (an error code, or
    None for deleted); keys whose requests never got an answer are absent."""
    outcomes: dict[str, str | None] = {}
    for exchange in exchanges:
        if exchange.operation == "DeleteObjects":
            outcomes.update(exchange.answers())
    return outcomes


@dataclass
class Verdict:
    """A run's figures and everything the oracle found wrong (empty: the run was right)."""

    planned: int = 0
    deleted_in_bucket: int = 0
    #: Objects gone that were not planned, not under the prefix, not older than the cutoff, or
    #: changed since they were listed.
    wrongly_deleted: list[str] = field(default_factory=list)
    #: Planned objects the report gives no outcome for (none at all when it wrote no report).
    unaccounted: int = 0
    #: Planned objects whose reported outcome the bucket contradicts (the report's deleted
    #: count against the planned objects gone).
    misreported: int = 0
    problems: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> None:
        self.problems.append(problem)


@dataclass(frozen=True)
class RunEvidence:
    """What one executing run left behind."""

    code: int
    report: dict[str, Any] | None
    plan: Plan | None
    #: The bucket before the run (before the apply, for a saved plan) and after it.
    before: Snapshot
    after: Snapshot
    prefix: str
    cutoff: datetime
    exchanges: Sequence[Exchange]
    #: True when this run listed the prefix itself (not a saved plan).
    fresh_plan: bool = True
    #: What the command said last on stderr (its error, or its summary line).
    said: str = ""


def judge(run: RunEvidence) -> Verdict:
    """Every safety and accounting promise, checked object by object."""
    verdict = Verdict()
    gone = set(run.before) - set(run.after)
    planned = run.plan.etags if run.plan else {}
    verdict.planned = len(planned)
    verdict.deleted_in_bucket = len(gone & set(planned))
    for key in sorted(gone):
        state = run.before[key]
        reasons = [
            reason
            for reason, wrong in (
                ("not planned", key not in planned),
                ("outside the prefix", not key.startswith(run.prefix)),
                ("not older than the cutoff", state.last_modified >= run.cutoff),
                ("changed since listed", key in planned and planned[key] != state.etag),
            )
            if wrong
        ]
        if reasons:
            verdict.wrongly_deleted.append(f"{key!r}: {', '.join(reasons)}")
    for key in sorted(set(run.after) - set(run.before)):
        if not key.startswith(TOOL_FOLDER):
            verdict.fail(f"{key!r} appeared during the run")
    if run.plan is not None and run.fresh_plan and run.plan.complete:
        _check_plan_is_the_selection(run, verdict)
    if run.report is None:
        # No report: whatever the run deleted, nobody is told.
        verdict.unaccounted = verdict.deleted_in_bucket
        if verdict.deleted_in_bucket:
            verdict.fail(
                f"exit {run.code} without a report after deleting "
                f"{verdict.deleted_in_bucket} planned objects"
            )
        return verdict
    _check_report(run, verdict, planned, gone)
    return verdict


def _check_plan_is_the_selection(run: RunEvidence, verdict: Verdict) -> None:
    assert run.plan is not None
    eligible = {
        key
        for key, state in run.before.items()
        if key.startswith(run.prefix) and state.last_modified < run.cutoff
    }
    planned = set(run.plan.etags)
    if planned - eligible:
        verdict.fail(f"planned but not eligible: {sorted(planned - eligible)[:5]}")
    if eligible - planned:
        verdict.fail(f"eligible but not planned: {len(eligible - planned)} objects")


def _check_report(
    run: RunEvidence, verdict: Verdict, planned: Mapping[str, str], gone: set[str]
) -> None:
    report = run.report
    assert report is not None
    status = report["status"]
    deleted, skipped, failed = report["deleted"], report["skipped_changed"], report["failed"]
    by_code: dict[str, int] = report["failed_by_code"]
    if run.code not in EXIT_CODES_BY_STATUS.get(status, ()):
        verdict.fail(f"exit {run.code} with report status {status!r}")
    if sum(by_code.values()) != failed:
        verdict.fail(f"failed_by_code {by_code} does not add up to failed {failed}")
    # Objects sent with no answer read may be gone or not: the report may leave them open.
    unconfirmed = sum(count for code, count in by_code.items() if code in UNCONFIRMED_CODES)
    planned_gone = len(gone & set(planned))
    still_there = max(0, deleted - planned_gone)
    unreported = max(0, planned_gone - deleted - unconfirmed)
    verdict.misreported = still_there + unreported
    if still_there:
        verdict.fail(f"report deleted {deleted}, the bucket lost {planned_gone} planned objects")
    if unreported:
        verdict.fail(
            f"the bucket lost {planned_gone} planned objects, the report deleted {deleted} "
            f"(and {unconfirmed} unconfirmed)"
        )
    # A plan cut short by a failure still lists what was planned: the report owes each an
    # outcome (a code for those never sent, too).
    complete = "" if run.plan is None or run.plan.complete else " (cut short)"
    if report["matched"] != len(planned):
        verdict.fail(f"report matched {report['matched']}, the plan{complete} holds {len(planned)}")
    verdict.unaccounted = abs(len(planned) - (deleted + skipped + failed))
    if verdict.unaccounted:
        verdict.fail(
            f"outcomes {deleted} deleted + {skipped} skipped + {failed} failed "
            f"!= {len(planned)} planned{complete}"
        )
    changed = {
        key for key, etag in planned.items() if key in run.before and run.before[key].etag != etag
    }
    if changed - set(run.after):
        verdict.fail(f"changed since planning yet deleted: {sorted(changed - set(run.after))}")
    if status in ("completed", "partial_failure"):
        _check_against_answers(run, verdict, planned)


def _check_against_answers(run: RunEvidence, verdict: Verdict, planned: Mapping[str, str]) -> None:
    """The report's outcomes are the ones the server's (or the proxy's) last answers gave."""
    outcomes = client_outcomes(run.exchanges)
    if not set(planned) <= set(outcomes):
        return  # some key's last request got no answer: its outcome is the run's own guess
    told = Counter(
        # NoSuchKey: already gone (an earlier try of a request whose answer was lost deleted
        # it); the tool counts it deleted, and the bucket check above holds it to that.
        "deleted"
        if code is None or code in ALREADY_GONE
        else "skipped"
        if code == PRECONDITION_FAILED
        else code
        for key, code in outcomes.items()
        if key in planned
    )
    report = run.report
    assert report is not None
    reported = Counter({"deleted": report["deleted"], "skipped": report["skipped_changed"]})
    reported.update(report["failed_by_code"])
    if +told != +reported:
        verdict.fail(f"report {dict(+reported)} but the answers said {dict(+told)}")


def check_expectations(verdict: Verdict, expect: Expect, run: RunEvidence) -> None:
    """What this scenario must end with, added to the verdict's problems."""
    if run.code not in expect.exit_codes:
        verdict.fail(f"exit {run.code}, expected one of {sorted(expect.exit_codes)} ({run.said!r})")
    if expect.report is not None and (run.report is not None) != expect.report:
        verdict.fail("a report was written" if run.report else "no report was written")
    if expect.nothing_deleted and set(run.before) - set(run.after):
        verdict.fail(f"{len(set(run.before) - set(run.after))} objects deleted, none expected")
    if run.report is not None:
        unexpected = set(run.report["failed_by_code"]) - expect.failed_codes
        if unexpected:
            verdict.fail(f"failed with unexpected codes {run.report['failed_by_code']}")
        if run.report["skipped_changed"] != expect.skipped_changed:
            verdict.fail(
                f"skipped_changed {run.report['skipped_changed']}, "
                f"expected {expect.skipped_changed}"
            )
