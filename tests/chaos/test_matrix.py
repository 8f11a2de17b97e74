"""The chaos matrix: every scenario x seed runs the installed command through the fault proxy, and
the oracle checks the bucket object by object against a snapshot taken before.

`make test` runs each scenario with one seed, the slow ones left out; `make chaos` runs the full
matrix (CHAOS_SEEDS seeds, CHAOS_FULL=1) and prints the summary. The selected scenarios start
together when the module starts, CHAOS_PARALLEL at a time (each on its own bucket, behind its
own proxy); each test waits for its own, then judges it.

A scenario's sequence is one run; or one killed with SIGKILL when the proxy sees its seeded K-th
DeleteObjects request, then the same command again; or two runs started at once, each behind a
proxy of its own.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast, get_args

import pytest

from devtools.prefect_server import PrefectServer
from devtools.processes import BIN
from tests.chaos.interludes import INTERLUDES
from tests.chaos.oracle import (
    Killed,
    Plan,
    RunEvidence,
    Snapshot,
    Verdict,
    check_expectations,
    check_rerun,
    check_rivals,
    judge,
    read_plan,
)
from tests.chaos.scenarios import (
    CLIENT_READ_TIMEOUT_S,
    SCENARIOS,
    THROTTLE_BUDGET_MINUTES,
    Interlude,
    Scenario,
)
from tests.chaos.summary import RunFigures, Summary
from tests.chaos.targets import OLDER_THAN_DAYS, PREFIX, Filled, Layout, Target
from tests.support.fault_proxy import Exchange, FaultProxy

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

SEEDS = int(os.environ.get("CHAOS_SEEDS", "1"))
FULL = os.environ.get("CHAOS_FULL", "").lower() in ("1", "true", "yes")
#: Runs at once: a run is mostly the command starting (CPU), so a little more than the cores.
PARALLEL = int(os.environ.get("CHAOS_PARALLEL", "3"))
TARGET_FIXTURES = {"moto": "moto_target", "seaweedfs": "seaweedfs_target"}
#: The longest one run of the command may take (a held answer costs the read timeout).
RUN_TIMEOUT_S = 240
#: The longest a killed run's requests, slow or held, may take to be handled after the kill.
SETTLE_S = 2 * CLIENT_READ_TIMEOUT_S + 10

RunId = tuple[str, str, int]


def run_id(scenario: Scenario, seed: int) -> RunId:
    return (scenario.name, scenario.server, seed)


def longest_first(scenario: Scenario) -> tuple[bool, bool, bool, bool]:
    """Sequences of runs, held answers, then SeaweedFS fills (they wait out the cutoff), saved
    plans (two runs)."""
    return (
        scenario.sequence == "one",
        not scenario.slow,
        scenario.server != "seaweedfs",
        scenario.interlude is None,
    )


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


class KnownFinding(Exception):
    """The run showed its scenario's known finding (and only an xfail on this passes)."""


@dataclass(frozen=True)
class Executed:
    """One finished scenario and what the oracle needs of it: the run judged as every run is
    (the re-run of a killed run; the winner of two), and the other run of its sequence."""

    evidence: RunEvidence
    stderr: str
    duration_s: float
    #: killed-then-rerun: the killed run, and what the re-run logged on stdout.
    killed: Killed | None = None
    rerun_log: str = ""
    #: two-at-once: the run that lost the race for the bucket.
    rival: RunEvidence | None = None

    def exchanges(self) -> list[Exchange]:
        """Every request of the scenario's runs."""
        others = [run.exchanges for run in (self.killed and self.killed.run, self.rival) if run]
        return [exchange for group in (*others, self.evidence.exchanges) for exchange in group]


def command(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "s3-housekeeping"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def start(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """The command in the background, in a process group of its own, its output in `log`
    (stdout) and `log` with .err (stderr)."""
    with log.open("wb") as stdout, log.with_suffix(".err").open("wb") as stderr:
        return subprocess.Popen(
            [str(BIN / "s3-housekeeping"), *args],
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )


def run_arguments(filled: Filled, scenario: Scenario) -> list[str]:
    versions = ["--versions", scenario.versions] if scenario.versions != "current" else []
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
        *versions,
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


def the_journal(plans: Path) -> list[dict[str, Any]]:
    """The records of the one journal under `plans` (a killed run's)."""
    (journal,) = plans.rglob("*.journal.jsonl")
    with journal.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def kill_point(scenario: Scenario, seed: int) -> int:
    """The DeleteObjects request (from 1) at whose arrival the first run is killed: seeds 1, 2,
    3 ... take every other request, so the first seeds kill at the first, a middle and the
    last one (with 5 batches: 1, 3, 5, 2, 4)."""
    layout = scenario.layout
    assert isinstance(layout, Layout)
    batches = math.ceil((layout.old_direct + layout.old_nested) / 1000)
    return (2 * (seed - 1)) % batches + 1


@dataclass
class Stage:
    """What one scenario x seed runs against: its bucket, a proxy, the runs' environment."""

    scenario: Scenario
    seed: int
    target: Target
    filled: Filled
    proxy: FaultProxy
    env: dict[str, str]
    workdir: Path

    def snapshot(self) -> Snapshot:
        if self.scenario.versions == "current":
            return cast(Snapshot, self.target.snapshot(self.filled.bucket))
        return self.target.snapshot_versions(self.filled.bucket)

    def evidence(
        self,
        code: int,
        stderr: str,
        report_path: Path,
        saved: Path | None,
        before: Snapshot,
        exchanges: list[Exchange],
        plans: Path | None = None,
    ) -> RunEvidence:
        report = json.loads(report_path.read_text()) if report_path.exists() else None
        return RunEvidence(
            code=code,
            report=report,
            plan=the_plan(report, plans or Path(self.env["MANIFEST_LOCATION"]), saved),
            before=before,
            after=self.snapshot(),
            prefix=PREFIX,
            cutoff=self.filled.cutoff,
            exchanges=exchanges,
            fresh_plan=saved is None,
            said=last_words(stderr),
            stderr=stderr,
            versions=self.scenario.versions,
        )


def execute(
    scenario: Scenario,
    seed: int,
    target: Target,
    prefect: PrefectServer,
    environment: dict[str, str],
    workdir: Path,
) -> Executed:
    """Fill a bucket, snapshot it, run the scenario's sequence through the proxy with its
    faults, snapshot it again."""
    started = time.monotonic()
    filled = target.fill(scenario.layout, f"{scenario.name}-{seed}")
    # A held answer must outlast the client's read timeout, then be let go.
    with FaultProxy(target.endpoint_url, seed=seed, hold_s=2 * CLIENT_READ_TIMEOUT_S) as proxy:
        env = {
            **environment,
            **target.environment(),
            "AWS_ENDPOINT_URL": proxy.url,
            # Empty: the command starts a temporary API of its own, as without a server.
            "PREFECT_API_URL": prefect.api_url if scenario.prefect_server else "",
            "PREFECT_HOME": str(workdir / "prefect-home"),
            # The runs' logs stay on their stdout: shipping them costs the one server CPU.
            "PREFECT_LOGGING_TO_API_ENABLED": "false",
            "MANIFEST_LOCATION": str(workdir / "plans"),
            "DELETE_THROTTLE_BUDGET_MINUTES": THROTTLE_BUDGET_MINUTES,
            "AWS_READ_TIMEOUT_SECONDS": str(CLIENT_READ_TIMEOUT_S),
            **scenario.env,
        }
        executed = SEQUENCES[scenario.sequence](
            Stage(scenario, seed, target, filled, proxy, env, workdir)
        )
    return replace(executed, duration_s=round(time.monotonic() - started, 1))


def one_run(stage: Stage) -> Executed:
    """One executing run (after a dry run and the interlude, for a saved plan)."""
    scenario, env, proxy = stage.scenario, stage.env, stage.proxy
    arguments = run_arguments(stage.filled, scenario)
    saved = None
    if scenario.interlude is not None:
        dry_report = stage.workdir / "dry-run.json"
        dry = command(*arguments, "--report-json", str(dry_report), env=env)
        if dry.returncode != 0:
            raise RuntimeError(f"the dry run failed ({dry.returncode}): {dry.stderr[-2000:]}")
        saved = Path(json.loads(dry_report.read_text())["manifest"])
        interlude = INTERLUDES[scenario.interlude]
        interlude(stage.target.client(), stage.filled.bucket, read_plan(saved), saved, stage.seed)
        arguments += ["--plan", str(saved)]
    before = stage.snapshot()
    proxy.rules = list(scenario.faults)
    first = len(proxy.exchanges)
    report_path = stage.workdir / "report.json"
    result = command(*arguments, "--execute", "--report-json", str(report_path), env=env)
    exchanges = proxy.exchanges[first:]
    evidence = stage.evidence(
        result.returncode, result.stderr, report_path, saved, before, exchanges
    )
    return Executed(evidence, result.stderr, 0.0)


def killed_then_rerun(stage: Stage) -> Executed:
    """An executing run killed outright when its K-th DeleteObjects request reaches the proxy,
    then the same command again (without faults, with `rerun_args`), once the proxy has
    handled what the killed run sent."""
    scenario, env, proxy = stage.scenario, stage.env, stage.proxy
    arguments = [*run_arguments(stage.filled, scenario), "--execute"]
    kill_at = kill_point(scenario, stage.seed)
    before = stage.snapshot()
    proxy.rules = list(scenario.faults)
    log = stage.workdir / "killed.log"
    process = start(
        *arguments, "--report-json", str(stage.workdir / "killed.json"), env=env, log=log
    )
    try:
        if not proxy.wait_for("DeleteObjects", kill_at, RUN_TIMEOUT_S):
            raise RuntimeError(
                f"the run sent no DeleteObjects #{kill_at}: {log.read_text()[-2000:]}"
            )
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        code = process.wait(RUN_TIMEOUT_S)
    if not proxy.wait_idle(SETTLE_S):
        raise RuntimeError("the killed run's requests were still in flight")
    killed_exchanges = proxy.exchanges
    plans = Path(env["MANIFEST_LOCATION"])
    killed_run = replace(
        stage.evidence(
            code,
            log.with_suffix(".err").read_text(),
            stage.workdir / "killed.json",
            None,
            before,
            killed_exchanges,
        ),
        journal=the_journal(plans),
    )
    # The re-run keeps its plan in a folder of its own: a re-run refused before it plans
    # could otherwise be judged by the killed run's plan.
    rerun_plans = stage.workdir / "rerun-plans"
    proxy.rules = []
    report_path = stage.workdir / "report.json"
    result = command(
        *arguments,
        *scenario.rerun_args,
        "--report-json",
        str(report_path),
        env={**env, "MANIFEST_LOCATION": str(rerun_plans)},
    )
    (stage.workdir / "rerun.log").write_text(result.stdout)
    (stage.workdir / "rerun.err").write_text(result.stderr)
    evidence = stage.evidence(
        result.returncode,
        result.stderr,
        report_path,
        None,
        killed_run.after,
        proxy.exchanges[len(killed_exchanges) :],
        plans=rerun_plans,
    )
    return Executed(
        evidence,
        result.stderr,
        0.0,
        killed=Killed(killed_run, kill_at),
        rerun_log=result.stdout,
    )


def two_at_once(stage: Stage) -> Executed:
    """Two executing runs of one command started together, each behind its own proxy; the one
    that did not exit 6 is judged as a run alone, the other as the loser."""
    arguments = [*run_arguments(stage.filled, stage.scenario), "--execute"]
    before = stage.snapshot()
    with FaultProxy(stage.target.endpoint_url, seed=stage.seed) as second:
        proxies = {"a": stage.proxy, "b": second}
        places = {name: stage.workdir / name for name in proxies}
        processes = {}
        for name, proxy in proxies.items():
            proxy.rules = list(stage.scenario.faults)
            places[name].mkdir()
            own = {
                **stage.env,
                "AWS_ENDPOINT_URL": proxy.url,
                "MANIFEST_LOCATION": str(places[name] / "plans"),
            }
            report = str(places[name] / "report.json")
            log = places[name] / "run.log"
            processes[name] = start(*arguments, "--report-json", report, env=own, log=log)
        codes = {name: process.wait(RUN_TIMEOUT_S) for name, process in processes.items()}
    runs = [
        stage.evidence(
            codes[name],
            (places[name] / "run.err").read_text(),
            places[name] / "report.json",
            None,
            before,
            proxy.exchanges,
            plans=places[name] / "plans",
        )
        for name, proxy in proxies.items()
    ]
    loser, winner = sorted(runs, key=lambda run: run.code != 6)
    return Executed(winner, winner.stderr, 0.0, rival=loser)


SEQUENCES: dict[str, Callable[[Stage], Executed]] = {
    "one": one_run,
    "killed-then-rerun": killed_then_rerun,
    "two-at-once": two_at_once,
}


@pytest.fixture(scope="module")
def runs(
    request: pytest.FixtureRequest,
    prefect_server: PrefectServer,
    chaos_environment: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[RunId, Future[Executed]]]:
    """Every run this session selected, started in the tests' order, PARALLEL at a time; a
    killed run's re-run spends a minute waiting for its lock, so those sequences start at once,
    beside the others."""
    selected = [
        (params["scenario"], params["seed"])
        for item in request.session.items
        if item.path == request.path and "scenario" in (params := _params(item))
    ]
    targets = {
        server: request.getfixturevalue(TARGET_FIXTURES[server])
        for server in {scenario.server for scenario, _ in selected}
    }
    waiting = sum(scenario.sequence == "killed-then-rerun" for scenario, _ in selected)
    with (
        ThreadPoolExecutor(PARALLEL, thread_name_prefix="chaos") as pool,
        ThreadPoolExecutor(max(1, waiting), thread_name_prefix="chaos-waiting") as waits,
    ):
        futures = {
            run_id(scenario, seed): (
                waits if scenario.sequence == "killed-then-rerun" else pool
            ).submit(
                execute,
                scenario,
                seed,
                targets[scenario.server],
                prefect_server,
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


def test_every_interlude_named_is_defined_when_listed() -> None:
    assert set(get_args(Interlude)) == set(INTERLUDES)


def verdict_of(executed: Executed) -> Verdict:
    """The oracle's verdict on every run of the scenario, and on their sequence."""
    verdict = judge(executed.evidence)
    if executed.killed is not None:
        first = judge(executed.killed.run)
        verdict.planned = first.planned
        verdict.deleted_in_bucket += first.deleted_in_bucket
        verdict.wrongly_deleted += first.wrongly_deleted
        verdict.unaccounted += first.unaccounted
        verdict.misreported += first.misreported
        verdict.problems += [f"the killed run: {problem}" for problem in first.problems]
        check_rerun(verdict, executed.killed, executed.evidence, executed.rerun_log)
    if executed.rival is not None:
        check_rivals(verdict, executed.evidence, executed.rival)
    return verdict


@pytest.mark.parametrize(("scenario", "seed"), list(matrix()))
def test_run_is_safe_and_accounted_for_when_faults_hit(
    scenario: Scenario,
    seed: int,
    runs: dict[RunId, Future[Executed]],
    chaos_summary: Summary,
) -> None:
    executed = runs[run_id(scenario, seed)].result()
    evidence = executed.evidence
    verdict = verdict_of(executed)
    check_expectations(verdict, scenario.expect, evidence)
    exchanges = executed.exchanges()
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
            left_behind=verdict.left_behind,
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
