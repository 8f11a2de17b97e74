"""The chaos matrix: every scenario x seed runs the installed command through the fault proxy, and
the oracle checks the bucket object by object against a snapshot taken before.

`make test` runs each scenario with one seed, read timeouts left out; `make chaos` runs the full
matrix (CHAOS_SEEDS seeds, CHAOS_FULL=1) and prints the summary. The selected runs start
together when the module starts, CHAOS_PARALLEL at a time (each on its own bucket, behind its
own proxy); each test waits for its own run, then judges it.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.prefect_server import PrefectServer
from devtools.processes import BIN
from tests.chaos.oracle import Plan, RunEvidence, check_expectations, judge, read_plan
from tests.chaos.scenarios import (
    CLIENT_READ_TIMEOUT_S,
    SCENARIOS,
    THROTTLE_BUDGET_MINUTES,
    Scenario,
)
from tests.chaos.summary import RunFigures, Summary
from tests.chaos.targets import OLDER_THAN_DAYS, PREFIX, Filled, Target
from tests.support.fault_proxy import FaultProxy

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

SEEDS = int(os.environ.get("CHAOS_SEEDS", "1"))
FULL = os.environ.get("CHAOS_FULL", "").lower() in ("1", "true", "yes")
#: Runs at once: a run is mostly the command starting (CPU), so a little more than the cores.
PARALLEL = int(os.environ.get("CHAOS_PARALLEL", "3"))
TARGET_FIXTURES = {"moto": "moto_target", "seaweedfs": "seaweedfs_target"}
#: The longest one run of the command may take (a held answer costs the read timeout).
RUN_TIMEOUT_S = 240

RunId = tuple[str, str, int]


def run_id(scenario: Scenario, seed: int) -> RunId:
    return (scenario.name, scenario.server, seed)


def longest_first(scenario: Scenario) -> tuple[bool, bool, bool]:
    """Held answers, then SeaweedFS fills (they wait out the cutoff), saved plans (two runs)."""
    return (not scenario.slow, scenario.server != "seaweedfs", scenario.interlude is None)


def matrix() -> Iterator[Any]:
    """The runs, in the order they start and are judged: the longest first."""
    for scenario in sorted(SCENARIOS, key=longest_first):
        if scenario.slow and not FULL:
            continue
        marks = []
        if scenario.finding is not None:
            reason = scenario.finding.reason
            marks.append(pytest.mark.xfail(strict=True, raises=KnownFinding, reason=reason))
        for seed in range(1, min(SEEDS, scenario.max_seeds or SEEDS) + 1):
            name = f"{scenario.name}-{scenario.server}-seed{seed}"
            yield pytest.param(scenario, seed, id=name, marks=marks)


def rewrite_one_planned(s3: Any, bucket: str, plan: Plan, seed: int) -> None:
    """Someone writes a new version of one planned object after the plan was made."""
    key = random.Random(seed).choice(sorted(plan.etags))  # noqa: S311 - a test's choice
    s3.put_object(Bucket=bucket, Key=key, Body=b"rewritten after planning")


INTERLUDES: dict[str, Callable[[Any, str, Plan, int], None]] = {
    "rewrite_one_planned": rewrite_one_planned,
}


class KnownFinding(Exception):
    """The run showed its scenario's known finding (and only an xfail on this passes)."""


@dataclass(frozen=True)
class Executed:
    """One finished run and what the oracle needs of it."""

    evidence: RunEvidence
    stderr: str
    duration_s: float


def command(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "s3-housekeeping"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def run_arguments(filled: Filled, scenario: Scenario) -> list[str]:
    return [
        "run",
        "--bucket",
        filled.bucket,
        "--prefix",
        PREFIX,
        "--older-than-days",
        str(OLDER_THAN_DAYS),
        "--as-of",
        filled.as_of.isoformat(),
        "--no-create-bucket",
        *scenario.args,
    ]


def last_words(stderr: str) -> str:
    """The command's last line on stderr, without the (machine-local) manifest path."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1].split("; manifest ")[0] if lines else ""


def the_plan(report: dict[str, Any] | None, plans: Path, saved: Path | None) -> Plan | None:
    """The plan the run applied: the saved one, the one its report names, or (with no report)
    the one it left in its manifest location."""
    if saved is not None:
        return read_plan(saved)
    if report is not None and report.get("manifest"):
        return read_plan(Path(report["manifest"]))
    written = sorted(plans.rglob("*.jsonl.gz"), key=lambda path: path.stat().st_mtime)
    return read_plan(written[-1]) if written else None


def execute(
    scenario: Scenario,
    seed: int,
    target: Target,
    prefect_starting: Future[PrefectServer],
    environment: dict[str, str],
    workdir: Path,
) -> Executed:
    """Fill a bucket, snapshot it, run the command through the proxy with the scenario's
    faults (after a dry run and the interlude, for a saved plan), snapshot it again."""
    started = time.monotonic()
    filled = target.fill(scenario.layout, f"{scenario.name}-{seed}")
    prefect = prefect_starting.result()
    plans, report_path = workdir / "plans", workdir / "report.json"
    # A held answer must outlast the client's read timeout, then be let go.
    with FaultProxy(target.endpoint_url, seed=seed, hold_s=2 * CLIENT_READ_TIMEOUT_S) as proxy:
        env = {
            **environment,
            **target.environment(),
            "AWS_ENDPOINT_URL": proxy.url,
            "PREFECT_API_URL": prefect.api_url,
            "PREFECT_HOME": str(workdir / "prefect-home"),
            # The runs' logs stay on their stdout: shipping them costs the one server CPU.
            "PREFECT_LOGGING_TO_API_ENABLED": "false",
            "MANIFEST_LOCATION": str(plans),
            "DELETE_THROTTLE_BUDGET_MINUTES": THROTTLE_BUDGET_MINUTES,
            **scenario.env,
        }
        arguments = run_arguments(filled, scenario)
        saved = None
        if scenario.interlude is not None:
            dry_report = workdir / "dry-run.json"
            dry = command(*arguments, "--report-json", str(dry_report), env=env)
            if dry.returncode != 0:
                raise RuntimeError(f"the dry run failed ({dry.returncode}): {dry.stderr[-2000:]}")
            saved = Path(json.loads(dry_report.read_text())["manifest"])
            INTERLUDES[scenario.interlude](target.client(), filled.bucket, read_plan(saved), seed)
            arguments += ["--plan", str(saved)]
        before = target.snapshot(filled.bucket)
        proxy.rules = list(scenario.faults)
        first = len(proxy.exchanges)
        result = command(*arguments, "--execute", "--report-json", str(report_path), env=env)
        exchanges = proxy.exchanges[first:]
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    evidence = RunEvidence(
        code=result.returncode,
        report=report,
        plan=the_plan(report, plans, saved),
        before=before,
        after=target.snapshot(filled.bucket),
        prefix=PREFIX,
        cutoff=filled.cutoff,
        exchanges=exchanges,
        fresh_plan=saved is None,
        said=last_words(result.stderr),
    )
    return Executed(evidence, result.stderr, round(time.monotonic() - started, 1))


@pytest.fixture(scope="module")
def runs(
    request: pytest.FixtureRequest,
    chaos_prefect: Future[PrefectServer],
    chaos_environment: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[RunId, Future[Executed]]]:
    """Every run this session selected, started in the tests' order, PARALLEL at a time."""
    selected = [
        (params["scenario"], params["seed"])
        for item in request.session.items
        if item.path == request.path and "scenario" in (params := _params(item))
    ]
    targets = {
        server: request.getfixturevalue(TARGET_FIXTURES[server])
        for server in {scenario.server for scenario, _ in selected}
    }
    with ThreadPoolExecutor(PARALLEL, thread_name_prefix="chaos") as pool:
        futures = {
            run_id(scenario, seed): pool.submit(
                execute,
                scenario,
                seed,
                targets[scenario.server],
                chaos_prefect,
                chaos_environment,
                tmp_path_factory.mktemp(f"{scenario.name}-{scenario.server}-{seed}"),
            )
            for scenario, seed in selected
        }
        try:
            yield futures
        finally:
            for future in futures.values():
                future.cancel()


def _params(item: pytest.Item) -> dict[str, Any]:
    callspec = getattr(item, "callspec", None)
    return dict(callspec.params) if callspec is not None else {}


def test_scenarios_are_named_once_per_server_when_listed() -> None:
    names = [(scenario.name, scenario.server) for scenario in SCENARIOS]

    assert len(names) == len(set(names))


@pytest.mark.parametrize(("scenario", "seed"), list(matrix()))
def test_run_is_safe_and_accounted_for_when_faults_hit(
    scenario: Scenario,
    seed: int,
    runs: dict[RunId, Future[Executed]],
    chaos_summary: Summary,
) -> None:
    executed = runs[run_id(scenario, seed)].result()
    evidence = executed.evidence
    verdict = judge(evidence)
    check_expectations(verdict, scenario.expect, evidence)
    exchanges = evidence.exchanges
    chaos_summary.add(
        RunFigures(
            scenario=scenario.name,
            server=scenario.server,
            seed=seed,
            exit_code=evidence.code,
            planned=verdict.planned,
            deleted=verdict.deleted_in_bucket,
            faults=dict(Counter(e.fault for e in exchanges if e.fault and e.fault != "per_key")),
            key_faults=sum(len(e.key_errors) for e in exchanges),
            wrongly_deleted=len(verdict.wrongly_deleted),
            unaccounted=verdict.unaccounted,
            misreported=verdict.misreported,
            problems=verdict.wrongly_deleted + verdict.problems,
            finding=scenario.finding.reason if scenario.finding else None,
            duration_s=executed.duration_s,
        )
    )

    problems = verdict.wrongly_deleted + verdict.problems
    finding = scenario.finding
    if problems and finding is not None and getattr(verdict, finding.shows_as):
        raise KnownFinding(f"{finding.reason}: {problems}")
    assert problems == [], executed.stderr[-2000:]
