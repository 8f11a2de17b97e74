"""The chaos matrix as data: one Scenario record per situation; each runs with several seeds.

A scenario names its server, the faults the proxy injects (tests/support/fault_proxy.py), what
happens between a saved plan and its apply, and what the run must end with. The oracle's safety
and accounting checks (tests/chaos/oracle.py) apply to every run whatever the scenario; the
expectations here only add what this situation must end with. Add a situation by adding a record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from deployments.local_aws import LOCAL_ACCOUNT_ID
from tests.chaos.targets import Layout
from tests.support.fault_proxy import FaultRule

Server = Literal["moto", "seaweedfs"]
#: What happens to the bucket between a saved plan and its apply: a name in
#: tests/chaos/test_matrix.py's INTERLUDES (add the function there and its name here).
Interlude = Literal["rewrite_one_planned"]
#: An account that owns nothing here (moto's buckets belong to LOCAL_ACCOUNT_ID).
OTHER_ACCOUNT = "111122223333"
#: How long throttled keys are retried (DELETE_THROTTLE_BUDGET_MINUTES) in every run: 6 s.
THROTTLE_BUDGET_MINUTES = "0.1"
#: botocore's read timeout (tasks/aws.py READ_TIMEOUT_S, not configurable): a held answer
#: costs this long.
CLIENT_READ_TIMEOUT_S = 30


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


@dataclass(frozen=True)
class Finding:
    """A known wrong behaviour of the tool: what it is, and the oracle's figure that shows it
    (a run failing any other way is a plain failure, not this finding)."""

    reason: str
    shows_as: Literal["wrongly_deleted", "unaccounted", "misreported"]


@dataclass(frozen=True)
class Scenario:
    """One situation: a bucket on a server, the faults of the executing run, what it must end
    with. Named once per server; its seeds drive the faults' seeded choices."""

    name: str
    server: Server
    faults: tuple[FaultRule, ...]
    expect: Expect = field(default_factory=Expect)
    layout: Layout = field(default_factory=Layout)
    #: Options added to `s3-housekeeping run`.
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    #: Plan with a dry run first (no faults), then this happens, then apply with --plan.
    interlude: Interlude | None = None
    #: Only in the full matrix (`make chaos`): each run costs a botocore read timeout.
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
)
