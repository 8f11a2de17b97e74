"""The chaos matrix as data: one Scenario record per situation; each runs with several seeds.

A scenario names its server, the faults the proxy injects (tests/support/fault_proxy.py), what
happens between a saved plan and its apply, the sequence of runs (one; one killed mid-apply and
run again; two at once), and what the run must end with. The oracle's safety and accounting
checks (tests/chaos/oracle.py) apply to every run whatever the scenario; the expectations here
only add what this situation must end with. Add a situation by adding a record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from deployments.local_aws import LOCAL_ACCOUNT_ID
from tests.chaos.targets import Layout, VersionedLayout
from tests.support.fault_proxy import FaultRule

Server = Literal["moto", "seaweedfs"]
#: What happens between a saved plan and its apply, to the bucket or to the plan file: a name
#: in tests/chaos/interludes.py's INTERLUDES (add the function there and its name here).
Interlude = Literal[
    "rewrite_one_planned",
    "undelete_some_planned",
    "tamper_key_outside_prefix",
    "tamper_version_id",
    "tamper_fewer_bytes",
    "tamper_duplicate_line",
    "tamper_bucket",
    "tamper_prefix",
    "tamper_cutoff",
    "tamper_truncated",
]
#: The runs of a scenario: one; one killed with SIGKILL at a seeded DeleteObjects request,
#: then the same command again; two executing runs started at once on one bucket.
RunSequence = Literal["one", "killed-then-rerun", "two-at-once"]
Versions = Literal["current", "noncurrent", "all"]
#: An account that owns nothing here (moto's buckets belong to LOCAL_ACCOUNT_ID).
OTHER_ACCOUNT = "111122223333"
#: How long throttled keys are retried (DELETE_THROTTLE_BUDGET_MINUTES) in every run: 6 s.
THROTTLE_BUDGET_MINUTES = "0.1"
#: The runs' read timeout (AWS_READ_TIMEOUT_SECONDS; 30 s by default): a held answer costs
#: this long.
CLIENT_READ_TIMEOUT_S = 10


@dataclass(frozen=True)
class Expect:
    """How the run must end, beyond the oracle's checks that hold for every run."""

    exit_codes: frozenset[int] = frozenset({0})
    #: Whether the run writes its report; None: either (the oracle checks it if it does).
    report: bool | None = True
    #: Error codes allowed in the report's failed_by_code.
    failed_codes: frozenset[str] = frozenset()
    skipped_changed: int = 0
    #: True: nothing at all may be deleted.
    nothing_deleted: bool = False
    #: How many planned objects end failed (None: any number).
    failed: int | None = None
    #: What the run's stderr must say (its refusal, say).
    says: str = ""


@dataclass(frozen=True)
class Finding:
    """A known wrong behaviour of the tool: what it is, and the oracle's figure that shows it
    (a run failing any other way is a plain failure, not this finding)."""

    reason: str
    shows_as: Literal["wrongly_deleted", "unaccounted", "misreported", "left_behind"]


@dataclass(frozen=True)
class Scenario:
    """One situation: a bucket on a server, the faults of the executing run, what it must end
    with. Named once per server; its seeds drive the faults' seeded choices."""

    name: str
    server: Server
    faults: tuple[FaultRule, ...]
    expect: Expect = field(default_factory=Expect)
    layout: Layout | VersionedLayout = field(default_factory=Layout)
    #: Options added to `s3-housekeeping run`.
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    #: The runs' --versions; the oracle then compares every version, by (key, version id).
    versions: Versions = "current"
    #: Plan with a dry run first (no faults), then this happens, then apply with --plan.
    interlude: Interlude | None = None
    sequence: RunSequence = "one"
    #: Options added to the second run of a killed-then-rerun sequence only.
    rerun_args: tuple[str, ...] = ()
    #: The runs report to the matrix's Prefect server (and hold the bucket's concurrency slot
    #: there); False: each starts a temporary API of its own, as a command run without one.
    prefect_server: bool = True
    #: Only in the full matrix (`make chaos`): too slow for `make test`'s slice (a held answer
    #: costs a botocore read timeout; a killed run's lock takes a minute to expire), or a
    #: variant of a situation the slice already covers.
    slow: bool = False
    #: At most this many seeds, even in the full matrix (when a seed changes little).
    max_seeds: int | None = None
    #: The tool is known to get this wrong: the run is xfail(strict) on this finding only.
    finding: Finding | None = None
    #: Why the scenario is shaped as it is (what is emulated, and why).
    note: str = ""


#: A guard makes the run plan the whole prefix before its first delete (then read the plan back
#: from its manifest); without one, an executing run deletes while it lists.
PLAN_FIRST = ("--max-deletions", "1000000")
#: SeaweedFS objects are put one request each: fewer of them, still more than one batch.
WEED = Layout(old_direct=600, old_nested=500, young=60, beside=20, elsewhere=20)
#: Plans that are only read and refused: a small bucket.
TAMPERED = Layout(old_direct=300, old_nested=300, young=40, beside=20, elsewhere=20)
#: Versions under a legal hold in the legal-hold scenario.
HELD = 10
#: A run killed mid-apply: 5 batches, sent one at a time and each held 1 s by the proxy, and a
#: lease that expires after a minute (the minimum) for the re-run to take over.
KILL_LAYOUT = Layout(old_direct=2500, old_nested=2500)
KILL_FAULTS = (FaultRule("DeleteObjects", "slow", delay_s=1.0),)
KILL_ENV = {"LOCK_EXPIRY_MINUTES": "1", "DELETE_CONCURRENCY": "1"}
#: Planned keys undeleted (their delete marker removed) by `undelete_some_planned`.
UNDELETED = 3
#: The saved-plan tamperings: scenario name, interlude, the guard that must refuse the apply,
#: whether only the full matrix runs it, and its seeds (the seed picks the line, if any).
TAMPERINGS: tuple[tuple[str, Interlude, str, bool, int], ...] = (
    ("key-outside-prefix", "tamper_key_outside_prefix", "plan_entries", False, 2),
    ("version-id", "tamper_version_id", "plan_entries", False, 2),
    ("fewer-bytes", "tamper_fewer_bytes", "plan_complete", True, 1),
    ("duplicate-line", "tamper_duplicate_line", "plan_entries", True, 2),
    ("bucket", "tamper_bucket", "plan_target", True, 1),
    ("prefix", "tamper_prefix", "plan_target", True, 1),
    ("cutoff", "tamper_cutoff", "plan_cutoff", True, 1),
    ("truncated", "tamper_truncated", "plan_complete", False, 2),
)
SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "delete-slowdown-burst",
        "moto",
        (FaultRule("DeleteObjects", "slowdown", burst=(1, 3), jitter=2),),
    ),
    Scenario(
        "delete-slowdown-persistent",
        "moto",
        (FaultRule("DeleteObjects", "slowdown"),),
        Expect(exit_codes=frozenset({7}), failed_codes=frozenset({"SlowDown"})),
        layout=Layout(old_direct=700, old_nested=500),
        max_seeds=1,
        note="every DeleteObjects throttled: keys are retried for the throttle budget, then "
        "failed, and nothing is deleted",
        args=PLAN_FIRST,
    ),
    Scenario(
        "list-slowdown-burst",
        "moto",
        (FaultRule("ListObjectsV2", "slowdown", burst=(1, 2), jitter=3),),
    ),
    Scenario(
        "list-slowdown-exhausted",
        "moto",
        (FaultRule("ListObjectsV2", "slowdown", burst=(3, 10_000)),),
        Expect(
            exit_codes=frozenset({5}),
            report=None,
            nothing_deleted=True,
            failed_codes=frozenset({"NotSent"}),
        ),
        max_seeds=1,
        note="every listing of a sub-prefix throttled past botocore's attempts: the plan "
        "fails before any delete, and the report counts what it held as NotSent",
        args=PLAN_FIRST,
    ),
    Scenario(
        "delete-internal-error",
        "moto",
        (
            FaultRule("DeleteObjects", "internal_error", nth=(1,), jitter=2),
            FaultRule("DeleteObjects", "internal_error", probability=0.3),
        ),
    ),
    Scenario(
        "delete-lost-answer",
        "moto",
        (FaultRule("DeleteObjects", "lost_answer", nth=(1,), jitter=2),),
        note="moto reports a key that is already gone as Deleted, even with an ETag condition",
    ),
    Scenario(
        "delete-read-timeout",
        "moto",
        (FaultRule("DeleteObjects", "read_timeout", nth=(1,), jitter=2),),
        slow=True,
        max_seeds=2,
    ),
    Scenario(
        "resets",
        "moto",
        (
            FaultRule("DeleteObjects", "reset", burst=(1, 2), jitter=2),
            FaultRule("ListObjectsV2", "reset", nth=(2,), jitter=2),
            FaultRule("HeadBucket", "reset", nth=(1,)),
        ),
    ),
    Scenario(
        "per-key-errors",
        "moto",
        (
            FaultRule(
                "DeleteObjects", "per_key", key_probability=0.05, key_attempts=2, code="SlowDown"
            ),
            FaultRule(
                "DeleteObjects",
                "per_key",
                key_probability=0.02,
                key_attempts=2,
                code="InternalError",
            ),
            FaultRule("DeleteObjects", "per_key", key_probability=0.01, code="AccessDenied"),
            FaultRule("DeleteObjects", "per_key", key_probability=0.005, code="InternalError"),
        ),
        Expect(
            exit_codes=frozenset({7}), failed_codes=frozenset({"AccessDenied", "InternalError"})
        ),
        note="transient SlowDown and InternalError keys clear on a later try; AccessDenied and "
        "persistent InternalError keys end failed",
        args=PLAN_FIRST,
    ),
    Scenario(
        "delete-denied",
        "moto",
        (FaultRule("DeleteObjects", "deny", nth=(2,)),),
        Expect(exit_codes=frozenset({7}), failed_codes=frozenset({"AccessDenied"})),
        args=PLAN_FIRST,
    ),
    Scenario(
        "bucket-of-another-account",
        "moto",
        (FaultRule("*", "deny", bucket_owner=LOCAL_ACCOUNT_ID),),
        Expect(exit_codes=frozenset({4}), report=None, nothing_deleted=True),
        args=("--expected-bucket-owner", OTHER_ACCOUNT),
        max_seeds=1,
        note="moto ignores ExpectedBucketOwner: the proxy answers 403, as S3 does, to every "
        "request naming an owner other than moto's account",
    ),
    Scenario(
        "delete-lost-answer",
        "seaweedfs",
        (FaultRule("DeleteObjects", "lost_answer", nth=(1,)),),
        layout=WEED,
        max_seeds=2,
    ),
    Scenario(
        "delete-read-timeout",
        "seaweedfs",
        (FaultRule("DeleteObjects", "read_timeout", nth=(1,)),),
        layout=WEED,
        slow=True,
        max_seeds=1,
    ),
    Scenario(
        "rewritten-between-plan-and-apply",
        "seaweedfs",
        (FaultRule("DeleteObjects", "slowdown", nth=(1,), jitter=1),),
        Expect(skipped_changed=1),
        layout=WEED,
        interlude="rewrite_one_planned",
        note="on SeaweedFS: moto ignores the per-object ETag in DeleteObjects",
    ),
    Scenario(
        "poison-key",
        "seaweedfs",
        (),
        Expect(exit_codes=frozenset({7}), failed_codes=frozenset({"MalformedXML"})),
        layout=replace(WEED, poison=True),
        max_seeds=1,
        note="a real key holding \\x01: SeaweedFS stores and lists it (EncodingType=url) and "
        "refuses a DeleteObjects body holding it with MalformedXML, as S3 does",
    ),
    Scenario(
        "streaming-under-faults",
        "seaweedfs",
        (
            FaultRule("ListObjectsV2", "slowdown", nth=(2,)),
            FaultRule("DeleteObjects", "internal_error", nth=(1,)),
            FaultRule(
                "DeleteObjects", "per_key", key_probability=0.03, key_attempts=2, code="SlowDown"
            ),
        ),
        layout=WEED,
        note="deletes run while the listing goes on (no guard); per-key errors through a "
        "rewritten, re-checksummed body on a real server",
    ),
    Scenario(
        "list-fails-after-deletes",
        "seaweedfs",
        (FaultRule("ListObjectsV2", "slowdown", burst=(3, 10_000)),),
        Expect(exit_codes=frozenset({5}), failed_codes=frozenset({"NotSent", "Unconfirmed"})),
        layout=Layout(old_direct=1100, old_nested=30, young=60, beside=20, elsewhere=20),
        max_seeds=1,
        note="deleting while listing: the first batch is deleted, then every listing of a "
        "sub-prefix is throttled past botocore's attempts; the failed run's report must "
        "still count what it deleted",
    ),
    Scenario(
        "killed-mid-apply-then-rerun",
        "moto",
        KILL_FAULTS,
        layout=KILL_LAYOUT,
        args=PLAN_FIRST,
        env=KILL_ENV,
        rerun_args=("--lock-wait-minutes", "2"),
        sequence="killed-then-rerun",
        prefect_server=False,
        slow=True,
        max_seeds=3,
        note="5 batches sent one at a time, each held 1 s by the proxy: the SIGKILL comes when "
        "the seeded K-th DeleteObjects arrives, so requests 1..K-1 are answered and K is in "
        "doubt (the proxy still forwards it). The re-run (no faults) waits for the killed "
        "run's lease to expire (LOCK_EXPIRY_MINUTES=1, the minimum) and takes it over. Both "
        "run without a Prefect server (the next scenario has one)",
    ),
    Scenario(
        "killed-mid-apply-then-rerun-with-prefect-server",
        "moto",
        KILL_FAULTS,
        layout=KILL_LAYOUT,
        args=PLAN_FIRST,
        env=KILL_ENV,
        rerun_args=("--lock-wait-minutes", "2"),
        sequence="killed-then-rerun",
        slow=True,
        max_seeds=1,
        note="as killed-mid-apply-then-rerun, both runs reporting to the matrix's Prefect server",
    ),
    Scenario(
        "two-runs-at-once",
        "moto",
        (FaultRule("DeleteObjects", "slow", delay_s=3.0),),
        layout=Layout(old_direct=1500, old_nested=1500),
        env={"DELETE_CONCURRENCY": "1"},
        sequence="two-at-once",
        max_seeds=2,
        # make test proves the lock in tests/tasks/s3/test_bucket_lock.py and test_approval.py.
        slow=True,
        note="each run behind its own proxy; the deletes are slowed (3 batches one at a time, 3 s "
        "each) so the winner still holds the lock when the other, started with it, reaches it",
    ),
    Scenario(
        "undeleted-between-plan-and-apply",
        "moto",
        (FaultRule("DeleteObjects", "slowdown", nth=(1,)),),
        Expect(skipped_changed=UNDELETED),
        layout=VersionedLayout(),
        versions="noncurrent",
        interlude="undelete_some_planned",
        max_seeds=3,
        # make test proves it in tests/tasks/test_cleanup_versions.py.
        slow=True,
        note="a versioned bucket; the saved plan holds old versions under delete markers; the "
        "markers of some are removed before the apply, so those versions are current again",
    ),
    Scenario(
        "legal-hold",
        "moto",
        (),
        Expect(exit_codes=frozenset({0})),
        layout=VersionedLayout(
            deleted=300,
            overwritten=600,
            recently_overwritten=20,
            old_current=20,
            young=20,
            beside=10,
            elsewhere=10,
            held=HELD,
        ),
        versions="noncurrent",
        max_seeds=1,
        note="S3 Object Lock: the run finds the bucket has it on and asks HeadObject of each "
        "version it would delete; the versions under a legal hold are kept (the report's kept: "
        "locked), never sent, so none fails with AccessDenied. On SeaweedFS: see targets.py",
    ),
    *(
        Scenario(
            f"plan-tampered-{name}",
            "moto",
            (),
            Expect(exit_codes=frozenset({6}), nothing_deleted=True, says=f"refused by {guard}"),
            layout=TAMPERED,
            interlude=interlude,
            slow=slow,
            max_seeds=seeds,
            note="the saved plan file edited between the dry run and the apply",
        )
        for name, interlude, guard, slow, seeds in TAMPERINGS
    ),
)
