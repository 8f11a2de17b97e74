"""The tamper matrix: every plan source x every tampering (tests/chaos/tamperings.py) runs the
installed command end to end, and the chaos oracle judges the bucket object by object.

`make test` runs the QUICK cases with one seed; `make chaos` runs them all (CHAOS_SEEDS seeds,
CHAOS_FULL=1; the seed picks the line, row, part or cut). The selected cases start together
when the module starts, CHAOS_PARALLEL at a time, each on a bucket of its own; a fleet's cases
of one seed share one fleet run (a target each, and one untampered target). A Dask cluster (a
scheduler and two workers) is started once for the cluster's cases.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import pytest

from devtools.dask_cluster import DaskCluster, dask_cluster
from devtools.prefect_server import PrefectServer
from tests.chaos.interludes import PlanLines
from tests.chaos.oracle import Verdict, check_expectations, judge
from tests.chaos.plan_sources import LAYOUTS, RUNNERS, SMALL, UNTAMPERED, Bench, Executed, fleet
from tests.chaos.scenarios import Expect
from tests.chaos.summary import Summary, TamperFigures
from tests.chaos.tampered_files import (
    InventoryDataFile,
    PlanFile,
    PlanIndexFile,
    data_file_rows,
)
from tests.chaos.tamperings import (
    CASES,
    QUICK,
    SOURCES,
    TAMPERINGS,
    Expected,
    Source,
    TamperCase,
)
from tests.chaos.targets import MotoTarget
from tests.support.inventory import FAKE_ETAG, put_inventory, row

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

SEEDS = int(os.environ.get("CHAOS_SEEDS", "1"))
FULL = os.environ.get("CHAOS_FULL", "").lower() in ("1", "true", "yes")
#: Runs at once: a run is mostly the command starting (CPU), so a little more than the cores.
PARALLEL = int(os.environ.get("CHAOS_PARALLEL", "3"))

CaseId = tuple[str, int]


def longest_first(case: TamperCase) -> int:
    """A fleet (every target planned, then applied), the cluster's two runs, the waits for
    approval, then two runs, then one."""
    order: dict[str, int] = {"fleet": 0, "live": 2, "saved-approved": 2, "inventory": 4}
    return order.get(case.source, 1 if case.source.startswith("cluster") else 3)


def matrix() -> Iterator[Any]:
    """The cases and seeds, in the order they start and are judged: the longest first (a
    test judged before its run started would wait for the runs ahead of it, past the tests'
    timeout)."""
    for case in sorted(CASES, key=longest_first):
        if case.slow and not FULL:
            continue
        marks = []
        if case.finding is not None:
            reason = case.finding.reason
            marks.append(pytest.mark.xfail(strict=True, raises=KnownFinding, reason=reason))
        for seed in range(1, min(SEEDS, case.max_seeds or SEEDS) + 1):
            yield pytest.param(case, seed, id=f"{case.name}-seed{seed}", marks=marks)


class KnownFinding(Exception):
    """The run showed its case's known finding (and only an xfail on this passes)."""


def _params(item: pytest.Item) -> dict[str, Any]:
    callspec = getattr(item, "callspec", None)
    return dict(callspec.params) if callspec is not None else {}


def selected(request: pytest.FixtureRequest) -> list[tuple[TamperCase, int]]:
    """The cases and seeds this session runs of this module."""
    return [
        (params["case"], params["seed"])
        for item in request.session.items
        if item.path == request.path and "case" in (params := _params(item))
    ]


@pytest.fixture(scope="module")
def dask_starting(
    request: pytest.FixtureRequest,
    prefect_server: PrefectServer,
    chaos_environment: dict[str, str],
    moto_target: MotoTarget,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Future[DaskCluster] | None]:
    """A scheduler and two workers, started in the background once the Prefect server is up,
    when the session runs a cluster case. The workers go straight to moto with its
    credentials, as the runs do."""
    if not any(case.source.startswith("cluster") for case, _ in selected(request)):
        yield None
        return
    workdir = tmp_path_factory.mktemp("tamper-dask")

    def start(stack: ExitStack) -> DaskCluster:
        api_url = prefect_server.api_url
        environments = [
            {
                **chaos_environment,
                **moto_target.environment(),
                "AWS_ENDPOINT_URL": moto_target.endpoint_url,
                "PREFECT_API_URL": api_url,
                "PREFECT_HOME": str(workdir / f"home-{number}"),
                "PREFECT_LOGGING_TO_API_ENABLED": "false",
            }
            for number in (1, 2)
        ]
        return stack.enter_context(dask_cluster(workdir, environments, threads=2))

    with ExitStack() as stack, ThreadPoolExecutor(1, thread_name_prefix="tamper-dask") as pool:
        started = pool.submit(start, stack)
        try:
            yield started
        finally:
            started.exception()  # wait for the start to end, however it ends


@dataclass
class Runs:
    """The futures of every selected case: its own run, or its seed's fleet run."""

    own: dict[CaseId, Future[Executed]]
    fleets: dict[int, Future[dict[str, Executed]]]

    def result(self, case: TamperCase, seed: int) -> Executed:
        if case.source == "fleet":
            return self.fleets[seed].result()[case.name]
        return self.own[(case.name, seed)].result()


@pytest.fixture(scope="module")
def tamper_runs(
    request: pytest.FixtureRequest,
    prefect_server: PrefectServer,
    chaos_environment: dict[str, str],
    moto_target: MotoTarget,
    dask_starting: Future[DaskCluster] | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Runs]:
    """Every selected case started, the longest first, PARALLEL at a time."""

    def bench(case: TamperCase | None, seed: int, workdir: Path) -> Bench:
        source = case.source if case is not None else "fleet"
        label = f"{case.name if case else 'untampered'}-{seed}"
        filled = moto_target.fill(LAYOUTS.get(source, SMALL), label)
        env = {
            **chaos_environment,
            **moto_target.environment(),
            "AWS_ENDPOINT_URL": moto_target.endpoint_url,
            "PREFECT_API_URL": prefect_server.api_url,
            "PREFECT_HOME": str(workdir / "prefect-home"),
            # The runs' logs stay on their stdout: shipping them costs the one server CPU.
            "PREFECT_LOGGING_TO_API_ENABLED": "false",
            "MANIFEST_LOCATION": str(workdir / "plans"),
        }
        cluster = dask_starting.result() if source.startswith("cluster") and dask_starting else None
        address = cluster.address if cluster is not None else None
        return Bench(case, seed, moto_target, filled, env, workdir, prefect_server.api_url, address)

    def one(case: TamperCase, seed: int) -> Executed:
        workdir = tmp_path_factory.mktemp(f"{case.name}-{seed}")
        return RUNNERS[case.source](bench(case, seed, workdir))

    def fleet_of(cases: list[TamperCase], seed: int) -> dict[str, Executed]:
        workdir = tmp_path_factory.mktemp(f"fleet-{seed}")
        benches = {case.name: bench(case, seed, workdir) for case in cases}
        return fleet({**benches, UNTAMPERED: bench(None, seed, workdir)}, workdir)

    chosen = sorted(selected(request), key=lambda chosen: longest_first(chosen[0]))
    by_seed: dict[int, list[TamperCase]] = {}
    for case, seed in chosen:
        if case.source == "fleet":
            by_seed.setdefault(seed, []).append(case)
    with ThreadPoolExecutor(PARALLEL, thread_name_prefix="tamper") as pool:
        runs = Runs(
            fleets={seed: pool.submit(fleet_of, cases, seed) for seed, cases in by_seed.items()},
            own={
                (case.name, seed): pool.submit(one, case, seed)
                for case, seed in chosen
                if case.source != "fleet"
            },
        )
        try:
            yield runs
        finally:
            for future in runs.own.values():
                future.cancel()
            for fleet_future in runs.fleets.values():
                fleet_future.cancel()


class TestTheMatrixAsData:
    def test_cases_are_named_once_when_listed(self) -> None:
        names = [case.name for case in CASES]

        assert len(names) == len(set(names))

    def test_every_source_is_described_and_in_make_tests_slice_when_listed(self) -> None:
        quick = {source for source, _ in QUICK}

        assert set(SOURCES) == set(get_args(Source)) == quick

    def test_every_quick_case_is_a_case_when_listed(self) -> None:
        cases = {(case.source, case.tampering.name) for case in CASES}

        assert cases >= QUICK

    def test_every_tampering_applies_to_every_plan_file_source_when_listed(self) -> None:
        everywhere = {
            *("live", "saved", "saved-digest", "saved-approved", "saved-keep"),
            *("cluster", "cluster-approved", "cluster-live", "cluster-keep", "fleet"),
        }

        assert all(everywhere <= set(tampering.expected) for tampering in TAMPERINGS)


def plan_file(path: Path, keys: list[str]) -> Path:
    line = {"etag": '"e"', "size": 2, "last_modified": "2026-01-01T00:00:00Z"}
    objects = [{**line, "key": key, "storage_class": "STANDARD"} for key in keys]
    totals = {"end": True, "scanned": len(keys) + 5, "matched": len(keys), "matched_bytes": 6}
    PlanLines({"format": "s3-housekeeping/plan-v1", "prefix": "tmp/"}, objects, totals).write(path)
    return path


class TestTheTamperedFiles:
    """The editing handles change what they say and nothing else."""

    def test_totals_are_the_lines_when_a_plan_is_saved_consistent(self, tmp_path: Path) -> None:
        file = PlanFile(plan_file(tmp_path / "plan.jsonl.gz", ["tmp/a", "tmp/b", "tmp/c"]))
        del file.lines[0]

        file.save()

        totals = PlanLines.read(file.path).totals
        assert (totals["matched"], totals["matched_bytes"], totals["scanned"]) == (2, 4, 7)

    def test_an_index_is_cut_mid_line_when_truncated(self, tmp_path: Path) -> None:
        part = {"location": "p", "sha256": "0" * 64, "scanned": 1, "matched": 1}
        records = [{"format": "x"}, *({"part": part} for _ in range(4)), {"end": part}]
        whole = "".join(json.dumps(record) + "\n" for record in records)
        path = tmp_path / "plan.index.jsonl"
        cuts = set()
        for seed in range(30):
            path.write_text(whole)
            PlanIndexFile(path).truncate(random.Random(seed))  # noqa: S311 - a test's choice
            cuts.add(path.read_bytes()[-1:])

        assert b"\n" not in cuts

    def test_an_inventory_data_file_keeps_its_rows_when_saved_unedited(
        self, moto_target: MotoTarget
    ) -> None:
        s3 = moto_target.client()
        s3.create_bucket(Bucket="tamper-files-inventory")
        rows = [row(key, Size="3", ETag=FAKE_ETAG) for key in ("tmp/a b", "tmp/c+d", "tmp/é")]
        written = put_inventory(s3, "tamper-files-inventory", "source", [rows])
        before = s3.get_object(Bucket="tamper-files-inventory", Key=written.data_keys[0])

        InventoryDataFile(s3, written, 0, vouch=True, other=b"").save()

        after = s3.get_object(Bucket="tamper-files-inventory", Key=written.data_keys[0])
        assert data_file_rows(after["Body"].read()) == data_file_rows(before["Body"].read())


def expect(expected: Expected) -> Expect:
    """The chaos oracle's expectation of a run that must end so: a refused or invalid run
    deletes nothing; a run that stops on invalid input may write no report, or one whose
    planned objects were never sent (NotSent)."""
    invalid = expected.exit_code == 1
    return Expect(
        exit_codes=frozenset({expected.exit_code}),
        report=None if invalid else True,
        failed_codes=frozenset({"NotSent"}) if invalid else frozenset(),
        skipped_changed=expected.skipped,
        nothing_deleted=expected.exit_code != 0,
        says=expected.says,
    )


def verdict_of(case: TamperCase, executed: Executed) -> Verdict:
    """The oracle's verdict, the case's expectation, the source's own checks, and for a fleet
    the untampered target's verdict (it must be applied as planned)."""
    verdict = judge(executed.evidence)
    check_expectations(verdict, expect(case.expected), executed.evidence)
    verdict.problems += executed.problems
    for other in executed.others:
        beside = judge(other)
        check_expectations(beside, expect(Expected()), other)
        verdict.wrongly_deleted += [f"the untampered target: {w}" for w in beside.wrongly_deleted]
        verdict.problems += [f"the untampered target: {p}" for p in beside.problems]
    return verdict


def figures(case: TamperCase, seed: int, executed: Executed, verdict: Verdict) -> TamperFigures:
    report = executed.evidence.report or {}
    return TamperFigures(
        source=case.source,
        tampering=case.tampering.name,
        seed=seed,
        exit_code=executed.evidence.code,
        expected_exit_code=case.expected.exit_code,
        planned=verdict.planned,
        deleted=verdict.deleted_in_bucket,
        skipped=int(report.get("skipped_changed", 0)),
        wrongly_deleted=len(verdict.wrongly_deleted),
        unaccounted=verdict.unaccounted,
        misreported=verdict.misreported,
        problems=verdict.wrongly_deleted + verdict.problems,
        finding=case.finding.reason if case.finding else None,
        duration_s=executed.duration_s,
    )


@pytest.mark.parametrize(("case", "seed"), list(matrix()))
def test_run_deletes_only_what_a_listing_plans_and_accounts_for_it_when_its_plan_is_tampered(
    case: TamperCase, seed: int, tamper_runs: Runs, chaos_summary: Summary
) -> None:
    executed = tamper_runs.result(case, seed)
    verdict = verdict_of(case, executed)
    chaos_summary.add_tampered(figures(case, seed, executed, verdict))

    problems = verdict.wrongly_deleted + verdict.problems
    finding = case.finding
    if problems and finding is not None and getattr(verdict, finding.shows_as):
        raise KnownFinding(f"{finding.reason}: {problems}")
    assert problems == [], executed.evidence.stderr[-2000:]
