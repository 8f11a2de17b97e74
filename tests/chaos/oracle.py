"""The oracle of a chaos run: the bucket, object by object, against a snapshot taken before, the
plan the run wrote, its report, its exit code and what the fault proxy told it.

It reads the plan manifest itself (gzip JSON Lines: a header, one line per planned object, a
totals line) and a killed run's journal rather than through the code under test. In a versions
mode the bucket is compared version by version, by (key, version id).

A run killed outright (SIGKILL) writes no report: its journal is its account. Runs of one
scenario judged together (a killed run and its re-run, two runs started at once) get the checks
of each run and those of their sequence.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from tasks.s3.deletion import ALREADY_GONE
from tests.chaos.scenarios import Expect
from tests.chaos.targets import Identity, ObjectState
from tests.support.fault_proxy import Exchange

#: The exit codes each report status allows (docs/reference/exit-codes.md).
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
LOCK_KEY = f"{TOOL_FOLDER}lock.json"
#: What a run refused by a guard says (docs/reference/exit-codes.md): it deleted nothing.
REFUSED = "refused"


Snapshot = Mapping[Identity, ObjectState]


def key_of(identity: Identity) -> str:
    return identity if isinstance(identity, str) else identity[0]


def in_tool_folder(identity: Identity) -> bool:
    return key_of(identity).startswith(TOOL_FOLDER)


@dataclass(frozen=True)
class Plan:
    """A plan manifest as written: its header, planned objects with their ETags (by key, and
    by identity: the key, or (key, version id) for a line naming a version), and whether it
    ends with its totals line."""

    header: dict[str, Any]
    etags: dict[str, str]
    complete: bool
    entries: dict[Identity, str] = field(default_factory=dict)
    #: How many object lines the file holds (None: one an entry); more than the entries when
    #: a line names an object a second time.
    lines: int | None = None

    @property
    def versions(self) -> str:
        return str(self.header.get("versions", "current"))

    @property
    def line_count(self) -> int:
        return len(self.entries) if self.lines is None else self.lines


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
    entries: dict[Identity, str] = {
        (entry["key"], entry["version_id"]) if entry.get("version_id") else entry["key"]: entry[
            "etag"
        ]
        for entry in objects
    }
    etags = {entry["key"]: entry["etag"] for entry in objects}
    return Plan(header, etags, complete, entries, lines=len(objects))


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
    #: Objects a sequence of runs should have deleted in the end and left (a re-run's).
    left_behind: int = 0
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
    #: Everything it said on stderr.
    stderr: str = ""
    #: Which versions the run deletes (its --versions): current, noncurrent or all; the
    #: snapshots of a versions mode hold every version, by (key, version id).
    versions: str = "current"
    #: A run killed outright: its journal's records (it could write no report).
    journal: list[dict[str, Any]] | None = None


def old_enough(state: ObjectState, cutoff: datetime, versions: str) -> bool:
    """Whether the object (or version) is one the mode may delete, by its state now: for
    noncurrent, a version replaced before the cutoff (never the current one)."""
    if versions == "noncurrent":
        return state.noncurrent_since is not None and state.noncurrent_since < cutoff
    return state.last_modified < cutoff


def judge(run: RunEvidence) -> Verdict:
    """Every safety and accounting promise, checked object (or version) by object."""
    verdict = Verdict()
    # The run's own lease is its to give back (or to take over from a killed run).
    gone = {
        identity for identity in set(run.before) - set(run.after) if key_of(identity) != LOCK_KEY
    }
    planned = run.plan.entries if run.plan else {}
    verdict.planned = len(planned)
    verdict.deleted_in_bucket = len(gone & set(planned))
    refused = run.report is not None and run.report["status"] == REFUSED
    age = {"noncurrent": "not noncurrent since before the cutoff"}.get(
        run.versions, "not older than the cutoff"
    )
    for identity in sorted(gone, key=str):
        state, key = run.before[identity], key_of(identity)
        reasons = [
            reason
            for reason, wrong in (
                ("deleted by a refused run", refused),
                ("not planned", identity not in planned),
                ("outside the prefix", not key.startswith(run.prefix)),
                (age, not old_enough(state, run.cutoff, run.versions)),
                ("changed since listed", identity in planned and planned[identity] != state.etag),
            )
            if wrong
        ]
        if reasons:
            verdict.wrongly_deleted.append(f"{identity!r}: {', '.join(reasons)}")
    for identity in sorted(set(run.after) - set(run.before), key=str):
        if not in_tool_folder(identity):
            verdict.fail(f"{identity!r} appeared during the run")
    if run.plan is not None and run.fresh_plan and run.plan.complete:
        _check_plan_is_the_selection(run, verdict)
    if run.report is None and run.journal is not None:
        _check_journal(run.journal, verdict)
        return verdict
    if run.report is None:
        # No report: whatever the run deleted, nobody is told.
        verdict.unaccounted = verdict.deleted_in_bucket
        if verdict.deleted_in_bucket:
            verdict.fail(
                f"exit {run.code} without a report after deleting "
                f"{verdict.deleted_in_bucket} planned objects"
            )
        return verdict
    if refused:
        _check_refusal(run, verdict)
        return verdict
    _check_report(run, verdict, planned, gone)
    return verdict


def _check_plan_is_the_selection(run: RunEvidence, verdict: Verdict) -> None:
    assert run.plan is not None
    eligible = {
        identity
        for identity, state in run.before.items()
        if key_of(identity).startswith(run.prefix)
        and not in_tool_folder(identity)
        and old_enough(state, run.cutoff, run.versions)
    }
    planned = set(run.plan.entries)
    if run.plan.line_count != len(planned):
        verdict.fail(
            f"the run's own plan names {len(planned)} objects in {run.plan.line_count} lines"
        )
    if planned - eligible:
        verdict.fail(f"planned but not eligible: {sorted(planned - eligible, key=str)[:5]}")
    # Object Lock keeps what it holds, counted in the report: the only eligible objects a plan
    # of these runs (made under no other rule) may leave out.
    locked = ((run.report or {}).get("kept") or {}).get("locked", 0)
    if len(eligible - planned) != locked:
        verdict.fail(
            f"eligible but not planned: {len(eligible - planned)} objects "
            f"({locked} kept as locked by the report)"
        )


def _check_refusal(run: RunEvidence, verdict: Verdict) -> None:
    """A refused run deleted nothing (the bucket check above) and says so."""
    report = run.report
    assert report is not None
    if run.code not in EXIT_CODES_BY_STATUS[REFUSED]:
        verdict.fail(f"exit {run.code} with report status {REFUSED!r}")
    outcomes = {name: report[name] for name in ("deleted", "skipped_changed", "failed")}
    if any(outcomes.values()):
        verdict.misreported = sum(outcomes.values())
        verdict.fail(f"a refused run reports outcomes {outcomes}")
    if "nothing was deleted" not in report["message"]:
        verdict.fail(f"a refused run says {report['message']!r}")


def _check_journal(journal: Sequence[dict[str, Any]], verdict: Verdict) -> None:
    """A killed run's journal against the bucket: the planned objects gone are at least those
    its answered requests deleted, and at most those plus every key of the requests it sent
    and never read an answer to (in doubt: the server may have acted)."""
    sent = {record["sent"]: record["keys"] for record in journal if "sent" in record}
    answered: dict[int, int] = {}
    for record in journal:
        if "answered" in record:
            if record["answered"] not in sent:
                verdict.fail(f"journal answers request {record['answered']}, never sent")
            # NoSuchKey: deleted by an earlier try of the same request (its answer lost).
            already = sum(n for code, n in record["errors"].items() if code in ALREADY_GONE)
            answered[record["answered"]] = record["deleted"] + already
    confirmed = sum(answered.values())
    in_doubt = sum(keys for number, keys in sent.items() if number not in answered)
    gone = verdict.deleted_in_bucket
    if confirmed > gone:
        verdict.misreported = confirmed - gone
        verdict.fail(f"the journal's answers deleted {confirmed}, the bucket lost {gone}")
    if gone > confirmed + in_doubt:
        verdict.unaccounted = gone - confirmed - in_doubt
        verdict.fail(
            f"the bucket lost {gone} planned objects, the journal's answers deleted "
            f"{confirmed} and {in_doubt} more were in doubt"
        )


def _check_report(
    run: RunEvidence, verdict: Verdict, planned: Mapping[Identity, str], gone: set[Identity]
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
    # Counted by line: a file that names an object twice (refused, or a failed run's rows cut
    # short) owes an outcome to each line. The run's own plan may not (see below).
    lines = run.plan.line_count if run.plan is not None else 0
    if report["matched"] != lines:
        verdict.fail(f"report matched {report['matched']}, the plan{complete} holds {lines}")
    verdict.unaccounted = abs(lines - (deleted + skipped + failed))
    if verdict.unaccounted:
        verdict.fail(
            f"outcomes {deleted} deleted + {skipped} skipped + {failed} failed "
            f"!= {lines} planned{complete}"
        )
    # Changed: rewritten since planning, or for a version, no longer one the mode may delete
    # (its key was undeleted: the version is current again).
    changed = {
        identity
        for identity, etag in planned.items()
        if identity in run.before
        and (
            run.before[identity].etag != etag
            or not old_enough(run.before[identity], run.cutoff, run.versions)
        )
    }
    if changed - set(run.after):
        verdict.fail(
            f"changed since planning yet deleted: {sorted(changed - set(run.after), key=str)}"
        )
    if status in ("completed", "partial_failure"):
        _check_against_answers(run, verdict, planned)


def _check_against_answers(
    run: RunEvidence, verdict: Verdict, planned: Mapping[Identity, str]
) -> None:
    """The report's outcomes are the ones the server's (or the proxy's) last answers gave.

    The proxy reads answers by key: in a versions mode they are compared only when each
    planned key has one planned version. A planned version never sent (a fresh listing found
    it current again) is skipped."""
    outcomes = cast(Mapping[Identity, str | None], client_outcomes(run.exchanges))
    skipped_unsent = 0
    if run.versions != "current":
        by_key = {key_of(identity): identity for identity in planned}
        if len(by_key) != len(planned):
            return
        outcomes = {by_key[key]: code for key, code in outcomes.items() if key in by_key}
        sent = {by_key[key] for e in run.exchanges for key in e.keys if key in by_key}
        skipped_unsent = len(set(planned) - sent)
        planned = {identity: etag for identity, etag in planned.items() if identity in sent}
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
    told["skipped"] += skipped_unsent
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
    if expect.says and expect.says not in run.stderr:
        verdict.fail(f"stderr does not say {expect.says!r} ({run.said!r})")
    if expect.report is not None and (run.report is not None) != expect.report:
        verdict.fail("a report was written" if run.report else "no report was written")
    if expect.nothing_deleted and set(run.before) - set(run.after):
        verdict.fail(f"{len(set(run.before) - set(run.after))} objects deleted, none expected")
    if run.report is not None:
        if expect.failed is not None and run.report["failed"] != expect.failed:
            verdict.fail(f"failed {run.report['failed']}, expected {expect.failed}")
        unexpected = set(run.report["failed_by_code"]) - expect.failed_codes
        if unexpected:
            verdict.fail(f"failed with unexpected codes {run.report['failed_by_code']}")
        if run.report["skipped_changed"] != expect.skipped_changed:
            verdict.fail(
                f"skipped_changed {run.report['skipped_changed']}, "
                f"expected {expect.skipped_changed}"
            )


def eligible(run: RunEvidence) -> set[Identity]:
    """What the run's mode may delete of the bucket before it: under the prefix, old enough."""
    return {
        identity
        for identity, state in run.before.items()
        if key_of(identity).startswith(run.prefix)
        and not in_tool_folder(identity)
        and old_enough(state, run.cutoff, run.versions)
    }


def gone_outside_tool_folder(before: Snapshot, after: Snapshot) -> set[Identity]:
    return {identity for identity in set(before) - set(after) if not in_tool_folder(identity)}


@dataclass(frozen=True)
class Killed:
    """A run killed outright (SIGKILL) mid-apply, before the same command ran again."""

    run: RunEvidence
    #: The kill came when this DeleteObjects request (from 1) reached the proxy.
    kill_at: int


def check_rerun(verdict: Verdict, killed: Killed, rerun: RunEvidence, rerun_log: str) -> None:
    """After a killed run and its re-run: every object of the killed run's plan is gone and
    nothing else; the re-run deleted exactly what the kill left, sent no key already gone,
    took the killed run's lease over once it expired and gave it back."""
    first = killed.run
    if first.code != -9:
        verdict.fail(f"the first run ended with {first.code}, not killed by SIGKILL")
    if first.plan is None or not first.plan.complete:
        verdict.fail("the killed run left no complete plan (it should plan before deleting)")
        return
    journal = first.journal or []
    sent = [record for record in journal if "sent" in record]
    if len(sent) < killed.kill_at:
        verdict.fail(
            f"the killed run's journal has {len(sent)} requests; the proxy had seen "
            f"{killed.kill_at}: a request went out before its journal line"
        )
    planned = set(first.plan.entries)
    gone = gone_outside_tool_folder(first.before, rerun.after)
    left = planned - gone
    extra = gone - planned
    if left:
        verdict.left_behind = len(left)
        verdict.fail(f"{len(left)} objects of the killed run's plan are still there")
    for identity in sorted(extra, key=str):
        verdict.wrongly_deleted.append(f"{identity!r}: not in the killed run's plan")
    still_planned = len(planned & set(rerun.before))
    if rerun.report is not None and rerun.report["deleted"] != still_planned:
        verdict.fail(
            f"the re-run reports deleted {rerun.report['deleted']}; the kill left "
            f"{still_planned} planned objects"
        )
    already_gone = {key_of(identity) for identity in set(first.before) - set(rerun.before)}
    sent_again = {key for e in rerun.exchanges for key in e.keys} & already_gone
    if sent_again:
        verdict.fail(f"the re-run sent {len(sent_again)} keys the killed run had deleted")
    if "Taking over the lock" not in rerun_log:
        verdict.fail("the re-run does not say it took over the killed run's lock")
    if any(key_of(identity) == LOCK_KEY for identity in rerun.after):
        verdict.fail("the re-run left the bucket's lock behind")


def check_rivals(verdict: Verdict, winner: RunEvidence, loser: RunEvidence) -> None:
    """Two executing runs started at once on one bucket: the loser was refused by the lock
    before any delete (its own requests say so), and the bucket ends as the winner alone
    would leave it."""
    if loser.code not in EXIT_CODES_BY_STATUS[REFUSED] or "is locked by run" not in loser.stderr:
        verdict.fail(f"the other run exited {loser.code} ({loser.said!r}), not refused by the lock")
    if loser.report is not None and (loser.report["status"] != REFUSED or loser.report["deleted"]):
        verdict.fail(f"the other run reports {loser.report['status']}, {loser.report['deleted']}")
    # Its only write may be its try at the lease; it must never delete, the lease neither.
    for exchange in loser.exchanges:
        deletes = exchange.operation in ("DeleteObjects", "DeleteObject")
        if deletes or (exchange.operation == "PutObject" and exchange.object_key != LOCK_KEY):
            verdict.fail(f"the refused run sent {exchange.operation} {exchange.object_key!r}")
    gone, wanted = gone_outside_tool_folder(winner.before, winner.after), eligible(winner)
    if gone != wanted:
        verdict.fail(
            f"the bucket lost {len(gone)} objects; one run alone deletes {len(wanted)} "
            f"({len(wanted - gone)} left, {len(gone - wanted)} more)"
        )
